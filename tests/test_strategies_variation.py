"""Reference weights from the committee's local change, and variance reduction weighted by them."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from alframe.strategies import LocalVariation, VarianceReduction

KEY = jax.random.PRNGKey(0)


class Consensus:
    """Members f(x) - 1, f(x), f(x) + 1 of a known function f: (n, dim) -> (n, outputs); their
    spread is the same everywhere, so only a weight can make one region count more."""

    def __init__(self, f):
        self.f = f

    def fit(self, x, y, *, key):
        return self

    def predict_members(self, x):
        mean = self.f(np.asarray(x, dtype=np.float64))
        return jnp.asarray(np.stack([mean - 1.0, mean, mean + 1.0]))


def wall(x):
    """A steep step across x0 = 0.7 on the unit square, flat elsewhere: (n, 2) -> (n, 1)."""
    return np.tanh((x[:, :1] - 0.7) / 0.02)


def uniform(n, dim=2, seed=0):
    return np.random.default_rng(seed).random((n, dim))


def test_weights_have_mean_one_and_favour_where_the_answer_changes():
    x = uniform(2000)
    weight = LocalVariation(step=0.05, floor=0.0)(Consensus(wall), x, x)
    assert weight.shape == (2000,)
    assert weight.mean() == pytest.approx(1.0)
    near = np.abs(x[:, 0] - 0.7) < 0.04
    assert weight[near].mean() > 10 * weight[np.abs(x[:, 0] - 0.7) > 0.2].mean()


def test_a_floor_moves_the_weights_towards_equal_and_a_flat_committee_weighs_all_alike():
    x = uniform(500)
    bare = LocalVariation(floor=0.0)(Consensus(wall), x, x)
    floored = LocalVariation(floor=10.0)(Consensus(wall), x, x)
    assert np.ptp(floored) < np.ptp(bare) / 5
    np.testing.assert_array_equal(LocalVariation()(Consensus(lambda z: np.zeros((len(z), 2))), x, x), np.ones(500))


def test_outputs_count_by_their_spread_not_their_units():
    x = uniform(500)
    one = LocalVariation()(Consensus(wall), x, x)
    scaled = LocalVariation()(Consensus(lambda z: np.hstack([1e6 * wall(z), wall(z)])), x, x)
    np.testing.assert_allclose(scaled, one, rtol=1e-3, atol=1e-4)  # float32 predictions


def test_probes_stay_inside_the_candidates_range():
    seen = []

    class Recording(Consensus):
        def predict_members(self, x):
            seen.append(np.asarray(x))
            return super().predict_members(x)

    x = uniform(300)
    LocalVariation(step=0.5)(Recording(wall), x, x)
    probes = np.vstack(seen)
    assert probes.min() >= x.min() - 1e-12 and probes.max() <= x.max() + 1e-12


@pytest.mark.parametrize("field, value", [("step", 0.0), ("step", 0.8), ("floor", -1.0)])
def test_bad_settings_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        LocalVariation(**{field: value})


def test_weighted_reduction_runs_where_the_answer_changes_and_equal_weights_change_nothing():
    x = uniform(1500, seed=1)
    committee = Consensus(wall)
    plain = VarianceReduction(length=0.1, reference=1500)
    weighted = VarianceReduction(length=0.1, reference=1500, weight=LocalVariation(step=0.05, floor=0.0))
    ones = VarianceReduction(length=0.1, reference=1500, weight=lambda c, r, cand: np.ones(len(r)))
    np.testing.assert_array_equal(plain.select(committee, x, 5, key=KEY), ones.select(committee, x, 5, key=KEY))
    picks = weighted.select(committee, x, 5, key=KEY)
    assert len(set(picks.tolist())) == 5
    assert np.all(np.abs(x[picks, 0] - 0.7) < 0.1)
    # Unweighted, the members' equal spread everywhere leaves the wall no special claim.
    assert np.mean(np.abs(x[plain.select(committee, x, 5, key=KEY), 0] - 0.7) < 0.1) < 1


def test_a_log_scale_input_is_stepped_by_a_share_of_its_decades():
    from alframe.learners import SpaceCoordinates
    from alframe.space import Box

    box = Box(names=("mass", "b"), lower=(1e2, 0.0), upper=(1e6, 1.0), log=("mass",))
    seen = []

    class Recording(Consensus):
        def predict_members(self, x):
            seen.append(np.asarray(x))
            return super().predict_members(x)

    committee = SpaceCoordinates(Recording(lambda z: z[:, 1:]), box)
    x = box.draw(200, seed=0)
    LocalVariation(step=0.1)(committee, x, x)
    log_mass = np.vstack(seen)[:, 0]  # the wrapped committee sees log10 of the mass
    # 0.1 of four decades: a factor 10^0.4 either way, wherever the mass lies.
    np.testing.assert_allclose(np.abs(log_mass[200:400] - log_mass[:200]), 0.4, rtol=1e-6)
