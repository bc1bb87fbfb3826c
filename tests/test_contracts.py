"""Every learner and strategy config node, and the bundled oracles, keep their protocol's contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf

from alframe.oracle import FunctionOracle, OutputSpec
from alframe.space import Box
from alframe.strategies.base import not_pending
from alframe.testing import (ContractError, FixedCommittee, check_committee, check_oracle, check_strategy, check_units,
                             smooth_oracle, threshold_oracle)
from experiments.cli import compose_config
from experiments.run import build, build_learner, build_oracle

CONF = Path(__file__).resolve().parents[1] / "conf"
TURBULENCE = ["simulator=turbulence", "simulator.model=lognormal", "simulator.n_cells=16", "simulator.image_size=8",
              "+proxy_cells=8"]
# Nodes that belong to one simulator: composed with it (its cheap settings) instead of a double.
# A small network: the contract is the committee's, not its size's (a smaller graph compiles faster).
SMALL_CNN = ["learner.committee.members=2", "learner.committee.conv_features=[4]", "learner.committee.dense=[8]"]
PAIRED = {"cnn_index": [*TURBULENCE, *SMALL_CNN], "committee_proxy": TURBULENCE, "committee_proxy_error": TURBULENCE,
          "committee_proxy_mix": TURBULENCE, "hindsight": ["simulator=ishigami"]}
CLASSIFICATION_SCORES = {"vote_entropy", "consensus_entropy", "max_disagreement"}
# The contract does not depend on how long a network trains: short fits keep the checks quick.
SHORT_FITS = {"steps_first": 100, "steps_first_min": 50, "steps_per_sample": 1.0, "steps_warm": 10}


def short_fits(node: dict, prefix: str = "learner") -> list[str]:
    """Overrides that shorten every training schedule in a composed learner node (nested ones
    too, and those it inherits from the node it extends)."""
    overrides = []
    for key, value in node.items():
        if key in SHORT_FITS and isinstance(value, (int, float)) and not isinstance(value, bool):
            overrides.append(f"{prefix}.{key}={SHORT_FITS[key]}")
        elif isinstance(value, dict):
            overrides += short_fits(value, f"{prefix}.{key}")
    return overrides


def nodes(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def node_yaml(group: str, name: str) -> dict:
    return yaml.safe_load((CONF / group / f"{name}.yaml").read_text()) or {}


def composed_learner(name: str) -> dict:
    return OmegaConf.to_container(compose_config([f"learner={name}"]).learner, resolve=False)


def is_classification_strategy(name: str) -> bool:
    text = (CONF / "strategy" / f"{name}.yaml").read_text()
    return "BALD" in text or any(f"score: {s}" in text for s in CLASSIFICATION_SCORES)


@pytest.fixture(scope="module")
def fitted_gaussian_process():
    """The committee the default learner chooses on smooth simulators, fitted once."""
    import jax

    from alframe.learners import GaussianProcessCommittee

    oracle = smooth_oracle()
    x = oracle.space.draw(30, seed=0)
    return GaussianProcessCommittee().fit(x, oracle.run(x).y, key=jax.random.key(0)), oracle.space


@pytest.mark.parametrize("name", [n for n in nodes("strategy") if n not in PAIRED and not is_classification_strategy(n)
                                  and n != "qbc_search"])  # a gradient search needs differentiable members
def test_every_regression_strategy_node_keeps_the_contract_with_a_gaussian_process(name, fitted_gaussian_process):
    # A process brings its own error correlation and noise model, which a strategy may use:
    # in other units too, they must lead to the same picks.
    committee, space = fitted_gaussian_process
    check_strategy(build(compose_config([f"strategy={name}"]), "strategy"), committee, space.draw(60, seed=1), 6)


@pytest.mark.parametrize("name", nodes("learner"))
def test_every_learner_node_keeps_the_committee_contract(name):
    if name in PAIRED:
        cfg = compose_config([f"learner={name}", *PAIRED[name], "budget=40", *short_fits(composed_learner(name))])
        oracle = build_oracle(cfg)
        x = oracle.space.draw(16, seed=0)
        images = oracle.run(x).y
        # An inverse committee: fitted on the runs, reads a run's outputs and predicts its inputs.
        check_committee(build_learner(cfg, oracle), x, images, predict_from=images, width=x.shape[1])
        return
    node = node_yaml("learner", name)
    classification = node.get("task") == "classification"
    oracle = threshold_oracle(n_classes=node.get("n_classes") or 3) if classification else smooth_oracle()
    cfg = compose_config([f"learner={name}", *short_fits(composed_learner(name))])
    x = oracle.space.draw(40, seed=0)
    y = oracle.run(x).y
    classes = len(oracle.outputs.classes) if oracle.outputs.classes else None
    check_committee(build_learner(cfg, oracle), x, y if classes is None else y[:, 0].astype(int), classes=classes)


@pytest.mark.parametrize("name", nodes("strategy"))
def test_every_strategy_node_keeps_the_strategy_contract(name):
    if name in PAIRED:
        cfg = compose_config([f"strategy={name}", *PAIRED[name], "budget=40"])
        space = build_oracle(cfg).space
    else:
        cfg = compose_config([f"strategy={name}"])
        space = smooth_oracle().space
    committee = FixedCommittee(classes=3 if is_classification_strategy(name) else None)
    # A paired strategy runs a simulator of its own (a proxy, the answers), in its own units.
    check_strategy(build(cfg, "strategy"), committee, space.draw(60, seed=1), 6, units=name not in PAIRED)


# Labels from people cannot be run: the label server's tests cover those nodes.
PEOPLE = ("labels", "label_demo")


@pytest.mark.parametrize("name", [n for n in nodes("simulator") if n not in ("external", "mocca", *PEOPLE)])
def test_every_simulator_node_keeps_the_oracle_contract(name):
    overrides = TURBULENCE if name == "turbulence" else []
    check_oracle(build_oracle(compose_config([f"simulator={name}", *overrides[1:]])), n=4)


def test_check_oracle_catches_randomness_seeded_from_the_whole_batch():
    box = Box(names=("a", "b"), lower=(0, 0), upper=(1, 1))

    def noisy(x, *, seed_from):  # a little Monte Carlo noise, seeded from the bytes given
        return np.array([[row.sum() + np.random.default_rng(list(seed_from(row, x))).normal() * 0.01] for row in x])

    per_input = FunctionOracle(lambda x: noisy(x, seed_from=lambda row, batch: row.view(np.uint32)), box,
                               OutputSpec(("y",)))
    check_oracle(per_input)
    per_batch = FunctionOracle(lambda x: noisy(x, seed_from=lambda row, batch: batch.view(np.uint32)), box,
                               OutputSpec(("y",)))
    with pytest.raises(ContractError, match="run alone or in another order"):
        check_oracle(per_batch)


@pytest.mark.parametrize("returns", [
    lambda x: np.zeros((len(x), 29)),  # one output short
    lambda x: np.zeros((30, len(x))),  # transposed
    lambda x: None,
])
def test_check_oracle_catches_a_simulator_whose_every_run_fails(returns):
    box = Box(names=("a", "b"), lower=(0, 0), upper=(1, 1))
    oracle = FunctionOracle(returns, box, OutputSpec(tuple(f"y{i}" for i in range(30))))
    with pytest.raises(ContractError, match="every one of the 6 queries failed"):
        check_oracle(oracle)


def test_the_checks_catch_a_broken_strategy_and_committee():
    class Repeats:
        def select(self, committee, candidates, k, *, key, pending=None, failed=None):
            return np.zeros(k, dtype=np.int64)

    with pytest.raises(ContractError, match="same point twice"):
        check_strategy(Repeats(), FixedCommittee(), smooth_oracle().space.draw(20, seed=0), 3)

    class Mutates(FixedCommittee):
        def fit(self, x, y, *, key):
            x[0, 0] = 99.0
            return self

    x = smooth_oracle().space.draw(10, seed=0)
    with pytest.raises(ContractError, match="changed the arrays"):
        check_committee(Mutates(), x, smooth_oracle().run(x).y)

    # Members fixed in the inputs' raw units: in other units they predict something else.
    with pytest.raises(ContractError, match=r"in other units \(inputs x 1e-9, outputs x 1e-20\)"):
        check_units(FixedCommittee(), x, smooth_oracle().run(x).y)

    class AbsoluteThreshold:  # counts a disagreement above 0.01 in the outputs' units, whatever they are
        def select(self, committee, candidates, k, *, key, pending=None, failed=None):
            spread = np.asarray(committee.predict_members(candidates)).std(axis=0)[:, 0]
            open_ = np.flatnonzero((spread > 0.01) & not_pending(candidates, pending))
            rest = np.flatnonzero(~(spread > 0.01) & not_pending(candidates, pending))
            return np.concatenate([open_[np.argsort(candidates[open_, 1])], rest])[:k]

    with pytest.raises(ContractError, match="in other units"):
        check_strategy(AbsoluteThreshold(), FixedCommittee(), smooth_oracle().space.draw(40, seed=0), 3)
    check_strategy(AbsoluteThreshold(), FixedCommittee(), smooth_oracle().space.draw(40, seed=0), 3, units=False)
