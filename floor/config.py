"""`floor.toml`: the floor service's config (`seatbox floor serve --config floor.toml`).

```toml
[broker]            # as in a seat config (edge.api.broker.BrokerSection); client_id is fixed
url = "mqtt://broker.example:1883"
client_id = "seatbox-floor-lab"   # default seatbox-floor-<site>: the persistent session's key

[site]
id = "lab"
timezone = "Europe/Berlin"        # report days are local days of the site (IANA name)

[http]
listen = "127.0.0.1:8080"         # host:port of the web wallboard and the API

[store]
dir = "/var/lib/seatbox/floor"    # the SQLite store and the accounts file (relative: to this file)
url = ""                          # "postgresql://user@host:5432/db" for PostgreSQL; "" = SQLite in dir

[layout]
file = "layout.toml"              # seats, teams, floor-plan positions ("" = none)

[roster]
file = "roster.csv"               # date,seat,agent,team for hot-desking ("" = none)

[privacy]           # enforced by the service; docs/privacy.md explains each switch
individual_views = true           # false: team-only mode (no seat timeline, no per-seat rows)
min_group_size = 5                # aggregates over fewer people are not shown
norms = ["*"]                     # event types shown and stored ("*" all; "hold.*" a family)
raw_events = "7d"                 # retention of raw events
rollups = "90d"                   # retention of per seat/agent-day rollups
```
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator, Field, ValidationError

from edge.api.broker import BrokerSection
from edge.base.errors import ConfigError
from edge.base.files import read_toml
from edge.base.schema import Id, Section, Text, format_validation_error, parse_duration

DAY_S = 86400.0
MAX_RETENTION_DAYS = 3660  # ten years: anything longer is a typo, not a policy

_DAYS_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*d\s*$")


def _retention(value: object) -> float:
    """`7d`, `90d`, or any seatbox duration (`36h`, `90m`, seconds), as seconds, > 0."""
    if isinstance(value, str) and (match := _DAYS_RE.match(value)):
        seconds = float(match.group(1)) * DAY_S
    else:
        seconds = parse_duration(value)
    if not 0 < seconds <= MAX_RETENTION_DAYS * DAY_S:
        raise ValueError(
            f"expected a retention such as 7d or 90d (more than 0, at most {MAX_RETENTION_DAYS}d)"
        )
    return seconds


Retention = Annotated[float, BeforeValidator(_retention)]


def _timezone(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("expected an IANA time zone name such as Europe/Berlin")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"expected an IANA time zone name such as Europe/Berlin, got {value[:60]!r}"
        ) from None
    return value


def _listen(value: object) -> str:
    match = _LISTEN_RE.match(value) if isinstance(value, str) else None
    if match and 0 < int(match.group(2)) < 65536:
        return value  # type: ignore[return-value]  # matched: a str
    raise ValueError('expected host:port, such as "127.0.0.1:8080" or "[::]:8080"')


_LISTEN_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$")
_NORM_RE = re.compile(r"^(\*|[a-z_]+(\.[a-z_]+)*(\.\*)?)$")
TimeZone = Annotated[str, BeforeValidator(_timezone)]
Listen = Annotated[str, BeforeValidator(_listen)]
NormPattern = Annotated[str, Field(pattern=_NORM_RE.pattern)]


class SiteSection(Section):
    id: Id
    timezone: TimeZone = "UTC"


class HttpSection(Section):
    listen: Listen = "127.0.0.1:8080"

    @property
    def host(self) -> str:
        return self.listen.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])


class StoreSection(Section):
    dir: Annotated[Text, Field(min_length=1)] = "."
    url: Text = ""  # "" = SQLite in dir; postgresql://... = PostgreSQL


class FileSection(Section):
    file: Text = ""  # "" = none


class PrivacySection(Section):
    # false: team-only mode: no individual timeline, no per-seat or per-agent report rows.
    individual_views: bool = True
    # Aggregates over fewer people than this are not shown (works agreements ask for 5 or more).
    min_group_size: Annotated[int, Field(ge=1, le=1000)] = 5
    # Event types shown and stored: "*" all, "hold.*" a family, "call.dead_air" one type.
    norms: list[NormPattern] = ["*"]
    # Raw events name one seat minute by minute: kept one week (CNIL: weekly aggregates
    # suffice; its Amazon decision held 31 days of individual indicators excessive).
    raw_events: Retention = 7 * DAY_S
    # Per seat-day rollups feed monthly and quarterly reports: about one quarter.
    rollups: Retention = 90 * DAY_S


class FloorConfig(Section):
    broker: BrokerSection = BrokerSection()
    site: SiteSection
    http: HttpSection = HttpSection()
    store: StoreSection = StoreSection()
    layout: FileSection = FileSection()
    roster: FileSection = FileSection()
    privacy: PrivacySection = PrivacySection()

    @property
    def client_id(self) -> str:
        return self.broker.client_id or f"seatbox-floor-{self.site.id}"


@dataclass(frozen=True)
class FloorPaths:
    """The files a floor config names, resolved against the config file's folder."""

    dir: Path  # the store folder: floor.sqlite (when no url) and accounts.sqlite
    sqlite: Path
    accounts: Path
    layout: Path | None
    roster: Path | None


def load_floor_config(path: str | Path) -> tuple[FloorConfig, FloorPaths]:
    """The config and its files (relative to the config file); ConfigError names every
    problem. `[broker] url = "embedded"` is refused: the floor service runs beside a broker."""
    path = Path(path)
    data = read_toml(path)
    try:
        config = FloorConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(str(path), exc)) from None
    if config.broker.url == "embedded":
        raise ConfigError(
            f"{path}: [broker] url: expected the site broker's URL (mqtt://host:port)"
        )
    if config.store.url and not config.store.url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(
            f'{path}: [store] url: expected postgresql://user@host:port/db, or "" for SQLite'
        )

    def resolve(name: str) -> Path:
        file = Path(name)
        return file if file.is_absolute() else path.parent / file

    folder = resolve(config.store.dir)
    return config, FloorPaths(
        dir=folder,
        sqlite=folder / "floor.sqlite",
        accounts=folder / "accounts.sqlite",
        layout=resolve(config.layout.file) if config.layout.file else None,
        roster=resolve(config.roster.file) if config.roster.file else None,
    )
