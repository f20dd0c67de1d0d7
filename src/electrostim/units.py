"""Unit helpers.

Quantities carry their unit in their name wherever people or files see them
(``amplitude_ma``, ``pulse_width_us``); kernels work in SI. These constants are the
single place where the conversions are written down.
"""

from __future__ import annotations

import math
import re

from .errors import OptionError

__all__ = ["MA", "UA", "US", "MS", "UC", "MJ", "MW", "pad_area_cm2", "parse_pad_size_cm"]

#: milliampere in ampere
MA = 1e-3
#: microampere in ampere
UA = 1e-6
#: microsecond in second
US = 1e-6
#: millisecond in second
MS = 1e-3
#: microcoulomb in coulomb
UC = 1e-6
#: millijoule in joule
MJ = 1e-3
#: milliwatt in watt
MW = 1e-3

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

    Examples
    --------
    >>> pad_area_cm2("rectangle", 5, 9)
    45.0
    >>> round(pad_area_cm2("disk", diameter_cm=2), 4)
    3.1416
    """
    if shape == "disk":
        assert diameter_cm is not None
        return math.pi * float(diameter_cm) ** 2 / 4.0
    assert width_cm is not None and height_cm is not None
    return float(width_cm) * float(height_cm)
