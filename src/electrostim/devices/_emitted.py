"""What a stimulator really emitted, pulse by pulse: the record behind "approved is delivered".

An emulator (or the simulated stimulator) tells a :class:`PulseRecorder` what its
outputs do as it happens -- a channel starts a periodic train, an update changes the
train from a given moment, one group of pulses fires once, everything stops -- and a
test asks :meth:`PulseRecorder.emitted` for the pulses of a time window as a
:class:`~electrostim.waveform.PulseChunk`, to compare with the approved schedule.

Memory. A 30-minute session at 8 channels and 125 Hz is about 1.8 million pulses. The
recorder does not store them one by one: a periodic train is one *segment* (channel,
time of period 0, period, the pulses of one period as offsets, and the window of
periods and of times it covers), expanded into arrays only for the window asked for.
A segment is a few hundred bytes whatever its length, so a session costs one segment
per channel per change of setting. Pulses fired once (:meth:`PulseRecorder.add_group`)
and pulses handed over as arrays (:meth:`PulseRecorder.add_pulses`) are kept as numpy
blocks, about 50 bytes a pulse.

Times are the recorder's clock (``time.monotonic`` seconds by default, the emulators'
clock); widths are µs, currents mA, signed as the device drives them.

Examples
--------
Channel 2 runs at 100 Hz from t = 10 s; at t = 10.05 s the current goes from 20 to
25 mA without restarting the period timing; at t = 10.1 s everything stops:

>>> rec = PulseRecorder(clock=lambda: 100.0)
>>> p = Pulse(offset_s=0.0, first_amplitude_ma=20, first_width_us=200, gap_us=100,
...           second_amplitude_ma=-20, second_width_us=200)
>>> rec.start_train(2, origin_s=10.0, period_s=0.01, pulses=[p])
>>> rec.start_train(2, origin_s=10.0, period_s=0.01, pulses=[p.scaled(1.25)], begin_s=10.05)
>>> rec.stop(10.1)
>>> chunk = rec.emitted()
>>> len(chunk), chunk.time_s[:2].round(3).tolist(), chunk.first_amplitude_ma[[4, 5]].tolist()
(10, [10.0, 10.01], [20.0, 25.0])
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import numpy as np

from ..waveform import SHAPE_RECT, PulseChunk

__all__ = ["Pulse", "PulseRecorder"]

#: columns of a pulse's parameters, in the order of a segment's parameter array
_PARAMS = ("first_amplitude_ma", "first_width_us", "gap_us", "second_amplitude_ma", "second_width_us")
#: the columns kept per pulse: its parameters and its shape code (SHAPE_RECT, SHAPE_SPIKE, ...)
_COLUMNS = (*_PARAMS, "shape")


@dataclass(frozen=True)
class Pulse:
    """One pulse of a train's period (or of a group), relative to its start.

    Parameters
    ----------
    offset_s : float
        Start of the pulse after the start of its period (s, >= 0).
    first_amplitude_ma, second_amplitude_ma : float
        Signed current of each phase (mA); a monophasic pulse has a second phase of 0 mA
        and 0 µs.
    first_width_us, second_width_us : float
        Width of each phase (µs).
    gap_us : float
        Time between the phases (µs).
    shape : int
        Shape code of its phases (:data:`~electrostim.waveform.SHAPE_RECT`, or
        :data:`~electrostim.waveform.SHAPE_SPIKE` for the exponential peaks of a
        high-voltage pulsed current stimulator).
    """

    offset_s: float
    first_amplitude_ma: float
    first_width_us: float
    gap_us: float = 0.0
    second_amplitude_ma: float = 0.0
    second_width_us: float = 0.0
    shape: int = SHAPE_RECT

    def scaled(self, factor: float) -> Pulse:
        """The same pulse with both currents multiplied by ``factor``.

        >>> Pulse(0.0, -10.0, 200, 100, 10.0, 200).scaled(1.5).first_amplitude_ma
        -15.0
        """
        return replace(self, first_amplitude_ma=self.first_amplitude_ma * factor,
                       second_amplitude_ma=self.second_amplitude_ma * factor)


    def _row(self, time_s: float) -> tuple[float, ...]:
        return (time_s + self.offset_s, *(float(getattr(self, n)) for n in _COLUMNS))


class _Segment:
    """Pulses ``origin_s + k * period_s + offset`` for periods ``0 <= k < k1`` and times in ``[begin_s, end_s)``."""

    __slots__ = ("channel", "origin_s", "period_s", "k1", "begin_s", "end_s", "offsets_s", "params", "key")

    def __init__(self, channel: int, origin_s: float, period_s: float, pulses: tuple[Pulse, ...],
                 begin_s: float, k1: int | None):
        self.channel = int(channel)
        self.origin_s = float(origin_s)
        self.period_s = float(period_s)
        self.k1 = k1
        self.begin_s = float(begin_s)
        self.end_s = math.inf
        order = sorted(pulses, key=lambda p: p.offset_s)
        self.offsets_s = np.array([p.offset_s for p in order], dtype=float)
        self.params = np.array([[getattr(p, n) for n in _COLUMNS] for p in order], dtype=float).reshape(-1, len(_COLUMNS))
        #: what makes two trains the same (an identical re-start is not a new segment)
        self.key = (self.origin_s, self.period_s, tuple(order))

    def first_s(self) -> float:
        """Earliest time a pulse of this segment can start."""
        return max(self.begin_s, self.origin_s + float(self.offsets_s[0]))

    def bound_s(self) -> float:
        """A time after the last pulse start of this segment (inf while it runs on)."""
        if self.k1 is None:
            return self.end_s
        last = self.origin_s + (self.k1 - 1) * self.period_s + float(self.offsets_s[-1])
        return min(self.end_s, float(np.nextafter(last, math.inf)))

    def empty(self) -> bool:
        return self.bound_s() <= self.first_s()

    def expand(self, t0: float, t1: float) -> tuple[np.ndarray, np.ndarray] | None:
        """Start times and parameter rows of the pulses in ``[t0, t1)`` (None when there are none)."""
        lo, hi = max(t0, self.begin_s), min(t1, self.end_s)
        if hi <= lo:
            return None
        p = self.period_s
        k_lo = max(0, math.ceil((lo - self.origin_s - self.offsets_s[-1]) / p) - 1)
        k_hi = math.floor((hi - self.origin_s - self.offsets_s[0]) / p) + 1
        if self.k1 is not None:
            k_hi = min(k_hi, self.k1 - 1)
        if k_hi < k_lo:
            return None
        k = np.arange(k_lo, k_hi + 1, dtype=float)
        t = (self.origin_s + k[:, None] * p + self.offsets_s[None, :]).ravel()
        rows = np.tile(np.arange(len(self.offsets_s)), len(k))
        keep = (t >= lo) & (t < hi)
        if not keep.any():
            return None
        return t[keep], self.params[rows[keep]]


#: pulses of groups are gathered as rows, then kept as numpy blocks of this many
_BLOCK_ROWS = 4096


class PulseRecorder:
    """The pulses a stimulator emits, kept compactly and listed per time window.

    A train belongs to a channel: :meth:`start_train` starts one (ending the channel's
    previous train where the new one begins), :meth:`end_train` ends it. :meth:`add_group`
    fires pulses once, :meth:`add_pulses` takes pulses already emitted, and :meth:`stop`
    ends everything: no pulse starts at or after that moment. Thread-safe.

    Parameters
    ----------
    clock : callable
        The time now, in the recorder's clock (default ``time.monotonic``): a train
        still running is listed up to it, never beyond (what is listed was emitted).
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._lock = threading.Lock()
        self._segments: list[_Segment] = []
        self._first: list[float] = []  # per segment: earliest pulse start
        self._bound: list[float] = []  # per segment: after its last pulse start (inf while running)
        self._bounds: tuple[np.ndarray, np.ndarray] | None = None  # the two lists as arrays, while unchanged
        self._open: dict[int, _Segment] = {}  # channel → its running train
        self._rows: list[tuple[float, ...]] = []  # (time, channel, *params) of pulses not yet in a block
        self._blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (time_s, channel, params)

    # -- recording --------------------------------------------------------------------------------
    def start_train(self, channel: int, *, origin_s: float, period_s: float, pulses: Iterable[Pulse],
                    begin_s: float | None = None, periods: int | None = None) -> None:
        """Start a periodic train on ``channel``: ``pulses`` in every period from ``origin_s`` on.

        The channel's running train, if any, ends at ``begin_s`` (no pulse of it starts
        at or after that moment). A train with the same origin, period and pulses as the
        running one continues it (an update that changes nothing).

        Parameters
        ----------
        channel : int
            Device channel (1..n).
        origin_s : float
            Start of period 0 (s, recorder clock).
        period_s : float
            Period (s, > 0).
        pulses : iterable of Pulse
            The pulses of one period; none (e.g. at 0 mA) ends the running train and
            starts nothing.
        begin_s : float, optional
            No pulse of this train starts before it (default: ``origin_s``): an update
            applies from the moment it arrives, keeping the period timing of ``origin_s``.
        periods : int, optional
            Number of periods (default: until ended).
        """
        pulses = tuple(pulses)
        begin = float(origin_s if begin_s is None else begin_s)
        if not (period_s > 0 and math.isfinite(period_s)):
            raise ValueError(f"Invalid value for the 'period_s' parameter. Allowed values are finite periods > 0 s, "
                             f"but got {period_s!r} instead.")
        seg = _Segment(channel, origin_s, period_s, pulses, begin, periods) if pulses else None
        with self._lock:
            running = self._open.get(channel)
            if running is not None and seg is not None and periods is None and seg.key == running.key:
                return
            self._end(channel, begin, None)
            if seg is not None and not seg.empty():
                self._add(seg)
                if periods is None:
                    self._open[channel] = seg

    def end_train(self, channel: int, at_s: float = math.inf, *, periods: int | None = None) -> None:
        """End ``channel``'s running train.

        Parameters
        ----------
        channel : int
            Device channel.
        at_s : float
            No pulse of the train starts at or after this moment (pulses already
            started are whole).
        periods : int, optional
            Keep only the periods ``0 .. periods - 1`` of the train (counted from its
            ``origin_s``), each whole: "finish the period under way, start no other".
        """
        with self._lock:
            self._end(channel, at_s, periods)

    def add_group(self, channel: int, time_s: float, pulses: Iterable[Pulse]) -> None:
        """Fire ``pulses`` once on ``channel``, at ``time_s`` plus each pulse's offset.

        A :meth:`stop` before a pulse of the group is due cancels that pulse; the
        channel's train, if any, is not affected.
        """
        rows = [(r[0], float(channel), *r[1:]) for r in (p._row(float(time_s)) for p in pulses)]
        with self._lock:
            self._rows.extend(rows)
            if len(self._rows) >= _BLOCK_ROWS:
                self._flush()

    def add_pulses(self, chunk: PulseChunk) -> None:
        """Record pulses (``output`` is the channel) as they are, kept as numpy arrays."""
        if len(chunk):
            block = (np.asarray(chunk.time_s, float), np.asarray(chunk.output, np.int16),
                     np.column_stack([np.asarray(getattr(chunk, n), float) for n in _COLUMNS]))
            with self._lock:
                self._flush()
                self._blocks.append(block)

    def stop(self, at_s: float) -> None:
        """Every output stops at ``at_s``: no pulse of any train, group or block starts at or after it."""
        at_s = float(at_s)
        with self._lock:
            self._open.clear()
            if self._segments:
                _, bound = self._segment_bounds()
                for i in reversed(np.flatnonzero(bound > at_s).tolist()):
                    seg = self._segments[i]
                    seg.end_s = min(seg.end_s, at_s)
                    self._set_bound(i, seg)
            self._flush()
            for j, (t, ch, p) in enumerate(self._blocks):
                if len(t) and t.max() >= at_s:
                    keep = t < at_s
                    self._blocks[j] = (t[keep], ch[keep], p[keep])

    @property
    def running_channels(self) -> tuple[int, ...]:
        """Channels with a train that has not been ended."""
        with self._lock:
            return tuple(sorted(self._open))

    @property
    def segment_count(self) -> int:
        """Trains and train pieces held (what the record costs, with the pulses held as arrays)."""
        with self._lock:
            return len(self._segments)

    # -- listing ----------------------------------------------------------------------------------
    def emitted(self, start_s: float | None = None, stop_s: float | None = None) -> PulseChunk:
        """Every pulse emitted in ``[start_s, stop_s)``, sorted by time then channel.

        Parameters
        ----------
        start_s : float, optional
            Start of the window (default: the first pulse recorded).
        stop_s : float, optional
            End of the window (default, and at most: the clock's time now; a pulse not
            yet due has not been emitted).

        Returns
        -------
        PulseChunk
            ``output`` is the device channel (1..n), ``shape`` each pulse's shape code
            (:data:`SHAPE_RECT` unless recorded otherwise); ``start_s`` and ``stop_s``
            give the window covered.
        """
        with self._lock:
            now = float(self.clock())
            t1 = now if stop_s is None else min(float(stop_s), now)
            t0 = -math.inf if start_s is None else float(start_s)
            times: list[np.ndarray] = []
            rows: list[np.ndarray] = []
            channels: list[np.ndarray] = []
            if self._segments:
                first, bound = self._segment_bounds()
                for i in np.flatnonzero((first < t1) & (bound > t0)).tolist():
                    seg = self._segments[i]
                    got = seg.expand(t0, t1)
                    if got is not None:
                        times.append(got[0])
                        rows.append(got[1])
                        channels.append(np.full(len(got[0]), seg.channel, np.int16))
            self._flush()
            blocks = list(self._blocks)
        for t, ch, p in blocks:
            keep = (t >= t0) & (t < t1)
            if keep.any():
                times.append(t[keep])
                channels.append(ch[keep])
                rows.append(p[keep])
        if not times:
            t_start = t1 if start_s is None else t0
            return PulseChunk.concatenate([], t_start, max(t_start, t1))
        t = np.concatenate(times)
        ch = np.concatenate(channels)
        p = np.concatenate(rows)
        order = np.lexsort((ch, t))
        t, ch, p = t[order], ch[order], p[order]
        t_start = float(t[0]) if start_s is None else t0
        return PulseChunk(t_start, t1, t, ch, p[:, len(_PARAMS)].astype(np.uint8),
                          *(np.ascontiguousarray(p[:, j]) for j in range(len(_PARAMS))))

    # -- internals (lock held) --------------------------------------------------------------------
    def _add(self, seg: _Segment) -> None:
        self._segments.append(seg)
        self._first.append(seg.first_s())
        self._bound.append(seg.bound_s())
        self._bounds = None

    def _index(self, seg: _Segment) -> int:
        """Where ``seg`` is (searched from the end: the segments changed are the recent ones)."""
        for i in range(len(self._segments) - 1, -1, -1):
            if self._segments[i] is seg:
                return i
        raise LookupError("segment not held")  # pragma: no cover - every running train is held

    def _set_bound(self, i: int, seg: _Segment) -> None:
        if seg.empty():  # nothing of it was emitted
            del self._segments[i], self._first[i], self._bound[i]
        else:
            self._bound[i] = seg.bound_s()
        self._bounds = None

    def _end(self, channel: int, at_s: float, periods: int | None) -> None:
        seg = self._open.pop(channel, None)
        if seg is None:
            return
        seg.end_s = min(seg.end_s, float(at_s))
        if periods is not None:
            seg.k1 = max(0, int(periods)) if seg.k1 is None else min(seg.k1, int(periods))
        self._set_bound(self._index(seg), seg)

    def _segment_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        if self._bounds is None:
            self._bounds = (np.array(self._first, dtype=float), np.array(self._bound, dtype=float))
        return self._bounds

    def _flush(self) -> None:
        if self._rows:
            a = np.array(self._rows, dtype=float)
            self._blocks.append((a[:, 0].copy(), a[:, 1].astype(np.int16), a[:, 2:].copy()))
            self._rows = []
