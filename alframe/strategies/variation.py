"""Where the committee's answer changes fast: a weight on the inputs whose error matters most.

Expected variance reduction (`alframe.strategies.reduction`) sums the committee's doubt over a
reference set of inputs, every input counting the same. A Gaussian process's doubt follows its
fitted length scales, which are the same over the whole box; a simulator's are not: a narrow
well, a steep wall or a fast oscillation over part of the box is where a model's error
concentrates, while a flat plateau is learnt from a few runs. `LocalVariation` weights each
reference input by how much the committee's consensus changes within a short step of it along
each input axis, so that the design integrates the doubt where the answer varies. For a
process whose amplitude varies over the box this is the variance the process would have if its
amplitude were local: it scales as the square of the local change.

Half of each weight is kept equal (`floor=1`, as `strategy=qbc_variation` uses it) so that a
region the committee has not yet seen vary is never written off: on the benchmark suite's 13
regression tuning problems the weights alone (`floor=0`) saved no more runs than equal weights,
half and half saved more (see the README's "How the strategy was chosen").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from alframe.learners.base import Committee, predict_mean
from alframe.strategies.diversity import unit_range, unit_scale


@dataclass(frozen=True)
class LocalVariation:
    """Reference weights from the committee's local change, mean 1.

    weight(r) is proportional to floor + v(r) / mean(v), where v(r) is the sum over inputs j and
    outputs o of (mean_o(r + h_j e_j) - mean_o(r))^2 / var_o, h_j is `step` times input j's range
    (towards the inside of the candidates' range; for a committee that learns in a space's own
    coordinates, `step` of the space's unit cube, so a log-scale input moves by a share of its
    decades), mean_o the committee's consensus on output (or class probability) o and var_o
    that consensus's variance over the reference set, so no output dominates by its units.
    Costs (dim + 1) x r consensus predictions.

    Args:
        step: the step along each input, as a fraction of the candidates' range of it.
        floor: added to the variation (itself normalised to mean 1) before normalising again:
            0 weights by the variation alone, 1 half by it and half equally, larger values
            move towards equal weights.
    """

    step: float = 0.1
    floor: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.step <= 0.5:
            raise ValueError(f"LocalVariation step must be in (0, 0.5], got {self.step}")
        if self.floor < 0:
            raise ValueError(f"LocalVariation floor must be >= 0, got {self.floor}")

    def __call__(self, committee: Committee, reference: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """Weights (r,) for reference points (r, dim), steps scaled to `candidates` (n, dim)."""
        reference = np.asarray(reference, dtype=np.float64)
        r = len(reference)
        to_unit, from_unit = unit_map(committee, candidates)
        unit = to_unit(reference)
        # Step towards the middle of the range, so every probe stays where candidates are drawn.
        direction = np.where(unit < 0.5, 1.0, -1.0)
        probes = [reference]
        for j in np.flatnonzero(np.ptp(candidates, axis=0) > 0):  # an input held fixed has no step
            moved = unit.copy()
            moved[:, j] += direction[:, j] * self.step
            probes.append(from_unit(moved))
        mean = predict_mean(committee, np.vstack(probes)).reshape(len(probes), r, -1)
        spread = mean[0].var(axis=0)
        live = spread > 0
        if not live.any():
            return np.ones(r)
        change = np.sum((mean[1:, :, live] - mean[0][None, :, live]) ** 2 / spread[live], axis=(0, 2))
        total = change.mean()
        if not np.isfinite(total) or total <= 0:
            return np.ones(r)
        weight = change / total + self.floor
        return weight / weight.mean()


def unit_map(committee: Committee, candidates: np.ndarray) -> tuple[Callable[[np.ndarray], np.ndarray],
                                                                     Callable[[np.ndarray], np.ndarray]]:
    """(to_unit, from_unit): points (n, dim) to the unit cube and back. A committee that learns in
    a space's own coordinates (`alframe.learners.SpaceCoordinates`) gives the space's maps (log10
    of log-scale inputs, whole numbers for integer ones); otherwise each input is scaled to the
    candidates' (n, dim) range."""
    space = getattr(committee, "space", None)
    if space is not None and hasattr(space, "to_unit") and hasattr(space, "from_unit"):
        return space.to_unit, space.from_unit
    lo, width = unit_range(candidates)
    return (lambda x: unit_scale(x, candidates)), (lambda u: lo + u * width)
