"""Shared small fixtures: a cheap oracle on a 2-D box and fast committees and loops.

Every committee made here shares one architecture (3 members, one hidden layer of 16) and one
capacity, so JAX compiles its training and prediction programs once per test session.
"""

from __future__ import annotations

import os
from pathlib import Path

# Before JAX is imported: the test processes and every run they start share their compiled
# programs, as the jobs of a sweep do (`compilation_cache` in conf/config.yaml).
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".pytest_cache" / "jax"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from alframe.learners import MLPCommittee  # noqa: E402
from alframe.loop import ActiveLearningLoop, Candidates  # noqa: E402
from alframe.oracle import FunctionOracle, OutputSpec  # noqa: E402
from alframe.space import Box  # noqa: E402
from alframe.strategies import QueryByCommittee  # noqa: E402

CAPACITY = 128
TIMING_VARS = ("cost_s", "fit_s", "select_s")


def target_fn(x: np.ndarray) -> np.ndarray:
    """y = sin(x0) + x1^2 on rows of x, (n, 2) -> (n,)."""
    x = np.asarray(x, dtype=np.float64)
    return np.sin(x[:, 0]) + x[:, 1] ** 2


def make_box() -> Box:
    return Box(names=("x0", "x1"), lower=(-2.0, -2.0), upper=(2.0, 2.0))


def make_oracle(fn=target_fn, **kwargs) -> FunctionOracle:
    return FunctionOracle(fn=fn, space=make_box(), outputs=OutputSpec(names=("y",)), **kwargs)


def make_committee(**overrides) -> MLPCommittee:
    settings = dict(members=3, hidden=(16,), steps_first=200, steps_warm=50, capacity=CAPACITY,
                    final_learning_rate=3e-4, warm_learning_rate=3e-3)  # short fits need the higher rates
    settings.update(overrides)
    return MLPCommittee(**settings)


def make_loop(oracle=None, committee=None, strategy=None, **overrides) -> ActiveLearningLoop:
    settings = dict(budget=40, batch_size=10, n_initial=10, test_size=200,
                    candidates=Candidates(size=200), progress=False, seed=0)
    settings.update(overrides)
    return ActiveLearningLoop(
        oracle=make_oracle() if oracle is None else oracle,
        committee=make_committee() if committee is None else committee,
        strategy=QueryByCommittee() if strategy is None else strategy,
        **settings,
    )


def without_timing(ds):
    """A store without its wall-time variables, which differ between identical runs."""
    return ds.drop_vars([v for v in TIMING_VARS if v in ds.variables])


@pytest.fixture
def box() -> Box:
    return make_box()


@pytest.fixture
def oracle() -> FunctionOracle:
    return make_oracle()


@pytest.fixture
def committee_factory():
    return make_committee


@pytest.fixture
def loop_factory():
    return make_loop
