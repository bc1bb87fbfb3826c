"""BALD for classification committees: the information a label carries about the members.

The members stand in for samples of the model's posterior, so the mutual information
between a candidate's label and the model is

    I(x) = H[mean_m p_m(y | x)] - mean_m H[p_m(y | x)],

the consensus entropy minus the members' own mean entropy. It is large where the members
are each confident but disagree, and small where every member is unsure in the same way
(label noise no model could resolve) - the case consensus entropy cannot tell apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from alframe.learners.base import Committee
from alframe.strategies.committee import QueryByCommittee, TopK

_EPS = 1e-12


def mutual_information(probs: jax.Array) -> jax.Array:
    """BALD score: (members, n, n_classes) class probabilities -> (n,) mutual information in nats."""
    probs = jnp.asarray(probs)
    consensus = probs.mean(axis=0)
    consensus_entropy = -jnp.sum(consensus * jnp.log(consensus + _EPS), axis=-1)
    member_entropy = -jnp.sum(probs * jnp.log(probs + _EPS), axis=-1).mean(axis=0)
    return jnp.maximum(consensus_entropy - member_entropy, 0.0)


@dataclass(frozen=True)
class BALD:
    """Query by committee with the BALD score (mutual information).

    Args:
        batch: how the batch is chosen from the scores: `TopK()` (default), `Spread(length)`,
            or a rule from `alframe.strategies.diversity`.
    """

    batch: object = field(default_factory=TopK)

    def scores(self, committee: Committee, candidates: np.ndarray) -> np.ndarray:
        """Mutual information per candidate, (n,)."""
        return QueryByCommittee(mutual_information, self.batch).scores(committee, candidates)

    def select(self, committee: Committee, candidates: np.ndarray, k: int, *, key: jax.Array,
               pending: np.ndarray | None = None, failed: np.ndarray | None = None) -> np.ndarray:
        return QueryByCommittee(mutual_information, self.batch).select(
            committee, candidates, k, key=key, pending=pending, failed=failed)
