"""Deliver pulses: the stimulator interface, the simulated stimulator, and the HASOMED protocol codecs.

A stimulator accepts only an :class:`~electrostim.safety.ApprovedPlan` and checks every
intensity against its envelope before sending anything.

The ScienceMode codecs are pure bytes in and bytes out (no I/O, no threads):
``sm2_*``/``Sm2*`` is ScienceMode2 (RehaStim2), ``sm4_*``/``Sm4*`` ScienceMode4 (P24);
each has ``encode(message, packet_number) -> bytes``,
``decode(frame) -> (packet_number, message)`` and an incremental ``FrameDecoder``.
Their errors: :class:`FieldRangeError` (an ``InvalidInputError``: a message field
outside what the protocol allows) and :class:`ProtocolError` (an ``ElectrostimError``:
bytes that are not a valid frame or message, with a ``reason``).

One package per protocol holds its codec, its driver and its emulator side by side:
``_sciencemode2`` (``codec``, ``driver`` :class:`RehaStim2`, ``emulator``
:class:`RehaStim2Emulator`) and ``_sciencemode4`` (the same for :class:`P24`). What
they share stays here: the backend table ``_backends`` (the one list of backends), the
stimulator base ``_stimulator``, the serial stimulator ``_hardware`` and its link
``_link``, the emulator base ``_emulator`` and its pulse recorder ``_emitted``, the
simulated stimulator ``_simulated``, and ``_framing`` (frames, stuffing, checksums and
the message base both codecs declare their messages on).

Names load on first use (the command line stays quick to start), from the modules
this table names.
"""

from importlib import import_module
from typing import Any

