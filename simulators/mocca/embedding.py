"""The MOCCA models in a t-SNE map: do clusters with a black-hole subsystem sit together?

The models' standardised log10 features (as the MLP committee sees them, `LogFeatures`) are
embedded in one t-SNE fit, coloured by the BHS label; the models a run queried can be marked
(from its store), and the Harris clusters with every feature are placed into the same map
(openTSNE's transform: each is pulled by its nearest models and moves no model). Scores: the
k-NN accuracy of the BHS label in the map and in the feature space it came from, plain and
balanced (87 % of the models have no BHS, so plain accuracy starts at 0.87).

    python -m simulators.mocca embed [--store RUN_DIR] [--perplexity 30] [--seed 0] [--out-dir results/mocca]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from sklearn.neighbors import NearestNeighbors

from alframe import embedding, plots
from alframe.store import read_run
from simulators.mocca.data import CLASSES, FEATURES, MoccaDataError, MoccaTable, load_models
from simulators.mocca.harris import read_harris

KNN_K = 5
LABEL_NAMES = {0: "no BHS", 1: "BHS"}


class MoccaMap(NamedTuple):
    """The map and what is drawn on it.

    Fields:
        table: the models embedded (n of them).
        points: (n, 2) their map positions.
        model: the fitted t-SNE (`alframe.embedding.TSNEModel`), on log10 features.
        queried: (n,) bool, the models the given run queried (all False without a run).
        harris_names: (h,) the Harris clusters placed; harris_points: (h, 2) where.
    """

    table: MoccaTable
    points: np.ndarray
    model: embedding.TSNEModel
    queried: np.ndarray
    harris_names: tuple[str, ...]
    harris_points: np.ndarray


def _store_path(store: str | Path) -> Path:
    store = Path(store)
    return store if store.name.endswith(".zarr") else store / "run.zarr"


def _store_settings(store: Path) -> dict[str, Any]:
    """The simulator settings a MOCCA run was made with (empty for another kind of run)."""
    ds = read_run(store)
    try:
        node = json.loads(ds.attrs.get("config", "{}")).get("simulator") or {}
    except (TypeError, json.JSONDecodeError, AttributeError):
        node = {}
    return node if str(node.get("_target_", "")).startswith("simulators.mocca") else {}


def queried_rows(table: MoccaTable, store: str | Path) -> np.ndarray:
    """(n,) bool: the models of `table` whose features a run's store holds among its runs."""
    path = _store_path(store)
    try:
        ds = read_run(path)
    except FileNotFoundError:
        raise MoccaDataError(f"{path}: no run store there") from None
    names = tuple(str(v) for v in ds["input"].values)
    if names != table.names:
        raise MoccaDataError(f"{path}: the run's inputs {list(names)} are not the table's features {list(table.names)}")
    lookup = {row.tobytes(): i for i, row in enumerate(np.ascontiguousarray(table.features))}
    x = np.ascontiguousarray(np.asarray(ds["x"].values, dtype=np.float64))
    found = np.array([lookup.get(row.tobytes(), -1) for row in x])
    if len(x) and not (found >= 0).any():
        raise MoccaDataError(f"{path}: none of its {len(x)} runs is a model of {table.source} "
                             "(another table, or other relaxation-time settings?)")
    queried = np.zeros(len(table), dtype=bool)
    queried[found[found >= 0]] = True
    return queried


def mocca_map(*, models_path: str | Path | None = None, harris_path: str | Path | None = None,
              store: str | Path | None = None, perplexity: float = 30.0, seed: int = 0) -> MoccaMap:
    """Embed every complete MOCCA model; mark what `store` (a run directory or its run.zarr)
    queried; place the Harris clusters that have every feature of the table.

    With a store, the table is read with the run's relaxation-time and velocity-dispersion
    settings, so its queried rows are found; all models are embedded either way.
    """
    settings = _store_settings(_store_path(store)) if store is not None else {}
    table = load_models(models_path if models_path is not None else settings.get("path"),
                        relaxation_time=settings.get("relaxation_time", "harris"),
                        velocity_dispersion=settings.get("velocity_dispersion", True))
    features = np.log10(table.features)
    points, model = embedding.tsne(features, perplexity=perplexity, seed=seed)
    queried = queried_rows(table, store) if store is not None else np.zeros(len(table), dtype=bool)
    clusters = read_harris(harris_path)
    harris = clusters.features[:, [FEATURES.index(n) for n in table.names]]
    usable = clusters.complete(table.names) & np.all(harris > 0, axis=1)
    harris_points = (embedding.place(model, np.log10(harris[usable])) if usable.any()
                     else np.empty((0, 2)))
    names = tuple(n for n, ok in zip(clusters.names, usable) if ok)
    return MoccaMap(table, points, model, queried, names, harris_points)


