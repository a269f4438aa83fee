"""Other MQTT brokers for the broker matrix, each a process of our own on free loopback ports:
NATS with MQTT and JetStream, a RabbitMQ node with the MQTT plugin. Absent: skip, saying why.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from support import free_port, port_open, wait_until

NATS_SERVER = shutil.which("nats-server")
RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"  # not the sbin wrapper: it su's


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def nats_mqtt(workdir: Path) -> Iterator[str]:
    """nats-server with JetStream (MQTT sessions and retained messages live there) and a
    server_name (required by its MQTT support); yields the mqtt:// URL."""
    if not NATS_SERVER:
        pytest.skip("nats-server not installed (apt-get install nats-server)")
    port, mqtt_port = free_port(), free_port()
    conf = workdir / "nats.conf"
    conf.write_text(
        f"server_name: seatbox_test_{port}\n"
        f"listen: 127.0.0.1:{port}\n"
        f'jetstream {{ store_dir: "{workdir}/jetstream" }}\n'
        f"mqtt {{ listen: 127.0.0.1:{mqtt_port} }}\n"
    )
    log = workdir / "nats.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [NATS_SERVER, "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_until(lambda: port_open(mqtt_port) or proc.poll() is not None, 20, "nats mqtt")
        if proc.poll() is not None:
            pytest.skip(f"nats-server with MQTT did not start: {log.read_text()[-500:]}")
        yield f"mqtt://127.0.0.1:{mqtt_port}"
    finally:
        _stop(proc)


@contextmanager
def rabbitmq_mqtt(workdir: Path) -> Iterator[str]:
    """A RabbitMQ node of our own (own node name, ports, data, cookie) with rabbitmq_mqtt;
    the system service is left alone. Yields the mqtt:// URL."""
    if not os.path.exists(RABBITMQ_SERVER) or not shutil.which("erl"):
        pytest.skip("RabbitMQ not installed (apt-get install rabbitmq-server)")
    amqp, dist, mqtt_port = free_port(), free_port(), free_port()
    (workdir / "enabled_plugins").write_text("[rabbitmq_mqtt].\n")
    (workdir / "rabbitmq.conf").write_text(
        f"listeners.tcp.default = 127.0.0.1:{amqp}\n"
        f"mqtt.listeners.tcp.default = 127.0.0.1:{mqtt_port}\n"
        "mqtt.allow_anonymous = true\n"
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),  # the Erlang cookie goes here, not into root's home
        "RABBITMQ_NODENAME": f"seatbox{mqtt_port}@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(amqp),
        "RABBITMQ_DIST_PORT": str(dist),
        "RABBITMQ_MNESIA_BASE": str(workdir / "mnesia"),
        "RABBITMQ_LOG_BASE": str(workdir / "log"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(workdir / "enabled_plugins"),
        "RABBITMQ_CONFIG_FILE": str(workdir / "rabbitmq.conf"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(workdir / "advanced.config"),
        "RABBITMQ_PID_FILE": str(workdir / "rabbitmq.pid"),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
    }
    log = workdir / "rabbitmq.out"
    with log.open("ab") as out:
        proc = subprocess.Popen([RABBITMQ_SERVER], stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        # An Erlang node with plugins takes 10-20 s to boot on a small machine.
        wait_until(lambda: port_open(mqtt_port) or proc.poll() is not None, 90, "rabbitmq mqtt")
        if proc.poll() is not None:
            pytest.skip(f"RabbitMQ with rabbitmq_mqtt did not start: {log.read_text()[-500:]}")
        yield f"mqtt://127.0.0.1:{mqtt_port}"
    finally:
        _stop(proc)
