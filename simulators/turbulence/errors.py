"""The two ways a turbulence run goes wrong: a bad setting, or a simulation that breaks."""

from __future__ import annotations


class InvalidSetting(ValueError):
    """A parameter outside its allowed values; the message names it and the value given."""


class SimulationError(RuntimeError):
    """A run that could not reach its end time with a finite, positive density."""
