"""Strategies: which candidate to run next."""

from alframe.strategies.base import Strategy
from alframe.strategies.committee import QueryByCommittee, Spread, TopK, top_k
from alframe.strategies.faults import AvoidFailures
from alframe.strategies.passive import RandomSampling
from alframe.strategies.selection import Selection, as_selection
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
    "Selection",
    "Spread",
    "TopK",
    "Strategy",
    "committee_variance",
    "consensus_entropy",
    "max_disagreement",
    "as_selection",
    "top_k",
    "vote_entropy",
]
from alframe.strategies.bald import BALD, mutual_information  # noqa: E402
from alframe.strategies.diversity import CommitteeFantasy, KCentre, KMeansPlusPlus  # noqa: E402
from alframe.strategies.hindsight import Hindsight  # noqa: E402
from alframe.strategies.reduction import VarianceReduction  # noqa: E402
from alframe.strategies.search import GradientSearch  # noqa: E402
from alframe.strategies.stopping import StopWhenAgreed, first_stop  # noqa: E402
from alframe.strategies.variation import LocalVariation  # noqa: E402

__all__ += ["BALD", "CommitteeFantasy", "GradientSearch", "Hindsight", "KCentre", "KMeansPlusPlus", "LocalVariation",
            "StopWhenAgreed", "VarianceReduction", "first_stop", "mutual_information"]
from alframe.strategies.proxy import ChargedSelection, ProxyDisagreement, ProxyInverseError, ProxySelection  # noqa: E402

__all__ += ["ChargedSelection", "ProxyDisagreement", "ProxyInverseError", "ProxySelection"]
