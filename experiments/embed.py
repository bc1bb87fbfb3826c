"""t-SNE maps: where each strategy's simulations went in a space of many inputs, or how the
groups of any table separate.

    python -m experiments.embed RUN_OR_SWEEP_DIR [--out FILE.png] [--perplexity 30] [--seed 0]
                                [--reference 500] [--run-seed N]
    python -m experiments.embed --table STARS.csv --features COL1 COL2 ... --group COLUMN
                                [--out FILE.png] [--perplexity 30] [--seed 0]

A run or sweep directory (one `run.zarr`, or a sweep's stores found as `experiments.compare`
finds them, one seed per strategy: the lowest, or --run-seed) needs a space of more than two
inputs. The queried points of every strategy are embedded in one t-SNE fit together with a
uniform reference sample of the space, so all panels share one map: one panel per strategy,
coloured by the output (regression) or the class (classification) on the first row and by
round on the second, the reference grey, failed runs as red crosses. The reference is drawn
from the space itself, rebuilt from the simulator node of the stored config (a box: uniform
in its bounds, log-scale inputs uniform in log; a pool: its rows); where that node cannot be
built, the stored test set (itself a uniform draw of the space) when the run drew its own,
else uniformly between the lowest and highest value of each input among the stored points.
Inputs of a box are mapped to its unit cube first, so a log-scale input counts in decades;
without a box, a positive input spanning more than two decades is taken in log10.
The score per strategy: the balanced k-NN accuracy of telling its queried points from as
many reference points, in the inputs and in the map (0.5: it samples like a uniform draw).

A table (CSV, or FITS read by astropy) with one row per object, numeric feature columns and a
group column gets t-SNE beside PCA of the standardised features, coloured by group, each
scored by the leave-one-out k-NN accuracy of the groups and the adjusted Rand index of a
k-means clustering with as many clusters as groups; the same scores of the full feature space
are the yardstick.

Writes the PNG (default: DIR/queried_embedding.png, or TABLE_embedding.png beside a table)
and a JSON of the scores beside it, and prints one line per figure. Bad input: one line
naming the file, column or value, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import zarr
from omegaconf import OmegaConf

from alframe import embedding, plots
from alframe.space import Box, Pool
from alframe.store import StoreDamagedError, read_run
from alframe.tables import TableError, number, read_rows

PROG = "python -m experiments.embed"
# Fits of at least this many points announce themselves: they take tens of seconds.
ANNOUNCE_AT = 1000
FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz")
KNN_K = 5


class EmbedError(ValueError):
    """Input that cannot be embedded as asked; the message names the file, column or value."""


def _announce(n: int, d: int, perplexity: float, what: str) -> None:
    if n >= ANNOUNCE_AT:
        print(f"embed: t-SNE of {n} {what} in {d} dimensions (perplexity {perplexity:g}) ...", file=sys.stderr,
              flush=True)


def _json_number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def write_scores(path: Path, scores: Mapping[str, Any]) -> Path:
    """The scores as JSON beside the figure `path` (same name, .json)."""
    out = path.with_suffix(".json")
    out.write_text(json.dumps(scores, indent=2, default=str) + "\n")
    return out


# -- run stores --------------------------------------------------------------------------


def _config(ds: xr.Dataset) -> dict[str, Any]:
    try:
        config = json.loads(ds.attrs.get("config", "{}"))
    except (TypeError, json.JSONDecodeError):
        return {}
    return config if isinstance(config, dict) else {}


def _label(ds: xr.Dataset) -> str:
    return str(_config(ds).get("strategy_name") or ds.attrs.get("label") or "run")


def load_stores(directory: Path, *, run_seed: int | None = None) -> dict[str, xr.Dataset]:
    """label -> store: the run in `directory` (`run.zarr` in it, or the store itself), or one
    run per strategy of a sweep (seed `run_seed`, by default the lowest seed of the sweep)."""
    from experiments.compare import SweepError, load_runs

    directory = Path(directory)
    if not directory.exists():
        raise EmbedError(f"{directory}: no such directory")
    single = directory if directory.name.endswith(".zarr") else directory / "run.zarr"
    if single.is_dir():
        try:
            ds = read_run(single)
        except (OSError, KeyError, ValueError, StoreDamagedError, zarr.errors.BaseZarrError) as exc:
            raise EmbedError(f"cannot read the run store {single}: {exc}") from None
        ds.encoding["source"] = str(single)
        return {_label(ds): ds}
    try:
        runs = load_runs(directory)
    except SweepError as exc:
        raise EmbedError(str(exc)) from None
    seeds = sorted({seed for _, seed in runs})
    chosen = seeds[0] if run_seed is None else run_seed
    if chosen not in seeds:
        raise EmbedError(f"--run-seed {run_seed}: the sweep {directory} has seeds {seeds}")
    return {strategy: ds for (strategy, seed), ds in sorted(runs.items()) if seed == chosen}


def _stored_space(ds: xr.Dataset) -> tuple[Box | Pool | None, str]:
    """The space of the run's simulator, rebuilt from the stored config, and why not if not."""
    from experiments.run import build

    node = _config(ds).get("simulator")
    if not isinstance(node, dict) or "_target_" not in node:
        return None, "the stored config has no simulator node"
    try:
        oracle = build(OmegaConf.create({"simulator": node}), "simulator")
        space = oracle.space
    except Exception as exc:  # noqa: BLE001 - any failure of a foreign constructor: fall back, say why
        return None, f"the simulator node {node['_target_']} could not be built ({type(exc).__name__}: {exc})"
    names = tuple(str(v) for v in ds["input"].values)
    if not isinstance(space, Box | Pool) or tuple(space.names) != names:
        return None, f"the rebuilt simulator's space does not have the stored inputs {list(names)}"
    return space, ""