_LAZY = {
    "BACKENDS": "_backends",
    "Backend": "_backends",
    "backend_help": "_backends",
    "backend_profile": "_backends",
    "open_emulator": "_backends",
    "open_stimulator": "_backends",
    "parse_backend": "_backends",
    "DeviceError": "_stimulator",
    "DeviceState": "_stimulator",
    "DeviceStatus": "_stimulator",
    "LoadModel": "_simulated",
    "OutputCommand": "_hardware",
    "P24": "_sciencemode4.driver",
    "RehaStim2": "_sciencemode2.driver",
    "SerialStimulator": "_hardware",
    "SimulatedStimulator": "_simulated",
    "Stimulator": "_stimulator",
    "OutputState": "_emulator",
    "P24Emulator": "_sciencemode4.emulator",
    "PtyEmulator": "_emulator",
    "RehaStim2Emulator": "_sciencemode2.emulator",
    "PROTOCOL_ERROR_REASONS": "_framing",
    "DecodedPacket": "_framing",
    "FieldRangeError": "_framing",
    "Frame": "_framing",
    "FrameError": "_framing",
    "ProtocolError": "_framing",
    "crc8": "_framing",
    "crc16_xmodem": "_framing",
    "stuff": "_framing",
    "unstuff": "_framing",
    "SM2_LIMITS": "_sciencemode2.codec",
    "SM2_MESSAGES": "_sciencemode2.codec",
    "SM2_PYSCIENCEMODE_ALTERED": "_sciencemode2.codec",
    "Sm2ChannelPulse": "_sciencemode2.codec",
    "Sm2Command": "_sciencemode2.codec",
    "Sm2FrameDecoder": "_sciencemode2.codec",
    "Sm2GetStimulationMode": "_sciencemode2.codec",
    "Sm2GetStimulationModeAck": "_sciencemode2.codec",
    "Sm2Init": "_sciencemode2.codec",
    "Sm2InitAck": "_sciencemode2.codec",
    "Sm2InitChannelListMode": "_sciencemode2.codec",
    "Sm2InitChannelListModeAck": "_sciencemode2.codec",
    "Sm2InitResult": "_sciencemode2.codec",
    "Sm2PulseMode": "_sciencemode2.codec",
    "Sm2RawPacket": "_sciencemode2.codec",
    "Sm2Result": "_sciencemode2.codec",
    "Sm2SinglePulse": "_sciencemode2.codec",
    "Sm2SinglePulseAck": "_sciencemode2.codec",
    "Sm2StartChannelListMode": "_sciencemode2.codec",
    "Sm2StartChannelListModeAck": "_sciencemode2.codec",
    "Sm2StimulationError": "_sciencemode2.codec",
    "Sm2StimulationErrorCode": "_sciencemode2.codec",
    "Sm2StimulationMode": "_sciencemode2.codec",
    "Sm2StopChannelListMode": "_sciencemode2.codec",
    "Sm2StopChannelListModeAck": "_sciencemode2.codec",
    "Sm2UnknownCommand": "_sciencemode2.codec",
    "Sm2Watchdog": "_sciencemode2.codec",
    "sm2_decode": "_sciencemode2.codec",
    "sm2_encode": "_sciencemode2.codec",
    "sm2_inter_pulse_interval_code": "_sciencemode2.codec",
    "sm2_inter_pulse_interval_ms": "_sciencemode2.codec",
    "sm2_main_interval_code": "_sciencemode2.codec",
    "sm2_main_interval_ms": "_sciencemode2.codec",
    "SM4_LAYOUT": "_sciencemode4.codec",
    "SM4_LIMITS": "_sciencemode4.codec",
    "SM4_MESSAGES": "_sciencemode4.codec",
    "SM4_PERIOD_BITS": "_sciencemode4.codec",
    "SM4_POINT_BITS": "_sciencemode4.codec",
    "Sm4ChannelError": "_sciencemode4.codec",
    "Sm4Codec": "_sciencemode4.driver",
    "Sm4Command": "_sciencemode4.codec",
    "Sm4FrameDecoder": "_sciencemode4.codec",
    "Sm4GetDeviceId": "_sciencemode4.codec",
    "Sm4GetDeviceIdAck": "_sciencemode4.codec",
    "Sm4GetExtendedVersion": "_sciencemode4.codec",
    "Sm4GetExtendedVersionAck": "_sciencemode4.codec",
    "Sm4GetStimStatus": "_sciencemode4.codec",
    "Sm4GetStimStatusAck": "_sciencemode4.codec",
    "Sm4LlChannelConfig": "_sciencemode4.codec",
    "Sm4LlChannelConfigAck": "_sciencemode4.codec",
    "Sm4LlInit": "_sciencemode4.codec",
    "Sm4LlInitAck": "_sciencemode4.codec",
    "Sm4LlStop": "_sciencemode4.codec",
    "Sm4LlStopAck": "_sciencemode4.codec",
    "Sm4MlChannel": "_sciencemode4.codec",
    "Sm4MlGetCurrentData": "_sciencemode4.codec",
    "Sm4MlGetCurrentDataAck": "_sciencemode4.codec",
    "Sm4MlInit": "_sciencemode4.codec",
    "Sm4MlInitAck": "_sciencemode4.codec",
    "Sm4MlStop": "_sciencemode4.codec",
    "Sm4MlStopAck": "_sciencemode4.codec",
    "Sm4MlUpdate": "_sciencemode4.codec",
    "Sm4MlUpdateAck": "_sciencemode4.codec",
    "Sm4Point": "_sciencemode4.codec",
    "Sm4RawPacket": "_sciencemode4.codec",
    "Sm4Reset": "_sciencemode4.codec",
    "Sm4ResetAck": "_sciencemode4.codec",
    "Sm4Result": "_sciencemode4.codec",
    "Sm4StimStatus": "_sciencemode4.codec",
    "sm4_current_code": "_sciencemode4.codec",
    "sm4_current_ma": "_sciencemode4.codec",
    "sm4_decode": "_sciencemode4.codec",
    "sm4_encode": "_sciencemode4.codec",
    "sm4_period_code": "_sciencemode4.codec",
    "sm4_period_ms": "_sciencemode4.codec",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __package__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
