"""Command line of the MOCCA case.

    python -m simulators.mocca predict CATALOG.csv [--fallback] [--out FILE.csv]
    python -m simulators.mocca baseline [--folds 15] [--fallback] [--out-dir results/mocca]
    python -m simulators.mocca harris [--classifier gradient_boosting | --all] [--out-dir results/mocca]
    python -m simulators.mocca embed [--store RUN_DIR] [--perplexity 30] [--seed 0] [--out-dir results/mocca]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from alframe.atomic import write_atomically
from simulators.mocca.baseline import (
    bar_plot,
    cross_validate,
    describe_tree,
    draw_tree,
    markdown,
    shallow_tree,
    summarise,
)
from simulators.mocca.data import MoccaDataError, load_models, read_catalog
from simulators.mocca.harris import HarrisFormatError
from simulators.mocca.learners import CLASSIFIERS
from simulators.mocca.predict import agreement, harris_predictions, predict, talk_table, train

PROG = "python -m simulators.mocca"


def check_writable(path: Path, *, inputs: tuple[Path, ...] = ()) -> None:
    """Refuse an output path that cannot be written, or that would overwrite one of `inputs`,
    before any work; nothing is created on the way."""
    if path.is_dir():
        raise MoccaDataError(f"--out {path}: is a directory")
    if any(path.resolve() == Path(i).resolve() for i in inputs):
        raise MoccaDataError(f"--out {path}: is a file this command reads; choose another name")
    parent = path.resolve().parent
    existing = next(p for p in (parent, *parent.parents) if p.exists())
    if not existing.is_dir():
        raise MoccaDataError(f"--out {path}: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK):
        raise MoccaDataError(f"--out {path}: {existing} is not writable")


def check_out_dir(path: Path) -> None:
    """Refuse an --out-dir that is a file or lies under one, or cannot be written, before any work."""
    resolved = path.resolve()
    existing = next(p for p in (resolved, *resolved.parents) if p.exists())
    if not existing.is_dir():
        raise MoccaDataError(f"--out-dir {path}: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK):
        raise MoccaDataError(f"--out-dir {path}: {existing} is not writable")


def check_models(path: str | None) -> None:
    """Refuse a --models path that does not exist: the loader would fetch the public table
    instead, and the command would silently run on other data than the one named."""
    if path is not None and not Path(path).is_file():
        raise MoccaDataError(f"--models {path}: file not found")


DEFAULT_CLASSIFIER = "gradient_boosting"


def _predict(args: argparse.Namespace) -> int:
    velocity = not args.without_velocity
    check_models(args.models)
    if args.out:  # before the training, not after it
        check_writable(Path(args.out), inputs=(Path(args.catalog), *([Path(args.models)] if args.models else [])))
    names, x = read_catalog(args.catalog, velocity_dispersion=velocity)
    committee = train(args.classifier, fallback_only=args.fallback, velocity_dispersion=velocity, seed=args.seed,
                      models_path=args.models)
    probability, bhs = predict(committee, x)
    out = pd.DataFrame({"name": names, "probability": probability, "bhs": bhs})
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        # Whole or not at all: an interrupted write leaves an earlier file as it was.
        write_atomically(Path(args.out), out.to_csv(index=False).encode())
        print(f"{len(out)} clusters, {int(bhs.sum())} with a BH subsystem predicted; written to {args.out}")
    else:
        out.to_csv(sys.stdout, index=False)
    return 0


def _baseline(args: argparse.Namespace) -> int:
    if args.folds < 2:
        raise MoccaDataError(f"--folds {args.folds}: cross-validation needs at least 2 folds")
    if args.depth < 1:
        raise MoccaDataError(f"--depth {args.depth}: the shallow tree needs a depth of at least 1")
    check_models(args.models)
    check_out_dir(Path(args.out_dir))
    table = load_models(args.models, fallback_only=args.fallback, relaxation_time=args.relaxation_time)
    smaller = int(min(table.labels.sum(), len(table) - table.labels.sum()))
    if args.folds > smaller:
        raise MoccaDataError(f"--folds {args.folds}: more folds than the {smaller} models of the smaller class; "
                             "each fold needs models of both classes")
    subset = "fallback-enabled models" if args.fallback else "all models"
    tag = "_fallback" if args.fallback else ""
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"{len(table)} {subset}, {int(table.labels.sum())} with a BH subsystem; "
          f"{args.folds}-fold stratified cross-validation, seed {args.seed}")
    per_fold = pd.concat([cross_validate(name, table.features, table.labels, n_splits=args.folds, seed=args.seed)
                          for name in tqdm(args.classifiers, desc="classifiers")])
    summary = summarise(per_fold)
    per_fold.to_csv(out_dir / f"cv_folds{tag}.csv", index=False)
    summary.to_csv(out_dir / f"cv_summary{tag}.csv", index=False)
    plot = bar_plot(summary, out_dir / f"cv_scores{tag}.png",
                    title=f"{args.folds}-fold CV, {subset} (n={len(table)})")
    print("\n" + markdown(summary))

    tree, splits = shallow_tree(table.features, table.labels, table.names, max_depth=args.depth, seed=args.seed)
    drawing = draw_tree(tree, table.names, out_dir / f"shallow_tree{tag}.png",
                        title=f"decision tree of depth {args.depth}, {subset}")
    print(f"\nFirst splits of a depth-{args.depth} decision tree:")
    for s in splits:
        print(f"  depth {s.depth}: {s.feature} <= {s.threshold:.4g}  ({s.n_models} models, {s.bhs_fraction:.1%} BHS)")
    print("\n" + describe_tree(tree, table.names))
    print(f"written to {out_dir}: cv_folds{tag}.csv, cv_summary{tag}.csv, {plot.name}, {drawing.name}")
    return 0


def _harris(args: argparse.Namespace) -> int:
    check_models(args.models)
    check_out_dir(Path(args.out_dir))
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    classifiers = list(CLASSIFIERS) if args.all else [args.classifier]
    rows = []
    for name in tqdm(classifiers, desc="classifiers", disable=len(classifiers) == 1):
        for velocity in (True, False):
            table = harris_predictions(name, velocity_dispersion=velocity, seed=args.seed,
                                       harris_path=args.catalog, models_path=args.models)
            which = "six features" if velocity else "no velocity dispersion"
            table.to_csv(out_dir / f"harris_{name}{'' if velocity else '_novelocity'}.csv", index=False)
            rows.append({"classifier": name, "clusters": which, "n_predicted": len(table), **agreement(table)})
            if len(classifiers) == 1:
                print(f"\nHarris clusters, {which} ({len(table)} clusters), classifier {name}; "
                      "* marks a class that differs from the paper's")
                print(talk_table(table))
    summary = pd.DataFrame(rows)
    summary.to_csv(out_dir / "harris_agreement.csv", index=False)
    print("\nAgreement with the paper's predictions (share of its clusters given its class):\n")
    print(markdown(summary))
    print(f"written to {out_dir}: harris_agreement.csv and harris_<classifier>*.csv")
    return 0


def _embed(args: argparse.Namespace) -> int:
    from simulators.mocca.embedding import embed_models

    check_models(args.models)
    check_out_dir(Path(args.out_dir))
    result, figure = embed_models(args.out_dir, models_path=args.models, harris_path=args.catalog, store=args.store,
                                  perplexity=args.perplexity, seed=args.seed)
    queried = f", {result['queried']} queried by the run marked" if args.store else ""
    print(f"{result['models']} models ({result['bhs']} BHS){queried}, {result['harris_placed']} Harris clusters "
          f"placed ({result['harris_among_bhs_models']} among mostly-BHS models): {result['k']}-NN accuracy of BHS "
          f"{result['knn_accuracy_map']:.3f} in the t-SNE map, {result['knn_accuracy_features']:.3f} in the "
          f"log-features (balanced {result['balanced_knn_accuracy_map']:.3f} / "
          f"{result['balanced_knn_accuracy_features']:.3f}; chance {result['chance_knn_accuracy']:.3f} / 0.5); "
          f"written to {figure} and {figure.with_suffix('.json')}")
    return 0


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, `python -m simulators.mocca: error: ...`, sub-commands' too."""

    def error(self, message: str):
        self.exit(2, f"{PROG}: error: {message} (see {self.prog} --help)\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="MOCCA black-hole-subsystem classification.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    common = _Parser(add_help=False)
    common.add_argument("--seed", type=int, default=0, help="seed of the classifiers (and folds)")
    common.add_argument("--models", default=None, help="MOCCA table (default: the shared simulations.csv)")

    pr = sub.add_parser("predict", parents=[common], help="predict the clusters of a catalogue CSV")
    pr.add_argument("catalog", help="CSV with 'Cluster Name' and the six feature columns")
    pr.add_argument("--fallback", action="store_true", help="train on the fallback-enabled models only")
    pr.add_argument("--without-velocity", action="store_true",
                    help="train and predict without the velocity dispersion (for catalogues lacking it)")
    pr.add_argument("--classifier", choices=list(CLASSIFIERS), default=DEFAULT_CLASSIFIER)
    pr.add_argument("--out", default=None, help="output CSV (name, probability, bhs); stdout by default")
    pr.set_defaults(run=_predict)

    ba = sub.add_parser("baseline", parents=[common], help="cross-validated scores and a shallow tree")
    ba.add_argument("--folds", type=int, default=15)
    ba.add_argument("--fallback", action="store_true", help="the fallback-enabled models only")
    ba.add_argument("--classifiers", nargs="+", choices=list(CLASSIFIERS), default=list(CLASSIFIERS))
    ba.add_argument("--relaxation-time", choices=("harris", "half_mass"), default="harris")
    ba.add_argument("--depth", type=int, default=2, help="depth of the shallow tree")
    ba.add_argument("--out-dir", default="results/mocca")
    ba.set_defaults(run=_baseline)

    ha = sub.add_parser("harris", parents=[common], help="predict the Harris clusters and compare with the paper")
    ha.add_argument("--classifier", choices=list(CLASSIFIERS), default=DEFAULT_CLASSIFIER)
    ha.add_argument("--all", action="store_true", help="every classifier (agreement table only)")
    ha.add_argument("--catalog", default=None, help="Harris mwgc.dat (default: the shared copy)")
    ha.add_argument("--out-dir", default="results/mocca")
    ha.set_defaults(run=_harris)

    em = sub.add_parser("embed", help="a t-SNE map of the models by BHS label, with the Harris clusters placed in it")
    em.add_argument("--seed", type=int, default=0, help="seed of the t-SNE fit")
    em.add_argument("--models", default=None, help="MOCCA table (default: the shared simulations.csv)")
    em.add_argument("--catalog", default=None, help="Harris mwgc.dat (default: the shared copy)")
    em.add_argument("--store", default=None, help="a MOCCA run directory (or its run.zarr): mark what it queried")
    em.add_argument("--perplexity", type=float, default=30.0)
    em.add_argument("--out-dir", default="results/mocca")
    em.set_defaults(run=_embed)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except BrokenPipeError:  # the reader stopped early (`| head`): not an error of ours
        sys.stderr.close()
        return 0
    except (MoccaDataError, HarrisFormatError, ValueError, OSError) as exc:
        message = " ".join(str(exc).split("\n"))  # one line, whatever the library wrote
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
