"""The gadget (issue 14, part 1) on this machine: the canonical descriptor read by our parser
and by hid-tools; the configfs builder on a plain directory standing in for configfs (the real
kernel is tests/test_gadget_guest.py); the [bridge] config; `seatbox gadget`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from drivers.errors import DeviceError
from drivers.gadget import configfs
from drivers.gadget.configfs import Gadget, GadgetSpec
from drivers.gadget.descriptor import (
    CANONICAL_DESCRIPTOR,
    CONSUMER_BITS,
    CONSUMER_REPORT_ID,
    INPUT_BITS,
    INPUT_REPORT_ID,
    LED_BITS,
    OUTPUT_REPORT_ID,
    REPORT_LENGTH,
)
from drivers.hid.descriptor import ReportKind, parse_descriptor
from drivers.hid.layout import INPUT_USAGES, LED_USAGES, Encoding, layout_from_bytes
from edge.base.errors import ConfigError
from edge.cli import main
from edge.ops import gadget as ops
from edge.shell.config import load_config

# --- the descriptor -------------------------------------------------------------------------


def test_our_parser_finds_every_control_and_led_where_the_descriptor_says() -> None:
    layout = layout_from_bytes(CANONICAL_DESCRIPTOR)
    assert layout.telephony and layout.uses_report_ids
    assert {n: (c.report_id, c.bit) for n, c in layout.inputs.items()} == {
        **{n: (INPUT_REPORT_ID, bit) for n, bit in INPUT_BITS.items()},
        **{n: (CONSUMER_REPORT_ID, bit) for n, bit in CONSUMER_BITS.items()},
    }
    assert {n: (c.report_id, c.bit) for n, c in layout.leds.items()} == {
        n: (OUTPUT_REPORT_ID, bit) for n, bit in LED_BITS.items()
    }
    assert layout.inputs["hook_switch"].encoding is Encoding.TOGGLE_SWITCH
    for name in ("phone_mute", "flash", "redial", "drop"):
        assert layout.inputs[name].encoding is Encoding.TOGGLE_BUTTON
    # Volume: one-bit absolute buttons, as real headsets declare them (1 while held).
    for name in CONSUMER_BITS:
        assert layout.inputs[name].encoding is Encoding.TOGGLE_SWITCH
        assert layout.inputs[name].size == 1 and layout.inputs[name].array_usages is None
    assert layout.input_lengths == {
        INPUT_REPORT_ID: REPORT_LENGTH,
        CONSUMER_REPORT_ID: REPORT_LENGTH,
    }
    assert layout.output_reports[OUTPUT_REPORT_ID].length == REPORT_LENGTH
    desc = parse_descriptor(CANONICAL_DESCRIPTOR)
    top = desc.top_level()
    # Telephony / Headset, then Consumer / Consumer Control (hosts map its volume usages).
    assert [c.usage for c in top] == [0x000B0005, 0x000C0001]


def test_hid_tools_reads_the_same_fields() -> None:
    hidtools_hid = pytest.importorskip("hidtools.hid", reason="hid-tools is in the test extra")
    rdesc = hidtools_hid.ReportDescriptor.from_bytes(list(CANONICAL_DESCRIPTOR))
    theirs: set[tuple[str, int, int, int]] = set()
    for kind, reports in (("input", rdesc.input_reports), ("output", rdesc.output_reports)):
        for rid, report in reports.items():
            assert report.size == REPORT_LENGTH
            for f in report.fields:
                if f.usage is not None and not f.type & 0x1:  # data fields, not padding
                    theirs.add((kind, rid, f.start - 8, f.usage))
                    if rid == CONSUMER_REPORT_ID:  # volume: absolute one-bit variables
                        assert f.size == 1 and f.type & 0x2 and not f.type & 0x4
    usages = {**INPUT_USAGES, **LED_USAGES}
    ours = {("input", INPUT_REPORT_ID, bit, usages[n]) for n, bit in INPUT_BITS.items()}
    ours |= {("output", OUTPUT_REPORT_ID, bit, usages[n]) for n, bit in LED_BITS.items()}
    ours |= {("input", CONSUMER_REPORT_ID, bit, usages[n]) for n, bit in CONSUMER_BITS.items()}
    assert theirs == ours
    assert sorted(rdesc.input_reports) == [INPUT_REPORT_ID, CONSUMER_REPORT_ID]
    desc = parse_descriptor(CANONICAL_DESCRIPTOR)
    for rid in (INPUT_REPORT_ID, CONSUMER_REPORT_ID):
        assert desc.report_length(ReportKind.INPUT, rid) == REPORT_LENGTH


# --- the builder on a fake tree -------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "usb_gadget"
    root.mkdir()
    udc = tmp_path / "udc"
    udc.mkdir()
    (udc / "dummy_udc.0").mkdir()
    (udc / "dummy_udc.0" / "state").write_text("configured\n")
    return root, udc


def test_up_writes_the_gadget_and_again_changes_nothing(tree: tuple[Path, Path]) -> None:
    root, udc = tree
    gadget = Gadget(GadgetSpec(product="Desk 4"), root, udc)
    assert gadget.up() is True
    g = root / "seatbox"
    assert (g / "idVendor").read_text() == "0x1d6b\n" and (
        g / "idProduct"
    ).read_text() == "0x0104\n"
    assert (g / "strings/0x409/product").read_text() == "Desk 4\n"
    hid = g / "functions/hid.usb0"
    assert (hid / "report_desc").read_bytes() == CANONICAL_DESCRIPTOR
    assert (hid / "no_out_endpoint").read_text() == "1\n"
    assert (hid / "report_length").read_text() == f"{REPORT_LENGTH}\n"
    assert os.readlink(g / "configs/c.1/hid.usb0") == str(hid)
    assert (g / "UDC").read_text() == "dummy_udc.0\n"
    before = {p: p.stat().st_mtime_ns for p in g.rglob("*") if p.is_file()}
    assert gadget.up() is False
    assert {p: p.stat().st_mtime_ns for p in g.rglob("*") if p.is_file()} == before
    status = gadget.status()
    assert status["bound"] and status["udc"] == "dummy_udc.0" and status["state"] == "configured"
    assert status["matches_config"] and status["functions"] == ["hid.usb0"]
    assert gadget.down() is True and not g.exists()
    assert gadget.down() is False


def test_a_changed_config_rebuilds_the_bound_gadget(tree: tuple[Path, Path]) -> None:
    root, udc = tree
    Gadget(GadgetSpec(), root, udc).up()
    changed = Gadget(GadgetSpec(product_id=0x0200, audio="uac2"), root, udc)
    assert changed.up() is True
    g = root / "seatbox"
    assert (g / "idProduct").read_text() == "0x0200\n"
    # UAC2 attributes are written (never enumerated here: dummy_hcd has no isochronous).
    assert (g / "functions/uac2.usb0/c_srate").read_text() == "48000\n"
    assert (g / "functions/uac2.usb0/function_name").read_text() == "Seatbox Headset\n"
    assert sorted(p.name for p in (g / "configs/c.1").iterdir() if p.is_symlink()) == [
        "hid.usb0",
        "uac2.usb0",
    ]
    assert Gadget(GadgetSpec(), root, udc).up() is True  # back to none: uac2 removed
    assert sorted(p.name for p in (g / "functions").iterdir()) == ["hid.usb0"]


def test_errors_name_the_problem_and_the_fix(tree: tuple[Path, Path], tmp_path: Path) -> None:
    root, udc = tree
    with pytest.raises(DeviceError, match="no USB gadget configfs .* mount -t configfs"):
        Gadget(GadgetSpec(), tmp_path / "absent", udc).up()
    empty = tmp_path / "no-udc"
    empty.mkdir()
    with pytest.raises(DeviceError, match="no USB device controller .* dtoverlay=dwc2"):
        Gadget(GadgetSpec(), root, empty).up()
    with pytest.raises(DeviceError, match="no USB device controller 'fe980000.usb'"):
        Gadget(GadgetSpec(), root, udc).up("fe980000.usb")
    (udc / "dummy_udc.1").mkdir()
    with pytest.raises(DeviceError, match=r"2 USB device controllers .* \[bridge\] udc"):
        Gadget(GadgetSpec(), root, udc).up()
    Gadget(GadgetSpec(), root, udc).up("dummy_udc.0")
    with pytest.raises(DeviceError, match="already bound to dummy_udc.0, not dummy_udc.1"):
        Gadget(GadgetSpec(), root, udc).up("dummy_udc.1")
    with pytest.raises(DeviceError, match="dummy_udc.0 is busy: gadget seatbox is bound to it"):
        Gadget(GadgetSpec(name="other"), root, udc).up("dummy_udc.0")
    assert not (root / "other").exists()


def test_not_root_is_said(tree: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    root, udc = tree
    monkeypatch.setattr(configfs.os, "access", lambda *_: False)
    with pytest.raises(DeviceError, match="run as root"):
        Gadget(GadgetSpec(), root, udc).up()


def test_the_guest_command_prints_json_and_errors(
    tree: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root, udc = tree
    where = ["--root", str(root), "--udc-class", str(udc), "--json"]
    assert configfs.main(["up", *where]) == 0
    assert json.loads(capsys.readouterr().out)["changed"] is True
    assert configfs.main(["up", *where, "--udc", "nope"]) == 1
    assert "no USB device controller 'nope'" in capsys.readouterr().err


# --- config and the command -----------------------------------------------------------------

SEAT = '[seat]\nsite = "hq"\nid = "A-01"\n'


def test_bridge_defaults_and_values(tmp_path: Path) -> None:
    path = tmp_path / "seat.toml"
    path.write_text(SEAT)
    bridge = load_config(path).bridge
    assert (bridge.udc, bridge.hid_device, bridge.audio) == ("auto", "auto", "none")
    assert (bridge.vendor_id, bridge.product_id) == (0x1D6B, 0x0104)
    path.write_text(
        SEAT + '[bridge]\nudc = "fe980000.usb"\nhid_device = "/dev/hidg1"\naudio = "uac1"\n'
        'vendor_id = 0x1234\nproduct_id = 0x5678\nproduct = "Desk"\n'
    )
    bridge = load_config(path).bridge
    assert (bridge.udc, bridge.hid_device, bridge.audio, bridge.product) == (
        "fe980000.usb",
        "/dev/hidg1",
        "uac1",
        "Desk",
    )
    assert (bridge.vendor_id, bridge.product_id) == (0x1234, 0x5678)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('udc = "../x"', "bridge.udc"),
        ('hid_device = "/dev/hidraw0"', "bridge.hid_device"),
        ('audio = "uac3"', "bridge.audio"),
        ("vendor_id = 0x10000", "bridge.vendor_id"),
        ("product_id = -1", "bridge.product_id"),
        ('product = ""', "bridge.product"),
        (f'product = "{"x" * 127}"', "bridge.product"),
        ("colour = 1", "bridge.colour"),
        ("audio_rate = 22050", "bridge.audio_rate"),
        ('audio_period = "0.5s"', "bridge.audio_period"),
        ('audio_latency = "1s"', "bridge.audio_latency"),
        ('audio_period = "10ms"\naudio_latency = "15ms"', "bridge.audio_latency"),
    ],
)
def test_bad_bridge_values_name_the_field(tmp_path: Path, body: str, field: str) -> None:
    path = tmp_path / "seat.toml"
    path.write_text(SEAT + "[bridge]\n" + body + "\n")
    section, key = field.split(".")
    with pytest.raises(ConfigError, match=rf"\[{section}\] {key}: "):
        load_config(path)


def test_seatbox_gadget_up_status_down(
    tree: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, udc = tree
    monkeypatch.setattr(ops, "CONFIGFS_ROOT", root)
    monkeypatch.setattr(ops, "UDC_CLASS", udc)
    path = tmp_path / "seat.toml"
    path.write_text(SEAT + '[bridge]\nproduct = "Desk 4"\n')
    assert main(["gadget", "up", "--config", str(path), "--json"]) == 0
    up = json.loads(capsys.readouterr().out)
    assert up["changed"] and up["bound"] and up["udc"] == "dummy_udc.0"
    assert (root / "seatbox/strings/0x409/serialnumber").read_text() == "hq-A-01\n"
    assert main(["gadget", "status", "--config", str(path)]) == 0
    assert "bound to dummy_udc.0, state configured" in capsys.readouterr().out
    assert main(["gadget", "down", "--config", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["present"] is False
    (udc / "dummy_udc.0" / "state").unlink()
    (udc / "dummy_udc.0").rmdir()
    assert main(["gadget", "up", "--config", str(path)]) == 1
    assert capsys.readouterr().err.startswith("seatbox gadget: no USB device controller in")
