"""The embedded MQTT broker (amqtt) for single-box labs and the demo: `broker.url = "embedded"`.

It runs its own asyncio loop in a daemon thread; a site uses a real broker (Mosquitto).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

log = logging.getLogger(__name__)


class EmbeddedBroker:
    """An amqtt broker on a loopback port, started and stopped from synchronous code."""

    def __init__(self, host: str = "127.0.0.1", port: int = 1883) -> None:
        self.host = host
        self.port = port or _free_port(host)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="embedded-broker", daemon=True)
        self._broker: Any = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.set_exception_handler(_one_line)
        try:
            self._loop.run_until_complete(self._start())
        except BaseException as exc:  # reported to start()'s caller
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        from amqtt.broker import Broker
        from amqtt.contexts import BrokerConfig

        config = BrokerConfig.from_dict(
            {
                "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
                # Everyone may connect; a client with a username keeps its persistent session
                # (amqtt's own anonymous plugin keeps none: embedded_auth.py says why).
                "plugins": {"edge.shell.mqtt.embedded_auth.OpenNamedSessions": {}},
            }
        )
        self._broker = Broker(config, loop=self._loop)
        # amqtt 0.12 iterates its subscription table across awaits (retained messages for a
        # connecting client; each broadcast): a client subscribing meanwhile ends that
        # connection with "RuntimeError: dictionary changed size during iteration" (seen with
        # a dozen demo seats connecting at once; they reconnected seconds later). A table
        # that iterates over a copy of its keys avoids it.
        if isinstance(getattr(self._broker, "_subscriptions", None), dict):
            self._broker._subscriptions = _CopyIterDict(self._broker._subscriptions)
        await self._broker.start()

    def start(self, timeout: float = 10.0) -> None:
        if _port_busy(self.host, self.port):
            raise OSError(
                f"embedded broker: port {self.port} on {self.host} is in use "
                "(another broker running? set [broker] embedded_port or use its url)"
            )
        self._thread.start()
        if not self._started.wait(timeout):
            raise TimeoutError("embedded broker did not start")
        if self._error is not None:
            raise OSError(f"embedded broker failed to start: {self._error}") from self._error
        log.info("embedded broker listening on %s", self.url)

    def stop(self) -> None:
        if self._broker is None or not self._loop.is_running():
            return
        future = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
        try:
            future.result(10)
        except Exception as exc:  # shutting down anyway
            log.warning("embedded broker shutdown: %s", exc)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


class _CopyIterDict(dict[Any, Any]):
    """A dict whose iteration reads a copy: safe while the dict changes between awaits."""

    def __iter__(self) -> Iterator[Any]:
        return iter(list(super().keys()))

    def keys(self) -> Any:
        return list(super().keys())

    def items(self) -> Any:
        return list(super().items())

    def values(self) -> Any:
        return list(super().values())


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_busy(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def _one_line(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """amqtt leaves a client's handler task failing when the client goes away mid-handshake
    (a reset, a seat stopping while the broker shuts down): one warning line, not asyncio's
    traceback on the demo's terminal. The broker serves the other clients either way."""
    exc = context.get("exception")
    what = f"{type(exc).__name__}: {exc}" if exc is not None else context.get("message", "")
    log.warning("embedded broker: a client's connection ended with %s", what)
