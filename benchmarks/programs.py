"""Programs the benchmarks run on."""

from __future__ import annotations

import copy

import electrostim as es

#: channels of the benchmark program
N_CHANNELS = 8
#: session length of the benchmark program
SESSION_S = 3600.0
#: pulse rate of every channel
FREQUENCY_HZ = 100.0


def eight_channel_hour() -> es.Program:
    """Conventional TENS on 8 channels for 60 minutes: 100 Hz symmetric biphasic pulses.

    Built from the ``tens-conventional`` preset: every channel is a copy of its first
    channel under its own label.

    Examples
    --------
    >>> p = eight_channel_hour()
    >>> len(p.channels), p.session_duration_s
    (8, 3600.0)
    """
    data = es.load_program("tens-conventional").model_dump(mode="python")
    first = data["channels"][0]
    channels = []
    for i in range(N_CHANNELS):
        ch = copy.deepcopy(first)
        ch["label"] = f"ch-{i + 1}"
        pulse = ch["stimulus"]["pulse"]
        pulse["shape"] = "symmetric-biphasic"
        pulse["frequency_hz"] = FREQUENCY_HZ
        channels.append(ch)
    data["channels"] = channels
    data["id"] = "bench-8ch-60min"
    data["session_duration_s"] = SESSION_S
    return es.validate_program(data, source="eight_channel_hour")
