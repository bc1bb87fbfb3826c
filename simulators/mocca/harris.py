"""The Harris (1996; 2010 edition) catalogue of Milky Way globular clusters, as the six features.

`mwgc.dat` is fixed-width text in three parts (identifications and positions; metallicity and
photometry; velocities and structure), one line per cluster in each part. The features:

    half_light_radius [pc]           r_h [arcmin] x pi / 10800 x R_Sun [pc]
    central_surface_brightness       10^(0.4 (26.402 - mu_V))   [L_sun/pc^2]
    central_velocity_dispersion      sig_v [km/s]
    v_luminosity                     10^(-0.4 (M_V,t - 4.83))   [L_sun]
    relaxation_time                  10^lg(th) / 1e6            [Myr]
    core_radius [pc]                 r_c [arcmin] x pi / 10800 x R_Sun [pc]

A blank entry in the catalogue gives NaN in every feature made from it.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from simulators.mocca.data import FEATURES

DEFAULT_PATH = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "catalogs" / "mwgc.dat"
HARRIS_URL = "http://physwww.mcmaster.ca/~harris/mwgc.dat"
HARRIS_SHA256 = "c3b5fd4d8efd62c1e6d383b58666f25c2e219eb1fd43925b9575a180ba4841ba"

ARCMIN_TO_RAD = math.pi / 10800.0
V_SUN_ABSOLUTE = 4.83  # absolute V magnitude of the Sun
SB_ZERO_POINT = 26.402  # mu_V [mag/arcsec^2] of 1 L_sun/pc^2 in V

# (heading that opens the part, column heading it must contain, {field: (start, end)}):
# character spans of the December 2010 edition, each from the end of one column's gap to
# the start of the next, so right-aligned values of any width fall inside.
_PARTS = (
    ("Part I:", "R_Sun", {"R_Sun": (67, 73)}),
    ("Part II:", "M_V,t", {"M_V,t": (46, 54)}),
    ("Part III:", "lg(th)", {"sig_v": (35, 43), "r_c": (59, 65), "r_h": (65, 71), "mu_V": (71, 79),
                            "lg(th)": (92, 99)}),
)
_ID_SPAN = (0, 12)


class HarrisFormatError(ValueError):
    """The catalogue file does not have the expected layout; the message names file, line and field."""


@dataclasses.dataclass(frozen=True, eq=False)
class Clusters:
    """Observed clusters and their features.

    Fields:
        names: (n,) cluster names without spaces ("NGC104"), as the source study spells them.
        ids: (n,) the catalogue's own identifiers ("NGC 104").
        features: (n, 6) float64 in `FEATURES` order; NaN where the catalogue has no entry.
        raw: the catalogue columns read, each (n,) float64 with NaN for blanks.
    """

    names: tuple[str, ...]
    ids: tuple[str, ...]
    features: np.ndarray
    raw: dict[str, np.ndarray]

    def complete(self, names: tuple[str, ...] = FEATURES) -> np.ndarray:
        """(n,) bool: clusters with every feature in `names` available."""
        cols = [FEATURES.index(n) for n in names]
        return np.all(np.isfinite(self.features[:, cols]), axis=1)


def _part_lines(lines: list[str], heading: str, column: str, source: str) -> list[tuple[int, str]]:
    """(line number, text) of the data lines of the part that opens with `heading`."""
    try:
        start = next(i for i, line in enumerate(lines) if line.strip().startswith(heading))
    except StopIteration:
        raise HarrisFormatError(f"{source}: no section starting with {heading!r}") from None
    header = next((i for i in range(start, len(lines)) if lines[i].strip().startswith("ID")), None)
    if header is None or column not in lines[header]:
        raise HarrisFormatError(f"{source}: section {heading!r} has no column heading line with {column!r}")
    rows = []
    for i in range(header + 1, len(lines)):
        line = lines[i]
        if line.startswith("_"):
            break
        if line.strip():
            rows.append((i + 1, line))
    return rows


def _value(line: str, span: tuple[int, int], field: str, source: str, number: int) -> float:
    text = line[span[0]:span[1]].strip()
    if not text:
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise HarrisFormatError(f"{source}: line {number}, field {field!r}: cannot parse {text!r}") from None


def read_raw(path: str | Path | None = None) -> tuple[tuple[str, ...], dict[str, np.ndarray]]:
    """The catalogue columns the features need, matched across the three parts by cluster id.

    Returns (ids (n,), {field: (n,) float64}) for fields R_Sun, M_V,t, sig_v, r_c, r_h, mu_V,
    lg(th), in the order of part I. Raises HarrisFormatError if a part is missing, a value does
    not parse, or a part lists a cluster the first part does not.
    """
    path = Path(path) if path is not None else DEFAULT_PATH
    source = str(path)
    try:
        lines = path.read_text(encoding="latin-1").splitlines()
    except FileNotFoundError:
        raise HarrisFormatError(f"{source}: file not found") from None
    ids: list[str] = []
    raw: dict[str, dict[str, float]] = {}
    for part_index, (heading, column, fields) in enumerate(_PARTS):
        seen = set()
        for number, line in _part_lines(lines, heading, column, source):
            cluster = line[_ID_SPAN[0]:_ID_SPAN[1]].strip()
            if part_index == 0:
                ids.append(cluster)
                raw[cluster] = {}
            elif cluster not in raw:
                raise HarrisFormatError(f"{source}: line {number}: cluster {cluster!r} of {heading!r} is not in part I")
            if cluster in seen:
                raise HarrisFormatError(f"{source}: line {number}: cluster {cluster!r} listed twice in {heading!r}")
            seen.add(cluster)
            for field, span in fields.items():
                raw[cluster][field] = _value(line, span, field, source, number)
    all_fields = [f for _, _, fields in _PARTS for f in fields]
    return tuple(ids), {f: np.array([raw[c].get(f, math.nan) for c in ids]) for f in all_fields}


def harris_features(raw: dict[str, np.ndarray]) -> np.ndarray:
    """The six features (n, 6) in `FEATURES` order from the catalogue columns (each (n,))."""
    parsec = raw["R_Sun"] * 1e3 * ARCMIN_TO_RAD
    columns = {
        "half_light_radius": raw["r_h"] * parsec,
        "central_surface_brightness": 10.0 ** (0.4 * (SB_ZERO_POINT - raw["mu_V"])),
        "central_velocity_dispersion": raw["sig_v"],
        "v_luminosity": 10.0 ** (-0.4 * (raw["M_V,t"] - V_SUN_ABSOLUTE)),
        "relaxation_time": 10.0 ** raw["lg(th)"] / 1e6,
        "core_radius": raw["r_c"] * parsec,
    }
    return np.stack([columns[name] for name in FEATURES], axis=1)


def read_harris(path: str | Path | None = None) -> Clusters:
    """Every cluster of the catalogue (the shared `mwgc.dat` by default) with its features."""
    ids, raw = read_raw(path)
    return Clusters(names=tuple(i.replace(" ", "") for i in ids), ids=ids, features=harris_features(raw), raw=raw)
