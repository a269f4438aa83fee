"""Turning a [broker] config section into a connected-ready paho client: URL, TLS, credentials.

One place for every connection option, used by the seat, the floor view, provision and doctor.
"""

from __future__ import annotations

import os
import ssl
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt

from edge.config import BrokerSection, ConfigError

DEFAULT_PORTS = {"mqtt": 1883, "tcp": 1883, "mqtts": 8883, "ssl": 8883, "ws": 80, "wss": 443}


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    tls: bool
    websockets: bool
    path: str = "/mqtt"


def parse_url(url: str) -> Endpoint:
    """`mqtt://host[:port]`, `mqtts://`, `ws://host[:port]/path`, `wss://`; plain `host[:port]`."""
    if "://" not in url:
        url = f"mqtt://{url}"
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ConfigError(
            f"[broker] url: expected mqtt://, mqtts://, ws:// or wss:// (or embedded), got {url!r}"
        )
    if not parts.hostname:
        raise ConfigError(f"[broker] url: no host in {url!r}")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise ConfigError(f"[broker] url: port must be 0-65535 in {url!r}") from None
    return Endpoint(
        host=parts.hostname,
        port=port,
        tls=scheme in ("mqtts", "ssl", "wss"),
        websockets=scheme in ("ws", "wss"),
        path=parts.path or "/mqtt",
    )


def read_secret_file(path: str, what: str) -> str:
    """Read a secret from a file readable by its owner only (like ssh keys); never log it."""
    file = Path(path)
    try:
        info = file.stat()
    except FileNotFoundError:
        raise ConfigError(f"[broker] {what}: file {path} not found") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"[broker] {what}: {path} is readable by others (mode "
            f"{stat.S_IMODE(info.st_mode):04o}); run: chmod 600 {path}"
        )
    try:
        return file.read_text(encoding="utf-8").strip()
    except PermissionError:
        raise ConfigError(f"[broker] {what}: {path} is not readable by this user") from None


def tls_context(broker: BrokerSection) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if broker.ca_file:
        if not os.path.exists(broker.ca_file):
            raise ConfigError(f"[broker] ca_file: file {broker.ca_file} not found")
        context.load_verify_locations(cafile=broker.ca_file)
    if broker.cert_file or broker.key_file:
        if not (broker.cert_file and broker.key_file):
            raise ConfigError("[broker] cert_file and key_file: set both for mutual TLS")
        for key, value in (("cert_file", broker.cert_file), ("key_file", broker.key_file)):
            if not os.path.exists(value):
                raise ConfigError(f"[broker] {key}: file {value} not found")
        read_secret_file(broker.key_file, "key_file")  # permission check only
        context.load_cert_chain(certfile=broker.cert_file, keyfile=broker.key_file)
    context.check_hostname = broker.check_hostname
    return context


def make_client(
    broker: BrokerSection, client_id: str, url: str | None = None, clean_session: bool = True
) -> tuple[mqtt.Client, Endpoint]:
    """A paho 2.x client configured for this broker section (not yet connected)."""
    endpoint = parse_url(url or broker.url)
    if broker.protocol == "5":
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            transport="websockets" if endpoint.websockets else "tcp",
        )
    else:
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
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
