"""Committee disagreement scores: pure functions of the members' predictions.

Every score maps member predictions (members, n, k) to one number per candidate, (n,);
larger means the committee disagrees more, so the candidate is more worth running.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

Score = Callable[[jax.Array], jax.Array]
_EPS = 1e-12


def committee_variance(values: jax.Array, scale: jax.Array | None = None) -> jax.Array:
    """Variance over members, averaged over outputs: (members, n, n_outputs) -> (n,).

    With several outputs, each output's variance is first divided by the square of that
    output's scale, so that an output in large units does not decide alone and one in tiny
    units (1e-20) is not lost: `scale` (n_outputs,) where given (the outputs' spread over the
    committee's runs, `alframe.learners.base.output_spread`), else the standard deviation over
    the n candidates of the committee-mean prediction (at least the round-off of its
    magnitude), held constant under differentiation. A single output is not rescaled.
    """
    if values.shape[-1] == 1:
        return jnp.var(values, axis=0)[..., 0]
    if scale is None:
        consensus = values.mean(axis=0)
        finfo = jnp.finfo(values.dtype)
        floor = finfo.eps * jnp.max(jnp.abs(consensus), axis=0) + finfo.tiny
        scale = jax.lax.stop_gradient(jnp.maximum(jnp.std(consensus, axis=0), floor))
    return jnp.var(values / scale, axis=0).mean(axis=-1)  # scaled before squaring: 1e-20**2 underflows


def _entropy(p: jax.Array) -> jax.Array:
    return -jnp.sum(p * jnp.log(p + _EPS), axis=-1)


def vote_entropy(probs: jax.Array) -> jax.Array:
    """Entropy of the members' hard votes: (members, n, n_classes) -> (n,)."""
    n_classes = probs.shape[-1]
    votes = jax.nn.one_hot(jnp.argmax(probs, axis=-1), n_classes).mean(axis=0)
    return _entropy(votes)


def consensus_entropy(probs: jax.Array) -> jax.Array:
    """Entropy of the mean class probabilities: (members, n, n_classes) -> (n,)."""
    return _entropy(probs.mean(axis=0))


def max_disagreement(probs: jax.Array) -> jax.Array:
    """Largest KL divergence of a member from the consensus: (members, n, n_classes) -> (n,)."""
    consensus = probs.mean(axis=0, keepdims=True)
    kl = jnp.sum(probs * (jnp.log(probs + _EPS) - jnp.log(consensus + _EPS)), axis=-1)
    return kl.max(axis=0)


SCORES: dict[str, Score] = {
    "variance": committee_variance,
    "vote_entropy": vote_entropy,
    "consensus_entropy": consensus_entropy,
    "max_disagreement": max_disagreement,
}


def _per_candidate(score: Score, members: np.ndarray) -> bool:
    """Whether each candidate's score depends on its own predictions only (so padding is harmless)."""
    return score in (vote_entropy, consensus_entropy, max_disagreement) or (
        score is committee_variance and members.shape[-1] == 1)


def score_candidates(score: Score, members, spread: np.ndarray | None = None) -> np.ndarray:
    """`score` of member predictions (members, n, k) as numpy (n,).

    `spread` (k,): each output's spread over the committee's runs, the scale the variance score
    divides each of several outputs by. Without it that score divides by the spread of the
    committee's mean prediction over these candidates, which blows an output that never varied
    (members jittering around a constant) up to the size of a real one.

    A candidate set that shrinks by the runs already made (a pool, say) would give every ask a
    new shape and a new compilation; scores that are per candidate are computed on predictions
    padded to the next power of two, so a pool compiles a handful of shapes, not one per ask.
    """
    members = np.asarray(members)
    n = members.shape[1]
    if spread is not None and score is committee_variance and members.shape[-1] > 1:
        return _score_per_candidate(lambda values: committee_variance(values, jnp.ones(values.shape[-1])),
                                    members / np.asarray(spread, dtype=np.float64))
    # One output's variance is in its units squared, which float32 cannot hold for outputs of
    # 1e-20 (cgs): the members are scaled by a power of two (exactly) and the variance scaled
    # back in float64.
    exponent = variance_exponent(score, members) if members.shape[-1] == 1 else 0
    if exponent:
        members = np.ldexp(members, -exponent)
    if not _per_candidate(score, members) or n == 0:
        scores = np.asarray(score(jnp.asarray(members)))
    else:
        scores = _score_per_candidate(score, members)
    return np.ldexp(scores.astype(np.float64), 2 * exponent) if exponent else scores


def _score_per_candidate(score: Score, members: np.ndarray) -> np.ndarray:
    """A score that depends on each candidate's own predictions only, of members (members, n, k)
    padded to the next power of two candidates: (n,)."""
    n = members.shape[1]
    if n == 0:
        return np.asarray(score(jnp.asarray(members)))
    size = max(64, 1 << (n - 1).bit_length())
    padded = np.concatenate([members, np.repeat(members[:, :1], size - n, axis=1)], axis=1)
    return np.asarray(score(jnp.asarray(padded)))[:n]


def variance_exponent(score: Score, members: np.ndarray) -> int:
    """For the variance score, e such that the largest finite |prediction| of members
    (members, n, k) over 2^e is in [0.5, 1); 0 for any other score, or no such prediction."""
    finite = np.abs(members[np.isfinite(members)])
    if score is not committee_variance or not finite.size or finite.max() == 0:
        return 0
    return int(np.frexp(finite.max())[1])


def get_score(score: str | Score) -> Score:
    """A score by name (see `SCORES`) or the callable itself."""
    if callable(score):
        return score
    try:
        return SCORES[score]
    except KeyError:
        raise ValueError(f"unknown committee score {score!r}; choose one of {sorted(SCORES)}") from None
