"""Hand a labelling campaign's queue to Label Studio and take its annotations back.

    alframe label-studio export RUN_DIR -n K [-o tasks.json] [--image-prefix P] [OVERRIDES...]
    alframe label-studio import RUN_DIR export.json

`export` asks the committee for K items, exactly as `alframe ask` does (they become pending),
and writes them as Label Studio tasks: a JSON list of `{"data": {...}}` whose data holds
`alframe_query_id`, the item's name and either `image` (a URL Label Studio can open) or one
field per feature. Beside it, `labeling_config.xml` is the project's labelling interface: the
image (or the features as text) and one choice per class, plus "can't tell". Images are
named by `--image-prefix` followed by the picture's absolute path without its leading slash;
the default prefix `/data/local-files/?d=` serves them through Label Studio's local-file
storage with `LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true` and
`LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=/`.

`import` reads Label Studio's JSON export (a list of tasks, each with its `annotations`, whose
`result` holds a `choices` value) or its JSON-MIN export (one flat object per task) and tells
every annotated task in one commit. A task's latest annotation counts; annotations that were
skipped (`was_cancelled`) leave the item pending, so it can be exported again; "can't tell"
is recorded as a failed run with that reason, never as a label. Any bad task (not exported
from this run, told already, a choice that is not a class, two choices) refuses the whole
file with one line naming the task, and nothing is told.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np

from alframe.labels import ItemPool
from alframe.oracle import Outcome
from experiments.cli import Campaign, CampaignError, ask_queries, tell_outcome

CANT_TELL = "can't tell"
CANT_TELL_REASON = "the labeller could not tell (Label Studio)"
QUERY_KEY = "alframe_query_id"
DEFAULT_IMAGE_PREFIX = "/data/local-files/?d="
CHOICES_NAME = "label"


class LabelStudioError(ValueError):
    """A Label Studio file alframe cannot use; the message names the file and the task."""


def _pool(campaign: Campaign) -> ItemPool:
    if not isinstance(campaign.oracle, ItemPool):
        raise CampaignError(f"{campaign.run_dir}: Label Studio labels a pool of items (simulator: "
                            f"alframe.labels.item_pool); this run's simulator is {type(campaign.oracle).__name__}")
    return campaign.oracle


def labeling_config(classes: Sequence[str], *, image: bool, features: Sequence[str] = ()) -> str:
    """The Label Studio labelling interface for `classes`: the item's image (or its features
    as text) and one single choice per class, plus "can't tell"."""
    if image:
        shown, target = '  <Image name="item" value="$image"/>', "item"
    else:
        shown = "\n".join(f'  <Text name="{name}" value={quoteattr(f"{name}: ${name}")}/>'
                          for name in features)
        target = features[0]
    choices = "\n".join(f"    <Choice value={quoteattr(c)}/>" for c in (*classes, CANT_TELL))
    return (f"<View>\n  <Header value=\"$item\"/>\n{shown}\n"
            f"  <Choices name=\"{CHOICES_NAME}\" toName=\"{target}\" choice=\"single\" required=\"true\">\n"
            f"{choices}\n  </Choices>\n</View>\n")


def export_tasks(campaign: Campaign, n: int, *, image_prefix: str = DEFAULT_IMAGE_PREFIX) -> tuple[list[dict], str]:
    """Ask for up to n items and return them as Label Studio tasks, with `ask`'s summary line."""
    pool = _pool(campaign)
    rows, summary = ask_queries(campaign, n)
    tasks = []
    for qid, *_ in rows:
        row = pool.row_of(campaign.state["pending"][int(qid)]["x"])
        data: dict[str, Any] = {QUERY_KEY: int(qid), "item": pool.item_name(row)}
        if pool.images is not None:
            data["image"] = image_prefix + str(Path(pool.images[row]).resolve()).lstrip("/")
        else:
            data.update(pool.features(row))
        tasks.append({"data": data})
    return tasks, summary


