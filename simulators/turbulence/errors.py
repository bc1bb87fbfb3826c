"""The two ways a turbulence run goes wrong: a bad setting, or a simulation that breaks."""

from __future__ import annotations

import math


class InvalidSetting(ValueError):
    """A parameter outside its allowed values; the message names it and the value given."""


class SimulationError(RuntimeError):
    """A run that could not reach its end time with a finite, positive density."""


def positive_number(name: str, value) -> float:
    """`value` as a float; InvalidSetting naming `name` unless it is a positive finite number."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidSetting(f"{name} must be a positive number, got {value!r}") from None
    if not (math.isfinite(number) and number > 0):
        raise InvalidSetting(f"{name} must be a positive finite number, got {value!r}")
    return number
