"""`floor.toml`: the floor service's config (`seatbox floor serve --config floor.toml`).

```toml
[broker]            # as in a seat config (edge.api.broker.BrokerSection); client_id is fixed
url = "mqtt://broker.example:1883"
client_id = "seatbox-floor-lab"   # default seatbox-floor-<site>: the persistent session's key

[site]
id = "lab"

[store]
path = "/var/lib/seatbox/floor.sqlite"   # relative paths are relative to this file

[retention]         # enforced by the service (purge); see docs/floor.md for why these defaults
raw_events = "7d"
rollups = "90d"
```
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

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


class SiteSection(Section):
    id: Id


class StoreSection(Section):
    path: Annotated[Text, Field(min_length=1)] = "floor.sqlite"


class RetentionSection(Section):
    # Raw events name one seat minute by minute: kept one week (CNIL: weekly aggregates
    # suffice; its Amazon decision held 31 days of individual indicators excessive).
    raw_events: Retention = 7 * DAY_S
    # Per seat-day rollups feed monthly and quarterly reports: about one quarter.
    rollups: Retention = 90 * DAY_S


class FloorConfig(Section):
    broker: BrokerSection = BrokerSection()
    site: SiteSection
    store: StoreSection = StoreSection()
    retention: RetentionSection = RetentionSection()

    @property
    def client_id(self) -> str:
        return self.broker.client_id or f"seatbox-floor-{self.site.id}"


def load_floor_config(path: str | Path) -> tuple[FloorConfig, Path]:
    """The config and the store's path (relative to the config file); ConfigError names every
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
    store = Path(config.store.path)
    if not store.is_absolute():
        store = path.parent / store
    return config, store
