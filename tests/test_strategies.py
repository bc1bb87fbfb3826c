"""Committee scores, query by committee and random sampling on hand-built committees."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from alframe.strategies import (
    SCORES,
    QueryByCommittee,
    RandomSampling,
    Spread,
    Strategy,
    committee_variance,
    consensus_entropy,
    max_disagreement,
    top_k,
    vote_entropy,
)
from alframe.strategies.scores import get_score


class FixedCommittee:
    """A committee whose members' predictions are given: (members, n, k)."""

    def __init__(self, predictions):
        self.predictions = np.asarray(predictions, dtype=np.float64)
        self.seen = []

    def fit(self, x, y, *, key):
        return self

    def predict_members(self, x):
        self.seen.append(np.array(x))
        assert len(x) == self.predictions.shape[1]
        return jnp.asarray(self.predictions)


def candidates(n, dim=2):
    return np.arange(n * dim, dtype=np.float64).reshape(n, dim)


# Regression: 4 members, 5 candidates, 1 output; candidate 3 disagrees most, 1 next.
VALUES = np.array([
    [[1.0], [0.0], [2.0], [-3.0], [5.0]],
    [[1.0], [1.0], [2.0], [3.0], [5.1]],
    [[1.0], [0.0], [2.1], [-3.0], [5.0]],
    [[1.0], [1.0], [2.0], [3.0], [4.9]],
])

# Classification: 4 members, 5 candidates, 2 classes.
PROBS = np.array([
    # 0 unanimous & sure, 1 split 2-2 & sure, 2 unanimous and undecided, 3 one dissenter,
    # 4 unanimous & fairly sure
    [[0.99, 0.01], [0.95, 0.05], [0.5, 0.5], [0.9, 0.1], [0.8, 0.2]],
    [[0.99, 0.01], [0.95, 0.05], [0.5, 0.5], [0.9, 0.1], [0.8, 0.2]],
    [[0.99, 0.01], [0.15, 0.85], [0.5, 0.5], [0.9, 0.1], [0.8, 0.2]],
    [[0.99, 0.01], [0.15, 0.85], [0.5, 0.5], [0.01, 0.99], [0.8, 0.2]],
])


def test_committee_variance_values_and_ranking():
    scores = np.asarray(committee_variance(jnp.asarray(VALUES)))
    assert scores.shape == (5,)
    np.testing.assert_allclose(scores, VALUES.var(axis=0).mean(axis=-1), rtol=1e-4)
    assert scores[0] == 0
    assert list(np.argsort(-scores)[:2]) == [3, 1]


def test_committee_variance_standardises_each_of_several_outputs():
    two = np.concatenate([VALUES, 10 * VALUES[:, ::-1]], axis=-1)  # (4, 5, 2)
    scale = two.mean(axis=0).std(axis=0)  # each output's spread of the committee mean over candidates
    np.testing.assert_allclose(committee_variance(jnp.asarray(two)), (two.var(0) / scale**2).mean(axis=-1),
                               rtol=1e-5)


def test_committee_variance_of_several_outputs_ignores_their_units():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(5, 30, 3))
    rescaled = values * np.array([1.0, 1e4, 1e-3])  # one output in other units, another in others
    np.testing.assert_allclose(committee_variance(jnp.asarray(rescaled)), committee_variance(jnp.asarray(values)),
                               rtol=1e-4)
    # Without standardising, the output in large units would decide the ranking alone.
    raw = rescaled.var(axis=0).mean(axis=-1)
    assert list(np.argsort(-raw)) == list(np.argsort(-rescaled[..., 1].var(axis=0)))
    assert list(np.argsort(-np.asarray(committee_variance(jnp.asarray(rescaled))))) != list(np.argsort(-raw))


def test_committee_variance_of_an_output_constant_over_the_candidates_is_finite():
    values = np.zeros((3, 4, 2))
    values[:, :, 0] = np.arange(4.0)[None, :]  # the members agree on output 0; output 1 constant at 0
    assert np.all(np.isfinite(np.asarray(committee_variance(jnp.asarray(values)))))


