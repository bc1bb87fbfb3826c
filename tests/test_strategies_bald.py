"""BALD: mutual information between a candidate's label and the committee."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from alframe.strategies import BALD, QueryByCommittee, Spread, Strategy, consensus_entropy, mutual_information

# 4 members, 4 candidates, 2 classes:
# 0: every member sure of class 0; 1: members sure but split 2-2 (epistemic);
# 2: every member at 50/50 (aleatoric); 3: three sure of 0, one sure of 1.
PROBS = np.array([
    [[0.99, 0.01], [0.99, 0.01], [0.5, 0.5], [0.99, 0.01]],
    [[0.99, 0.01], [0.99, 0.01], [0.5, 0.5], [0.99, 0.01]],
    [[0.99, 0.01], [0.01, 0.99], [0.5, 0.5], [0.99, 0.01]],
    [[0.99, 0.01], [0.01, 0.99], [0.5, 0.5], [0.01, 0.99]],
])


class FixedCommittee:
    def __init__(self, predictions):
        self.predictions = np.asarray(predictions)

    def fit(self, x, y, *, key):
        return self

    def predict_members(self, x):
        return jnp.asarray(self.predictions)


def entropy(p):
    p = np.asarray(p, dtype=np.float64)
    return -np.sum(p * np.log(p), axis=-1)


def test_mutual_information_is_consensus_entropy_minus_member_entropy():
    expected = entropy(PROBS.mean(axis=0)) - entropy(PROBS).mean(axis=0)
    np.testing.assert_allclose(mutual_information(jnp.asarray(PROBS)), expected, atol=1e-6)


def test_bald_tells_disagreement_from_shared_uncertainty():
    mi = np.asarray(mutual_information(jnp.asarray(PROBS)))
    ce = np.asarray(consensus_entropy(jnp.asarray(PROBS)))
    # Consensus entropy cannot tell the unanimous 50/50 candidate from the split one; BALD
    # ranks it last.
    assert ce[2] == pytest.approx(ce[1], abs=1e-6) == pytest.approx(np.log(2), abs=1e-6)
    assert mi[2] == pytest.approx(0.0, abs=1e-6)
    assert np.argmax(mi) == 1
    assert mi[1] > mi[3] > mi[0]
    assert mi[0] == pytest.approx(0.0, abs=1e-6)


def test_bald_strategy_picks_by_mutual_information_and_skips_pending():
    x = np.arange(8.0).reshape(4, 2)
    committee = FixedCommittee(PROBS)
    strategy = BALD()
    assert isinstance(strategy, Strategy)
    assert strategy.select(committee, x, 2, key=jax.random.key(0)).tolist() == [1, 3]
    assert strategy.select(committee, x, 1, key=jax.random.key(0), pending=x[1:2]).tolist() == [3]
    np.testing.assert_allclose(strategy.scores(committee, x), mutual_information(jnp.asarray(PROBS)), atol=1e-6)


def test_bald_takes_any_batch_rule():
    x = np.arange(8.0).reshape(4, 2)
    picks = BALD(batch=Spread(length=0.5)).select(FixedCommittee(PROBS), x, 2, key=jax.random.key(0))
    assert picks[0] == 1 and len(set(picks.tolist())) == 2
    same = QueryByCommittee(mutual_information, Spread(length=0.5)).select(FixedCommittee(PROBS), x, 2,
                                                                            key=jax.random.key(0))
    np.testing.assert_array_equal(picks, same)
