"""Connecting to the site broker once and saying plainly why it failed: untrusted server
certificate, refused client certificate, plain MQTT to a TLS port, refused credentials.

Used by the seat at start-up, `doctor` and the TLS tests; secrets never appear in messages.
"""

from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt

from edge.api.broker import BrokerSection, Endpoint, make_client, tls_context
from edge.base.errors import BrokerError


class BrokerConnectError(BrokerError):
    """The broker could not be reached or refused us: `str()` says what happened, `fix` what
    to do about it (provision and doctor print both)."""

    def __init__(self, message: str, fix: str = "") -> None:
        super().__init__(message)
        self.fix = fix


# MQTT 5 reason codes of a refused CONNACK (MQTT 5.0 §3.2.2.2); paho maps the 3.1.1 return
# codes (MQTT 3.1.1 §3.2.2.3) onto these: 1->0x84, 2->0x85, 3->0x88, 4->0x86, 5->0x87.
CONNACK_REFUSED: dict[int, tuple[str, str]] = {
    0x84: (
        "the broker does not accept this MQTT protocol version",
        "set [broker] protocol to the version the broker speaks (3.1.1 or 5)",
    ),
    0x85: (
        "the broker rejected the client id",
        "set [broker] client_id to one the broker accepts (or leave it empty)",
    ),
    0x86: (
        "bad username or password",
        "check the username and the password file's content against the broker's password list",
    ),
    0x87: (
        "not authorised: the broker refused these credentials",
        "check the username/password (or client certificate) and the broker's ACL for this seat",
    ),
    0x88: ("the broker is unavailable", "try again later; check the broker's own log"),
    0x89: ("the broker is busy", "try again later"),
    0x8A: ("this client is banned by the broker", "ask the broker's administrator"),
    0x8C: ("bad authentication method", "check [broker] settings against the broker"),
}

CHECK_NETWORK = "check the network, the firewall and the broker address"


@dataclass
class _Outcome:
    reason: Any = None  # CONNACK reason code
    lost: bool = False


def _tls_message(err: ssl.SSLError, where: str, broker: BrokerSection) -> str:
    text = f"{err.reason or ''} {err}".lower()
    if isinstance(err, ssl.SSLCertVerificationError):
        detail = err.verify_message or str(err)
        if "hostname" in text or "ip address mismatch" in text:
            return (
                f"TLS: the broker's certificate at {where} does not name this host ({detail}); "
                "use the name in its certificate in [broker] url"
            )
        return (
            f"TLS: the broker's certificate at {where} is not trusted ({detail}); "
            f"check [broker] ca_file ({broker.ca_file or 'system CAs'})"
        )
    if "expired" in text:
        return (
            f"TLS: the broker at {where} refused our client certificate: it has expired; "
            f"renew [broker] cert_file ({broker.cert_file})"
        )
    if "unknown ca" in text or "unknown_ca" in text or "bad certificate" in text:
        return (
            f"TLS: the broker at {where} does not accept our client certificate (not issued by "
            f"its client CA); check [broker] cert_file ({broker.cert_file})"
        )
    if "certificate required" in text or "certificate_required" in text:
        return (
            f"TLS: the broker at {where} requires a client certificate; "
            "set [broker] cert_file and key_file"
        )
    if "wrong version number" in text or "wrong_version_number" in text:
        return f"TLS: {where} does not speak TLS; use mqtt:// for a plain port"
    return f"TLS: handshake with {where} failed ({err})"


def _tls_error(err: ssl.SSLError, where: str, broker: BrokerSection) -> BrokerConnectError:
    message = _tls_message(err, where, broker)
    if isinstance(err, ssl.SSLCertVerificationError):
        fix = (
            "give the CA that signed the broker's certificate (--ca / [broker] ca_file) and use "
            "the host name the certificate names"
        )
    elif "does not speak TLS" in message:
        fix = "use the broker's plain port with mqtt://, or its TLS port (usually 8883)"
    else:
        fix = (
            "check the port is the broker's TLS port (mqtts://, usually 8883) and, for mutual "
            "TLS, that the broker trusts the client certificate"
        )
    return BrokerConnectError(message, fix)