def test_query_by_committee_scores_several_outputs_in_units_of_their_spread_over_the_runs():
    """An output the simulator never varies, which an MLP committee's members only jitter
    around, counts for next to nothing beside one that varies; rescaled by the spread over the
    candidates it would count for as much as the real one, or more."""
    from alframe.learners import MLPCommittee, OutputUnits

    rng = np.random.default_rng(0)
    x = rng.uniform(-3, 3, size=(40, 1))
    y = np.column_stack([np.sin(x[:, 0]), np.zeros(40), np.full(40, 0.3)])
    committee = OutputUnits(MLPCommittee(members=5, hidden=(32, 32), steps_first=300, steps_first_min=300,
                                         steps_per_sample=None, capacity=64)).fit(x, y, key=jax.random.key(0))
    points = np.linspace(-3, 3, 64)[:, None]
    members = np.asarray(committee.predict_members(points), dtype=np.float64)
    assert members[..., 1:].std(axis=0).max() > 0  # the members do jitter around the constants
    in_spread_units = QueryByCommittee("variance").scores(committee, points)
    np.testing.assert_allclose(in_spread_units, (members.var(axis=0) / committee.output_spread() ** 2).mean(-1),
                               rtol=1e-4)
    spread = committee.output_spread()
    assert spread[0] > 0.5 and np.all(spread[1:] == 1.0)  # a constant's spread is 1 in its units
    share = (members.var(axis=0) / spread**2).mean(axis=0)  # each output's mean contribution
    assert share[1:].max() < 3 * share[0]
    over_candidates = members.var(axis=0) / members.mean(axis=0).std(axis=0) ** 2
    assert over_candidates.mean(axis=0)[1:].min() > 100 * over_candidates.mean(axis=0)[0]
    np.testing.assert_allclose(committee_variance(jnp.asarray(members)), over_candidates.mean(-1), rtol=1e-3)


def test_committee_variance_of_one_output_keeps_its_ranking_and_values():
    scaled = 1000 * VALUES
    scores = np.asarray(committee_variance(jnp.asarray(scaled)))
    np.testing.assert_allclose(scores, scaled.var(axis=0)[:, 0], rtol=1e-5)
    assert list(np.argsort(-scores, kind="stable")) == list(np.argsort(-scaled.var(axis=0)[:, 0], kind="stable"))


def test_vote_entropy_counts_hard_votes():
    scores = np.asarray(vote_entropy(jnp.asarray(PROBS)))
    assert scores.shape == (5,)
    assert np.argmax(scores) == 1
    np.testing.assert_allclose(scores[1], np.log(2), rtol=1e-5)  # a 2-2 split
    p = np.array([0.75, 0.25])
    np.testing.assert_allclose(scores[3], -(p * np.log(p)).sum(), rtol=1e-5)  # 3-1
    np.testing.assert_allclose(scores[[0, 2, 4]], 0, atol=1e-6)  # unanimous votes, however unsure


def test_consensus_entropy_sees_shared_uncertainty():
    scores = np.asarray(consensus_entropy(jnp.asarray(PROBS)))
    mean = PROBS.mean(axis=0)
    np.testing.assert_allclose(scores, -(mean * np.log(mean)).sum(-1), rtol=1e-5)
    # Candidate 2 (every member at 0.5/0.5) is top here, though its vote entropy is 0.
    assert np.argmax(scores) == 2
    assert scores[0] < scores[4] < scores[1] < scores[2]


