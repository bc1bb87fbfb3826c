"""Label Studio hand-over: tasks out, annotations (JSON and JSON-MIN exports) back in, one commit."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from experiments.cli import open_campaign
from experiments.label_studio import (
    CANT_TELL,
    CANT_TELL_REASON,
    QUERY_KEY,
    LabelStudioError,
    export_tasks,
    import_annotations,
    labeling_config,
)

CLASSES = ("spiral", "elliptical")


def write_items(folder: Path, n: int = 40) -> Path:
    """A feature-only pool: the class is whether size > colour."""
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(n, 2))
    lines = ["item,size,colour"] + [f"g{i},{a:.6f},{b:.6f}" for i, (a, b) in enumerate(x)]
    path = folder / "items.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def truth(task: dict) -> str:
    return CLASSES[0] if task["data"]["size"] > task["data"]["colour"] else CLASSES[1]


def settings(items: Path) -> list[str]:
    return ["simulator=labels", f"simulator.path={items}", "simulator.features=[size,colour]",
            f"simulator.classes=[{','.join(CLASSES)}]", "learner=extra_trees", "strategy=qbc_vote_entropy",
            "budget=12", "n_initial=4", "progress=false"]


def annotated(task: dict, choice: str, *, cancelled: bool = False, when: str = "2026-01-01T00:00:00Z") -> dict:
    """A task as Label Studio's JSON export writes it, with one annotation."""
    return {"id": task["data"][QUERY_KEY] + 100, "data": task["data"], "annotations": [{
        "id": 1, "was_cancelled": cancelled, "created_at": when, "updated_at": when,
        "result": [{"from_name": "label", "to_name": "size", "type": "choices", "value": {"choices": [choice]}}]}]}


def test_tasks_go_out_and_annotations_come_back_in_one_commit(tmp_path):
    items = write_items(tmp_path)
    run = tmp_path / "run"
    with open_campaign(run, settings(items), create=True) as campaign:
        tasks, summary = export_tasks(campaign, 4)
    assert [t["data"][QUERY_KEY] for t in tasks] == [0, 1, 2, 3] and "initial design" in summary
    assert set(tasks[0]["data"]) == {QUERY_KEY, "item", "size", "colour"}
    export = [annotated(tasks[0], truth(tasks[0])),
              annotated(tasks[1], CANT_TELL),
              {"id": 7, "data": tasks[2]["data"], "label": truth(tasks[2])},  # JSON-MIN
              annotated(tasks[3], truth(tasks[3]), cancelled=True)]         # skipped: stays pending
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export))
    with open_campaign(run) as campaign:
        line = import_annotations(campaign, path)
        assert sorted(campaign.state["pending"]) == [3]
    assert line == "told 3 labels (1 can't tell); 1 tasks without an annotation stay pending"
    data = xr.open_zarr(run / "run.zarr")
    assert data.sizes["sample"] == 3
    assert data["ok"].values.tolist() == [True, False, True]
    assert data["error"].values[1] == CANT_TELL_REASON
    labels = [CLASSES[int(v)] for v in data["y"].values[[0, 2], 0]]
    assert labels == [truth(tasks[0]), truth(tasks[2])]
    # Until the skipped design point is labelled the committee cannot fit, so nothing new goes out.
    with open_campaign(run) as campaign:
        again, note = export_tasks(campaign, 2)
    assert again == [] and "waiting for the initial design" in note
    later = tmp_path / "later.json"
    later.write_text(json.dumps([annotated(tasks[3], truth(tasks[3]))]))
    with open_campaign(run) as campaign:
        assert import_annotations(campaign, later) == "told 1 labels"
        chosen, note = export_tasks(campaign, 3)
    assert [t["data"][QUERY_KEY] for t in chosen] == [4, 5, 6] and "chosen by round" in note


def test_the_latest_annotation_counts(tmp_path):
    items = write_items(tmp_path)
    with open_campaign(tmp_path / "run", settings(items), create=True) as campaign:
        (task,), _ = export_tasks(campaign, 1)
        task = annotated(task, CLASSES[0], when="2026-01-01T00:00:00Z")
        task["annotations"].append({**task["annotations"][0], "id": 2, "updated_at": "2026-02-01T00:00:00Z",
                                    "result": [{"type": "choices", "value": {"choices": [CLASSES[1]]}}]})
        (tmp_path / "e.json").write_text(json.dumps([task]))
        import_annotations(campaign, tmp_path / "e.json")
    assert xr.open_zarr(tmp_path / "run" / "run.zarr")["y"].values[0, 0] == 1


