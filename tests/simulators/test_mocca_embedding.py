"""MOCCA models in a t-SNE map: the `embed` subcommand, with a run's queried models marked and
the Harris clusters placed; skipped where the shared data are missing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from alframe.store import write_zarr
from simulators.mocca import FEATURES, MoccaDataError, load_models
from simulators.mocca.__main__ import main as cli
from simulators.mocca.embedding import queried_rows
from simulators.mocca.harris import DEFAULT_PATH as HARRIS_PATH

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
MODELS = DATA / "mocca" / "simulations.csv"


@pytest.fixture(scope="module")
def table():
    for path in (MODELS, HARRIS_PATH):
        if not path.exists():
            pytest.skip(f"MOCCA data not found: {path}")
    return load_models()


def fake_store(path: Path, x: np.ndarray, names=FEATURES) -> Path:
    """A store holding runs at `x`, as a MOCCA run writes them (inputs, outputs, config)."""
    n = len(x)
    config = {"simulator": {"_target_": "simulators.mocca.make_oracle", "relaxation_time": "harris",
                            "velocity_dispersion": True, "path": None}, "strategy_name": "qbc"}
    ds = xr.Dataset({"x": (("sample", "input"), x), "y": (("sample", "output"), np.zeros((n, 1))),
                     "ok": ("sample", np.ones(n, bool)), "round_of": ("sample", np.zeros(n, np.int32))},
                    coords={"input": np.array(names, dtype=object), "output": np.array(["bhs"], dtype=object)},
                    attrs={"config": json.dumps(config), "seed": 0, "task": "classification"})
    write_zarr(ds, path / "run.zarr", mode="w")
    return path


def test_embed_maps_the_models_marks_the_queried_ones_and_places_harris(table, tmp_path, capsys):
    rows = np.random.default_rng(0).choice(len(table), 25, replace=False)
    store = fake_store(tmp_path / "run", table.features[rows])
    out = tmp_path / "out"
    assert cli(["embed", "--store", str(store), "--out-dir", str(out)]) == 0
    line = capsys.readouterr().out
    assert line.startswith("1289 models (162 BHS), 25 queried by the run marked, ") and "in the t-SNE map" in line
    assert (out / "embedding.png").read_bytes().startswith(b"\x89PNG")
    scores = json.loads((out / "embedding.json").read_text())
    assert scores["models"] == 1289 and scores["queried"] == 25
    assert scores["knn_accuracy_map"] > scores["chance_knn_accuracy"]
    assert scores["knn_accuracy_features"] > scores["chance_knn_accuracy"]
    assert scores["harris_placed"] == len(scores["harris"]) > 40
    assert all(0.0 <= h["bhs_share_of_nearest_models"] <= 1.0 for h in scores["harris"])


def test_a_store_of_other_inputs_or_models_is_refused(table, tmp_path):
    with pytest.raises(MoccaDataError, match="are not the table's features"):
        queried_rows(table, fake_store(tmp_path / "a", table.features[:3, :5], names=FEATURES[:5]))
    with pytest.raises(MoccaDataError, match="none of its 3 runs is a model of"):
        queried_rows(table, fake_store(tmp_path / "b", table.features[:3] * 1.5))
