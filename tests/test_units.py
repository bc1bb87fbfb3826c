"""A simulator's units do not matter: outputs of 1e-25 (cgs), inputs spanning 1e-9 or sitting at
1e6 +- 1 learn as well as the same simulator in natural units. Every learner and strategy node
is also checked in other units by the contract tests (`check_units`, `check_strategy`)."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from alframe.learners._shared import standardisation
from alframe.strategies.base import tie_breaks
from alframe.strategies.scores import committee_variance, score_candidates
from alframe.strategies.stopping import disagreement
from alframe.testing import FixedCommittee, InOtherUnits
from experiments.bench.units import UNITS, main


def test_standardisation_scales_each_column_by_its_spread_in_any_units():
    rng = np.random.default_rng(0)
    column = rng.uniform(0, 1, 50)
    a = np.column_stack([1e-9 * column, 1e6 + column, np.full(50, 3.0), np.zeros(50), np.full(50, 0.1) * 3])
    mean, scale = standardisation(a)
    np.testing.assert_allclose(scale[:2], [1e-9 * column.std(), column.std()], rtol=1e-6)
    np.testing.assert_array_equal(scale[2:], 1.0)  # constant columns, round-off of 0.3 included
    z = (a - mean) / scale
    np.testing.assert_allclose(z[:, 0], z[:, 1], atol=1e-6)


def test_scores_of_outputs_in_tiny_units_keep_their_values_and_ranking():
    members = np.random.default_rng(1).normal(size=(5, 40, 1)).astype(np.float32)
    natural = score_candidates(committee_variance, members)
    tiny = score_candidates(committee_variance, members * np.float32(1e-20))
    assert np.all(tiny > 0)
    np.testing.assert_allclose(tiny, natural * 1e-40, rtol=1e-5)
    assert list(np.argsort(-tiny)) == list(np.argsort(-natural))


def test_tie_breaks_never_outweigh_a_difference_in_scores():
    scores = np.array([2e-40, 1e-40, 1e-40, np.nan])
    breaks = tie_breaks(jax.random.key(0), scores)
    assert np.all(breaks[:3] < 1e-9 * 2e-40) and np.all(breaks >= 0)
    assert np.argmax(np.nan_to_num(scores + breaks, nan=-1)) == 0


@pytest.mark.parametrize("relative", [True, False])
def test_disagreement_of_a_committee_in_other_units(relative):
    points = np.random.default_rng(2).uniform(0, 1, (30, 3))
    committee = FixedCommittee()
    natural = disagreement(committee, points, relative=relative)
    moved = disagreement(InOtherUnits(committee, 1e-9, 0.0, 1e-20), 1e-9 * points, relative=relative)
    np.testing.assert_allclose(moved, natural if relative else natural * 1e-40, rtol=1e-5)


@pytest.fixture(scope="module")
def units_benchmark(tmp_path_factory) -> tuple:
    """The units benchmark with one seed and 30 runs: the default committee and strategy on the
    same simulator in each unit system; (its output folder, units.json)."""
    out = tmp_path_factory.mktemp("units")
    main(["--seeds", "1", "--budget", "30", "--out", str(out)])
    return out, json.loads((out / "units.json").read_text())


@pytest.mark.parametrize("units", [name for name in UNITS if name != "natural"])
def test_the_default_committee_and_strategy_learn_a_simulator_in_other_units(units, units_benchmark):
    _, results = units_benchmark
    natural, moved = results["natural"]["r2"][0][-1], results[units]["r2"][0][-1]
    assert natural > 0.9
    assert moved > natural - 0.02, (natural, moved)


def test_the_units_benchmark_writes_its_curves_and_plot(units_benchmark):
    out, results = units_benchmark
    assert set(results) == set(UNITS)
    assert all(r["n_labeled"] == [10, 20, 30] and len(r["r2"]) == 1 for r in results.values())
    assert (out / "units.png").stat().st_size > 0


class Huge:
    """The test simulator in units where its outputs are `factor` times larger: picklable."""

    def __init__(self, factor: float):
        self.factor = factor

    def __call__(self, x):
        from tests.conftest import target_fn

        return (target_fn(x) + 3.0) * self.factor


@pytest.mark.parametrize("factor", [1e45, 1e-45])
def test_outputs_beyond_float32s_range_are_learnt_and_queried_as_in_natural_units(tmp_path, factor):
    """A luminosity of 1e45 erg/s, or 1e-45 of something, is beyond what float32 holds (about
    1e-38 to 3.4e38): the loop learns it, and picks the same runs, as in natural units."""
    from alframe.learners import GaussianProcessCommittee
    from alframe.strategies.reduction import VarianceReduction
    from tests.conftest import make_loop, make_oracle

    def loop(scale: float):
        return make_loop(oracle=make_oracle(Huge(scale)), committee=GaussianProcessCommittee(),
                         strategy=VarianceReduction(), budget=30)

    natural = loop(1.0).run(tmp_path / "natural.zarr")
    moved = loop(factor).run(tmp_path / "moved.zarr")
    np.testing.assert_array_equal(moved["x"].values, natural["x"].values)
    assert np.all(np.isfinite(moved["mse"].values))
    np.testing.assert_allclose(moved["mse"].values / factor**2, natural["mse"].values, rtol=1e-3)
    np.testing.assert_allclose(moved["r2"].values, natural["r2"].values, atol=1e-6)


def test_each_output_keeps_its_own_power_of_ten():
    """A luminosity of 1e35 and a flux of 1e-9 from one simulator: each output is divided by its
    own unit, so neither underflows; outputs in range are left as they are."""
    from alframe.learners import GaussianProcessCommittee, OutputUnits
    from alframe.learners.output_units import output_unit

    rng = np.random.default_rng(0)
    x = rng.uniform(size=(40, 2))
    shape = np.sin(3 * x[:, :1]) + x[:, 1:] + 2.0
    y = np.hstack([1e35 * shape, 1e-9 * shape, shape])
    unit = output_unit(y)
    assert unit.shape == (3,) and unit[0] == 10.0 ** round(np.log10(np.abs(y[:, 0]).max())) and list(unit[1:]) == [1, 1]
    assert output_unit(shape) == 1.0 and output_unit(1e-40 * shape[:, 0]) == 1e-39  # the power nearest 3.96e-40
    members = np.asarray(OutputUnits(GaussianProcessCommittee()).fit(x, y, key=jax.random.key(0)).predict_members(x))
    predicted = members.mean(axis=0) / np.array([1e35, 1e-9, 1.0])
    np.testing.assert_allclose(predicted, np.hstack([shape] * 3), rtol=1e-3)


def test_qbc_weighs_each_output_by_its_spread_over_the_runs():
    """Two outputs of one simulator, one in units a million times larger: the members'
    deviations that `qbc` conditions on count each in units of its spread over the runs, so the
    small one is not ignored; an output that never varied adds nothing."""
    from alframe.learners import GaussianProcessCommittee
    from alframe.learners.output_units import in_float32_range
    from alframe.strategies.diversity import ensemble_deviations

    rng = np.random.default_rng(1)
    x = rng.uniform(size=(30, 2))
    y = np.stack([np.sin(3 * x[:, 0]), 1e6 * np.cos(3 * x[:, 1]), np.full(30, 0.3)], axis=1)
    committee = in_float32_range(GaussianProcessCommittee()).fit(x, y, key=jax.random.key(0))
    np.testing.assert_allclose(committee.output_spread(), [y[:, 0].std(), y[:, 1].std(), 1.0])
    dev = ensemble_deviations(committee, rng.uniform(size=(50, 2))).reshape(-1, 3, 50)  # (members, outputs, n)
    per_output = np.sum(dev**2, axis=(0, 2))
    assert 1e-2 < per_output[0] / per_output[1] < 1e2 and per_output[2] < 1e-6 * per_output[:2].min()
