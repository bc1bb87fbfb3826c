"""Strategies: which candidate to run next."""

from alframe.strategies.base import Strategy
from alframe.strategies.committee import QueryByCommittee, Spread, TopK, top_k
from alframe.strategies.faults import AvoidFailures
from alframe.strategies.passive import RandomSampling
from alframe.strategies.scores import (
    SCORES,
    committee_variance,
    consensus_entropy,
    max_disagreement,
    vote_entropy,
)

__all__ = [
    "AvoidFailures",
    "SCORES",
    "QueryByCommittee",
    "RandomSampling",
    "Spread",
    "TopK",
    "Strategy",
    "committee_variance",
    "consensus_entropy",
    "max_disagreement",
    "top_k",
    "vote_entropy",
]