def reference_sample(ds: xr.Dataset, size: int, *, seed: int = 0) -> tuple[np.ndarray, Box | Pool | None, str]:
    """A uniform sample (m, dim) of the run's input space, the space when it could be rebuilt,
    and a sentence saying where the sample came from (see the module docstring)."""
    space, why_not = _stored_space(ds)
    if isinstance(space, Box):
        return space.draw(size, seed=seed, method="uniform"), space, "uniform in the simulator's box"
    if isinstance(space, Pool):
        return space.draw(size, seed=seed), space, f"rows of the simulator's pool of {len(space)}"
    has_own_test_set = "x_test" in ds and _config(ds).get("test_set") is None
    if has_own_test_set and ds.sizes.get("test_sample", 0) >= 2:
        x = np.asarray(ds["x_test"].values, dtype=np.float64)
        rows = np.random.default_rng(seed).permutation(len(x))[: min(size, len(x))]
        return x[rows], None, f"the stored test set, a uniform draw of the space ({why_not})"
    stored = [np.asarray(ds["x"].values, dtype=np.float64)]
    if "x_test" in ds:
        stored.append(np.asarray(ds["x_test"].values, dtype=np.float64))
    stored = np.concatenate(stored)
    lower, upper = stored.min(axis=0), stored.max(axis=0)
    u = np.random.default_rng(seed).random((size, stored.shape[1]))
    return lower + u * (upper - lower), None, f"uniform between the stored points' lowest and highest inputs ({why_not})"


def _classes(ds: xr.Dataset) -> list[str] | None:
    raw = ds.attrs.get("classes")
    if raw is None:
        return None
    try:
        classes = json.loads(raw) if isinstance(raw, str) else list(raw)
    except (TypeError, json.JSONDecodeError):
        return None
    return [str(c) for c in classes] if isinstance(classes, list) else None


