"""Provisioning a seat: writing its validated config and checking the broker takes its credentials.

`check_broker` is shared with `seatbox doctor`; `read_seats_csv` prepares many seats for imaging.
"""

from __future__ import annotations

import csv
import grp
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.base.errors import ConfigError, UsageError

# The config schema, paho and tomli_w load in the functions that use them: `seatbox --help`
# and `seatbox provision --help` read the defaults below without them.
if TYPE_CHECKING:
    from edge.api.broker import BrokerSection
    from edge.shell.config import SeatConfig

DEFAULT_OUTPUT = Path("/etc/seatbox/seatbox.toml")
# The stable name 61-seatbox-radar.rules gives the radar's USB-serial adapter.
DEFAULT_RADAR_PORT = "/dev/seatbox-radar"
CONFIG_MODE = 0o640  # root writes it; the service reads it through group seatbox
SERVICE_GROUP = "seatbox"
CHECK_TIMEOUT_S = 10.0

# CSV columns for `--from`: required, then optional (docs/operations.md).
CSV_REQUIRED = ("site", "seat", "broker")
CSV_OPTIONAL = ("username", "password_file", "ca", "cert", "key", "profile", "tx_device")
# Config key (section, key) -> the flag or column a person typed it as.
_FLAG = {
    ("seat", "site"): "site",
    ("seat", "id"): "seat",
    ("seat", "profile"): "profile",
    ("broker", "url"): "broker",
    ("broker", "username"): "username",
    ("broker", "password_file"): "password_file",
    ("broker", "ca_file"): "ca",
    ("broker", "cert_file"): "cert",
    ("broker", "key_file"): "key",
    ("audio", "tx_device"): "tx_device",
}
_ID_NEED = "expected letters, digits, '_' or '-' (1 to 64), no '+ # / .' (MQTT topic level)"


class ProvisionError(UsageError):
    """Bad input to provisioning; the message names the flag or CSV row and column."""


@dataclass(frozen=True)
class SeatRequest:
    """What staff give for one seat (flags or one CSV row)."""

    site: str
    seat: str
    broker: str
    username: str = ""
    password_file: str = ""
    ca: str = ""
    cert: str = ""
    key: str = ""
    profile: str = "default"
    simulate: bool = False  # virtual headset, audio and radar (labs, demos, tests)
    radar_port: str = DEFAULT_RADAR_PORT
    # The headset's capture device (PortAudio name); `seatbox doctor` lists them. Without it
    # the config is written, but `config check` and the service refuse it until it is set.
    tx_device: str = ""


def config_data(req: SeatRequest) -> dict[str, Any]:
    """The seat config as TOML-ready data: only keys that differ from the schema defaults."""
    broker: dict[str, Any] = {"url": req.broker}
    for key, value in (
        ("username", req.username),
        ("password_file", req.password_file),
        ("ca_file", req.ca),
        ("cert_file", req.cert),
        ("key_file", req.key),
    ):
        if value:
            broker[key] = value
    data: dict[str, Any] = {
        "seat": {"site": req.site, "id": req.seat, "profile": req.profile},
        "broker": broker,
    }
    if req.simulate:
        data["headset"] = {"device": "virtual"}
        data["audio"] = {"backend": "virtual"}
        data["radar"] = {"backend": "virtual"}
        data["call"] = {"sources": ["simulate", "cti"]}
    else:
        data["headset"] = {"device": "auto"}
        data["audio"] = {"backend": "sounddevice"}
        if req.tx_device:
            data["audio"]["tx_device"] = req.tx_device
        data["radar"] = {"backend": "ld2410", "port": req.radar_port}
        data["call"] = {"sources": ["bridge", "cti"]}
    data["storage"] = {"state_dir": "/var/lib/seatbox"}
    return data


