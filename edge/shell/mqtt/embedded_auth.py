"""The embedded broker's authentication plugin (loaded by amqtt by name, see embedded.py).

amqtt 0.12's `AnonymousAuthPlugin` with `allow_anonymous` marks every client anonymous, a
client that gives a username too, and amqtt keeps no session for an anonymous client: a
`clean_session=False` subscriber (the floor service) then gets no session back on reconnect
and its QoS 1 messages sent meanwhile are dropped. This plugin lets every client in, as that
one does, but marks only clients without a username anonymous: a client with a username (the
floor service's `[broker] username`) keeps its persistent session and its queued QoS 1
messages, as on Mosquitto.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amqtt.plugins.base import BaseAuthPlugin


class OpenNamedSessions(BaseAuthPlugin):  # type: ignore[misc]  # amqtt ships no types
    @dataclass
    class Config:
        pass

    async def authenticate(self, *, session: Any) -> bool:
        session.is_anonymous = not session.username
        return True