def _output_colours(runs: Mapping[str, xr.Dataset]) -> dict[str, tuple[np.ndarray, str, bool]]:
    """Per run, (colour (n,), its label, categorical) of each run's output: the class name, or the
    first output's value. One scale for every run, so that their panels share a colorbar: log10
    where the first output is positive over more than two decades across all of them, its
    colours then spanning the 1st to 99th percentile of every run's values together (a value
    near 0, 1e-250 say, would otherwise paint everything else one colour)."""
    firsts = {label: np.asarray(ds["y"].values, dtype=np.float64)[:, 0] for label, ds in runs.items()}
    finite = np.concatenate([y[np.isfinite(y)] for y in firsts.values()])
    logged = bool(len(finite) and finite.min() > 0 and finite.max() > 100 * finite.min())
    if logged:
        low, high = np.percentile(np.log10(finite), [1, 99])
    colours = {}
    for label, ds in runs.items():
        y, name = firsts[label], str(ds["output"].values[0])
        if ds.attrs.get("task") == "classification":
            classes = _classes(ds)
            names = np.array([(classes[int(v)] if classes and 0 <= int(v) < len(classes) else str(int(v)))
                              if math.isfinite(v) else "" for v in y], dtype=object)
            colours[label] = (names, name, True)
            continue
        more = f" (first of {ds.sizes['output']} outputs)" if ds.sizes.get("output", 1) > 1 else ""
        if logged:
            colours[label] = (np.clip(np.log10(np.where(y > 0, y, np.nan)), low, high), f"log10 {name}{more}", False)
        else:
            colours[label] = (y, f"{name}{more}", False)
    return colours


def _decades(x: np.ndarray):
    """The feature map of a space without bounds: log10 of each column that is positive and
    spans more than two decades (as a box's log-scale input would be), the others as they are."""
    positive = np.all(x > 0, axis=0)
    logged = positive & (x.max(axis=0, initial=0.0) > 100 * np.where(positive, x.min(axis=0), 1.0))

    def features(v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, dtype=np.float64)
        return np.where(logged, np.log10(np.where(logged, v, 1.0)), v)

    return features


def _balanced_pair_score(a: np.ndarray, b: np.ndarray, *, seed: int) -> float:
    """Balanced k-NN accuracy of telling point sets a and b apart, on equal numbers of each."""
    m = min(len(a), len(b))
    if m <= KNN_K:
        return float("nan")
    rng = np.random.default_rng(seed)
    a = a[rng.permutation(len(a))[:m]]
    b = b[rng.permutation(len(b))[:m]]
    return embedding.knn_accuracy(np.concatenate([a, b]), np.repeat([0, 1], m), k=KNN_K, balanced=True)


def embed_runs(runs: Mapping[str, xr.Dataset], path: str | Path, *, perplexity: float = 30.0, seed: int = 0,
               reference: int = 500) -> dict[str, Any]:
    """Draw the queried points of each run in one t-SNE map with a uniform reference sample
    (see the module docstring); write `path` (PNG) and its scores beside it (JSON).

    Args:
        runs: label -> run store, all over the same inputs (more than two).
        reference: points of the reference sample.
    Returns:
        The scores written: perplexity used, where the reference came from, and per label
        the runs, the failed ones and the queried-against-reference k-NN accuracies.
    """
    path = Path(path)
    if not runs:
        raise EmbedError("no run to embed")
    first = next(iter(runs.values()))
    names = [str(v) for v in first["input"].values]
    for label, ds in runs.items():
        if [str(v) for v in ds["input"].values] != names:
            raise EmbedError(f"run {label!r} has inputs {[str(v) for v in ds['input'].values]}, "
                             f"{_label(first)!r} has {names}: one map needs one space")
    if len(names) <= 2:
        raise EmbedError(f"the space has {len(names)} input(s) {names}; queried_points.png shows them as they are")
    if isinstance(reference, bool) or not isinstance(reference, int) or reference < embedding.MIN_POINTS:
        raise EmbedError(f"--reference must be an integer >= {embedding.MIN_POINTS}, got {reference!r}")
    ref_x, space, source = reference_sample(first, reference, seed=seed)
    queried = {label: np.asarray(ds["x"].values, dtype=np.float64) for label, ds in runs.items()}
    to_features = space.to_unit if isinstance(space, Box) else _decades(np.concatenate([ref_x, *queried.values()]))
    features = np.concatenate([to_features(ref_x), *(to_features(q) for q in queried.values())])
    _announce(len(features), len(names), perplexity, "points")
    points, model = embedding.tsne(features, perplexity=perplexity, seed=seed)
    ref_map = points[: len(ref_x)]
    cuts = np.cumsum([len(ref_x), *(len(q) for q in queried.values())])
    maps = dict(zip(queried, np.split(points, cuts[:-1])[1:]))

    by_output, by_round, per_run = [], [], {}
    colours = _output_colours(runs)
    for label, ds in runs.items():
        ok = np.asarray(ds["ok"].values, dtype=bool)
        colour, colour_label, categorical = colours[label]
        failed = (plots.Mark("failed", maps[label][~ok], marker="x", colour="red"),) if (~ok).any() else ()
        common = dict(background=ref_map, background_label=f"reference ({len(ref_map)})", marks=failed)
        told_apart = _balanced_pair_score(to_features(queried[label]), to_features(ref_x), seed=seed)
        by_output.append(plots.Panel(maps[label][ok], colour[ok], title=f"{label} ({len(ok)} runs)",
                                     colour_label=colour_label, categorical=categorical, **common))
        by_round.append(plots.Panel(maps[label][ok], np.asarray(ds["round_of"].values)[ok],
                                    title=f"{label}: k-NN tells from uniform {told_apart:.2f} (0.5: alike)",
                                    colour_label="round", categorical=False, **common))
        per_run[label] = {
            "runs": int(len(ok)), "failed": int((~ok).sum()), "seed": int(ds.attrs.get("seed", -1)),
            "queried_vs_reference_knn_inputs": _json_number(told_apart),
            "queried_vs_reference_knn_map": _json_number(_balanced_pair_score(maps[label], ref_map, seed=seed)),
        }
    plots.embedding_map([by_output, by_round], path, title=f"queried points in one t-SNE map with {len(ref_map)} "
                                                          f"reference points (perplexity {model.perplexity:.3g}, "
                                                          f"seed {seed})")
    scores = {"figure": path.name, "inputs": names, "perplexity": model.perplexity, "seed": seed, "k": KNN_K,
              "reference": {"points": int(len(ref_map)), "source": source}, "runs": per_run,
              "note": "queried_vs_reference_knn: balanced k-NN accuracy of telling a run's queried points from "
                      "as many reference points; 0.5 = indistinguishable from a uniform draw"}
    write_scores(path, scores)
    return scores


