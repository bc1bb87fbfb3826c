"""A simulator alframe does not run itself: declared by its inputs and outputs only.

Campaigns driven by `alframe ask` / `alframe tell` (a SLURM job array, a workflow manager,
a person at a microscope) need the shape of the problem, not a callable: the input names and
bounds, the output names and the task. Its test set, if any, is a labelled CSV
(`labelled_csv`); without one, a run records the committee's disagreement instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import numpy as np

from alframe.oracle import Outcome, OutputSpec
from alframe.space import Box
from alframe.tables import read_table


class ExternalRunError(RuntimeError):
    """A declared simulator was asked to run inside alframe."""


class ExternalSimulator:
    """The oracle of a simulator run outside alframe.

    Args:
        inputs: {name: [lower, upper]} for each input, in order.
        outputs: output names (regression), or the label's name (classification).
        task: "regression" or "classification".
        classes: class names, for classification.
        log: names of inputs spanned on a log scale.
        periodic, integer, categorical: names of inputs of those kinds (see `alframe.space.Box`).
    """

    def __init__(self, inputs: Mapping[str, Sequence[float]], outputs: Sequence[str] = ("y",),
                 task: str = "regression", classes: Sequence[str] | None = None, log: Sequence[str] = (),
                 periodic: Sequence[str] = (), integer: Sequence[str] = (), categorical: Sequence[str] = ()):
        if not inputs:
            raise ValueError("an ExternalSimulator needs at least one input: {name: [lower, upper]}")
        for name, bounds in inputs.items():
            if len(bounds) != 2:
                raise ValueError(f"input {name!r}: bounds must be [lower, upper], got {list(bounds)!r}")
        self.space = Box(names=tuple(inputs), lower=tuple(float(b[0]) for b in inputs.values()),
                         upper=tuple(float(b[1]) for b in inputs.values()), log=tuple(log),
                         periodic=tuple(periodic), integer=tuple(integer), categorical=tuple(categorical))
        self.outputs = OutputSpec(names=tuple(outputs), task=task, classes=None if classes is None else tuple(classes))

    def run(self, queries: np.ndarray) -> Outcome:
        raise ExternalRunError("this simulator runs outside alframe: drive it with `alframe ask` and `alframe tell`")


def labelled_csv(path: str, inputs: Sequence[str], outputs: Sequence[str],
                 classes: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A test set from a CSV with one column per input and output name: x (n, n_inputs),
    y (n, n_outputs) (labels as class indices when `classes` is given, by name or index)."""
    table = read_table(path, [*inputs, *outputs], classes={outputs[0]: classes} if classes else None)
    x = np.column_stack([table[name] for name in inputs])
    y = np.column_stack([table[name] for name in outputs])
    return x, y
