"""The intensity of every output over a session, rebuilt from its recorded events.

A session records one ``intensity`` event when a movement of an output's intensity
starts or changes (``from_ma``, ``to_ma``, ``rate_ma_per_s``) and one when a ramp
ends, not one per step (see :mod:`electrostim.session._runner`). Between them the
intensity moves in a straight line at the recorded rate; a pause holds it; the end of
the session (``completed``, ``stopped``, ``failed``, ``interrupted``) zeroes it. This
module plays the events back and gives, per output, the corners of that piecewise
linear curve. (Records made before ramps were recorded this way hold an ``intensity_ma``
at every step; they play back as the line through those levels.)
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["intensity_timeline", "intensity_at"]

_ENDINGS = ("completed", "stopped", "failed", "interrupted")
_HELD = ("paused",)


def _kind_payload(event: Any) -> tuple[str, Mapping[str, Any]]:
    if isinstance(event, tuple) and len(event) == 2:
        return str(event[0]), event[1] or {}
    if isinstance(event, Mapping):
        return str(event.get("kind")), event.get("payload") or {}
    return str(event.kind), getattr(event, "payload", None) or {}


class _Output:
    """One output being played back: its intensity at ``t``, and the movement it is on."""

    def __init__(self) -> None:
        self.level = 0.0
        self.t = 0.0
        self.to = 0.0
        self.rate: float | None = None  # mA/s of run time; None: not moving
        self.points: list[tuple[float, float]] = [(0.0, 0.0)]

    def point(self, t: float, level: float) -> None:
        if self.points and self.points[-1] == (t, level):
            return
        self.points.append((t, level))

    def advance(self, t: float, held: bool) -> None:
        """Bring the intensity to time ``t`` (held: no change, as while paused)."""
        if t <= self.t:
            return
        if not held and self.rate is not None and self.level != self.to:
            need = abs(self.to - self.level) / self.rate if self.rate > 0 else math.inf
            if need <= t - self.t:
                self.level = self.to
                self.point(self.t + need, self.level)
                self.rate = None
            else:
                step = self.rate * (t - self.t)
                self.level += step if self.to > self.level else -step
        self.t = t

    def set(self, t: float, level: float) -> None:
        """The intensity is ``level`` at ``t`` (a jump when it was something else)."""
        self.point(t, self.level)
        self.level = level
        self.point(t, level)


def intensity_timeline(events: Iterable[Any]) -> dict[str, list[tuple[float, float]]]:
    """Per output: the corners ``(t_s, mA)`` of its commanded intensity over the session, rebuilt from the events.

    Parameters
    ----------
    events : iterable
        The session's events in order: :class:`~electrostim.store.EventRecord` objects,
        dicts with ``kind`` and ``payload`` (as ``sessions show --json`` and the JSON
        export hold them), or ``(kind, payload)`` pairs (as :class:`Runner` reports them).

    Returns
    -------
    dict
        Output label to a list of ``(t_s, mA)`` in session time: the intensity is
        linear between two corners; two corners at the same time are a jump (the
        first is the intensity up to that moment, the second the one after it).
        Evaluate it with :func:`intensity_at`.

    Examples
    --------
    >>> events = [("intensity", {"t_s": 0.0, "output": "a", "from_ma": 0.0, "to_ma": 10.0, "rate_ma_per_s": 2.0}),
    ...           ("state", {"t_s": 20.0, "state": "completed"})]
    >>> intensity_timeline(events)["a"]
    [(0.0, 0.0), (5.0, 10.0), (20.0, 10.0), (20.0, 0.0)]
    """
    outputs: dict[str, _Output] = {}
    held = False
    t = 0.0

    def advance_all(to_t: float) -> None:
        for o in outputs.values():
            o.advance(to_t, held)

    for event in events:
        kind, payload = _kind_payload(event)
        t_s = payload.get("t_s")
        if isinstance(t_s, (int, float)) and not isinstance(t_s, bool) and math.isfinite(t_s):
            t = max(t, float(t_s))  # an event without a time (the store's own ending) is at the last one's
        advance_all(t)
        if kind == "state":
            state = payload.get("state")
            if state in _HELD:
                for o in outputs.values():
                    o.point(t, o.level)
                held = True
            elif state in _ENDINGS:
                for o in outputs.values():
                    o.set(t, 0.0)
                    o.rate = None
                    o.to = 0.0
                held = False
            elif held and state is not None:  # resumed
                for o in outputs.values():
                    o.point(t, o.level)
                held = False
            continue
        if kind != "intensity" or not isinstance(payload.get("output"), str):
            continue
        label = payload["output"]
        if label not in outputs:
            outputs[label] = _Output()
            outputs[label].t = t
        o = outputs[label]
        if "to_ma" in payload:  # a movement starts or changes
            start = float(payload.get("from_ma", o.level))
            if abs(start - o.level) > 1e-6:  # (from_ma is recorded to 1e-6 mA)
                o.set(t, start)
            else:
                o.point(t, o.level)
            o.to = float(payload["to_ma"])
            rate = payload.get("rate_ma_per_s")
            if rate is None:  # at once
                o.set(t, o.to)
                o.rate = None
            else:
                o.rate = float(rate)
        elif "intensity_ma" in payload:  # a ramp's end; or, in a record made before ramps were, a step's level
            o.level = float(payload["intensity_ma"])
            o.point(t, o.level)
            o.rate = None
    advance_all(t)
    for o in outputs.values():
        o.point(t, o.level)
    return {label: _simplify(o.points) for label, o in outputs.items()}


def _simplify(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The same curve without repeated corners or corners on a straight line (a jump's two corners stay)."""
    kept: list[tuple[float, float]] = []
    for p in points:
        if kept and kept[-1] == p:
            continue
        if len(kept) >= 2:
            (ta, va), (tb, vb) = kept[-2], kept[-1]
            tc, vc = p
            if ta < tb < tc and abs(vb - (va + (vc - va) * (tb - ta) / (tc - ta))) <= 1e-9 * max(1.0, abs(vb)):
                kept[-1] = p
                continue
        kept.append(p)
    return kept


def intensity_at(points: list[tuple[float, float]], t_s: float) -> float:
    """The intensity at ``t_s`` on a curve from :func:`intensity_timeline` (at a jump: the intensity up to it).

    Examples
    --------
    >>> curve = [(0.0, 0.0), (5.0, 10.0), (20.0, 10.0), (20.0, 0.0)]
    >>> intensity_at(curve, 2.5), intensity_at(curve, 20.0), intensity_at(curve, 30.0)
    (5.0, 10.0, 0.0)
    """
    if not points:
        return 0.0
    times = [p[0] for p in points]
    i = bisect.bisect_left(times, t_s)
    if i < len(points) and times[i] == t_s:
        return points[i][1]
    if i == 0:
        return points[0][1]
    if i == len(points):
        return points[-1][1]
    (t0, v0), (t1, v1) = points[i - 1], points[i]
    return v0 + (v1 - v0) * (t_s - t0) / (t1 - t0)