def runs_line(scores: Mapping[str, Any], path: Path) -> str:
    parts = [f"{label} {r['runs']} runs, apart from uniform {_fmt(r['queried_vs_reference_knn_inputs'])} "
             f"(inputs) {_fmt(r['queried_vs_reference_knn_map'])} (map)" for label, r in scores["runs"].items()]
    return (f"embed: {'; '.join(parts)}; reference {scores['reference']['points']} points "
            f"({scores['reference']['source']}); perplexity {scores['perplexity']:.3g}; written to {path}")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


# -- tables ------------------------------------------------------------------------------


def _is_fits(path: Path) -> bool:
    return path.name.lower().endswith(FITS_SUFFIXES)


def _check_columns(path: Path, header: Sequence[str], features: Sequence[str], group: str) -> None:
    wanted = [*features, group]
    repeated = sorted({c for c in wanted if wanted.count(c) > 1})
    if repeated:
        raise EmbedError(f"column {repeated[0]!r} is named twice among --features and --group")
    for name in wanted:
        if name not in header:
            raise EmbedError(f"{path}: no column {name!r} (the table has {list(header)})")


def read_table(path: str | Path, features: Sequence[str], group: str) -> tuple[np.ndarray, np.ndarray]:
    """Features (n, d) float64 and group labels (n,) str of a CSV or FITS table, every cell
    checked (a bad one is named by file, row and column)."""
    path = Path(path)
    if not path.is_file():
        raise EmbedError(f"{path}: no such file")
    if not features:
        raise EmbedError("--features names no column")
    if _is_fits(path):
        return _read_fits(path, features, group)
    header, rows = read_rows(path)
    _check_columns(path, header, features, group)
    if not rows:
        raise EmbedError(f"{path}: the table has a header and no rows")
    x = np.array([[number(path, i, name, row[header.index(name)]) for name in features]
                  for i, row in enumerate(rows, start=2)], dtype=np.float64)
    labels = [row[header.index(group)].strip() for row in rows]
    for i, value in enumerate(labels, start=2):
        if not value:
            raise TableError(f"{path}: row {i}, column {group!r}: empty group")
    return x, np.array(labels, dtype=object)


