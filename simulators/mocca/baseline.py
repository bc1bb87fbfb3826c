"""The supervised baseline: cross-validated precision, recall and F1 per classifier, and the
first splits of a shallow decision tree.

Scores are those of the positive class (the model hosts a BH subsystem), from stratified
k-fold cross-validation with shuffled folds fixed by the seed; every classifier sees the same
folds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import precision_recall_fscore_support  # noqa: E402
from sklearn.model_selection import StratifiedKFold  # noqa: E402
from sklearn.tree import DecisionTreeClassifier, export_text, plot_tree  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from alframe.learners import predict_mean  # noqa: E402
from simulators.mocca.data import UNITS  # noqa: E402
from simulators.mocca.learners import make_classifier  # noqa: E402

SCORES = ("precision", "recall", "f1")


def predicted_class(committee, x: np.ndarray) -> np.ndarray:
    """Class with the highest mean member probability, (n, dim) -> (n,) int64."""
    return predict_mean(committee, x).argmax(axis=1).astype(np.int64)


def cross_validate(name: str, x: np.ndarray, labels: np.ndarray, *, n_splits: int = 15, seed: int = 0,
                   progress: bool = True) -> pd.DataFrame:
    """Per-fold precision, recall and F1 of the positive class for one classifier.

    Args:
        name: a classifier of `CLASSIFIERS`.
        x: (n, dim) features; labels: (n,) 0/1.
    Returns: one row per fold: classifier, fold, precision, recall, f1.
    """
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    rows = []
    splits = list(folds.split(x, labels))
    for fold, (train, test) in enumerate(tqdm(splits, desc=name, disable=not progress, leave=False)):
        key = jax.random.fold_in(jax.random.key(seed), fold)
        committee = make_classifier(name).fit(x[train], labels[train], key=key)
        p, r, f, _ = precision_recall_fscore_support(labels[test], predicted_class(committee, x[test]),
                                                     average="binary", zero_division=0.0)
        rows.append({"classifier": name, "fold": fold, "precision": p, "recall": r, "f1": f})
    return pd.DataFrame(rows)


def summarise(per_fold: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over folds per classifier, in the order they first appear."""
    order = list(dict.fromkeys(per_fold["classifier"]))
    stats = per_fold.groupby("classifier")[list(SCORES)].agg(["mean", "std"])
    stats.columns = [f"{s}_{a}" for s, a in stats.columns]
    return stats.loc[order].reset_index()


def bar_plot(summary: pd.DataFrame, path: str | Path, *, title: str) -> Path:
    """Grouped bars of precision, recall and F1 (mean, with the fold std as error bars)."""
    path = Path(path)
    n = len(summary)
    fig, ax = plt.subplots(figsize=(max(6.4, 1.3 * n + 2), 4.4), constrained_layout=True)
    width = 0.8 / len(SCORES)
    for i, score in enumerate(SCORES):
        pos = np.arange(n) + (i - 1) * width
        bars = ax.bar(pos, summary[f"{score}_mean"], width, yerr=summary[f"{score}_std"], capsize=3, label=score)
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=2)
    ax.set_xticks(np.arange(n), summary["classifier"], rotation=20, ha="right")
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("score (BH-subsystem class)")
    ax.set_title(title)
    ax.legend(loc="lower right")
    ax.grid(True, axis="y", alpha=0.3)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


@dataclasses.dataclass(frozen=True)
class Split:
    """One internal node of a tree: `feature <= threshold` goes left."""

    depth: int
    feature: str
    threshold: float
    n_models: int
    bhs_fraction: float


def shallow_tree(x: np.ndarray, labels: np.ndarray, names: Sequence[str], *, max_depth: int = 2,
                 seed: int = 0) -> tuple[DecisionTreeClassifier, list[Split]]:
    """A decision tree of depth `max_depth` on all models and its splits, root first (breadth-first)."""
    tree = DecisionTreeClassifier(max_depth=max_depth, random_state=seed).fit(x, labels)
    t = tree.tree_
    splits, queue = [], [(0, 0)]
    while queue:
        node, depth = queue.pop(0)
        if t.children_left[node] == -1:
            continue
        counts = t.value[node][0]
        splits.append(Split(depth, names[t.feature[node]], float(t.threshold[node]), int(t.n_node_samples[node]),
                            float(counts[1] / counts.sum()) if len(counts) > 1 else 0.0))
        queue += [(t.children_left[node], depth + 1), (t.children_right[node], depth + 1)]
    return tree, splits


def describe_tree(tree: DecisionTreeClassifier, names: Sequence[str]) -> str:
    """The tree as indented text rules (scikit-learn's export_text)."""
    return export_text(tree, feature_names=[f"{n} [{UNITS.get(n, '')}]" for n in names], decimals=3)


def draw_tree(tree: DecisionTreeClassifier, names: Sequence[str], path: str | Path, *, title: str) -> Path:
    """The tree drawn with its splits, sizes and class shares."""
    path = Path(path)
    fig, ax = plt.subplots(figsize=(11, 5.5), constrained_layout=True)
    plot_tree(tree, feature_names=list(names), class_names=["no BHS", "BHS"], filled=True, proportion=False,
              impurity=False, rounded=True, fontsize=8, ax=ax)
    ax.set_title(title)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    """A DataFrame as a Markdown table, floats to `digits` significant digits."""
    cols = list(frame.columns)
    fmt = lambda v: f"{v:.{digits}g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)