@pytest.mark.parametrize(("edit", "message"), [
    (lambda ts: "not json", r"export.json: not JSON"),
    (lambda ts: {"tasks": ts}, r"a list of tasks, got a dict"),
    (lambda ts: [{"data": {"item": "g1"}}], r"task 1 \(id \?\): no integer 'alframe_query_id'"),
    (lambda ts: [annotated(ts[0], "barred spiral")], r"task 1 \(id 100\): 'barred spiral' is not a class"),
    (lambda ts: [annotated(ts[0], CLASSES[0]), annotated(ts[0], CLASSES[1])], r"query 0 appears twice"),
    (lambda ts: [annotated({"data": {**ts[0]["data"], QUERY_KEY: 99}}, CLASSES[0])], r"query 99 was never asked"),
    (lambda ts: [{**annotated(ts[0], CLASSES[0]), "annotations": [{"result": [
        {"type": "choices", "value": {"choices": list(CLASSES)}}]}]}], r"2 choices"),
])
def test_a_bad_export_is_refused_whole_with_one_line(tmp_path, edit, message):
    items = write_items(tmp_path)
    run = tmp_path / "run"
    with open_campaign(run, settings(items), create=True) as campaign:
        tasks, _ = export_tasks(campaign, 2)
    content = edit(tasks)
    good = annotated(tasks[1], CLASSES[0])
    path = tmp_path / "export.json"
    path.write_text(content if isinstance(content, str) else json.dumps(
        [*content, good] if isinstance(content, list) else content))
    with open_campaign(run) as campaign:
        with pytest.raises(LabelStudioError, match=message) as info:
            import_annotations(campaign, path)
        assert "\n" not in str(info.value)
        assert sorted(campaign.state["pending"]) == [0, 1]  # nothing told, the good task included
    assert not (run / "run.zarr").exists() or xr.open_zarr(run / "run.zarr").sizes.get("sample", 0) == 0


def test_a_task_told_twice_is_refused(tmp_path):
    items = write_items(tmp_path)
    run = tmp_path / "run"
    with open_campaign(run, settings(items), create=True) as campaign:
        tasks, _ = export_tasks(campaign, 1)
    path = tmp_path / "export.json"
    path.write_text(json.dumps([annotated(tasks[0], CLASSES[0])]))
    with open_campaign(run) as campaign:
        import_annotations(campaign, path)
    with open_campaign(run) as campaign, pytest.raises(LabelStudioError, match="query 0 was told already"):
        import_annotations(campaign, path)


def test_the_labelling_config_is_label_studio_xml():
    image = ET.fromstring(labeling_config(CLASSES, image=True))
    assert image.find("Image").get("value") == "$image"
    choices = image.find("Choices")
    assert choices.get("name") == "label" and choices.get("toName") == "item" and choices.get("choice") == "single"
    assert [c.get("value") for c in choices] == [*CLASSES, CANT_TELL]
    text = ET.fromstring(labeling_config(CLASSES, image=False, features=["size", "colour"]))
    assert [t.get("name") for t in text.findall("Text")] == ["size", "colour"]
    assert text.find("Choices").get("toName") == "size"


def test_the_command_line_writes_tasks_and_config_and_reads_an_export(tmp_path, capsys):
    from experiments.cli import main

    items = write_items(tmp_path)
    run, out = tmp_path / "run", tmp_path / "queue" / "tasks.json"
    out.parent.mkdir()
    assert main(["label-studio", "export", str(run), "-n", "2", "-o", str(out), *settings(items)]) == 0
    assert "wrote 2 tasks" in capsys.readouterr().err
    tasks = json.loads(out.read_text())
    ET.fromstring((out.parent / "labeling_config.xml").read_text())
    export = tmp_path / "export.json"
    export.write_text(json.dumps([annotated(t, truth(t)) for t in tasks]))
    assert main(["label-studio", "import", str(run), str(export)]) == 0
    assert capsys.readouterr().err.startswith("alframe: told 2 labels; 2 runs (0 failed)")
    assert main(["label-studio", "import", str(run), str(export)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "query 0 was told already" in err
