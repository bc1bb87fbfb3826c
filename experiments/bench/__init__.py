"""Benchmarks, each runnable as ``python -m experiments.bench.<name>``."""
