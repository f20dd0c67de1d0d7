"""The ScienceMode codecs: pure bytes in, bytes out (issue "Delivery", item 1).

Property tests (Hypothesis) for both protocols: ``decode(encode(x)) == x`` for every
message type, byte stuffing of every special byte in every position, CRC check values,
single-bit errors always detected, the incremental decoder independent of chunking and
recovering after garbage, the lenient decoding of the pysciencemode client's frames,
and error messages that name the field, the allowed range and the value.

Independent references live here (bitwise CRCs, a pysciencemode-style frame builder
written from the quirks described in ``reference/sciencemode.md``), not imported from
the code under test.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from electrostim.devices import (
    PROTOCOL_ERROR_REASONS,
    SM2_MESSAGES,
    SM2_PYSCIENCEMODE_ALTERED,
    SM4_LAYOUT,
    SM4_MESSAGES,
    SM4_POINT_BITS,
    DecodedPacket,
    FieldRangeError,
    Frame,
    FrameError,
    ProtocolError,
    Sm2ChannelPulse,
    Sm2Command,
    Sm2FrameDecoder,
    Sm2GetStimulationMode,
    Sm2GetStimulationModeAck,
    Sm2Init,
    Sm2InitAck,
    Sm2InitChannelListMode,
    Sm2InitChannelListModeAck,
    Sm2InitResult,
    Sm2PulseMode,
    Sm2RawPacket,
    Sm2Result,
    Sm2SinglePulse,
    Sm2SinglePulseAck,
    Sm2StartChannelListMode,
    Sm2StartChannelListModeAck,
    Sm2StimulationError,
    Sm2StimulationErrorCode,
    Sm2StimulationMode,
    Sm2StopChannelListMode,
    Sm2StopChannelListModeAck,
    Sm2UnknownCommand,
    Sm2Watchdog,
    Sm4ChannelError,
    Sm4Command,
    Sm4FrameDecoder,
    Sm4GetDeviceId,
    Sm4GetDeviceIdAck,
    Sm4GetExtendedVersion,
    Sm4GetExtendedVersionAck,
    Sm4GetStimStatus,
    Sm4GetStimStatusAck,
    Sm4LlChannelConfig,
    Sm4LlChannelConfigAck,
    Sm4LlInit,
    Sm4LlInitAck,
    Sm4LlStop,
    Sm4LlStopAck,
    Sm4MlChannel,
    Sm4MlGetCurrentData,
    Sm4MlGetCurrentDataAck,
    Sm4MlInit,
    Sm4MlInitAck,
    Sm4MlStop,
    Sm4MlStopAck,
    Sm4MlUpdate,
    Sm4MlUpdateAck,
    Sm4Point,
    Sm4RawPacket,
    Sm4Reset,
    Sm4ResetAck,
    Sm4Result,
    Sm4StimStatus,
    crc8,
    crc16_xmodem,
    sm2_decode,
    sm2_encode,
    sm2_inter_pulse_interval_code,
    sm2_inter_pulse_interval_ms,
    sm2_main_interval_code,
    sm2_main_interval_ms,
    sm4_current_code,
    sm4_current_ma,
    sm4_decode,
    sm4_encode,
    sm4_period_code,
    sm4_period_ms,
    stuff,
    unstuff,
)

SPECIAL = (0xF0, 0x0F, 0x81)
PYSCIENCEMODE_STUFFED = (0xF0, 0x0F, 0x81, 0x55, 0x0A)


# --------------------------------------------------------------------------- independent references


def ref_crc8(data: bytes) -> int:
    """Bitwise CRC-8, polynomial 0x07, init 0, no reflection."""
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def ref_crc16(data: bytes) -> int:
    """Bitwise CRC-16/XMODEM, polynomial 0x1021, init 0, no reflection."""
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def pysciencemode_frame(packet_number: int, command: int, data: bytes) -> bytes:
    """A frame as the pysciencemode 1.1.5 client builds it (per the quirks in sciencemode.md).

    Packet number and command: XOR 0x55 without the escape byte when special; data:
    F0, 0F, 81, 55, 0A escaped as 81, b ^ 55; CRC-8 and length of what is sent.
    """
    body = bytearray(b ^ 0x55 if b in PYSCIENCEMODE_STUFFED else b for b in (packet_number, command))
    for b in data:
        body += bytes([0x81, b ^ 0x55]) if b in PYSCIENCEMODE_STUFFED else bytes([b])
    return bytes([0xF0, 0x81, ref_crc8(bytes(body)) ^ 0x55, 0x81, len(body) ^ 0x55]) + bytes(body) + b"\x0f"


def sm2_parts(frame: bytes) -> tuple[int, int, bytes]:
    """(packet number, command, data) of a correctly stuffed ScienceMode2 frame."""
    body = unstuff(frame[5:-1])
    return body[0], body[1], body[2:]


# --------------------------------------------------------------------------- strategies

special_biased_byte = st.one_of(st.sampled_from((*SPECIAL, 0x55, 0x0A, 0xA5, 0x5A, 0xD4)), st.integers(0, 255))


def byte_strings(max_size: int) -> st.SearchStrategy[bytes]:
    return st.lists(special_biased_byte, max_size=max_size).map(bytes)


sm2_packet_numbers = st.one_of(st.sampled_from((*PYSCIENCEMODE_STUFFED, 0xA5, 0x5A, 0xD4, 0, 255)), st.integers(0, 255))
sm4_packet_numbers = st.one_of(st.sampled_from((60, 32, 3, 0, 63)), st.integers(0, 63))  # 60 << 2 == 0xF0
channel_sets = st.sets(st.integers(1, 8)).map(lambda s: tuple(sorted(s)))
sm2_results = st.sampled_from(list(Sm2Result))
sm2_pulses = st.builds(Sm2ChannelPulse, pulse_width_us=st.integers(20, 500), current_ma=st.integers(0, 130),
                       mode=st.sampled_from(list(Sm2PulseMode)))

sm2_messages = st.one_of(
    st.builds(Sm2Init, protocol_version=st.integers(0, 255)),
    st.builds(Sm2InitAck, result=st.sampled_from(list(Sm2InitResult))),
    st.builds(Sm2UnknownCommand, unknown_command=st.integers(0, 255)),
    st.just(Sm2Watchdog()),
    st.just(Sm2GetStimulationMode()),
    st.builds(Sm2GetStimulationModeAck, result=sm2_results, mode=st.sampled_from(list(Sm2StimulationMode))),
    st.builds(
        Sm2InitChannelListMode,
        active_channels=channel_sets,
        main_interval_ms=st.one_of(st.none(), st.integers(14, 0xFFFF).map(lambda c: 0.5 * c + 1.0)),
        inter_pulse_interval_ms=st.integers(13, 255).map(lambda c: 0.5 * c + 1.5),
        low_frequency_factor=st.integers(0, 7),
        low_frequency_channels=channel_sets,
    ),
    st.builds(Sm2InitChannelListModeAck, result=sm2_results),
    st.builds(Sm2StartChannelListMode, pulses=st.lists(sm2_pulses, min_size=1, max_size=8)),
    st.builds(Sm2StartChannelListModeAck, result=sm2_results),
    st.just(Sm2StopChannelListMode()),
    st.builds(Sm2StopChannelListModeAck, result=sm2_results),
    st.builds(Sm2SinglePulse, channel=st.integers(1, 8), pulse_width_us=st.integers(20, 500),
              current_ma=st.integers(0, 130)),
    st.builds(Sm2SinglePulseAck, result=sm2_results),
    st.builds(Sm2StimulationError, error=st.sampled_from(list(Sm2StimulationErrorCode))),
    st.builds(Sm2RawPacket, command=st.integers(0, 255).filter(lambda c: c not in SM2_MESSAGES),
              data=byte_strings(60)),
)

sm4_results = st.sampled_from(list(Sm4Result))
sm4_points = st.builds(Sm4Point, pulse_width_us=st.integers(0, 4095),
                       current_ma=st.integers(0, 600).map(lambda c: (c - 300) / 2),
                       interpolation=st.integers(0, 3))
sm4_point_lists = st.lists(sm4_points, min_size=1, max_size=16)


@st.composite
def sm4_ml_updates(draw: st.DrawFn) -> Sm4MlUpdate:
    chans = draw(channel_sets)
    return Sm4MlUpdate([
        Sm4MlChannel(channel=ch, period_ms=0.5 * draw(st.integers(4, 0x7FFF)),
                     points=draw(st.lists(sm4_points, min_size=1, max_size=4 if len(chans) > 4 else 16)),
                     ramp=draw(st.integers(0, 15)))
        for ch in chans
    ])


sm4_messages = st.one_of(
    st.builds(Sm4LlInit, high_voltage_level=st.integers(0, 6)),
    st.builds(Sm4LlInitAck, result=sm4_results),
    st.builds(Sm4LlChannelConfig, channel=st.integers(1, 4), points=sm4_point_lists, connector=st.integers(0, 1)),
    st.builds(Sm4LlChannelConfig, channel=st.integers(1, 4), points=st.just(()), enable_stimulation=st.just(False),
              connector=st.integers(0, 1)),
    st.builds(Sm4LlChannelConfigAck, result=sm4_results, channel=st.integers(1, 4), connector=st.integers(0, 1)),
    st.just(Sm4LlStop()),
    st.builds(Sm4LlStopAck, result=sm4_results),
    st.builds(Sm4MlInit, stop_all_channels_on_error=st.booleans()),
    st.builds(Sm4MlInitAck, result=sm4_results),
    sm4_ml_updates(),
    st.builds(Sm4MlUpdateAck, result=sm4_results),
    st.just(Sm4MlStop()),
    st.builds(Sm4MlStopAck, result=sm4_results),
    st.just(Sm4MlGetCurrentData()),
    st.builds(Sm4MlGetCurrentDataAck, result=sm4_results, active_channels=channel_sets,
              channel_errors=st.lists(st.sampled_from(list(Sm4ChannelError)), min_size=8, max_size=8)),
    st.just(Sm4GetDeviceId()),
    st.builds(Sm4GetDeviceIdAck, result=sm4_results,
              device_id=st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=10)),
    st.just(Sm4Reset()),
    st.builds(Sm4ResetAck, result=sm4_results),
    st.just(Sm4GetStimStatus()),
    st.builds(Sm4GetStimStatusAck, result=sm4_results, stim_status=st.sampled_from(list(Sm4StimStatus)),
              high_voltage_level=st.integers(0, 6)),
    st.just(Sm4GetExtendedVersion()),
    st.builds(Sm4GetExtendedVersionAck, result=sm4_results,
              firmware_version=st.tuples(*[st.integers(0, 255)] * 3),
              science_mode_version=st.tuples(*[st.integers(0, 255)] * 3),
              firmware_hash=st.integers(0, 0xFFFFFFFF), hash_type=st.integers(0, 255), hash_valid=st.booleans()),
    st.builds(Sm4RawPacket, command=st.integers(0, 1023).filter(lambda c: c not in SM4_MESSAGES),
              data=byte_strings(80)),
)

PROTOCOLS = {
    "sm2": (sm2_encode, sm2_decode, Sm2FrameDecoder, sm2_messages, sm2_packet_numbers),
    "sm4": (sm4_encode, sm4_decode, Sm4FrameDecoder, sm4_messages, sm4_packet_numbers),
}


def frames_of(protocol: str) -> st.SearchStrategy[bytes]:
    encode, _, _, messages, numbers = PROTOCOLS[protocol]
    return st.builds(encode, messages, numbers)


def all_events(decoder, chunks) -> list:
    events = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    return events + decoder.flush()


@st.composite
def chunked(draw: st.DrawFn, data: bytes) -> list[bytes]:
    cuts = sorted(draw(st.sets(st.integers(0, len(data)), max_size=12)))
    edges = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:])]


# --------------------------------------------------------------------------- CRCs and stuffing


def test_crc_check_values():
    assert crc8(b"123456789") == ref_crc8(b"123456789") == 0xF4
    assert crc16_xmodem(b"123456789") == ref_crc16(b"123456789") == 0x31C3
    assert crc8(b"") == crc16_xmodem(b"") == 0


@given(st.binary(max_size=200))
def test_crcs_match_bitwise_references(data):
    assert crc8(data) == ref_crc8(data)
    assert crc16_xmodem(data) == ref_crc16(data)


@given(byte_strings(100))
def test_stuffing_round_trip_and_no_delimiters_inside(data):
    stuffed = stuff(data)
    assert 0xF0 not in stuffed and 0x0F not in stuffed
    assert len(stuffed) == len(data) + sum(b in SPECIAL for b in data)
    assert unstuff(stuffed) == data


@pytest.mark.parametrize("special", SPECIAL)
@pytest.mark.parametrize("position", range(8))
def test_every_special_byte_in_every_position(special, position):
    data = bytearray(range(0x20, 0x28))
    data[position] = special
    stuffed = stuff(bytes(data))
    assert stuffed[position:position + 2] == bytes([0x81, special ^ 0x55])
    assert unstuff(stuffed) == bytes(data)
    # and inside real frames of both protocols, data and packet number alike
    frame2 = sm2_encode(Sm2RawPacket(command=200, data=bytes(data)), packet_number=special)
    assert frame2[5:7] == bytes([0x81, special ^ 0x55])
    assert sm2_decode(frame2) == (special, Sm2RawPacket(200, bytes(data)))
    assert frame2.count(0xF0) == 1 + (frame2[2] == 0xF0) + (frame2[4] == 0xF0)
    frame4 = sm4_encode(Sm4RawPacket(command=200, data=bytes(data)), packet_number=position)
    assert sm4_decode(frame4) == (position, Sm4RawPacket(200, bytes(data)))
    assert bytes([0x81, special ^ 0x55]) in frame4[11:-1]


def test_sm4_header_byte_f0_is_escaped():
    frame = sm4_encode(Sm4GetDeviceId(), packet_number=60)  # 60 << 2 == 0xF0
    assert frame[9:12] == bytes([0x81, 0xA5, 52])
    assert sm4_decode(frame) == (60, Sm4GetDeviceId())


def test_unstuff_refuses_bad_escapes():
    with pytest.raises(ProtocolError, match="ends with an escape") as exc:
        unstuff(b"\x01\x81")
    assert exc.value.reason == "stuffing"
    with pytest.raises(ProtocolError, match="escape 0x81 followed by 0x00") as exc:
        unstuff(b"\x81\x00")  # an escaped 0x55: not canonical
    assert exc.value.reason == "stuffing"
    assert unstuff(b"\x81\x00", canonical=False) == b"\x55"
    with pytest.raises(ProtocolError, match="start and stop bytes") as exc:
        unstuff(b"\x01\x0f")
    assert exc.value.reason == "framing"


# --------------------------------------------------------------------------- round trips and golden frames


@given(sm2_messages, sm2_packet_numbers)
def test_sm2_round_trip(message, packet_number):
    frame = sm2_encode(message, packet_number)
    assert sm2_decode(frame) == DecodedPacket(packet_number, message)
    assert sm2_decode(frame).message == message
    if not (isinstance(message, Sm2RawPacket) and message.command in SM2_PYSCIENCEMODE_ALTERED.values()):
        assert sm2_decode(frame, lenient=True) == (packet_number, message)


@given(sm4_messages, sm4_packet_numbers)
def test_sm4_round_trip(message, packet_number):
    frame = sm4_encode(message, packet_number)
    assert sm4_decode(frame) == DecodedPacket(packet_number, message)
    assert len(frame) == (frame[2] ^ 0x55) << 8 | (frame[4] ^ 0x55)


def test_sm2_golden_frame():
    frame = sm2_encode(Sm2SinglePulse(channel=1, pulse_width_us=300, current_ma=20), packet_number=7)
    body = bytes([7, 36, 0, 0x01, 0x2C, 20])
    assert frame == bytes([0xF0, 0x81, ref_crc8(body) ^ 0x55, 0x81, 6 ^ 0x55]) + body + b"\x0f"
    init = sm2_encode(Sm2InitChannelListMode(active_channels=[3, 1], main_interval_ms=25.0, inter_pulse_interval_ms=10.0,
                                             low_frequency_factor=2, low_frequency_channels=[3]), packet_number=1)
    assert sm2_parts(init) == (1, 30, bytes([2, 0b101, 0b100, 17, 0, 48, 0]))
    start = sm2_encode(Sm2StartChannelListMode([Sm2ChannelPulse(500, 130, Sm2PulseMode.TRIPLET)]), 2)
    assert sm2_parts(start) == (2, 32, bytes([2, 0x01, 0xF4, 130]))
    ack = sm2_encode(Sm2GetStimulationModeAck(Sm2Result.BUSY, Sm2StimulationMode.STARTED), 9)
    assert sm2_parts(ack) == (9, 11, bytes([0xF8, 2]))


def test_sm4_golden_frame():
    point = Sm4Point(pulse_width_us=200, current_ma=-20.5, interpolation=1)
    update = Sm4MlUpdate([Sm4MlChannel(channel=2, period_ms=25.0, points=[point], ramp=3)])
    frame = sm4_encode(update, packet_number=5)
    word = (200 << 20 | (2 * -20.5 + 300).__int__() << 10 | 1 << 5).to_bytes(4, "big")
    payload = bytes([5 << 2, 32, 0b10, 0 << 4 | 3, 0, 100]) + word  # period code 50, shifted left by 1
    stuffed = stuff(payload)
    length = 1 + 8 + len(stuffed) + 1
    crc = ref_crc16(stuffed)
    header = bytes([0x81, (length >> 8) ^ 0x55, 0x81, (length & 0xFF) ^ 0x55,
                    0x81, (crc >> 8) ^ 0x55, 0x81, (crc & 0xFF) ^ 0x55])
    assert frame == b"\xf0" + header + stuffed + b"\x0f"
    assert SM4_POINT_BITS == {"pulse_width_us": (20, 12), "current_code": (10, 10), "interpolation": (5, 2)}


def test_header_values_equal_to_delimiters_are_framed_by_position():
    """CRC ^ 55 or LEN ^ 55 may be F0 or 0F: the frame decoders must not cut there."""
    found = {}
    for cmd in range(200, 256):
        for data in [bytes(range(1, n + 1)) for n in range(60)] + [b"\xf0" * n for n in range(40, 50)]:
            frame = sm2_encode(Sm2RawPacket(cmd, data), 1)
            for pos in (2, 4):
                if frame[pos] in (0xF0, 0x0F):
                    found.setdefault((pos, frame[pos]), frame)
    assert {(2, 0xF0), (2, 0x0F), (4, 0x0F)} <= set(found)  # LEN ^ 55 == F0 needs LEN 165: never
    for frame in found.values():
        events = all_events(Sm2FrameDecoder(), [b"\x00" + frame + frame])
        assert [e for e in events if isinstance(e, Frame)] == [Frame(frame), Frame(frame)]
    sm4 = [sm4_encode(Sm4RawPacket(cmd, bytes(k % 251 for k in range(n))), 1) for cmd in (300, 301) for n in range(300)]
    tricky = [f for f in sm4 if any(f[p] in (0xF0, 0x0F) for p in (2, 4, 6, 8))]
    positions = {(p, f[p]) for f in tricky for p in (4, 6, 8) if f[p] in (0xF0, 0x0F)}
    assert {(4, 0x0F), (4, 0xF0)} <= positions and positions & {(6, 0xF0), (6, 0x0F), (8, 0xF0), (8, 0x0F)}
    stream = b"".join(tricky)
    assert [e.data for e in all_events(Sm4FrameDecoder(), [stream])] == tricky


# --------------------------------------------------------------------------- corruption is always detected


def _flip(frame: bytes, bit: int) -> bytes:
    out = bytearray(frame)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@settings(max_examples=150)
@given(st.sampled_from(sorted(PROTOCOLS)), st.data())
def test_a_flipped_bit_is_always_detected(protocol, data):
    encode, decode, decoder_cls, messages, numbers = PROTOCOLS[protocol]
    frame = encode(data.draw(messages), data.draw(numbers))
    bad = _flip(frame, data.draw(st.integers(0, 8 * len(frame) - 1)))
    with pytest.raises(ProtocolError) as exc:
        decode(bad)
    assert exc.value.reason in ("framing", "length", "crc", "stuffing")
    if protocol == "sm2":
        with pytest.raises(ProtocolError):
            decode(bad, lenient=True)
    events = all_events(decoder_cls(), [bad])
    assert not any(isinstance(e, Frame) for e in events)
    assert b"".join(e.data for e in events) == bad


@pytest.mark.parametrize("frame", [
    sm2_encode(Sm2SinglePulse(channel=8, pulse_width_us=500, current_ma=130), 0x81),
    sm2_encode(Sm2StartChannelListMode([Sm2ChannelPulse(240, 15)] * 3), 0xF0),
    sm4_encode(Sm4MlUpdate([Sm4MlChannel(1, 20.0, [Sm4Point(240, 15.5), Sm4Point(240, -15.5)])]), 60),
], ids=["sm2-single", "sm2-start", "sm4-update"])
def test_every_single_bit_flip_of_a_frame_is_detected(frame):
    decode = sm4_decode if frame[5] == 0x81 and frame[7] == 0x81 else sm2_decode
    for bit in range(8 * len(frame)):
        with pytest.raises(ProtocolError):
            decode(_flip(frame, bit))


def test_crc_and_length_errors_are_named():
    frame = bytearray(sm2_encode(Sm2Watchdog(), 1))
    frame[2] ^= 0x01
    with pytest.raises(ProtocolError, match="checksum") as exc:
        sm2_decode(bytes(frame))
    assert exc.value.reason == "crc" and exc.value.data == bytes(frame)
    frame = bytearray(sm2_encode(Sm2Watchdog(), 1))
    frame[4] ^= 0x01
    with pytest.raises(ProtocolError, match="body bytes") as exc:
        sm2_decode(bytes(frame))
    assert exc.value.reason == "length"
    frame = bytearray(sm4_encode(Sm4MlStop(), 1))
    frame[8] ^= 0x01
    with pytest.raises(ProtocolError, match="CRC-16") as exc:
        sm4_decode(bytes(frame))
    assert exc.value.reason == "crc"
    assert set(PROTOCOL_ERROR_REASONS) >= {"framing", "stuffing", "length", "crc", "data", "garbage", "truncated",
                                           "too_long"}


@given(st.sampled_from(sorted(PROTOCOLS)), st.binary(max_size=300))
def test_decode_of_arbitrary_bytes_raises_only_protocol_error(protocol, data):
    _, decode, _, _, _ = PROTOCOLS[protocol]
    for candidate in (data, b"\xf0" + data + b"\x0f"):
        try:
            decode(candidate)
        except ProtocolError as exc:
            assert exc.reason in PROTOCOL_ERROR_REASONS


# --------------------------------------------------------------------------- the incremental decoder


@settings(max_examples=60)
@given(st.sampled_from(sorted(PROTOCOLS)), st.data())
def test_frame_decoder_is_independent_of_chunking(protocol, data):
    _, decode, decoder_cls, _, _ = PROTOCOLS[protocol]
    frames = data.draw(st.lists(frames_of(protocol), max_size=4))
    garbage = [data.draw(byte_strings(12)) for _ in range(len(frames) + 1)]
    stream = garbage[0] + b"".join(f + g for f, g in zip(frames, garbage[1:]))
    whole = all_events(decoder_cls(), [stream])
    assert all_events(decoder_cls(), data.draw(chunked(stream))) == whole
    assert all_events(decoder_cls(), [bytes([b]) for b in stream]) == whole
    assert b"".join(e.data for e in whole) == stream  # every byte in exactly one event
    found = [e.data for e in whole if isinstance(e, Frame)]
    it = iter(found)
    assert all(f in it for f in frames), "a frame was lost after garbage"  # originals are a subsequence
    for e in whole:
        if isinstance(e, Frame):
            decode(e.data)  # frames that passed framing never fail on framing, CRC or length
        else:
            assert e.reason in PROTOCOL_ERROR_REASONS and e.message


def test_frame_decoder_resynchronises_after_false_starts():
    frame = sm2_encode(Sm2SinglePulse(channel=2, pulse_width_us=200, current_ma=30), 5)
    for junk in (b"\xf0", b"\xf0\x81", b"\xf0\x81\x00\x81", b"\xf0\x81\x00\x81\x03\x01", b"\x0f\x81\xf0\x0f"):
        d = Sm2FrameDecoder()
        events = d.feed(junk + frame) + d.flush()
        assert [e.data for e in events if isinstance(e, Frame)] == [frame], junk
        assert b"".join(e.data for e in events) == junk + frame


def test_frame_decoder_reports_too_long_and_keeps_going():
    d = Sm2FrameDecoder()
    frame = sm2_encode(Sm2Watchdog(), 3)
    events = d.feed(b"\xf0\x81\x00\x81\x00" + b"\x11" * 300 + frame)
    reasons = [e.reason if isinstance(e, FrameError) else "frame" for e in events]
    assert reasons == ["too_long", "garbage", "frame"]
    assert events[-1] == Frame(frame)
    assert d.buffered == 0


def test_frame_decoder_holds_incomplete_input_until_flush():
    d = Sm4FrameDecoder()
    frame = sm4_encode(Sm4Reset(), 7)
    assert d.feed(b"abc") == []  # garbage is reported once a start byte ends it
    assert d.feed(frame[:6]) == [FrameError("garbage", "3 bytes outside any frame", b"abc")]
    assert d.buffered == 6
    assert d.feed(b"") == []
    events = d.flush()
    assert [(e.reason, e.data) for e in events] == [("truncated", frame[:6])]
    assert d.buffered == 0
    d.feed(frame[:6])
    d.reset()
    assert d.feed(frame) == [Frame(frame)]


# --------------------------------------------------------------------------- lenient decoding (pysciencemode)


@given(sm2_messages.filter(lambda m: not isinstance(m, Sm2RawPacket)), sm2_packet_numbers)
def test_lenient_decode_accepts_pysciencemode_frames(message, packet_number):
    _, command, data = sm2_parts(sm2_encode(message, packet_number))
    quirky = pysciencemode_frame(packet_number, command, data)
    received = SM2_PYSCIENCEMODE_ALTERED.get(packet_number, packet_number)
    assert sm2_decode(quirky, lenient=True) == (received, message)
    events = all_events(Sm2FrameDecoder(lenient=True), [quirky])
    assert events == [Frame(quirky)]
    if 0x55 in data or 0x0A in data:  # escaped needlessly: strict decoding refuses
        with pytest.raises(ProtocolError) as exc:
            sm2_decode(quirky)
        assert exc.value.reason == "stuffing"
    elif command == Sm2Command.GET_STIMULATION_MODE:  # arrives as command 0x5F
        assert sm2_decode(quirky) == (received, Sm2RawPacket(0x5F, data))
    else:
        assert sm2_decode(quirky) == (received, message)


def test_lenient_decode_of_the_pysciencemode_defaults():
    # GetStimulationMode (10 = 0x0A) is sent as 0x5F; packet number 0x0F as 0x5A
    frame = pysciencemode_frame(0x0F, 10, b"")
    assert frame[5:7] == b"\x5a\x5f"
    assert sm2_decode(frame, lenient=True) == (0x5A, Sm2GetStimulationMode())
    # an inter-pulse interval code below the documented 8 ms minimum (code 1: 2 ms)
    frame = pysciencemode_frame(3, 30, bytes([0, 0b11, 0, 1, 0, 78, 0]))
    _, message = sm2_decode(frame, lenient=True)
    assert message.inter_pulse_interval_ms == 2.0 and message.main_interval_ms == 40.0
    assert message.active_channels == (1, 2)
    with pytest.raises(ProtocolError, match=r"'inter_pulse_interval_ms'.*allowed 8 to 129 ms.*but got 2\.0") as exc:
        sm2_decode(frame)
    assert exc.value.reason == "data"
    with pytest.raises(FieldRangeError, match="inter_pulse_interval_ms"):
        sm2_encode(message, 4)  # the encoder always does it right
    # a current of 85 mA (0x55) is escaped by that client
    frame = pysciencemode_frame(4, 36, bytes([0, 0, 200, 0x55]))
    assert b"\x81\x00" in frame
    assert sm2_decode(frame, lenient=True) == (4, Sm2SinglePulse(channel=1, pulse_width_us=200, current_ma=85))
    # lenient decoding still checks the checksum
    bad = bytearray(frame)
    bad[-2] ^= 0x10
    with pytest.raises(ProtocolError, match="checksum"):
        sm2_decode(bytes(bad), lenient=True)


# --------------------------------------------------------------------------- field errors


@pytest.mark.parametrize(("build", "pattern"), [
    (lambda: Sm2SinglePulse(channel=1, pulse_width_us=600, current_ma=10),
     r"Invalid value for 'pulse_width_us' of Sm2SinglePulse: allowed integers 20 to 500, but got 600\."),
    (lambda: Sm2SinglePulse(channel=9, pulse_width_us=200, current_ma=10),
     r"'channel' of Sm2SinglePulse: allowed integers 1 to 8, but got 9\."),
    (lambda: Sm2ChannelPulse(pulse_width_us=200, current_ma=131),
     r"'current_ma' of Sm2ChannelPulse: allowed integers 0 to 130, but got 131\."),
    (lambda: Sm2ChannelPulse(pulse_width_us=200, current_ma=20.5),
     r"'current_ma' of Sm2ChannelPulse: allowed integers 0 to 130, but got 20\.5\."),
    (lambda: Sm2ChannelPulse(pulse_width_us=200, current_ma=20, mode=3),
     r"'mode' of Sm2ChannelPulse: allowed 0 \(single\), 1 \(doublet\), 2 \(triplet\), but got 3\."),
    (lambda: Sm2InitChannelListMode(active_channels=[1], main_interval_ms=20.3),
     r"'main_interval_ms' of Sm2InitChannelListMode: allowed 1\.5 to 32768\.5 ms in steps of 0\.5 ms, but got 20\.3\."),
    (lambda: Sm2InitChannelListMode(active_channels=[1, 1], main_interval_ms=20),
     r"'active_channels' of Sm2InitChannelListMode: allowed distinct channel numbers 1 to 8, but got \(1, 1\)\."),
    (lambda: Sm2InitChannelListMode(active_channels=[1], main_interval_ms=20, low_frequency_factor=8),
     r"'low_frequency_factor' of Sm2InitChannelListMode: allowed integers 0 to 7, but got 8\."),
    (lambda: Sm2StartChannelListMode([]),
     r"'pulses' of Sm2StartChannelListMode: allowed 1 to 8 Sm2ChannelPulse entries, but got \(\)\."),
    (lambda: sm2_encode(Sm2Watchdog(), 256),
     r"'packet_number' of sm2_encode: allowed integers 0 to 255, but got 256\."),
    (lambda: sm2_encode(Sm2InitChannelListMode(active_channels=[1], main_interval_ms=6.0), 1),
     r"'main_interval_ms' of ScienceMode2: allowed 8 to 32768\.5 ms in steps of 0\.5 ms, but got 6\.0\."),
    (lambda: Sm2RawPacket(command=36),
     r"'command' of Sm2RawPacket: allowed a command number without its own message class \(use Sm2SinglePulse\)"),
    (lambda: Sm4Point(pulse_width_us=4096, current_ma=0),
     r"'pulse_width_us' of Sm4Point: allowed integers 0 to 4095, but got 4096\."),
    (lambda: Sm4Point(pulse_width_us=100, current_ma=150.5),
     r"'current_ma' of Sm4Point: allowed -150 to 150 mA in steps of 0\.5 mA, but got 150\.5\."),
    (lambda: Sm4Point(pulse_width_us=100, current_ma=10.25),
     r"'current_ma' of Sm4Point: allowed -150 to 150 mA in steps of 0\.5 mA, but got 10\.25\."),
    (lambda: Sm4MlChannel(channel=1, period_ms=1.5, points=[Sm4Point(100, 10)]),
     r"'period_ms' of Sm4MlChannel: allowed 2 to 16383\.5 ms in steps of 0\.5 ms, but got 1\.5\."),
    (lambda: Sm4MlChannel(channel=1, period_ms=20, points=[Sm4Point(100, 10)] * 17),
     r"'points' of Sm4MlChannel: allowed 1 to 16 Sm4Point entries"),
    (lambda: Sm4MlChannel(channel=1, period_ms=20, points=[Sm4Point(100, 10)], ramp=16),
     r"'ramp' of Sm4MlChannel: allowed integers 0 to 15, but got 16\."),
    (lambda: sm4_encode(Sm4MlStop(), 64),
     r"'packet_number' of sm4_encode: allowed integers 0 to 63, but got 64\."),
    (lambda: Sm4GetDeviceIdAck(device_id="ABCDEFGHIJK"),
     r"'device_id' of Sm4GetDeviceIdAck: allowed at most 10 printable ASCII characters, but got 'ABCDEFGHIJK'\."),
    (lambda: Sm4MlInit(stop_all_channels_on_error=1),
     r"'stop_all_channels_on_error' of Sm4MlInit: allowed True or False, but got 1\."),
    (lambda: Sm4MlInitAck(result=99),
     r"'result' of Sm4MlInitAck: allowed 0 \(ok\), 1 \(transfer_error\), .*, but got 99\."),
])
def test_field_errors_name_field_range_and_value(build, pattern):
    with pytest.raises(FieldRangeError, match=pattern) as exc:
        build()
    assert exc.value.field in str(exc.value) and exc.value.allowed in str(exc.value)
    assert isinstance(exc.value, ValueError)  # an InvalidInputError


def test_decoded_field_out_of_range_is_a_protocol_error_naming_the_field():
    body = bytes([1, 36, 0, 0x02, 0x58, 20])  # SinglePulse with 600 µs
    frame = bytes([0xF0, 0x81, ref_crc8(body) ^ 0x55, 0x81, len(body) ^ 0x55]) + body + b"\x0f"
    with pytest.raises(ProtocolError, match=r"command 36: .*'pulse_width_us'.*20 to 500.*600") as exc:
        sm2_decode(frame)
    assert exc.value.reason == "data"
    body = bytes([1, 36, 0, 1])  # SinglePulse with too few data bytes
    frame = bytes([0xF0, 0x81, ref_crc8(body) ^ 0x55, 0x81, len(body) ^ 0x55]) + body + b"\x0f"
    with pytest.raises(ProtocolError, match="carries 4 data bytes, but the packet has 2"):
        sm2_decode(frame)


def test_messages_are_frozen_and_normalised():
    m = Sm2InitChannelListMode(active_channels=[4, 2], main_interval_ms=20, inter_pulse_interval_ms=8)
    assert m.active_channels == (2, 4) and m.main_interval_ms == 20.0 and isinstance(m.main_interval_ms, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.main_interval_ms = 30.0  # type: ignore[misc]
    assert Sm2ChannelPulse(200.0, 20).pulse_width_us == 200
    u = Sm4MlUpdate([Sm4MlChannel(3, 20, [Sm4Point(100, 10)]), Sm4MlChannel(1, 20, [Sm4Point(100, 10)])])
    assert [c.channel for c in u.channels] == [1, 3]
    assert Sm4Point(100, 10).negated() == Sm4Point(100, -10.0)


# --------------------------------------------------------------------------- interval codes and tables


def test_sm2_interval_codes():
    assert [sm2_inter_pulse_interval_ms(c) for c in (0, 13, 255)] == [1.5, 8.0, 129.0]
    assert all(sm2_inter_pulse_interval_code(sm2_inter_pulse_interval_ms(c)) == c for c in range(13, 256))
    assert all(sm2_main_interval_code(sm2_main_interval_ms(c)) == c for c in range(14, 0x10000, 97))
    assert sm2_main_interval_ms(0) is None and sm2_main_interval_code(None) == 0
    assert sm2_main_interval_code(1000 / 35, exact=False) == 55  # 28.57 ms -> 28.5 ms
    assert sm2_inter_pulse_interval_code(8.2, exact=False) == 13
    with pytest.raises(FieldRangeError, match=r"allowed 8 to 129 ms in steps of 0\.5 ms, but got 129\.5"):
        sm2_inter_pulse_interval_code(129.5)
    with pytest.raises(FieldRangeError, match=r"steps of 0\.5 ms, but got 8\.2"):
        sm2_inter_pulse_interval_code(8.2)
    with pytest.raises(FieldRangeError, match=r"'main_interval code'.*0 to 65535, but got 65536"):
        sm2_main_interval_ms(65536)


def test_sm4_value_codes():
    assert [sm4_current_code(x) for x in (-150, 0, 20, 150)] == [0, 300, 340, 600]
    assert all(sm4_current_code(sm4_current_ma(c)) == c for c in range(601))
    assert sm4_period_code(2.0) == 4 and sm4_period_ms(0x7FFF) == 16383.5
    assert sm4_period_code(1000 / 35, exact=False) == 57
    with pytest.raises(FieldRangeError, match=r"allowed 2 to 16383\.5 ms"):
        sm4_period_code(16384.0)


def test_tables_agree():
    assert set(SM2_MESSAGES) == {int(c) for c in Sm2Command}
    assert all(cls.command == num for num, cls in SM2_MESSAGES.items())
    assert {f"Sm4{name}" for name in SM4_LAYOUT} == {cls.__name__ for cls in SM4_MESSAGES.values()}
    assert all(SM4_MESSAGES[num].__name__ == f"Sm4{name}" for name, (num, _) in SM4_LAYOUT.items())
    groups = [range(6), range(30, 38), range(50, 70)]  # documented command groups
    assert all(any(int(c) in g for g in groups) for c in Sm4Command)
    assert all(num in SM4_MESSAGES for num in (0, 1, 2, 3, 4, 5, *range(30, 38)))  # low and mid level complete


def test_both_codecs_declare_their_messages_on_one_base():
    from electrostim.devices._framing import Message, RawPacket

    for cls in (*SM2_MESSAGES.values(), *SM4_MESSAGES.values()):
        assert issubclass(cls, Message) and dataclasses.is_dataclass(cls), cls
    assert issubclass(Sm2RawPacket, RawPacket) and issubclass(Sm4RawPacket, RawPacket)
    # each protocol keeps its own registry
    assert not set(SM2_MESSAGES.values()) & set(SM4_MESSAGES.values())


def test_a_second_class_for_one_command_is_refused():
    with pytest.raises(TypeError, match="command 4 already belongs to Sm2Watchdog"):

        class Twin(Sm2Watchdog):
            command = Sm2Command.WATCHDOG

    assert SM2_MESSAGES[Sm2Command.WATCHDOG] is Sm2Watchdog
