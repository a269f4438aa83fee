"""LD2410 frames, commands and the resynchronising parser, against published byte sequences."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.radar import ld2410
from drivers.radar.events import RadarReport
from drivers.radar.ld2410 import (
    Ack,
    Command,
    DataFrame,
    FrameError,
    FrameParser,
    decode_frame,
    encode_data,
    parse_config_info,
)
from drivers.radar.uart import report_from_frame
from edge.cli.radar_cmd import frame_to_dict

FRAMES: dict[str, Any] = json.loads(
    (__import__("pathlib").Path(__file__).parent / "data/ld2410/frames.json").read_text()
)
TARGET_NAMES = {0: "none", 1: "moving", 2: "still", 3: "both"}


def _bytes(hex_text: str) -> bytes:
    return bytes.fromhex(hex_text)


@pytest.mark.parametrize("case", FRAMES["data"], ids=lambda c: c["id"])
def test_published_data_frame_decodes_as_its_source_describes(case: dict[str, Any]) -> None:
    frame = decode_frame(_bytes(case["hex"]))
    assert isinstance(frame, DataFrame)
    assert frame.engineering == (case["type"] == "engineering")
    assert frame.target_state == case["state"]
    assert [frame.moving_cm, frame.moving_energy] == case["moving"]
    assert [frame.still_cm, frame.still_energy] == case["still"]
    assert frame.detection_cm == case["detection_cm"]
    if frame.engineering:
        assert list(frame.moving_gates) == case["moving_gates"]
        assert list(frame.still_gates) == case["still_gates"]
        assert (frame.light, frame.out_pin) == (case["light"], case["out_pin"])
    else:
        assert frame.moving_gates == frame.still_gates == ()


@pytest.mark.parametrize("case", FRAMES["data"], ids=lambda c: c["id"])
def test_presence_comes_from_the_target_state_byte_only(case: dict[str, Any]) -> None:
    report = report_from_frame(decode_frame(_bytes(case["hex"])))  # type: ignore[arg-type]
    assert report.target == TARGET_NAMES[case["state"]]
    assert report.present == (case["state"] != 0)


def test_no_target_frames_with_energy_bytes_are_absent() -> None:
    # frames.md 1.1 #2: state 00 with moving 69 cm / 62 and still energy 58.
    frame = decode_frame(_bytes(FRAMES["data"][1]["hex"]))
    assert isinstance(frame, DataFrame)
    assert frame.moving_energy == 62
    assert report_from_frame(frame) == RadarReport(
        target="none", moving_cm=69, moving_energy=62, still_energy=58
    )
    assert not report_from_frame(frame).present


@pytest.mark.parametrize("case", FRAMES["acks"], ids=lambda c: c["id"])
def test_published_ack_decodes_as_its_source_describes(case: dict[str, Any]) -> None:
    frame = decode_frame(_bytes(case["hex"]))
    assert isinstance(frame, Ack)
    expected = {k: v for k, v in case.items() if k not in ("id", "group", "hex")}
    assert frame_to_dict(frame) == {"type": "ack", **expected}


@pytest.mark.parametrize("case", FRAMES["commands"], ids=lambda c: c["id"])
def test_commands_are_encoded_byte_for_byte_as_the_vendor_document(case: dict[str, Any]) -> None:
    name, *params = case["build"]
    command: Command = getattr(ld2410, name)(*params)
    assert command.encode() == _bytes(case["hex"])
    assert decode_frame(command.encode()) == command


@pytest.mark.parametrize(
    "case", [c for c in FRAMES["malformed"] if c["offset"] is not None], ids=lambda c: c["id"]
)
def test_malformed_frame_error_names_the_byte_offset(case: dict[str, Any]) -> None:
    with pytest.raises(FrameError) as caught:
        decode_frame(_bytes(case["hex"]))
    assert caught.value.offset == case["offset"]
    assert str(caught.value).startswith(f"byte {case['offset']}: expected ")


def test_ld2420_enable_config_answer_reads_protocol_version_2() -> None:
    case = next(c for c in FRAMES["malformed"] if c["id"] == "ld2420-enable-config-ack")
    ack = decode_frame(_bytes(case["hex"]))
    assert isinstance(ack, Ack)
    assert parse_config_info(ack).protocol_version == 2


@pytest.mark.parametrize(
    ("hex_text", "offset", "expected"),
    [
        ("F4 F3 F2 F1 0D 00 02 AA 07 00 00 00 00 00 00 00 00 55 00 F8 F7 F6 F5", 8, "state"),
        ("F4 F3 F2 F1 0D 00 02 AA 01 00 00 65 00 00 00 00 00 55 00 F8 F7 F6 F5", 11, "energy"),
        ("F4 F3 F2 F1 0D 00 02 AA 01 00 00 00 00 00 00 00 00 56 00 F8 F7 F6 F5", 17, "55 00"),
        ("F4 F3 F2 F1 0D 00 01 AA 01 00 00 00 00 00 00 00 00 55 00 F8 F7 F6 F5", 4, "length 35"),
        ("F4 F3 F2 F1 0D 00 02 AA 01", 9, "23 bytes"),
        ("F4 F3 F2 F1 FF 00 02", 4, "length <= 54"),
        ("FD FC FB FA 04 00 FF 01 02 00 04 03 02 01", 8, "ACK status"),
    ],
)
def test_bad_fields_are_named(hex_text: str, offset: int, expected: str) -> None:
    with pytest.raises(FrameError) as caught:
        decode_frame(_bytes(hex_text))
    assert caught.value.offset == offset
    assert expected in caught.value.expected


def test_calibration_states_are_not_read_as_bit_flags() -> None:
    # V1.07: 04..06 exist only during background-noise calibration.
    frame = decode_frame(_bytes("F4F3F2F10D0002AA0500000000000000005500F8F7F6F5"))
    assert isinstance(frame, DataFrame)
    assert (frame.target, frame.calibration) == ("none", "succeeded")


# --- the stream parser -----------------------------------------------------------------------

PUBLISHED = [_bytes(c["hex"]) for c in FRAMES["data"] + FRAMES["acks"]]

energies = st.integers(0, 100)
generated_frames = st.builds(
    DataFrame,
    engineering=st.booleans(),
    target_state=st.integers(0, 3),
    moving_cm=st.integers(0, 0xFFFF),
    moving_energy=energies,
    still_cm=st.integers(0, 0xFFFF),
    still_energy=energies,
    detection_cm=st.integers(0, 0xFFFF),
    moving_gates=st.tuples(*[energies] * 9),
    still_gates=st.tuples(*[energies] * 9),
    light=st.integers(0, 255),
    out_pin=st.integers(0, 1),
).map(encode_data)
frame_bytes = st.one_of(st.sampled_from(PUBLISHED), generated_frames)


# Each piece: a frame, whether it arrives whole, garbage before it, and where it is cut.
def _pieces(garbage: st.SearchStrategy[bytes]) -> st.SearchStrategy[list[Any]]:
    piece = st.tuples(frame_bytes, st.booleans(), garbage, st.floats(0, 0.999))
    return st.lists(piece, min_size=1, max_size=25)


# Garbage that cannot finish a truncated frame: no footer's last byte (01 / F5).
inert_garbage = st.binary(max_size=12).map(lambda b: b.replace(b"\x01", b"").replace(b"\xf5", b""))


def _stream(parts: list[tuple[bytes, bool, bytes, float]]) -> tuple[bytes, list[bytes]]:
    stream = bytearray()
    intact = []
    for frame, whole, garbage, cut in parts:
        stream += garbage
        if whole:
            stream += frame
            intact.append(frame)
        else:
            stream += frame[: int(len(frame) * cut)]  # a frame that lost its end
    return bytes(stream), intact


def _feed_in_chunks(stream: bytes, chunk_sizes: list[int]) -> list[Any]:
    parser = FrameParser()
    got = []
    pos = 0
    for size in chunk_sizes:
        got += parser.feed(stream[pos : pos + size])
        pos += size
    return got + parser.feed(stream[pos:])


@settings(max_examples=300, deadline=None)
@given(_pieces(inert_garbage), st.lists(st.integers(1, 64), max_size=40))
def test_garbage_splits_and_truncation_recover_exactly_the_intact_frames(
    parts: list[tuple[bytes, bool, bytes, float]], chunk_sizes: list[int]
) -> None:
    stream, intact = _stream(parts)
    assert _feed_in_chunks(stream, chunk_sizes) == [decode_frame(f) for f in intact]


@settings(max_examples=300, deadline=None)
@given(_pieces(st.binary(max_size=12)), st.lists(st.integers(1, 64), max_size=40))
def test_any_garbage_loses_no_intact_frame(
    parts: list[tuple[bytes, bool, bytes, float]], chunk_sizes: list[int]
) -> None:
    # Garbage may complete a cut frame (a cut ACK followed by 04 03 02 01 is a valid ACK):
    # such frames are really in the stream, at most one per cut frame; none is lost.
    stream, intact = _stream(parts)
    got = _feed_in_chunks(stream, chunk_sizes)
    expected = iter(decode_frame(f) for f in intact)
    remaining = list(expected)
    it = iter(got)
    assert all(any(frame == g for g in it) for frame in remaining), "an intact frame was lost"
    assert len(got) - len(intact) <= sum(not whole for _f, whole, _g, _c in parts)


def test_stream_starting_mid_frame_recovers_the_next_frame() -> None:
    frames = PUBLISHED[:3]
    stream = frames[0][9:] + frames[1] + frames[2]
    assert FrameParser().feed(stream) == [decode_frame(frames[1]), decode_frame(frames[2])]


def test_parser_counts_what_it_throws_away() -> None:
    parser = FrameParser()
    parser.feed(b"\x00\x11garbage" + PUBLISHED[0][:10] + PUBLISHED[1])
    assert parser.discarded == 9 + 10
    assert parser.malformed == 1
