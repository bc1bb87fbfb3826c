"""Committees for the MOCCA features: the Flax MLP on standardised log-features, and the
classifiers of the supervised baseline by name.

The six features span up to six decades (luminosity, surface brightness), so a network sees
their log10; trees are indifferent to the transform and take the features as they are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import numpy as np
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.tree import DecisionTreeClassifier

from alframe.learners import BaggedCommittee, Committee, EnsembleCommittee, MLPCommittee


@dataclasses.dataclass(frozen=True)
class LogFeatures:
    """A committee fitted on, and asked about, log10 of positive inputs.

    `fit(x, y, key=...)` and `predict_members(x)` take x (n, dim) > 0 and pass log10(x) on;
    shapes otherwise as the wrapped committee's. (The MLP committee standardises its inputs
    itself, so this gives standardised log-features.)
    """

    committee: Committee

    def fit(self, x: np.ndarray, y: np.ndarray, *, key: jax.Array) -> "LogFeatures":
        return dataclasses.replace(self, committee=self.committee.fit(_log10(x), y, key=key))

    def predict_members(self, x: np.ndarray) -> jax.Array:
        return self.committee.predict_members(_log10(x))


def _log10(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if not np.all(x > 0):
        raise ValueError(f"log-features need positive inputs; got {x[~(x > 0)][:5].tolist()}")
    return np.log10(x)


def mlp_committee(*, members: int = 5, capacity: int = 2048, steps_first: int = 2000) -> LogFeatures:
    """The Flax MLP committee (two hidden layers of 64, tanh) on standardised log-features."""
    return LogFeatures(MLPCommittee(members=members, hidden=(64, 64), activation="tanh",
                                    task="classification", n_classes=2,
                                    steps_first=steps_first, steps_warm=300, batch_size=128,
                                    learning_rate=3e-3, final_learning_rate=3e-4, capacity=capacity))


# name -> (what it is, a factory of an unfitted committee); seeds come from the key at fit.
CLASSIFIERS: dict[str, tuple[str, Callable[[], Committee]]] = {
    "decision_tree": ("decision tree (scikit-learn defaults)",
                      lambda: BaggedCommittee(DecisionTreeClassifier(), members=1, bootstrap=False)),
    "random_forest": ("random forest, 100 trees (scikit-learn defaults)",
                      lambda: EnsembleCommittee(RandomForestClassifier(n_estimators=100))),
    "gradient_boosting": ("gradient-boosted trees (scikit-learn defaults: 100 trees, depth 3, rate 0.1)",
                          lambda: BaggedCommittee(GradientBoostingClassifier(), members=1, bootstrap=False)),
    "gbt_paper": ("gradient-boosted trees as in the source study: 850 trees, depth 6, rate 0.3",
                  lambda: BaggedCommittee(GradientBoostingClassifier(n_estimators=850, max_depth=6, learning_rate=0.3),
                                          members=1, bootstrap=False)),
    "bagged_trees": ("10 decision trees on stratified bootstrap resamples",
                     lambda: BaggedCommittee(DecisionTreeClassifier(), members=10, bootstrap=True)),
    "mlp": ("5 Flax MLPs (64, 64) on standardised log-features", mlp_committee),
}


def make_classifier(name: str) -> Committee:
    """An unfitted committee from `CLASSIFIERS` by name."""
    try:
        return CLASSIFIERS[name][1]()
    except KeyError:
        raise ValueError(f"unknown classifier {name!r}; choose one of {', '.join(CLASSIFIERS)}") from None
