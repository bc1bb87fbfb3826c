"""The labelling benchmark on a small demo pool: both strategies' curves, the summary and the plot."""

from __future__ import annotations

import json

import pytest

from experiments.bench.labelling import STRATEGIES, main


@pytest.mark.slow
def test_the_labelling_bench_runs_both_strategies_on_a_small_pool(tmp_path, capsys):
    out = tmp_path / "labelling.json"
    assert main(["--labels", "8", "--seeds", "0", "--pool-runs", "12", "--test-runs", "4", "--n-initial", "4",
                 "--cache", str(tmp_path / "cache"), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    for strategy in STRATEGIES:
        n, accuracy = result["curves"][strategy]["0"]
        assert n[0] == 4 and n[-1] == 8 and all(0.0 <= a <= 1.0 for a in accuracy)
    assert set(result["labels_to_reach_random_final"]["0"]) == set(STRATEGIES)
    assert out.with_suffix(".png").stat().st_size > 0
    printed = capsys.readouterr().out
    assert "labels to reach random's final accuracy" in printed