def scores(view: MoccaMap, *, seed: int = 0) -> dict[str, Any]:
    """k-NN accuracy of the BHS label in the map and in the standardised log-feature space
    (plain and balanced, with chance levels), what the run queried, and each Harris cluster's
    share of BHS models among its nearest models in the map."""
    labels = view.table.labels
    z, _, _ = embedding.standardise(np.log10(view.table.features))
    result: dict[str, Any] = {
        "models": int(len(labels)), "bhs": int(labels.sum()), "k": KNN_K, "perplexity": view.model.perplexity,
        "seed": seed,
        "knn_accuracy_map": embedding.knn_accuracy(view.points, labels, k=KNN_K),
        "knn_accuracy_features": embedding.knn_accuracy(z, labels, k=KNN_K),
        "balanced_knn_accuracy_map": embedding.knn_accuracy(view.points, labels, k=KNN_K, balanced=True),
        "balanced_knn_accuracy_features": embedding.knn_accuracy(z, labels, k=KNN_K, balanced=True),
        "chance_knn_accuracy": embedding.chance_accuracy(labels),
        "chance_balanced_knn_accuracy": embedding.chance_accuracy(labels, balanced=True),
        "queried": int(view.queried.sum()),
        "queried_bhs_share": float(labels[view.queried].mean()) if view.queried.any() else None,
    }
    if len(view.harris_points):
        _, idx = NearestNeighbors(n_neighbors=KNN_K).fit(view.points).kneighbors(view.harris_points)
        share = labels[idx].mean(axis=1)
        result["harris"] = [{"name": n, "x": float(p[0]), "y": float(p[1]), "bhs_share_of_nearest_models": float(s)}
                            for n, p, s in zip(view.harris_names, view.harris_points, share)]
        result["harris_placed"] = len(view.harris_names)
        result["harris_among_bhs_models"] = int(np.sum(share > 0.5))
    else:
        result.update(harris=[], harris_placed=0, harris_among_bhs_models=0)
    return result


def draw(view: MoccaMap, path: str | Path, *, title: str | None = None) -> Path:
    """Two panels of the one map: coloured by BHS label, and by log10 core radius (the first
    split of a decision tree); queried models and placed Harris clusters marked on both."""
    marks = []
    if view.queried.any():
        marks.append(plots.Mark("queried by the run", view.points[view.queried], marker="o", colour="black"))
    if len(view.harris_points):
        marks.append(plots.Mark("Harris clusters, placed", view.harris_points, marker="*", colour="crimson"))
    label_names = np.array([LABEL_NAMES.get(int(v), CLASSES[int(v)]) for v in view.table.labels], dtype=object)
    core = list(view.table.names).index("core_radius") if "core_radius" in view.table.names else 0
    panels = [plots.Panel(view.points, label_names, categorical=True, colour_label="label",
                          title="MOCCA models by black-hole subsystem", marks=tuple(marks)),
              plots.Panel(view.points, np.log10(view.table.features[:, core]), categorical=False,
                          colour_label=f"log10 {view.table.names[core]}", title=f"by {view.table.names[core]}",
                          marks=tuple(marks))]
    return plots.embedding_map(panels, path, title=title)


def embed_models(out_dir: str | Path, *, models_path=None, harris_path=None, store=None, perplexity: float = 30.0,
                 seed: int = 0) -> tuple[dict[str, Any], Path]:
    """Map, draw and score (see the module docstring): writes OUT_DIR/embedding.png and
    OUT_DIR/embedding.json; returns (scores, figure path)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    view = mocca_map(models_path=models_path, harris_path=harris_path, store=store, perplexity=perplexity, seed=seed)
    result = scores(view, seed=seed)
    figure = draw(view, out_dir / "embedding.png",
                  title=f"{result['models']} MOCCA models, t-SNE of standardised log10 features "
                        f"(perplexity {view.model.perplexity:.3g})\n{KNN_K}-NN accuracy of BHS: "
                        f"{result['knn_accuracy_map']:.3f} in the map, {result['knn_accuracy_features']:.3f} in the "
                        f"features (chance {result['chance_knn_accuracy']:.3f})")
    result["figure"] = figure.name
    (out_dir / "embedding.json").write_text(json.dumps(result, indent=2) + "\n")
    return result, figure