def render(req: SeatRequest) -> str:
    import tomli_w

    header = (
        f"# seatbox seat config for {req.site}/{req.seat}, written by `seatbox provision`.\n"
        "# Every key: config/seatbox.example.toml. Check with `seatbox config check FILE`.\n\n"
    )
    return header + tomli_w.dumps(config_data(req))


def validate_request(req: SeatRequest) -> list[tuple[str, str]]:
    """Problems as (flag or column, message), checked before anything is written."""
    from pydantic import ValidationError

    from edge.api.broker import CREDENTIALS_IN_URL, parse_url
    from edge.base.schema import valid_id
    from edge.shell.config import SeatConfig

    problems: list[tuple[str, str]] = []
    for name, value in (("site", req.site), ("seat", req.seat)):
        if not valid_id(value):
            problems.append((name, f"{_ID_NEED}, got {value!r}"))
    try:
        endpoint = parse_url(req.broker) if req.broker != "embedded" else None
    except ConfigError as exc:
        reason = str(exc).removeprefix("[broker] url: ")
        if reason == CREDENTIALS_IN_URL:
            reason = (
                "expected no user or password in the URL (it would be written to the config and "
                "shown): give --username and --password-file (a file, mode 0600) instead"
            )
        problems.append(("broker", reason))
        endpoint = None
    if req.password_file and not req.username:
        problems.append(("username", "required with a password file"))
    if bool(req.cert) != bool(req.key):
        problems.append(
            ("cert" if not req.cert else "key", "give both cert and key for mutual TLS")
        )
    if endpoint is not None and not endpoint.tls and (req.ca or req.cert):
        problems.append(("broker", f"TLS files given but {req.broker!r} is not TLS: use mqtts://"))
    try:
        SeatConfig.model_validate(config_data(req))
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(str(part) for part in err["loc"][:2])
            name = _FLAG.get((loc[0], loc[1]) if len(loc) == 2 else ("", ""), ".".join(loc))
            if not any(p[0] == name for p in problems):
                problems.append((name, str(err.get("msg", "invalid value"))))
    return problems