def _probe_tls(endpoint: Endpoint, broker: BrokerSection, where: str) -> None:
    """With TLS 1.3 a server rejects our certificate after the handshake, and paho reports only
    a lost connection: repeat the handshake and read the alert to name the reason."""
    try:
        with (
            socket.create_connection((endpoint.host, endpoint.port), timeout=5) as raw,
            tls_context(broker).wrap_socket(raw, server_hostname=endpoint.host) as tls,
        ):
            tls.recv(1)
    except ssl.SSLError as err:
        raise _tls_error(err, where, broker) from None
    except OSError:
        return


def connect_and_wait(
    broker: BrokerSection,
    client_id: str,
    url: str | None = None,
    *,
    timeout: float = 10.0,
    clean_session: bool = True,
) -> tuple[mqtt.Client, Endpoint]:
    """Connect and wait for the broker's CONNACK, driving the network loop ourselves so every
    failure surfaces here; returns the connected client (start its loop next)."""
    try:
        client, endpoint = make_client(broker, client_id, url, clean_session=clean_session)
    except ssl.SSLError as err:
        raise BrokerConnectError(
            f"TLS files could not be loaded: {err.reason or err}",
            "check that ca/cert/key are PEM files and the key belongs to the certificate",
        ) from None
    where = f"{endpoint.host}:{endpoint.port}"
    outcome = _Outcome()

    def on_connect(c: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        outcome.reason = reason

    def on_disconnect(c: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        outcome.lost = True

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    try:
        try:
            client.connect_timeout = timeout
            client.connect(endpoint.host, endpoint.port, keepalive=max(1, int(broker.keepalive)))
            deadline = time.monotonic() + timeout
            while outcome.reason is None and not outcome.lost:
                if time.monotonic() > deadline:
                    raise BrokerConnectError(
                        f"{where} accepted the connection but sent no MQTT CONNACK within "
                        f"{timeout:g} s",
                        "check the URL's scheme and port: is it an MQTT port (mqtts:// for "
                        "TLS, ws:// for websockets)?",
                    )
                rc = client.loop(timeout=0.1)
                if rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_AGAIN):
                    outcome.lost = True
        except ssl.SSLError as err:
            raise _tls_error(err, where, broker) from None
        except ConnectionRefusedError:
            raise BrokerConnectError(
                f"connection refused by {where}: nothing listens there",
                "check the broker is running and listens on that port (the URL's port)",
            ) from None
        except (ConnectionResetError, BrokenPipeError):
            outcome.lost = True
        except socket.gaierror:
            raise BrokerConnectError(
                f"host {endpoint.host!r} not found", "check the host name in the URL and DNS"
            ) from None
        except TimeoutError:
            raise BrokerConnectError(
                f"no answer from {where} within {timeout:g} s", CHECK_NETWORK
            ) from None
        except OSError as err:
            raise BrokerConnectError(
                f"cannot reach {where}: {err.strerror or err}", CHECK_NETWORK
            ) from None
        if outcome.reason is None and endpoint.tls:
            _probe_tls(endpoint, broker, where)
        if outcome.reason is None:
            hints = ["it may be a TLS port: use mqtts://"] if not endpoint.tls else []
            if endpoint.tls:
                hints.append("our client certificate may have been refused")
            if broker.protocol == "5":
                hints.append('it may not speak MQTT 5: set [broker] protocol = "3.1.1"')
            raise BrokerConnectError(
                f"the broker at {where} closed the connection before accepting it; "
                + "; ".join(hints),
                "check the URL's scheme and port, and the broker's log for why it closed",
            )
        if outcome.reason.is_failure:
            if "protocol version" in str(outcome.reason).lower():
                raise BrokerConnectError(
                    f"the broker at {where} does not speak MQTT {broker.protocol} "
                    f'({outcome.reason}); set [broker] protocol = "3.1.1"',
                    'set [broker] protocol = "3.1.1"',
                )
            code = int(outcome.reason.value)
            detail, fix = CONNACK_REFUSED.get(code, (str(outcome.reason), ""))
            raise BrokerConnectError(
                f"the broker at {where} refused the connection: {detail}",
                fix or "check [broker] username / password_file or the client certificate",
            )
    except BrokerConnectError:
        client.disconnect()
        raise
    client.on_connect = None
    client.on_disconnect = None
    return client, endpoint
