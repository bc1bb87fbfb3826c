"""Entry points: single runs, sweep verdicts and benchmarks."""
