"""Choosing by disagreement or expected error on a cheap proxy: the strategies, and the loop
charging their cost."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import xarray as xr

from alframe.loop import Candidates
from alframe.oracle import FunctionOracle, OutputSpec
from alframe.strategies import QueryByCommittee, Spread
from alframe.strategies.proxy import ChargedSelection, ProxyDisagreement, ProxyInverseError
from tests.conftest import make_box, make_loop, make_oracle, without_timing


class OutputsCommittee:
    """A fitted stand-in committee whose members disagree by |x0| of the rows they read."""

    def fit(self, x, y, *, key):
        return self

    def predict_members(self, x):
        x = np.asarray(x, dtype=np.float64)
        spread = np.abs(x[:, :1])
        return np.stack([spread, -spread, np.zeros_like(spread)])


def proxy_of(fn, calls=None):
    def counted(x):
        if calls is not None:
            calls.append(len(x))
        return fn(x)

    return FunctionOracle(fn=counted, space=make_box(), outputs=OutputSpec(names=("a", "b")))


def identity(x):
    return np.asarray(x, dtype=np.float64)


def test_picks_the_candidates_most_disputed_on_the_proxy_and_runs_each_once():
    calls = []
    strategy = ProxyDisagreement(proxy=proxy_of(identity, calls), cost=0.25)
    candidates = np.array([[0.1, 0.0], [-1.9, 0.0], [0.5, 0.0], [1.5, 0.0]])
    picked = strategy.select(OutputsCommittee(), candidates, 2, key=jax.random.key(0))
    assert sorted(picked.indices.tolist()) == [1, 3]
    np.testing.assert_array_equal(picked.points, candidates[picked.indices])
    assert picked.cost == pytest.approx(1.0)  # 4 proxy runs at a quarter of a full run each
    assert calls == [4]
    assert isinstance(strategy, ChargedSelection)
    assert strategy.selection_cost(16) == pytest.approx(4.0)


def test_a_failed_proxy_run_is_picked_last():
    def fails_on_large_x0(x):
        if np.any(np.abs(x[:, 0]) > 1.8):
            raise RuntimeError("proxy broke")
        return identity(x)

    proxy = FunctionOracle(fn=fails_on_large_x0, space=make_box(), outputs=OutputSpec(names=("a", "b")))
    strategy = ProxyDisagreement(proxy=proxy, cost=0.1)
    candidates = np.array([[0.1, 0.0], [-1.9, 0.0], [0.5, 0.0], [1.5, 0.0]])
    assert strategy.scores(OutputsCommittee(), candidates)[1] == -1.0
    picked = strategy.select(OutputsCommittee(), candidates, 3, key=jax.random.key(0))
    assert sorted(picked.indices.tolist()) == [0, 2, 3]


def test_explore_takes_a_share_at_random_and_never_repeats():
    candidates = np.column_stack([np.linspace(-2, 2, 41), np.zeros(41)])
    greedy = ProxyDisagreement(proxy=proxy_of(identity), cost=0.1, batch=Spread(0.05))
    mixed = ProxyDisagreement(proxy=proxy_of(identity), cost=0.1, batch=Spread(0.05), explore=0.5)
    # Disagreement grows with |x0|: every greedy pick sits at the edges.
    pure = greedy.select(OutputsCommittee(), candidates, 6, key=jax.random.key(0)).indices
    assert np.abs(candidates[pure, 0]).min() > 1.0
    picks = [mixed.select(OutputsCommittee(), candidates, 6, key=jax.random.key(seed)).indices for seed in range(5)]
    assert all(len(set(p.tolist())) == 6 for p in picks)
    assert any(np.abs(candidates[p, 0]).min() < 1.0 for p in picks)


@pytest.mark.parametrize("cost, explore", [(0.0, 0.0), (-1.0, 0.0), (0.1, 1.5)])
@pytest.mark.parametrize("kind", [ProxyDisagreement, ProxyInverseError])
def test_bad_settings_raise(cost, explore, kind):
    with pytest.raises(ValueError, match=f"{kind.__name__} (cost|explore)"):
        kind(proxy=proxy_of(identity), cost=cost, explore=explore)


class ShrinkingCommittee:
    """A fitted stand-in inverse committee: reads the query x back from a proxy output y = x as
    0.5 x + shift, members -+ spread about it (it regresses to the middle, and the proxy
    reads shifted)."""

    def __init__(self, shift=0.0, spread=0.0):
        self.shift, self.spread = shift, spread

    def fit(self, x, y, *, key):
        return self

    def predict_members(self, y):
        read = 0.5 * np.asarray(y, dtype=np.float64) + self.shift
        return np.stack([read - self.spread, read + self.spread])


def test_inverse_error_sees_an_agreeing_committee_wrong_at_the_edges():
    candidates = np.column_stack([np.linspace(-2, 2, 9), np.zeros(9)])
    inverse = ProxyInverseError(proxy=proxy_of(identity), cost=0.1)
    # Members agree everywhere, so disagreement is blind; the misses are 0.5 |x0|.
    scores = inverse.scores(ShrinkingCommittee(), candidates)
    np.testing.assert_allclose(scores, (0.5 * candidates[:, 0]) ** 2)
    assert sorted(inverse.select(ShrinkingCommittee(), candidates, 2, key=jax.random.key(0)).indices.tolist()) == [0, 8]


def test_inverse_error_removes_the_proxy_shift_and_adds_the_members_variance():
    candidates = np.column_stack([np.linspace(-2, 2, 9), np.zeros(9)])
    proxy = proxy_of(identity)
    shifted = ShrinkingCommittee(shift=3.0, spread=0.2)
    debiased = ProxyInverseError(proxy=proxy, cost=0.1).scores(shifted, candidates)
    np.testing.assert_allclose(debiased, (0.5 * candidates[:, 0]) ** 2 + 2 * 0.2**2, atol=1e-6)  # 2 inputs
    # Left in, the shift decides: the candidates with x0 < 0 would look worst.
    raw = ProxyInverseError(proxy=proxy, cost=0.1, debias=False).scores(shifted, candidates)
    assert np.argmax(raw) == 0 and raw[0] > raw[-1]


def test_inverse_error_needs_predictions_of_the_inputs():
    strategy = ProxyInverseError(proxy=proxy_of(identity), cost=0.1)
    with pytest.raises(ValueError, match="predictions of the inputs"):
        strategy.rate(np.zeros((3, 4, 1)), np.zeros((4, 2)))


class ChargedQBC:
    """Query by committee charged `cost` full runs per candidate (a stand-in for a proxy)."""

    def __init__(self, cost):
        self.cost = cost
        self.qbc = QueryByCommittee()

    def selection_cost(self, n_candidates):
        return self.cost * n_candidates

    def select(self, committee, candidates, k, *, key, pending=None, failed=None):
        return self.qbc.select(committee, candidates, k, key=key, pending=pending, failed=failed)


class CrashingOracle:
    """Wraps an oracle; raises on its `crash_on_call`-th call (1: test set, 2: design, 3..: rounds)."""

    def __init__(self, inner, crash_on_call):
        self.inner, self.crash_on_call, self.calls = inner, crash_on_call, 0
        self.space, self.outputs = inner.space, inner.outputs

    def run(self, queries):
        self.calls += 1
        if self.calls == self.crash_on_call:
            raise RuntimeError("lost the compute node")
        return self.inner.run(queries)


CHARGED = dict(strategy=ChargedQBC(1 / 40), budget=20, batch_size=4, n_initial=6, candidates=Candidates(size=20))


def test_the_loop_charges_the_strategy_and_stops_within_budget(tmp_path):
    # 20 candidates at 1/40 of a run each: half a run per round on top of the batch.
    ds = make_loop(**CHARGED).run(tmp_path / "run.zarr")
    charge = ds["selection_cost"].values
    rows_at_fit = np.array([(ds["round_of"].values < r).sum() for r in ds["round"].values])
    np.testing.assert_allclose(ds["n_runs"].values, rows_at_fit + np.concatenate([[0], np.cumsum(charge)[:-1]]))
    # Rows 6, 10, 14, 18; then 19.5 spent leaves no room for a run on top of the charge.
    assert ds["n_runs"].values.tolist() == [6.0, 10.5, 15.0, 19.5]
    assert ds.sizes["sample"] == 18
    assert charge.tolist() == [0.5, 0.5, 0.5, 0.0]
    assert ds.attrs["stop_reason"] == "budget spent"


def test_an_uncharged_strategy_keeps_integer_run_counts(tmp_path):
    ds = make_loop(strategy=QueryByCommittee(), budget=14, batch_size=4, n_initial=6).run(tmp_path / "run.zarr")
    assert "selection_cost" not in ds
    assert ds["n_runs"].values.tolist() == [6, 10, 14]
    assert ds.sizes["sample"] == 14


@pytest.mark.parametrize("crash_on_call", [3, 4])
def test_a_charged_run_resumes_to_the_same_store(tmp_path, crash_on_call):
    whole = make_loop(**CHARGED).run(tmp_path / "whole.zarr")
    path = tmp_path / "cut.zarr"
    with pytest.raises(RuntimeError, match="lost the compute node"):
        make_loop(oracle=CrashingOracle(make_oracle(), crash_on_call), **CHARGED).run(path)
    resumed = make_loop(**CHARGED).run(path)
    xr.testing.assert_identical(without_timing(resumed), without_timing(whole))
