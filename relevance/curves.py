"""The two numeric helpers every factor shares: a clamped linear ramp and the rounding of results.

Rounding is part of the contract, not cosmetics: scores are compared with thresholds *after*
rounding to ``DIGITS`` places, so the number a person reads is the number that decided (0.5 shown
is 0.5 compared, never 0.49999999999999994).
"""

from __future__ import annotations

DIGITS = 4


def clamp(value: float, low: float = 0.0, high: float = 1.0) -> float:
    return low if value < low else high if value > high else value


def ramp(value: float, zero_at: float, one_at: float) -> float:
    """0 at or before ``zero_at``, 1 at or beyond ``one_at``, linear between; ``zero_at`` may be
    above ``one_at`` for a falling ramp."""
    if zero_at == one_at:
        return 1.0 if value >= one_at else 0.0
    return clamp((value - zero_at) / (one_at - zero_at))


def rounded(value: float) -> float:
    """``value`` rounded to ``DIGITS`` places, with -0.0 folded into 0.0 (same JSON, same records)."""
    return round(value, DIGITS) + 0.0