def _read_fits(path: Path, features: Sequence[str], group: str) -> tuple[np.ndarray, np.ndarray]:
    from astropy.table import Table

    try:
        table = Table.read(path, format="fits")
    except (OSError, ValueError, TypeError) as exc:
        raise EmbedError(f"{path}: cannot read as FITS: {exc}".replace("\n", " ")) from None
    _check_columns(path, table.colnames, features, group)
    if len(table) == 0:
        raise EmbedError(f"{path}: the table has no rows")
    columns = []
    for name in features:
        column = table[name]
        if column.dtype.kind not in "biuf" or column.ndim != 1:
            raise EmbedError(f"{path}: column {name!r} is not a numeric scalar column ({column.dtype})")
        values = np.ma.filled(np.ma.asarray(column, dtype=np.float64), np.nan)
        bad = np.flatnonzero(~np.isfinite(values))
        if len(bad):
            raise EmbedError(f"{path}: row {int(bad[0]) + 1}, column {name!r}: "
                             f"{'masked' if np.ma.is_masked(column[bad[0]]) else values[bad[0]]!r} is not a finite number")
        columns.append(values)
    labels = []
    for i, value in enumerate(table[group], start=1):
        text = value.decode() if isinstance(value, bytes) else str(value)
        if np.ma.is_masked(value) or not text.strip() or text.strip() == "--":
            raise EmbedError(f"{path}: row {i}, column {group!r}: empty group")
        labels.append(text.strip())
    return np.stack(columns, axis=1), np.array(labels, dtype=object)


def _scored(points: np.ndarray, groups: np.ndarray, seed: int) -> dict[str, float]:
    return {"knn_accuracy": embedding.knn_accuracy(points, groups, k=KNN_K),
            "cluster_recovery": embedding.cluster_recovery(points, groups, seed=seed)}


def embed_table(x: np.ndarray, groups: np.ndarray, path: str | Path, *, feature_names: Sequence[str],
                group_name: str, perplexity: float = 30.0, seed: int = 0, title: str | None = None) -> dict[str, Any]:
    """t-SNE beside PCA of the standardised features x (n, d), coloured by `groups` (n,);
    write `path` (PNG) and the scores beside it (JSON); return the scores."""
    path = Path(path)
    x = embedding.check_points(x, name="features", min_rows=embedding.MIN_POINTS)
    groups = np.asarray(groups, dtype=object)
    n_groups = len(set(groups.tolist()))
    if n_groups < 2:
        raise EmbedError(f"column {group_name!r} holds a single group {groups[0]!r}; two or more are needed")
    if len(x) <= max(KNN_K, n_groups):
        raise EmbedError(f"{len(x)} rows are too few for {n_groups} groups and {KNN_K}-NN scores")
    _announce(len(x), x.shape[1], perplexity, "rows")
    tsne_map, model = embedding.tsne(x, perplexity=perplexity, seed=seed)
    pca_map = embedding.pca(x) if x.shape[1] >= 2 else np.column_stack([embedding.standardise(x)[0][:, 0],
                                                                      np.zeros(len(x))])
    z, _, _ = embedding.standardise(x)
    scores = {"tsne": _scored(tsne_map, groups, seed), "pca": _scored(pca_map, groups, seed),
              "feature_space": _scored(z, groups, seed)}
    panels = [plots.Panel(tsne_map, groups, categorical=True, colour_label=group_name,
                          title=f"t-SNE (perplexity {model.perplexity:.3g}): k-NN {scores['tsne']['knn_accuracy']:.2f}, "
                                f"ARI {scores['tsne']['cluster_recovery']:.2f}"),
              plots.Panel(pca_map, groups, categorical=True, colour_label=group_name, axes=("PC 1", "PC 2"),
                          title=f"PCA: k-NN {scores['pca']['knn_accuracy']:.2f}, "
                                f"ARI {scores['pca']['cluster_recovery']:.2f}")]
    plots.embedding_map(panels, path, title=title or f"{len(x)} rows, {x.shape[1]} standardised features, "
                                                     f"{n_groups} groups ({group_name})")
    result = {"figure": path.name, "rows": int(len(x)), "features": list(feature_names), "group": group_name,
              "groups": n_groups, "perplexity": model.perplexity, "seed": seed, "k": KNN_K,
              "chance_knn_accuracy": embedding.chance_accuracy(groups), **scores,
              "note": "knn_accuracy: leave-one-out k-NN accuracy of the groups; cluster_recovery: adjusted Rand "
                      "index of k-means with as many clusters as groups; feature_space: all the standardised "
                      "features"}
    write_scores(path, result)
    return result


