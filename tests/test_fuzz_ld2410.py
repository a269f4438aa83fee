"""Hostile radar bytes: the LD2410 stream parser and frame decoders never raise, never hold
more than one frame's worth of bytes, and account for every byte they throw away.

tests/test_radar_protocol.py checks that intact frames survive random garbage and cuts; these
add arbitrary streams, garbage built from header and footer fragments, and the decoders.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.radar.ld2410 import (
    CMD_FOOTER,
    CMD_HEADER,
    DATA_FOOTER,
    DATA_HEADER,
    MAX_FRAME,
    Ack,
    Command,
    DataFrame,
    Frame,
    FrameError,
    FrameParser,
    decode_frame,
    encode_ack,
    encode_data,
    parse_config_info,
    parse_firmware,
    parse_parameters,
)

FAST = settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
HEADERS = (DATA_HEADER, CMD_HEADER)


def frame_length(frame: Frame) -> int:
    """Bytes the frame took on the wire: 4 header + 2 length + body + 4 footer."""
    if isinstance(frame, DataFrame):
        return 10 + (0x23 if frame.engineering else 0x0D)
    if isinstance(frame, Ack):
        return 10 + 4 + len(frame.data)
    return 10 + 2 + len(frame.value)


def feed_all(parser: FrameParser, chunks: list[bytes]) -> list[Frame]:
    """Feed chunk by chunk, checking after each that at most one frame's bytes wait."""
    frames: list[Frame] = []
    for chunk in chunks:
        frames += parser.feed(chunk)
        assert parser.buffered < MAX_FRAME
    return frames


def chunked(data: bytes, sizes: list[int]) -> list[bytes]:
    chunks, pos = [], 0
    for size in sizes:
        chunks.append(data[pos : pos + size])
        pos += size
    return [*chunks, data[pos:]]


def assert_every_byte_accounted(parser: FrameParser, fed: int, frames: list[Frame]) -> None:
    # Every byte is in a frame, counted as thrown away, or still waiting for its frame's end.
    assert fed == sum(map(frame_length, frames)) + parser.discarded + parser.buffered


# Garbage a line really carries, and garbage made to look like frames: headers and footers,
# whole or cut, false headers with plausible lengths.
fragments = st.sampled_from(
    [h[:n] for h in (*HEADERS, DATA_FOOTER, CMD_FOOTER) for n in range(1, 5)]
    + [DATA_HEADER + b"\x0d\x00", DATA_HEADER + b"\x23\x00", CMD_HEADER + b"\x08\x00"]
)
tricky_garbage = st.lists(st.one_of(st.binary(max_size=8), fragments), max_size=6).map(b"".join)

energies = st.integers(0, 100)
data_frames = st.builds(
    DataFrame,
    engineering=st.booleans(),
    target_state=st.integers(0, 6),
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
# ACK data holds no header: the parser's rule (a header inside a candidate means the candidate
# was cut) relies on it, and the module's answers (parameters, firmware, MAC) do not carry one.
ack_frames = st.builds(
    encode_ack,
    st.integers(0, 0xFEFF),
    st.integers(0, 1),
    st.binary(max_size=44).filter(lambda d: not any(h in d for h in HEADERS)),
)
valid_frames = st.one_of(data_frames, ack_frames)
chunk_sizes = st.lists(st.integers(1, 80), max_size=30)


@FAST
@given(st.binary(max_size=2048), chunk_sizes)
def test_arbitrary_bytes_give_frames_or_counted_discards_never_an_exception(
    stream: bytes, sizes: list[int]
) -> None:
    parser = FrameParser()
    frames = feed_all(parser, chunked(stream, sizes))
    assert all(isinstance(f, DataFrame | Ack | Command) for f in frames)
    assert_every_byte_accounted(parser, len(stream), frames)


@settings(FAST, max_examples=150)
@given(st.lists(st.tuples(tricky_garbage, valid_frames), min_size=1, max_size=12), chunk_sizes)
def test_valid_frames_between_header_like_garbage_all_come_out_in_order(
    parts: list[tuple[bytes, bytes]], sizes: list[int]
) -> None:
    stream = b"".join(garbage + frame for garbage, frame in parts)
    parser = FrameParser()
    got = feed_all(parser, chunked(stream, sizes))
    remaining = iter(got)
    for _garbage, frame in parts:
        expected = decode_frame(frame)
        assert any(g == expected for g in remaining), f"lost {frame.hex(' ')}"
    assert_every_byte_accounted(parser, len(stream), got)


@pytest.mark.timeout(30)  # a guard only: the linear search takes well under a second
@pytest.mark.parametrize("unit", [DATA_HEADER + b"\xff\xff", DATA_HEADER + b"\x00\x00", CMD_HEADER])
def test_a_megabyte_of_false_headers_in_one_read_is_skipped_in_one_pass(unit: bytes) -> None:
    # A header search that rescanned the rest of the buffer after each false header made
    # this quadratic: 400 kB took 9 s.
    stream = unit * (1_000_000 // len(unit))
    parser = FrameParser()
    assert parser.feed(stream) == []
    assert parser.buffered < MAX_FRAME
    assert parser.discarded + parser.buffered == len(stream)


@FAST
@given(st.binary(max_size=80))
def test_decode_frame_of_arbitrary_bytes_is_a_frame_or_names_the_byte(data: bytes) -> None:
    try:
        frame = decode_frame(data)
    except FrameError as exc:
        assert 0 <= exc.offset <= len(data)
        assert str(exc).startswith(f"byte {exc.offset}: expected ")
    else:
        assert frame_length(frame) == len(data)


@FAST
@given(valid_frames, st.lists(st.tuples(st.integers(0, 63), st.integers(0, 255)), max_size=4))
def test_decode_frame_of_a_mutated_frame_is_a_frame_or_names_the_byte(
    frame: bytes, edits: list[tuple[int, int]]
) -> None:
    data = bytearray(frame)
    for pos, value in edits:
        data[pos % len(data)] = value
    try:
        decode_frame(bytes(data))
    except FrameError as exc:
        assert 0 <= exc.offset <= len(data)


@FAST
@given(st.integers(0, 0xFEFF), st.binary(max_size=44))
def test_ack_payload_readers_return_a_value_or_a_frame_error(command: int, data: bytes) -> None:
    ack = Ack(command, 0, data)
    for reader in (parse_parameters, parse_firmware, parse_config_info):
        try:
            reader(ack)
        except FrameError as exc:
            assert str(exc).startswith(f"byte {exc.offset}: expected ")