def _validated_in_place(text: str, output: Path) -> SeatConfig:
    """load_config on the text as if it were at `output` (profiles are found next to it)."""
    from edge.shell.config import load_config

    tmp = output.with_name(f".{output.name}.provision-check")
    tmp.write_text(text, encoding="utf-8")
    try:
        return load_config(tmp)
    except ConfigError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(str(exc).replace(str(tmp), str(output))) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_config(req: SeatRequest, output: Path) -> tuple[SeatConfig, bool]:
    """Write the config atomically after load_config accepted it; True when it replaced a file.

    Raises ProvisionError (bad flags) or ConfigError (e.g. an unknown profile) before writing.
    """
    problems = validate_request(req)
    if problems:
        raise ProvisionError(
            "\n".join(f"--{name.replace('_', '-')}: {msg}" for name, msg in problems)
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    text = render(req)
    config = _validated_in_place(text, output)
    tmp = output.with_name(f".{output.name}.provision-check")
    os.chmod(tmp, CONFIG_MODE)
    _give_to_service_group(tmp)
    existed = output.exists()
    os.replace(tmp, output)
    return config, existed


def _give_to_service_group(path: Path) -> None:
    if os.geteuid() != 0:
        return
    try:
        gid = grp.getgrnam(SERVICE_GROUP).gr_gid
    except KeyError:
        return  # not installed on this machine (preparing configs for imaging)
    os.chown(path, 0, gid)


# --- broker check -------------------------------------------------------------------------


@dataclass(frozen=True)
class BrokerCheck:
    ok: bool
    detail: str
    fix: str = ""


def check_broker(
    broker: BrokerSection, client_id: str, timeout: float = CHECK_TIMEOUT_S
) -> BrokerCheck:
    """Connect with these settings and credentials, wait for the CONNACK, disconnect. The
    connect and its failure messages are the seat's own (`edge.ops.broker_check`)."""
    from edge.ops.broker_check import BrokerConnectError, connect_and_wait

    if broker.url == "embedded":
        return BrokerCheck(True, "embedded broker: the service starts its own")
    try:
        client, endpoint = connect_and_wait(broker, f"{client_id}-check", timeout=timeout)
    except ConfigError as exc:
        return BrokerCheck(False, str(exc), "fix the [broker] settings or the files they name")
    except BrokerConnectError as exc:
        return BrokerCheck(False, str(exc), exc.fix)
    client.disconnect()
    how = ", TLS" if endpoint.tls else ""
    who = f" as {broker.username}" if broker.username else ""
    return BrokerCheck(True, f"connected to {endpoint.host}:{endpoint.port}{who}{how}")


# --- many seats ---------------------------------------------------------------------------


def read_seats_csv(path: Path, simulate: bool = False) -> list[SeatRequest]:
    """One SeatRequest per row; every problem names the row (file line) and column."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise ProvisionError(f"{path}: cannot read: {exc.strerror}") from None
    with handle:
        reader = csv.DictReader(handle)
        header = [name.strip() for name in (reader.fieldnames or [])]
        missing = [c for c in CSV_REQUIRED if c not in header]
        unknown = [c for c in header if c not in CSV_REQUIRED + CSV_OPTIONAL]
        if missing or unknown:
            parts = []
            if missing:
                parts.append(f"missing column(s) {', '.join(missing)}")
            if unknown:
                parts.append(f"unknown column(s) {', '.join(unknown)}")
            raise ProvisionError(
                f"{path}: header: {'; '.join(parts)} "
                f"(expected {','.join(CSV_REQUIRED + CSV_OPTIONAL)})"
            )
        requests: list[SeatRequest] = []
        errors: list[str] = []
        seen: dict[tuple[str, str], int] = {}
        for row in reader:
            line = reader.line_num
            cells = {(k or "").strip(): (v or "").strip() for k, v in row.items() if k}
            if not any(cells.values()):
                continue  # blank line
            req = SeatRequest(
                site=cells.get("site", ""),
                seat=cells.get("seat", ""),
                broker=cells.get("broker", ""),
                username=cells.get("username", ""),
                password_file=cells.get("password_file", ""),
                ca=cells.get("ca", ""),
                cert=cells.get("cert", ""),
                key=cells.get("key", ""),
                profile=cells.get("profile", "") or "default",
                simulate=simulate,
                tx_device=cells.get("tx_device", ""),
            )
            for column, message in validate_request(req):
                errors.append(f"{path}: row {line}, column {column}: {message}")
            key = (req.site, req.seat)
            if key in seen:
                errors.append(
                    f"{path}: row {line}, column seat: {req.site}/{req.seat} "
                    f"already on row {seen[key]}"
                )
            seen.setdefault(key, line)
            requests.append(req)
    if errors:
        raise ProvisionError("\n".join(errors))
    if not requests:
        raise ProvisionError(f"{path}: no seats (only a header?)")
    return requests


def seat_output(folder: Path, req: SeatRequest) -> Path:
    """Where `--from` puts a seat's config: one folder per seat, ready to copy to /etc/seatbox."""
    return folder / req.site / req.seat / "seatbox.toml"


def missing_before_start(req: SeatRequest) -> str:
    """What the written config still needs before the seat starts ('' when nothing)."""
    if req.simulate or req.tx_device:
        return ""
    return (
        "[audio] tx_device is not set: `seatbox doctor` lists the capture devices; set it "
        "(or provision with --tx-device) before `seatbox config check` and the service accept it"
    )


def describe(req: SeatRequest) -> str:
    auth = (
        "client certificate"
        if req.cert
        else f"user {req.username}"
        if req.username
        else "anonymous"
    )
    mode = "simulated devices" if req.simulate else "real devices"
    return f"seat {req.site}/{req.seat}, broker {req.broker} ({auth}), {mode}"
