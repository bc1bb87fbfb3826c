"""Diverse batches (k-centre, weighted k-means++, committee fantasy) and expected variance
reduction, on committees whose members are known functions of the inputs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from alframe.strategies import (
    CommitteeFantasy,
    KCentre,
    KMeansPlusPlus,
    QueryByCommittee,
    Strategy,
    TopK,
    VarianceReduction,
)
from alframe.strategies.diversity import ensemble_deviations, localised_covariance, unit_scale


class FunctionCommittee:
    """Members m predict offsets[m] * bump(x): their variance is var(offsets) * bump(x)^2."""

    def __init__(self, bump, offsets=(-1.0, 0.0, 1.0)):
        self.bump, self.offsets = bump, np.asarray(offsets, dtype=np.float64)

    def fit(self, x, y, *, key):
        return self

    def predict_members(self, x):
        b = self.bump(np.asarray(x, dtype=np.float64))
        return jnp.asarray(self.offsets[:, None, None] * b[None, :, None])


def peaks(centres, width=0.05, heights=None):
    """A sum of Gaussian bumps on the unit square: x (n, 2) -> (n,)."""
    centres = np.asarray(centres, dtype=np.float64)
    heights = np.ones(len(centres)) if heights is None else np.asarray(heights, dtype=np.float64)

    def bump(x):
        d2 = np.sum((x[:, None, :] - centres[None]) ** 2, axis=-1)
        return np.sum(heights * np.exp(-d2 / (2 * width**2)), axis=1)

    return bump


def grid(n=21):
    g = np.linspace(0.0, 1.0, n)
    return np.stack(np.meshgrid(g, g, indexing="ij"), axis=-1).reshape(-1, 2)


KEY = jax.random.key(0)
TWO_PEAKS = FunctionCommittee(peaks([(0.2, 0.2), (0.8, 0.8)], heights=[1.0, 0.5]))


def mean_gap(points):
    d = np.sqrt(np.sum((points[:, None] - points[None]) ** 2, axis=-1))
    return d[~np.eye(len(points), dtype=bool)].mean()


@pytest.mark.parametrize("batch", [KCentre(0.03), KMeansPlusPlus(power=4.0)])
def test_diverse_batches_cover_both_peaks_where_top_k_stays_on_one(batch):
    x = grid()
    top = x[QueryByCommittee(batch=TopK()).select(TWO_PEAKS, x, 4, key=KEY)]
    diverse = x[QueryByCommittee(batch=batch).select(TWO_PEAKS, x, 4, key=KEY)]
    near_second = lambda pts: np.sum(np.linalg.norm(pts - [0.8, 0.8], axis=1) < 0.2)
    assert near_second(top) == 0
    assert near_second(diverse) >= 1
    assert mean_gap(diverse) > 2 * mean_gap(top)


def test_kcentre_picks_only_from_the_disputed_fraction_and_starts_at_the_top():
    x = grid()
    scores = TWO_PEAKS.bump(x) ** 2
    picks = KCentre(0.1)(scores, x, 6, key=KEY)
    assert len(set(picks.tolist())) == 6
    threshold = np.sort(scores)[::-1][int(np.ceil(0.1 * len(x))) - 1]
    assert np.all(scores[picks] >= threshold)
    assert picks[0] == np.argmax(scores)


def test_kcentre_moves_away_from_points_in_flight():
    x = grid()
    scores = TWO_PEAKS.bump(x) ** 2
    picks = KCentre(0.2)(scores, x, 1, key=KEY, near=np.array([[0.2, 0.2]]))
    assert np.linalg.norm(x[picks[0]] - [0.2, 0.2]) > 0.3


def test_kmeanspp_is_reproducible_distinct_and_follows_the_key():
    x = grid()
    scores = TWO_PEAKS.bump(x) ** 2
    rule = KMeansPlusPlus(power=1.0)
    a, b = rule(scores, x, 8, key=KEY), rule(scores, x, 8, key=KEY)
    np.testing.assert_array_equal(a, b)
    assert len(set(a.tolist())) == 8
    assert not np.array_equal(a, rule(scores, x, 8, key=jax.random.key(1)))


def test_kmeanspp_never_picks_an_unusable_candidate():
    x = grid(5)
    scores = np.full(len(x), -np.inf)
    scores[[3, 7, 11]] = [1.0, 2.0, 3.0]
    assert sorted(KMeansPlusPlus(1.0)(scores, x, 3, key=KEY).tolist()) == [3, 7, 11]
    with pytest.raises(ValueError, match="only 3"):
        KMeansPlusPlus(1.0)(scores, x, 4, key=KEY)


@pytest.mark.parametrize("bad", [lambda: KCentre(0.0), lambda: KMeansPlusPlus(-1.0), lambda: CommitteeFantasy(0.0),
                                 lambda: VarianceReduction(length=-1.0), lambda: VarianceReduction(reference=0),
                                 lambda: VarianceReduction(failure_settles=0.0)])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError):
        bad()


def test_ensemble_covariance_is_the_members_covariance():
    x = grid(5)
    committee = FunctionCommittee(peaks([(0.5, 0.5)], width=0.3), offsets=(-2.0, 0.5, 1.5))
    dev = ensemble_deviations(committee, x)
    members = np.asarray(committee.predict_members(x))[:, :, 0]
    np.testing.assert_allclose(dev.T @ dev, np.cov(members.T, bias=True), atol=1e-6)
    unit = unit_scale(x, x)
    local = localised_covariance(dev, unit, dev, unit, 0.2)
    np.testing.assert_allclose(np.diag(local), members.var(axis=0), rtol=1e-5)
    assert np.all(np.linalg.eigvalsh(local) > -1e-8)  # a Schur product of two PSD matrices


def test_fantasy_first_pick_is_the_largest_variance_and_the_batch_spreads():
    x = grid()
    picks = CommitteeFantasy(length=0.1).select(TWO_PEAKS, x, 4, key=KEY)
    assert picks[0] == np.argmax(TWO_PEAKS.bump(x) ** 2)
    assert np.sum(np.linalg.norm(x[picks] - [0.8, 0.8], axis=1) < 0.2) >= 1
    assert len(set(picks.tolist())) == 4


def test_fantasy_does_not_pick_a_duplicate_of_a_pick_or_of_a_point_in_flight():
    x = grid()
    top = int(np.argmax(TWO_PEAKS.bump(x)))
    doubled = np.vstack([x, x[top]])  # the same input twice
    picks = CommitteeFantasy(length=0.1).select(TWO_PEAKS, doubled, 2, key=KEY)
    assert not {top, len(x)} <= set(picks.tolist())
    in_flight = CommitteeFantasy(length=0.1).select(TWO_PEAKS, x, 1, key=KEY, pending=x[top : top + 1] + 1e-9)
    assert np.linalg.norm(x[in_flight[0]] - x[top]) > 0.1


def brute_force_reduction(committee, x, length, noise_rel):
    dev = ensemble_deviations(committee, x)
    unit = unit_scale(x, x)
    cov = localised_covariance(dev, unit, dev, unit, length)
    noise = noise_rel * np.diag(cov).max()
    return np.sum(cov**2, axis=0) / (np.diag(cov) + noise)


def test_variance_reduction_scores_match_the_formula():
    x = grid(9)
    committee = FunctionCommittee(peaks([(0.3, 0.6)], width=0.2))
    rule = VarianceReduction(length=0.2, reference=len(x), noise=1e-3)
    np.testing.assert_allclose(rule.reductions(committee, x, key=KEY),
                               brute_force_reduction(committee, x, 0.2, 1e-3), rtol=1e-6)


def test_variance_reduction_prefers_a_broad_doubt_to_an_isolated_spike():
    x = grid()
    # A narrow spike at a corner disagrees most; a broad bump is less disputed at its peak
    # but covers far more of the space.
    committee = FunctionCommittee(peaks([(0.0, 0.0), (0.6, 0.6)], width=0.0, heights=[1.0, 0.0]))
    spike = peaks([(0.0, 0.0)], width=0.02, heights=[1.0])
    broad = peaks([(0.6, 0.6)], width=0.2, heights=[0.7])
    committee.bump = lambda z: spike(z) + broad(z)
    top = QueryByCommittee(batch=TopK()).select(committee, x, 1, key=KEY)[0]
    reduction = VarianceReduction(length=0.15, reference=len(x)).select(committee, x, 1, key=KEY)[0]
    assert np.allclose(x[top], [0.0, 0.0])
    assert np.linalg.norm(x[reduction] - [0.6, 0.6]) < 0.15


def test_variance_reduction_batches_are_distinct_spread_and_skip_pending():
    x = grid()
    rule = VarianceReduction(length=0.1, reference=200)
    picks = rule.select(TWO_PEAKS, x, 5, key=KEY, pending=x[:3])
    assert len(set(picks.tolist())) == 5
    assert not set(picks.tolist()) & {0, 1, 2}
    np.testing.assert_array_equal(picks, rule.select(TWO_PEAKS, x, 5, key=KEY, pending=x[:3]))
    assert np.sum(np.linalg.norm(x[picks] - [0.8, 0.8], axis=1) < 0.25) >= 1


@pytest.mark.parametrize("strategy", [CommitteeFantasy(), VarianceReduction(reference=50)])
def test_new_strategies_satisfy_the_protocol_and_refuse_too_large_batches(strategy):
    assert isinstance(strategy, Strategy)
    with pytest.raises(ValueError, match="only 9"):
        strategy.select(TWO_PEAKS, grid(3), 10, key=KEY)


def test_variance_reduction_uses_a_gaussian_process_own_correlation():
    from alframe.learners import GaussianProcessCommittee
    from alframe.learners.base import error_correlation
    from alframe.strategies.reduction import committee_covariance

    rng = np.random.default_rng(0)
    x = rng.uniform(size=(40, 2))
    gp = GaussianProcessCommittee().fit(x, np.sin(6 * x[:, 0]), key=KEY)  # the second input is inert
    probe = np.array([[0.5, 0.5], [0.6, 0.5], [0.5, 0.6]])
    rho = error_correlation(gp, probe)(slice(None), slice(None))
    np.testing.assert_allclose(np.diag(rho), 1.0, atol=1e-5)
    np.testing.assert_allclose(rho, rho.T, atol=1e-12)
    # Information reaches further along the inert input than along the strong one.
    assert rho[0, 2] > rho[0, 1]
    points = grid(11)
    dev = ensemble_deviations(gp, points)
    covariance = committee_covariance(gp, points, points, dev, length=0.1)(slice(None), slice(None))
    np.testing.assert_allclose(np.diag(covariance), np.sum(dev**2, axis=0), rtol=1e-5)
    assert np.all(np.linalg.eigvalsh(covariance) > -1e-9 * np.diag(covariance).max())
    # Without a correlation of its own, a committee's covariance is its tapered ensemble covariance.
    assert error_correlation(TWO_PEAKS, probe) is None
    tapered = committee_covariance(TWO_PEAKS, points, points, ensemble_deviations(TWO_PEAKS, points), 0.1)
    unit = unit_scale(points, points)
    dev = ensemble_deviations(TWO_PEAKS, points)
    np.testing.assert_allclose(tapered(slice(None), slice(None)), localised_covariance(dev, unit, dev, unit, 0.1))
    picks = VarianceReduction().select(gp, points, 5, key=KEY)
    assert len(set(picks.tolist())) == 5


def test_the_default_committee_passes_on_its_chosen_family_correlation():
    from alframe.learners import AutoCommittee, GaussianProcessCommittee

    rng = np.random.default_rng(1)
    x = rng.uniform(size=(30, 2))
    y = np.sin(3 * x[:, 0]) + x[:, 1]
    probe = rng.uniform(size=(4, 2))
    only_gp = AutoCommittee(families={"gp": GaussianProcessCommittee()}).fit(x, y, key=KEY)
    direct = GaussianProcessCommittee().fit(x, y, key=jax.random.split(KEY, 1)[0])
    everything = (slice(None), slice(None))
    np.testing.assert_allclose(only_gp.correlation(probe)(*everything), direct.correlation(probe)(*everything))
    from alframe.learners.sklearn import EnsembleCommittee
    from sklearn.ensemble import ExtraTreesRegressor

    trees = AutoCommittee(families={"trees": EnsembleCommittee(ExtraTreesRegressor(n_estimators=10, bootstrap=True,
                                                                                   oob_score=True),
                                                                  task="regression", n_classes=None)})
    assert trees.fit(x, y, key=KEY).correlation(probe) is None


def test_variance_reduction_counts_a_failed_run_as_settling_its_neighbourhood():
    # The committee is unsure only around (0.8, 0.8). Once runs there have failed, a run nearby
    # would be spent where the simulator fails: the doubt there counts as settled.
    x = grid()
    committee = FunctionCommittee(peaks([(0.8, 0.8), (0.2, 0.3)], width=0.12, heights=[1.0, 0.6]))
    rule = VarianceReduction(length=0.1, reference=len(x))
    first = rule.select(committee, x, 1, key=KEY)[0]
    assert np.linalg.norm(x[first] - [0.8, 0.8]) < 0.15
    failed = np.array([[0.8, 0.8], [0.75, 0.85], [0.85, 0.75]])
    after = rule.select(committee, x, 1, key=KEY, failed=failed)[0]
    assert np.linalg.norm(x[after] - [0.2, 0.3]) < 0.15
    # Counted as settling only a little of its own doubt, a failure hardly moves the pick.
    barely = VarianceReduction(length=0.1, reference=len(x), failure_settles=0.01)
    assert np.linalg.norm(x[barely.select(committee, x, 1, key=KEY, failed=failed)[0]] - [0.8, 0.8]) < 0.15
    # Nothing failed: the same picks as without the argument.
    np.testing.assert_array_equal(rule.select(committee, x, 3, key=KEY, failed=np.empty((0, 2))),
                                  rule.select(committee, x, 3, key=KEY))
