"""MOCCA globular-cluster models: does a cluster host a black-hole subsystem?

About 1,300 MOCCA Monte Carlo cluster simulations, each reduced to six observables and a
label, stand in for a simulator whose runs take days: the pool oracle reveals a model's label
only when a strategy pays for it.

    >>> from simulators.mocca import load_models, make_oracle, held_out_set
    >>> table = load_models()                        # 1,289 models, features (n, 6), labels (n,)
    >>> oracle = make_oracle(held_out_fraction=0.3)  # the other 70 % as a Pool, labels on demand
    >>> x_test, y_test = held_out_set(held_out_fraction=0.3)

The Harris catalogue reader (`read_harris`) gives observed clusters the same six features; the
command line (`python -m simulators.mocca predict|baseline|harris`) trains classifiers on the
models and predicts them.
"""

from simulators.mocca.data import (
    CATALOG_COLUMNS,
    CLASSES,
    FEATURES,
    UNITS,
    ChecksumError,
    MoccaDataError,
    MoccaTable,
    fetch,
    harris_relaxation_time,
    load_models,
    read_catalog,
)
from simulators.mocca.harris import Clusters, HarrisFormatError, harris_features, read_harris, read_raw
from simulators.mocca.learners import CLASSIFIERS, LogFeatures, make_classifier, mlp_committee
from simulators.mocca.oracle import PoolOracle, held_out_set, make_oracle, split_table, stratified_split

__all__ = [
    "CATALOG_COLUMNS",
    "CLASSES",
    "CLASSIFIERS",
    "FEATURES",
    "UNITS",
    "ChecksumError",
    "Clusters",
    "HarrisFormatError",
    "LogFeatures",
    "MoccaDataError",
    "MoccaTable",
    "PoolOracle",
    "fetch",
    "harris_features",
    "harris_relaxation_time",
    "held_out_set",
    "load_models",
    "make_classifier",
    "make_oracle",
    "mlp_committee",
    "read_catalog",
    "read_harris",
    "read_raw",
    "split_table",
    "stratified_split",
]
