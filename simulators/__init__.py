"""Simulators that alframe can query, one self-contained sub-package each."""
