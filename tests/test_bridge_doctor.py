"""`seatbox doctor`'s bridge check on a sysfs/configfs tree laid out as the kernel has it (a
plain directory: this machine has no gadget), and the status file a running bridged seat wrote.
"""

from __future__ import annotations

import json
from pathlib import Path

from drivers.gadget.bridge import STATUS_FILE_NAME
from edge.ops.doctor import CHECK_NAMES, Machine, run_checks_for
from edge.ops.doctor.bridge import check_bridge
from edge.shell.config import (
    AudioSection,
    BridgeSection,
    CallSection,
    HeadsetSection,
    RadarSection,
    SeatConfig,
    SeatSection,
    StorageSection,
)

UDC = "fe980000.usb"
NOW = 1_800_000_000.0


def config(tmp: Path, sources: list[str]) -> SeatConfig:
    return SeatConfig(
        seat=SeatSection(site="lab", id="s1"),
        headset=HeadsetSection(device="none"),
        audio=AudioSection(backend="none"),
        radar=RadarSection(backend="none"),
        call=CallSection(sources=sources),  # type: ignore[arg-type]
        bridge=BridgeSection(product="Lab Headset"),
        storage=StorageSection(state_dir=str(tmp / "state")),
    )


class Tree:
    """<root>/sys: class/udc/<UDC>/state and kernel/config/usb_gadget/seatbox/UDC."""

    def __init__(self, root: Path) -> None:
        self.sys = root / "sys"
        (self.sys / "class/udc").mkdir(parents=True)
        (self.sys / "kernel/config/usb_gadget").mkdir(parents=True)
        self.machine = Machine(sys_root=self.sys, dev_root=root / "dev", wall_clock=lambda: NOW)

    def controller(self, state: str = "not attached") -> None:
        (self.sys / "class/udc" / UDC).mkdir(exist_ok=True)
        (self.sys / "class/udc" / UDC / "state").write_text(f"{state}\n")

    def gadget(self, bound: bool) -> None:
        path = self.sys / "kernel/config/usb_gadget/seatbox"
        path.mkdir(exist_ok=True)
        (path / "UDC").write_text(f"{UDC}\n" if bound else "\n")


def seat_status(cfg: SeatConfig, **fields: object) -> None:
    state = Path(cfg.storage.state_dir)
    state.mkdir(parents=True, exist_ok=True)
    (state / STATUS_FILE_NAME).write_text(json.dumps(fields))


def test_a_seat_that_is_not_bridged_passes_and_the_check_is_listed(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    check = check_bridge(config(tmp_path, ["cti"]), tree.machine)
    assert (check.status, check.detail) == (
        "OK",
        'not a bridged seat ([call] sources has no "bridge")',
    )
    assert "bridge" in CHECK_NAMES
    names = [
        c.name for c in run_checks_for(config(tmp_path, ["bridge"]), tree.machine, broker=False)
    ]
    assert "bridge" in names


def test_each_missing_piece_is_named_with_its_fix(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    cfg = config(tmp_path, ["bridge", "cti"])

    check = check_bridge(cfg, tree.machine)
    assert check.status == "FAIL" and "no USB device controller" in check.detail
    assert "dtoverlay=dwc2,dr_mode=peripheral" in check.fix

    tree.controller()
    check = check_bridge(cfg, tree.machine)
    assert check.status == "FAIL" and "'seatbox' is not built" in check.detail
    assert "seatbox gadget up" in check.fix

    tree.gadget(bound=False)
    check = check_bridge(cfg, tree.machine)
    assert (check.status, check.detail) == (
        "FAIL",
        f"controller {UDC}; the gadget is not bound to it",
    )

    tree.gadget(bound=True)
    check = check_bridge(cfg, tree.machine)
    assert check.status == "WARN"
    assert f"bound to {UDC}" in check.detail and "controller 'not attached'" in check.detail
    assert "data cable" in check.fix


def test_the_pc_configured_and_what_the_seat_saw_of_the_softphone(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    cfg = config(tmp_path, ["bridge"])
    tree.controller("configured")
    tree.gadget(bound=True)

    check = check_bridge(cfg, tree.machine)
    assert check.status == "OK"
    assert "PC configured; softphone LED writes: not known (the seat has not run" in check.detail

    seat_status(cfg, pc_connected=True, led_writes="waiting", last_led=None)
    check = check_bridge(cfg, tree.machine)
    assert check.status == "OK" and "none yet" in check.detail

    seat_status(cfg, pc_connected=True, led_writes="missing", led_wait_s=60.0, last_led=None)
    check = check_bridge(cfg, tree.machine)
    assert check.status == "WARN"
    assert "no LED report in 60 s connected" in check.detail
    assert "'Lab Headset'" in check.fix

    seat_status(cfg, pc_connected=False, led_writes="waiting", last_led=NOW - 600)
    check = check_bridge(cfg, tree.machine)
    assert check.status == "OK" and "LED writes seen, last" in check.detail
    assert check.detail.endswith("(10 min ago)")

    (Path(cfg.storage.state_dir) / STATUS_FILE_NAME).write_text("{not json")
    assert "not known" in check_bridge(cfg, tree.machine).detail
