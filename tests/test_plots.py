"""The map plots draw every kind of mark without a warning."""

from __future__ import annotations

import warnings

import numpy as np

from alframe import plots


def test_an_embedding_map_draws_hollow_and_unfilled_marks_without_warnings(tmp_path):
    rng = np.random.default_rng(0)
    points = rng.normal(size=(50, 2))
    panel = plots.Panel(points, rng.uniform(size=50), title="runs", colour_label="y",
                        marks=(plots.Mark("failed", points[:3], marker="x", colour="red"),
                               plots.Mark("queried", points[3:6], marker="o", colour="black"),
                               plots.Mark("placed", points[6:9], marker="*", colour=(0.1, 0.2, 0.3))))
    path = tmp_path / "map.png"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plots.embedding_map([panel], path)
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 5000
