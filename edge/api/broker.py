"""Turning a [broker] config section into a connected-ready paho client: URL, TLS, credentials.

One place for every connection option, used by the seat, the floor view, provision and doctor.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field

from edge.base.errors import ConfigError
from edge.base.files import decode_text, read_small_file
from edge.base.schema import Duration, Section, Text, netloc

if TYPE_CHECKING:  # paho and ssl load with the first client: reading a config needs neither
    import ssl

    import paho.mqtt.client as mqtt

__all__ = [
    "DEFAULT_PORTS",
    "Endpoint",
    "make_client",
    "parse_url",
    "read_secret_file",
    "tls_context",
]

DEFAULT_PORTS = {"mqtt": 1883, "tcp": 1883, "mqtts": 8883, "ssl": 8883, "ws": 80, "wss": 443}

_HOST_RE = re.compile(r"^[A-Za-z0-9._:%-]{1,253}$")


CREDENTIALS_IN_URL = (
    "expected no user or password in the URL (it would be shown and logged): put the user in "
    "[broker] username and the password in a file named by [broker] password_file (mode 0600)"
)


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    tls: bool
    websockets: bool
    path: str = "/mqtt"


def parse_url(url: str) -> Endpoint:
    """`mqtt://host[:port]`, `mqtts://`, `ws://host[:port]/path`, `wss://`; plain `host[:port]`.

    A user or password in the URL is refused (and never repeated in the message)."""
    if "@" in netloc(url):
        raise ConfigError(f"[broker] url: {CREDENTIALS_IN_URL}")
    if len(url) > 2048 or any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise ConfigError(
            f"[broker] url: expected a host name without spaces, at most 2048 characters, got {url[:80]!r}"
        )
    if "://" not in url:
        url = f"mqtt://{url}"
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = parts.hostname
    except ValueError:
        raise ConfigError(
            f"[broker] url: expected a host name or IP address, got {url!r}"
        ) from None
    if scheme not in DEFAULT_PORTS:
        raise ConfigError(
            f"[broker] url: expected mqtt://, mqtts://, ws:// or wss:// (or embedded), got {url!r}"
        )
    if not host or not _HOST_RE.fullmatch(host):
        raise ConfigError(f"[broker] url: expected a host name or IP address, got {url!r}")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ConfigError(f"[broker] url: expected a port 1-65535, got {url!r}")
    return Endpoint(
        host=host,
        port=port or DEFAULT_PORTS[scheme],
        tls=scheme in ("mqtts", "ssl", "wss"),
        websockets=scheme in ("ws", "wss"),
        path=parts.path or "/mqtt",
    )


def _broker_url(value: str) -> str:
    if value != "embedded":
        try:
            parse_url(value)
        except ConfigError as exc:
            raise ValueError(str(exc).removeprefix("[broker] url: ")) from None
    return value


class BrokerSection(Section):
    # mqtt://host:1883, mqtts://host:8883, ws://, wss://, or embedded; never a user or password
    url: Annotated[str, AfterValidator(_broker_url)] = "embedded"
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    client_id: Annotated[Text, Field(max_length=256)] = ""  # default seatbox-<site>-<seat>
    username: Annotated[Text, Field(max_length=256)] = ""
    password_file: Text = ""  # a file with mode 0600 or stricter; the password is never logged
    ca_file: Text = ""
    cert_file: Text = ""
    key_file: Text = ""
    check_hostname: bool = True
    keepalive: Annotated[Duration, Field(le=65535)] = 30.0  # MQTT's 16-bit keep alive, seconds
    embedded_port: int = Field(default=1883, ge=0, le=65535)
    replay_rate: float = Field(default=200.0, gt=0, le=1e6)  # outbox events/s (backlog replay)
    max_inflight: int = Field(default=32, ge=1, le=65535)  # unacknowledged QoS 1 publishes


# A password or a PEM key, certificate or CA bundle: far below this.
MAX_SECRET_BYTES = 64 * 1024
MAX_PEM_BYTES = 1024 * 1024


def _regular_file(path: str, what: str) -> os.stat_result:
    """stat of a file the [broker] section names; a FIFO or device would hang a read."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ConfigError(f"[broker] {what}: file {path} not found") from None
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "NUL in the path"
        raise ConfigError(f"[broker] {what}: cannot use {path} ({reason})") from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"[broker] {what}: {path} is not a regular file; expected a regular file")
    return info


def _read(path: str, what: str, limit: int) -> bytes:
    try:
        return read_small_file(Path(path), limit)
    except ConfigError as exc:
        raise ConfigError(f"[broker] {what}: {exc}") from None


def read_secret_file(path: str, what: str) -> str:
    """Read a secret from a file readable by its owner only (like ssh keys); never log it."""
    info = _regular_file(path, what)
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"[broker] {what}: {path} is readable by others (mode "
            f"{stat.S_IMODE(info.st_mode):04o}); run: chmod 600 {path}"
        )
    data = _read(path, what, MAX_SECRET_BYTES)
    try:
        return decode_text(Path(path), data).strip()
    except ConfigError as exc:
        raise ConfigError(f"[broker] {what}: {exc}") from None


def tls_context(broker: BrokerSection) -> ssl.SSLContext:
    """The TLS settings of a [broker] section, every file checked and loaded (ConfigError)."""
    import ssl

    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if broker.ca_file:
        _regular_file(broker.ca_file, "ca_file")
        pem = _read(broker.ca_file, "ca_file", MAX_PEM_BYTES)
        try:
            context.load_verify_locations(cadata=pem.decode("ascii"))
        except (ssl.SSLError, UnicodeDecodeError, ValueError):
            raise ConfigError(
                f"[broker] ca_file: {broker.ca_file} holds no certificate; expected PEM "
                "(-----BEGIN CERTIFICATE-----)"
            ) from None
    if broker.cert_file or broker.key_file:
        if not (broker.cert_file and broker.key_file):
            missing = "cert_file" if not broker.cert_file else "key_file"
            raise ConfigError(f"[broker] {missing}: set both cert_file and key_file for mutual TLS")
        _regular_file(broker.cert_file, "cert_file")
        read_secret_file(broker.key_file, "key_file")  # type, size and permission checks
        _read(broker.cert_file, "cert_file", MAX_PEM_BYTES)
        try:
            context.load_cert_chain(certfile=broker.cert_file, keyfile=broker.key_file)
        except ssl.SSLError:
            raise ConfigError(
                f"[broker] cert_file: {broker.cert_file} and key_file {broker.key_file} are "
                "not a matching PEM certificate and key"
            ) from None
        except OSError as exc:
            raise ConfigError(f"[broker] cert_file: cannot read ({exc.strerror})") from None
    context.check_hostname = broker.check_hostname
    return context


def make_client(
    broker: BrokerSection, client_id: str, url: str | None = None, clean_session: bool = True
) -> tuple[mqtt.Client, Endpoint]:
    """A paho 2.x client configured for this broker section (not yet connected)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    endpoint = parse_url(url or broker.url)
    if broker.protocol == "5":
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            transport="websockets" if endpoint.websockets else "tcp",
        )
    else:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean_session,
            protocol=mqtt.MQTTv311,
            transport="websockets" if endpoint.websockets else "tcp",
        )
    if endpoint.websockets:
        client.ws_set_options(path=endpoint.path)
    if endpoint.tls:
        client.tls_set_context(tls_context(broker))
    if broker.username:
        password = (
            read_secret_file(broker.password_file, "password_file")
            if broker.password_file
            else None
        )
        client.username_pw_set(broker.username, password)
    return client, endpoint
