"""The supervisor's floor view: every seat of a site from MQTT, as a supervisor subscribes.

`FloorView` subscribes and keeps a `floor.model.FloorModel` current (the pure part: messages
in, seats out, each payload checked); `render` draws the model with rich.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from edge.api.broker import BrokerSection, make_client
from edge.api.topics import site_filter
from floor.model import FloorModel, SeatView

log = logging.getLogger(__name__)

CALL_STYLE = {
    "idle": "green",
    "ringing": "bold yellow",
    "active": "bold blue",
    "held": "bold magenta",
}


def _since(text: str | None, now: datetime) -> str:
    if not text:
        return ""
    try:
        then = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return ""
    seconds = max(0, int((now - then).total_seconds()))
    return (
        f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        if seconds >= 3600
        else f"{seconds // 60}:{seconds % 60:02d}"
    )


def seat_panel(view: SeatView, now: datetime, usual_profile: str = "") -> Panel:
    state = view.state
    call_state = state.call.state if state else "?"
    presence = state.presence.state if state else "?"
    lines = Text()
    for problem in view.problems.values():
        lines.append(problem + "\n", style="bold white on red")
    if view.online is False:
        lines.append("OFFLINE\n", style="bold white on grey37")
        style = "grey50"
    else:
        style = CALL_STYLE.get(call_state, "white")
        if presence == "away" and call_state == "idle":
            style = "red"
    lines.append(f"{call_state:<8}", style=style)
    lines.append(f" {_since(state.call.since if state else None, now)}\n")
    if state and state.mute.muted:
        lines.append("MUTED" + (" (hold)" if state.mute.by == "hold_policy" else "") + "\n")
    else:
        lines.append("mic on\n", style="dim")
    lines.append(f"{presence}", style="red" if presence == "away" else "dim")
    if state and presence == "away":
        lines.append(f" {_since(state.presence.since, now)}")
    lines.append("\n")
    for violation in state.violations if state else []:
        lines.append(f"! {violation.type}\n", style="bold red")
    if state and state.storage and state.storage.outbox != "ok":
        # The seat's events are not on its disk: a stop now would lose them.
        held = f", {state.storage.held} held" if state.storage.held else ""
        lines.append(f"{state.storage.outbox.replace('_', ' ')}{held}\n", style="bold yellow")
    if view.missing or view.lost:
        gaps = [f"{view.missing} missing"] if view.missing else []
        gaps += [f"{view.lost} lost"] if view.lost else []
        lines.append(", ".join(gaps) + "\n", style="bold yellow")
    if usual_profile and view.profile_digest and view.profile_digest != usual_profile:
        # "≠ <digest> <name>": the header says how many seats enforce another profile.
        lines.append(f"≠ {view.profile_digest[:6]} {view.profile}"[:20] + "\n", style="bold cyan")
    if view.last_event:
        lines.append(view.last_event, style="dim italic")
    flagged = view.problems or (state and state.violations)
    border = "red" if flagged else ("grey50" if view.online is False else style)
    return Panel(lines, title=view.seat, border_style=border, width=24, height=9)


def render(model: FloorModel, now: datetime | None = None, columns: int = 4) -> Group:
    now = now or datetime.now(UTC)
    grid = Table.grid(padding=(0, 1))
    seats = [model.seats[k] for k in sorted(model.seats)]
    for _ in range(columns):
        grid.add_column()
    usual = model.usual_profile()
    for row in range(0, len(seats), columns):
        grid.add_row(*(seat_panel(v, now, usual) for v in seats[row : row + columns]))
    states = [v.state for v in seats if v.state]
    on_call = sum(1 for s in states if s.call.state in ("active", "held"))
    away = sum(1 for s in states if s.presence.state == "away")
    flagged = sum(1 for s in states if s.violations)
    other = sum(1 for v in seats if v.profile_digest and usual and v.profile_digest != usual)
    bad = sum(1 for v in seats if v.problems)
    header = Text(
        f"site {model.site}   seats {len(seats)}   on call {on_call}   away {away}   "
        f"violations {flagged}"
        + (f"   other profile {other}" if other else "")
        + (f"   bad payloads {bad}" if bad else "")
        + f"   {now.astimezone().strftime('%H:%M:%S')}",
        style="bold",
    )
    recent = Text("\n".join(model.log) or "no violations yet", style="yellow")
    return Group(header, grid, Panel(recent, title="recent", border_style="yellow"))


class FloorView:
    """Subscribes to a site like a supervisor and keeps a FloorModel current."""

    def __init__(self, broker: BrokerSection, site: str, url: str | None = None) -> None:
        self.model = FloorModel(site=site)
        self.lock = threading.Lock()
        self.client, self.endpoint = make_client(
            broker, f"seatbox-floor-{int(time.time() * 1000) % 10**8}", url
        )
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.site = site
        self._stopped = threading.Event()
        self._asker: threading.Thread | None = None
        # Set once the broker has acknowledged every subscription of the last connect.
        self.subscribed = threading.Event()
        self._pending: set[int] = set()
        self.client.on_subscribe = self._on_subscribe

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.error("floor view: broker refused: %s", reason)
            return
        self.subscribed.clear()
        with self.lock:
            for leaf in ("availability", "state", "event", "info"):
                _, mid = client.subscribe(site_filter(self.site, leaf), qos=1)
                self._pending.add(mid)

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, *rest: Any) -> None:
        with self.lock:
            self._pending.discard(mid)
            if not self._pending:
                self.subscribed.set()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        # apply() raises nothing for any payload (fuzzed); the guard keeps paho's network
        # thread alive should a bug slip through, since an exception here would end it.
        try:
            with self.lock:
                self.model.apply(message.topic, message.payload, time.monotonic())
        except Exception:
            log.exception("floor view: message on %s not applied", message.topic)

    def ask_for_gaps(self) -> int:
        """Publish the due `cmd/resend` requests (a read-only supervisor identity is refused
        by the broker's ACL; the `floor` service identity may ask). Returns how many."""
        with self.lock:
            requests = self.model.resends(time.monotonic())
        for topic, payload in requests:
            self.client.publish(topic, payload, qos=1)
        return len(requests)

    def _ask_loop(self, period_s: float = 1.0) -> None:
        while not self._stopped.wait(period_s):
            self.ask_for_gaps()

    def start(self) -> None:
        self.client.connect_async(self.endpoint.host, self.endpoint.port)
        self.client.loop_start()
        self._stopped.clear()
        self._asker = threading.Thread(target=self._ask_loop, name="floor-resend", daemon=True)
        self._asker.start()

    def stop(self) -> None:
        self._stopped.set()
        self.client.disconnect()
        self.client.loop_stop()

    def show(self, stop: threading.Event, refresh_s: float = 0.5) -> None:
        from rich.live import Live

        with Live(render(self.model), refresh_per_second=4, screen=False) as live:
            while not stop.wait(refresh_s):
                with self.lock:
                    live.update(render(self.model))