def table_line(scores: Mapping[str, Any], path: Path) -> str:
    s = scores
    return (f"embed: {s['rows']} rows, {len(s['features'])} features, {s['groups']} groups ({s['group']}): "
            f"t-SNE k-NN {s['tsne']['knn_accuracy']:.3f} ARI {s['tsne']['cluster_recovery']:.3f} | "
            f"PCA k-NN {s['pca']['knn_accuracy']:.3f} ARI {s['pca']['cluster_recovery']:.3f} | "
            f"all features k-NN {s['feature_space']['knn_accuracy']:.3f} "
            f"ARI {s['feature_space']['cluster_recovery']:.3f} "
            f"(chance k-NN {s['chance_knn_accuracy']:.3f}); written to {path}")


# -- command line ------------------------------------------------------------------------


def _table_stem(path: Path) -> str:
    name = path.name
    for suffix in (*FITS_SUFFIXES, ".csv"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _output_path(out: str | None, default: Path) -> Path:
    path = Path(out) if out else default
    if path.is_dir():
        raise EmbedError(f"--out {path}: is a directory")
    if path.suffix.lower() != ".png":
        raise EmbedError(f"--out {path}: the figure is a PNG; name it *.png")
    try:
        path.resolve().parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EmbedError(f"--out {path}: cannot create {path.resolve().parent} ({exc.strerror or exc})") from None
    return path


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("directory", nargs="?", type=Path, help="a run directory (run.zarr in it) or a sweep directory")
    p.add_argument("--table", type=Path, default=None, help="a CSV or FITS table instead of run stores")
    p.add_argument("--features", nargs="+", default=None, help="the table's numeric feature columns")
    p.add_argument("--group", default=None, help="the table's group column")
    p.add_argument("--out", default=None, help="the PNG to write (the scores go beside it as .json)")
    p.add_argument("--perplexity", type=float, default=30.0, help="t-SNE perplexity (at most (n - 1) / 3 is used)")
    p.add_argument("--seed", type=int, default=0, help="seed of the t-SNE fit and of the reference sample")
    p.add_argument("--reference", type=int, default=500, help="uniform reference points (run stores)")
    p.add_argument("--run-seed", type=int, default=None, help="which seed's runs of a sweep (default: the lowest)")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    try:
        if args.table is not None:
            if args.directory is not None:
                raise EmbedError("give a run or sweep directory or --table, not both")
            if args.group is None or args.features is None:
                raise EmbedError("--table needs --features COLUMN ... and --group COLUMN")
            path = _output_path(args.out, args.table.with_name(_table_stem(args.table) + "_embedding.png"))
            x, groups = read_table(args.table, args.features, args.group)
            scores = embed_table(x, groups, path, feature_names=args.features, group_name=args.group,
                                 perplexity=args.perplexity, seed=args.seed, title=f"{args.table.name}: {len(x)} rows, "
                                 f"{len(args.features)} standardised features, groups by {args.group}")
            print(table_line(scores, path))
        else:
            if args.directory is None:
                raise EmbedError("give a run or sweep directory, or --table FILE")
            if args.features is not None or args.group is not None:
                raise EmbedError("--features and --group go with --table")
            runs = load_stores(args.directory, run_seed=args.run_seed)
            base = args.directory.parent if args.directory.name.endswith(".zarr") else args.directory
            path = _output_path(args.out, base / "queried_embedding.png")
            scores = embed_runs(runs, path, perplexity=args.perplexity, seed=args.seed, reference=args.reference)
            print(runs_line(scores, path))
    except (EmbedError, TableError, ValueError, OSError) as exc:
        print(f"embed: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
