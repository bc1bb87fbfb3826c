"""The peer harness: every peer's loop on tiny budgets, in the store format compare reads."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import pytest

from alframe.interop.adaptive import LinearInterpolation
from alframe.interop.emukit import RefactorisingGP
from experiments import compare

peers = pytest.importorskip("experiments.bench.peers")

TINY = ["test_size=100", "candidates.size=100", "learner=mlp", "learner.members=3", "learner.hidden=[16]",
        "learner.steps_first=100", "learner.steps_warm=20", "learner.capacity=128"]
MOCCA_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mocca" / "simulations.csv"


def needs(module: str):
    return pytest.importorskip(module, reason=f"{module} (the `peers` extra) is not installed")


@pytest.fixture(scope="module")
def potential_sweep(tmp_path_factory):
    for module in ("modAL", "emukit", "adaptive"):
        needs(module)
    out = tmp_path_factory.mktemp("peers") / "potential1d"
    tools = ["modal_committee", "modal_gp", "emukit", "adaptive"]
    for tool in tools:
        result = peers.run_tool("potential1d", tool, 0, 40, TINY, out)
        assert not result["skipped"]
    return out, tools


def test_every_peer_spends_the_budget_in_the_alframe_store_format(potential_sweep):
    from alframe.loop import draw_test_set

    out, tools = potential_sweep
    runs = compare.load_runs(out)
    assert sorted(s for s, _ in runs) == sorted(tools)
    setting = peers.make_setting("potential1d", 0, 40, TINY)
    # alframe's loop draws its initial design and test set this way from the same config.
    design = setting.oracle.space.draw(20, seed=0, method=setting.cfg.initial_method)
    x_test, _ = draw_test_set(setting.oracle, 100, setting.cfg.test_seed)
    for (tool, _), ds in runs.items():
        assert ds.attrs["stop_reason"] == "budget spent", (tool, ds.attrs["stop_reason"])
        assert len(ds["ok"]) == 40 and bool(ds["ok"].all())
        n_runs = ds["n_runs"].values
        assert n_runs[0] == 20 and n_runs[-1] == 40 and np.all(np.diff(n_runs) > 0)
        np.testing.assert_array_equal(ds["x"].values[:20], design)
        np.testing.assert_array_equal(ds["x_test"].values, x_test)
        assert np.all(np.isfinite(ds["mse"].values)) and np.all(ds["fit_s"].values >= 0)
        assert np.all((ds["x"].values >= [-2, -2, 0]) & (ds["x"].values <= [2, 2, 5]))
    # A peer's model is named as a learner node compare's retrain check can build.
    retrained = compare.retrain_from_scratch(runs, metric="mse")
    assert np.all(np.isfinite(retrained["mse_from_scratch"]))
    gp = retrained.set_index("strategy").loc["modal_gp"]
    assert gp["mse_from_scratch"] == pytest.approx(gp["mse_in_loop"], rel=1e-3)


def test_a_peer_store_has_the_layout_and_attrs_of_alframe_runs(potential_sweep, tmp_path):
    from alframe.store import read_run

    out, tools = potential_sweep
    peers.run_tool("potential1d", "random", 0, 40, TINY, tmp_path)
    own = read_run(tmp_path / "random" / "seed=0" / "run.zarr")
    layout = lambda ds: {name: (ds[name].dims, ds[name].dtype, ds[name].attrs) for name in ds.variables}  # noqa: E731
    own_config = json.loads(own.attrs["config"])
    for tool in tools:
        ds = read_run(out / tool / "seed=0" / "run.zarr")
        assert set(ds.attrs) == set(own.attrs), tool
        assert layout(ds) == layout(own), tool
        config = json.loads(ds.attrs["config"])
        assert config["strategy_name"] == tool and config["simulator"] == own_config["simulator"]
        assert set(config) - {"tool"} == set(own_config) - {"strategy"}


class FailingPeer:
    """A pool peer that picks the first candidates and raises at its `fail_at`-th call."""

    def __init__(self, x, y, fail_at):
        self.calls, self.fail_at = 0, fail_at

    def _call(self):
        self.calls += 1
        if self.calls == self.fail_at:
            raise ZeroDivisionError("the peer's own bug")

    def tell(self, x, y):
        self._call()

    def ask(self, k, candidates):
        self._call()
        return candidates[:k]

    def members(self, x):
        return np.zeros((1, len(x), 1))


@pytest.mark.parametrize(("fail_at", "rounds", "runs"), [(3, 2, 30), (2, 1, 30)], ids=["in-ask", "in-tell"])
def test_a_failing_peer_ends_its_run_with_the_failure_as_stop_reason(tmp_path, fail_at, rounds, runs):
    setting = peers.make_setting("potential1d", 0, 40, TINY)
    config = peers.stored_config(setting.cfg, "failing", "a peer that fails", {"_target_": "nowhere"})
    ds = peers.run_peer(lambda x, y: FailingPeer(x, y, fail_at), setting, tmp_path / "run.zarr", config)
    assert ds.attrs["stop_reason"].startswith("peer failed: ZeroDivisionError: the peer's own bug (test_peers.py:")
    assert ds.sizes["round"] == rounds and len(ds["ok"]) == runs


def test_a_finished_run_is_not_run_again(potential_sweep):
    out, _ = potential_sweep
    assert peers.run_tool("potential1d", "modal_gp", 0, 40, TINY, out)["skipped"]


def test_summary_counts_simulations_to_passive_final_error(potential_sweep):
    out, tools = potential_sweep
    summary = peers.summarise_tools(out, metric="mse", passive="modal_gp")
    rows = {r["tool"]: r for r in summary["rows"]}
    assert set(rows) == set(tools)
    assert summary["target"] == pytest.approx(float(compare.load_runs(out)[("modal_gp", 0)]["mse"].values[-1]))
    assert rows["modal_gp"]["median_simulations"] <= 40 and rows["modal_gp"]["ratio_vs_passive"] == 1.0
    assert all(r["seconds_per_round_at_budget"] >= 0 for r in rows.values())
    table = peers.markdown(summary, "potential1d")
    assert table.count("\n| ") == len(tools) + 1


def test_emukit_gp_refactorises_on_new_data_and_its_gradients_are_right():
    needs("emukit")
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, (30, 3))
    y = (np.sin(x[:, 0]) * x[:, 1] + 0.3 * x[:, 2] ** 2)[:, None]
    model = RefactorisingGP(peers.build(peers.gp_node(3)), x, y)
    fantasy = np.vstack([x, [[0.1, 0.2, 0.3]]])
    model.set_data(fantasy, np.vstack([y, model.predict(fantasy[-1:])[0]]))
    _, var = model.predict(fantasy[-1:])
    assert var[0, 0] < 1e-4  # the fantasised point is now known
    q = rng.uniform(-1.5, 1.5, (4, 3))
    dmean, dvar = model.get_prediction_gradients(q)
    for d in range(3):
        step = np.zeros(3)
        step[d] = 1e-4
        (mp, vp), (mm, vm) = model.predict(q + step), model.predict(q - step)
        np.testing.assert_allclose((mp - mm)[:, 0] / 2e-4, dmean[:, d], rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose((vp - vm)[:, 0] / 2e-4, dvar[:, d], rtol=1e-3, atol=1e-7)


def test_linear_interpolation_is_exact_on_a_linear_function_and_fills_outside_the_hull():
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (50, 3))
    f = lambda z: (z @ [1.0, -2.0, 0.5])[:, None] + 3.0
    model = LinearInterpolation().fit(x, f(x), key=jax.random.key(0))
    inside = rng.uniform(0.3, 0.7, (20, 3))
    np.testing.assert_allclose(np.asarray(model.predict_members(inside))[0], f(inside), rtol=1e-5)
    outside = np.asarray(model.predict_members(np.array([[5.0, 5.0, 5.0]])))
    assert outside.shape == (1, 1, 1) and np.isfinite(outside).all()


def test_unknown_tools_are_named(tmp_path, capsys):
    assert peers.main(["potential1d", "--tools", "random", "nope", "--out", str(tmp_path)]) == 2
    assert "nope" in capsys.readouterr().err


@pytest.mark.skipif(not MOCCA_DATA.exists(), reason=f"MOCCA table not found: {MOCCA_DATA}")
def test_modal_committee_on_the_mocca_pool(tmp_path, monkeypatch):
    needs("modAL")
    monkeypatch.setattr(peers, "forest_node", lambda n_estimators=10: {
        "_target_": "sklearn.ensemble.RandomForestClassifier", "n_estimators": n_estimators, "n_jobs": 1})
    out = tmp_path / "mocca"
    peers.run_tool("mocca", "modal_committee", 0, 40, [], out)
    ds = compare.load_runs(out)[("modal_committee", 0)]
    assert ds.attrs["stop_reason"] == "budget spent" and ds.attrs["task"] == "classification"
    assert np.all((ds["f1"].values >= 0) & (ds["f1"].values <= 1))
    # Every query is a model of the pool, never one held out.
    assert bool(ds["ok"].all())
    setting = peers.make_setting("mocca", 0, 40, [])
    pool = {row.tobytes() for row in setting.oracle.space.values}
    assert all(row.tobytes() in pool for row in ds["x"].values)
    np.testing.assert_array_equal(ds["x_test"].values, setting.x_test)
    assert json.loads(ds.attrs["config"])["learner"]["_target_"] == "alframe.interop.modal.ModalCommittee"


@pytest.mark.skipif(not MOCCA_DATA.exists(), reason=f"MOCCA table not found: {MOCCA_DATA}")
def test_modal_uncertainty_takes_the_same_forest_kind_as_alframe(tmp_path):
    needs("modAL")
    out = tmp_path / "mocca"
    peers.run_tool("mocca", "modal_uncertainty_et", 0, 30, [], out)
    ds = compare.load_runs(out)[("modal_uncertainty_et", 0)]
    assert ds.attrs["stop_reason"] == "budget spent" and len(ds["ok"]) == 30
    learner = json.loads(ds.attrs["config"])["learner"]
    assert learner["estimator"]["_target_"] == "sklearn.ensemble.ExtraTreesClassifier"
    # alframe's MOCCA tools, passive included, fit the same kind of forest.
    for tool, overrides in peers.PROBLEMS["mocca"].alframe.items():
        expected = "learner=forest" if tool.endswith("forest") else "learner=extra_trees"
        assert expected in overrides, tool
