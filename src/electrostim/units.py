"""Unit helpers.

Quantities carry their unit in their name wherever people or files see them
(``amplitude_ma``, ``pulse_width_us``); kernels work in SI. These constants are the
single place where the conversions are written down: a value in the named unit times
the constant is the value in SI (``dt_us * US`` seconds), and an SI value divided by it
is the value in the named unit (``threshold_a / MA`` milliamperes). Every constant here
is used by the package (a test checks it); one that is no longer used is removed.

Examples
--------
>>> 250 * US, 0.03 / MA
(0.00025, 30.0)
"""

from __future__ import annotations

import math
import re

from .errors import OptionError

__all__ = ["MA", "UA", "US", "MS", "MM", "pad_area_cm2", "parse_pad_size_cm"]

#: milliampere in ampere
MA = 1e-3
#: microampere in ampere
UA = 1e-6
#: microsecond in second
US = 1e-6
#: millisecond in second
MS = 1e-3
#: millimetre in metre
MM = 1e-3

_PAD = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*[xX×]\s*(\d+(?:\.\d+)?)\s*(?:cm)?\s*$")


def parse_pad_size_cm(text: str) -> tuple[float, float]:
    """Parse a pad size written ``WxH`` in centimetres.

    Examples
    --------
    >>> parse_pad_size_cm("5x5")
    (5.0, 5.0)
    >>> parse_pad_size_cm("7.6x12.7cm")
    (7.6, 12.7)
    """
    m = _PAD.match(text)
    if not m:
        raise OptionError(
            f"Invalid value for 'electrode': allowed WxH in centimetres such as '5x5' or '7.6x12.7', but got {text!r}."
        )
    w, h = float(m.group(1)), float(m.group(2))
    if w <= 0 or h <= 0:
        raise OptionError(f"Invalid value for 'electrode': both sides must be > 0 cm, but got {text!r}.")
    return w, h


def pad_area_cm2(shape: str, width_cm: float | None = None, height_cm: float | None = None, diameter_cm: float | None = None) -> float:
    """Conductive area of a rectangular or disk pad in cm².

    Raises
    ------
    OptionError
        An unknown shape, or a size the shape needs is missing.

    Examples
    --------
    >>> pad_area_cm2("rectangle", 5, 9)
    45.0
    >>> round(pad_area_cm2("disk", diameter_cm=2), 4)
    3.1416
    """
    if shape == "disk":
        if diameter_cm is None:
            raise OptionError("Invalid pad: a disk needs diameter_cm, but got none.")
        return math.pi * float(diameter_cm) ** 2 / 4.0
    if shape != "rectangle":
        raise OptionError(f"Invalid value for 'shape': allowed 'rectangle', 'disk', but got {shape!r}.")
    if width_cm is None or height_cm is None:
        raise OptionError(f"Invalid pad: a rectangle needs width_cm and height_cm, but got {width_cm!r} and {height_cm!r}.")
    return float(width_cm) * float(height_cm)