def test_max_disagreement_finds_the_dissenter():
    scores = np.asarray(max_disagreement(jnp.asarray(PROBS)))
    # One sure dissenter (3) is further from the consensus than a balanced split (1).
    assert np.argmax(scores) == 3
    assert scores[1] > 0.1
    # A committee that agrees exactly has no disagreement, whatever its uncertainty.
    np.testing.assert_allclose(scores[[0, 2, 4]], 0, atol=1e-6)
    consensus = PROBS[:, 3].mean(0)
    kl = (PROBS[:, 3] * np.log(PROBS[:, 3] / consensus)).sum(-1)
    np.testing.assert_allclose(scores[3], kl.max(), rtol=1e-4)


def test_scores_registry():
    assert SCORES == {"variance": committee_variance, "vote_entropy": vote_entropy,
                      "consensus_entropy": consensus_entropy, "max_disagreement": max_disagreement}
    assert get_score("vote_entropy") is vote_entropy
    with pytest.raises(ValueError, match="'bogus'"):
        get_score("bogus")


@pytest.mark.parametrize(("score", "preds", "best"), [
    ("variance", VALUES, 3),
    ("vote_entropy", PROBS, 1),
    ("consensus_entropy", PROBS, 2),
    ("max_disagreement", PROBS, 3),
])
def test_query_by_committee_ranks_the_most_disputed_first(score, preds, best):
    committee = FixedCommittee(preds)
    x = candidates(5)
    picked = QueryByCommittee(score=score).select(committee, x, 1, key=jax.random.key(0))
    np.testing.assert_array_equal(picked, [best])
    np.testing.assert_array_equal(committee.seen[0], x)  # it scored the candidates given


def random_committee(n, seed=0):
    return FixedCommittee(np.random.default_rng(seed).normal(size=(4, n, 1)))


@pytest.mark.parametrize("k", [0, 1, 5, 17, 40])
def test_query_by_committee_picks_exactly_the_top_k(k):
    committee = random_committee(40)
    strategy = QueryByCommittee()
    scores = strategy.scores(committee, candidates(40))
    picked = strategy.select(committee, candidates(40), k, key=jax.random.key(1))
    assert picked.shape == (k,)
    assert len(set(picked.tolist())) == k
    assert set(picked.tolist()) == set(np.argsort(-scores)[:k].tolist())
    # Best first.
    assert np.all(np.diff(scores[picked]) <= 0)


def test_query_by_committee_accepts_a_callable_score():
    committee = random_committee(10)
    picked = QueryByCommittee(score=lambda p: -jnp.abs(p).mean(axis=(0, 2))).select(
        committee, candidates(10), 3, key=jax.random.key(0))
    expected = np.argsort(np.abs(committee.predictions).mean(axis=(0, 2)))[:3]
    assert set(picked.tolist()) == set(expected.tolist())


def test_query_by_committee_never_picks_pending_points():
    committee = random_committee(30, seed=3)
    x = candidates(30)
    strategy = QueryByCommittee()
    order = np.argsort(-strategy.scores(committee, x))
    pending = x[order[:4]]  # the four best are already running
    picked = strategy.select(committee, x, 6, key=jax.random.key(0), pending=pending)
    assert not set(picked.tolist()) & set(order[:4].tolist())
    assert set(picked.tolist()) == set(order[4:10].tolist())
    # Every non-pending candidate can still be taken, but not one more.
    assert len(strategy.select(committee, x, 26, key=jax.random.key(0), pending=pending)) == 26
    with pytest.raises(ValueError, match="27 points but only 26"):
        strategy.select(committee, x, 27, key=jax.random.key(0), pending=pending)


def test_pending_rows_not_among_candidates_change_nothing():
    committee = random_committee(10)
    x = candidates(10)
    free = QueryByCommittee().select(committee, x, 3, key=jax.random.key(0))
    with_pending = QueryByCommittee().select(committee, x, 3, key=jax.random.key(0),
                                             pending=np.array([[1e9, 1e9]]))
    np.testing.assert_array_equal(free, with_pending)