def _choice(task: dict, where: str) -> str | None:
    """The class chosen in a task (None: no usable annotation yet), JSON or JSON-MIN."""
    if "annotations" not in task:  # JSON-MIN: the choice sits beside the data
        value = task.get(CHOICES_NAME)
        if isinstance(value, dict):  # JSON-MIN writes {"choices": [...]} for multiple choices
            value = value.get("choices")
        if isinstance(value, list):
            if len(value) != 1:
                raise LabelStudioError(f"{where}: {len(value)} choices {value}; one class per item")
            value = value[0]
        if value is not None and not isinstance(value, str):
            raise LabelStudioError(f"{where}: the choice {value!r} is not a class name")
        return value
    annotations = [a for a in task["annotations"] if isinstance(a, dict) and not a.get("was_cancelled")]
    if not annotations:
        return None
    latest = max(annotations, key=lambda a: (str(a.get("updated_at") or a.get("created_at") or ""), a.get("id") or 0))
    chosen = [c for r in latest.get("result") or [] if r.get("type") == "choices"
              for c in (r.get("value") or {}).get("choices") or []]
    if not chosen:
        return None
    if len(chosen) != 1:
        raise LabelStudioError(f"{where}: {len(chosen)} choices {chosen}; one class per item")
    return chosen[0]


def read_annotations(path: str | Path, campaign: Campaign) -> tuple[list[int], np.ndarray, Outcome, int]:
    """The annotated tasks of a Label Studio export, every task checked: (ids, points (k, dim),
    outcome, tasks left pending)."""
    path = Path(path)
    try:
        tasks = json.loads(path.read_text())
    except OSError as exc:
        raise LabelStudioError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LabelStudioError(f"{path}: not JSON ({str(exc).splitlines()[0]})") from None
    if not isinstance(tasks, list):
        raise LabelStudioError(f"{path}: a Label Studio export is a list of tasks, got a {type(tasks).__name__}")
    classes = list(_pool(campaign).outputs.classes)
    pending, seen = campaign.state["pending"], {}
    ids, ys, oks, errors, skipped = [], [], [], [], 0
    for number, task in enumerate(tasks, start=1):
        if not isinstance(task, dict):
            raise LabelStudioError(f"{path}: task {number} is not an object")
        data = task.get("data", task)
        where = f"{path}: task {number} (id {task.get('id', '?')})"
        qid = data.get(QUERY_KEY) if isinstance(data, dict) else None
        if isinstance(qid, bool) or not isinstance(qid, int):
            raise LabelStudioError(f"{where}: no integer {QUERY_KEY!r} in its data; export tasks with "
                                   "`alframe label-studio export`")
        if qid in seen:
            raise LabelStudioError(f"{where}: query {qid} appears twice (also task {seen[qid]})")
        seen[qid] = number
        if qid not in pending:
            why = "was told already" if 0 <= qid < campaign.state["next_id"] else "was never asked"
            raise LabelStudioError(f"{where}: query {qid} {why}")
        chosen = _choice(task, where)
        if chosen is None:
            skipped += 1
            continue
        if chosen != CANT_TELL and chosen not in classes:
            raise LabelStudioError(f"{where}: {chosen!r} is not a class; the classes are {classes} "
                                   f"(or {CANT_TELL!r})")
        ok = chosen != CANT_TELL
        ids.append(qid)
        ys.append([classes.index(chosen) if ok else np.nan])
        oks.append(ok)
        errors.append("" if ok else CANT_TELL_REASON)
    points = np.array([pending[qid]["x"] for qid in ids], dtype=np.float64).reshape(len(ids), campaign.space.dim)
    outcome = Outcome(np.array(ys, dtype=np.float64).reshape(len(ids), 1), np.array(oks, dtype=bool),
                      np.array(errors, dtype=object), np.full(len(ids), np.nan))
    return ids, points, outcome, skipped


def import_annotations(campaign: Campaign, path: str | Path) -> str:
    """Tell the annotated tasks of `path` in one commit and refit; a one-line summary."""
    if campaign.recorder.finished:
        raise CampaignError(f"{campaign.run_dir}: the run has ended ({campaign.recorder.data.attrs['stop_reason']})")
    ids, points, outcome, skipped = read_annotations(path, campaign)
    if ids:
        tell_outcome(campaign, ids, points, outcome)
        campaign.refit_if_due()
    if not campaign.recorder.finished:
        campaign.save()
    failed = int((~outcome.ok).sum())
    return (f"told {len(ids)} labels" + (f" ({failed} can't tell)" if failed else "")
            + (f"; {skipped} tasks without an annotation stay pending" if skipped else ""))