@pytest.mark.parametrize("strategy", [QueryByCommittee(), RandomSampling()], ids=["qbc", "random"])
def test_asking_for_too_many_raises(strategy):
    with pytest.raises(ValueError, match="11 points but only 10"):
        strategy.select(random_committee(10), candidates(10), 11, key=jax.random.key(0))
    with pytest.raises(ValueError, match="negative"):
        strategy.select(random_committee(10), candidates(10), -1, key=jax.random.key(0))


def test_unknown_score_raises_at_construction():
    with pytest.raises(ValueError, match="'bogus'.*variance"):
        QueryByCommittee(score="bogus")


def test_top_k_breaks_ties_with_the_key():
    scores = np.zeros(50)
    picks = {tuple(sorted(top_k(scores, 5, key=jax.random.key(s)).tolist())) for s in range(6)}
    assert len(picks) > 1  # ties are not always resolved to the first indices
    np.testing.assert_array_equal(top_k(scores, 5, key=jax.random.key(2)),
                                  top_k(scores, 5, key=jax.random.key(2)))
    # A strictly better score always wins over the tie-break.
    scores[17] = 1.0
    for s in range(6):
        assert top_k(scores, 1, key=jax.random.key(s))[0] == 17


def test_random_sampling_distinct_and_deterministic():
    committee = random_committee(100)
    x = candidates(100)
    strategy = RandomSampling()
    a = strategy.select(committee, x, 10, key=jax.random.key(7))
    assert a.shape == (10,) and len(set(a.tolist())) == 10
    assert np.all((a >= 0) & (a < 100))
    np.testing.assert_array_equal(a, strategy.select(committee, x, 10, key=jax.random.key(7)))
    assert not np.array_equal(a, strategy.select(committee, x, 10, key=jax.random.key(8)))
    assert committee.seen == []  # passive: it never asks the committee
    everything = strategy.select(committee, x, 100, key=jax.random.key(0))
    assert sorted(everything.tolist()) == list(range(100))


def test_random_sampling_skips_pending_points():
    x = candidates(20)
    pending = x[[0, 5, 19]]
    strategy = RandomSampling()
    for seed in range(5):
        picked = strategy.select(None, x, 17, key=jax.random.key(seed), pending=pending)
        assert set(picked.tolist()) == set(range(20)) - {0, 5, 19}
    with pytest.raises(ValueError, match="18 points but only 17"):
        strategy.select(None, x, 18, key=jax.random.key(0), pending=pending)


def test_strategies_satisfy_the_protocol():
    assert isinstance(QueryByCommittee(), Strategy)
    assert isinstance(RandomSampling(), Strategy)


def test_spread_batch_leaves_a_crowded_peak_for_a_distant_one():
    # Two near-identical top candidates at the origin and a slightly lower one far away:
    # top-k takes both neighbours, Spread takes one of them and the distant candidate.
    points = np.array([[0.0, 0.0], [0.01, 0.0], [1.0, 1.0], [0.5, 0.0]])
    variance_like = np.array([[[0.0], [0.0], [0.0], [0.0]], [[1.0], [0.99], [0.8], [0.1]]])
    committee = FixedCommittee(variance_like)
    top = QueryByCommittee("variance").select(committee, points, 2, key=jax.random.key(0))
    spread = QueryByCommittee("variance", batch=Spread(length=0.1)).select(committee, points, 2,
                                                                           key=jax.random.key(0))
    assert sorted(top.tolist()) == [0, 1]
    assert sorted(spread.tolist()) == [0, 2]


def test_spread_returns_k_distinct_indices_even_when_scores_collapse():
    committee = FixedCommittee(np.stack([np.zeros((50, 1)), np.ones((50, 1))]))
    picked = QueryByCommittee("variance", batch=Spread(length=5.0)).select(
        committee, candidates(50), 12, key=jax.random.key(1))
    assert len(set(picked.tolist())) == 12


def test_spread_rejects_a_non_positive_length():
    with pytest.raises(ValueError, match="length"):
        Spread(length=0.0)
