"""The MOCCA model table: six observables per simulated cluster and its black-hole-subsystem label.

The table is `simulations.csv` of the MOCCA Survey Database I classification study (Askar,
Askar, Pasquato & Giersz 2019), read from the shared data folder, from any path, or fetched
from its public URL and checked by sha256 when no local copy exists.

Features (columns of `MoccaTable.features`, in `FEATURES` order):

    half_light_radius            [pc]        Observational Half-Light Radius
    central_surface_brightness   [L_sun/pc2] Central Surface Brightness Total x L_V / L_total(12 Gyr)
    central_velocity_dispersion  [km/s]      Central Velocity Dispersion (projected)
    v_luminosity                 [L_sun]     Total V-band luminosity
    relaxation_time              [Myr]       Harris-catalogue estimate from L_V and r_h (default),
                                             or Half-Mass Relaxation Time
    core_radius                  [pc]        Observational Core Radius

Label: 1 (the model hosts a BH subsystem) when Single Black Holes + 2 x Binary Black Holes +
Black Hole Other Count exceeds the threshold (15), else 0.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import os
import urllib.request
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from alframe.atomic import write_atomically

FEATURES: tuple[str, ...] = (
    "half_light_radius",
    "central_surface_brightness",
    "central_velocity_dispersion",
    "v_luminosity",
    "relaxation_time",
    "core_radius",
)
VELOCITY_FEATURE = "central_velocity_dispersion"

# The column names of the source's catalogue tables (paper_predictions_harris*.csv).
CATALOG_COLUMNS: dict[str, str] = {
    "half_light_radius": "Observational Half-Light Radius",
    "central_surface_brightness": "Central Surface Brightness",
    "central_velocity_dispersion": "Central Velocity Dispersion",
    "v_luminosity": "Total V-band luminosity",
    "relaxation_time": "Half-Mass Relaxation Time",
    "core_radius": "Observational Core Radius",
}
UNITS: dict[str, str] = {
    "half_light_radius": "pc",
    "central_surface_brightness": "L_sun/pc^2",
    "central_velocity_dispersion": "km/s",
    "v_luminosity": "L_sun",
    "relaxation_time": "Myr",
    "core_radius": "pc",
}

# Columns of simulations.csv the features and the label are made from.
R_H = "Observational Half-Light Radius"
R_C = "Observational Core Radius"
SB_TOTAL = "Central Surface Brightness Total"
L_TOTAL = "Total Luminosity of Cluster at 12 Gyrs"
L_V = "Total V-band luminosity"
SIGMA = "Central Velocity Dispersion"
T_RH = "Half-Mass Relaxation Time"
SINGLE_BH = "Single Black Holes"
BINARY_BH = "Binary Black Holes"
OTHER_BH = "Black Hole Other Count"
FALLBACK = "Fallback Enabled"
REQUIRED_COLUMNS = (R_H, R_C, SB_TOTAL, L_TOTAL, L_V, SIGMA, T_RH, SINGLE_BH, BINARY_BH, OTHER_BH, FALLBACK)

DATA_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "mocca"
DEFAULT_PATH = DATA_DIR / "simulations.csv"
SOURCE_COMMIT = "8b768a865349f2916b5ae866e8457ace2a818fb8"
DEFAULT_URL = f"https://raw.githubusercontent.com/ammaraskar/black-holes-black-boxes/{SOURCE_COMMIT}/simulations.csv"
DEFAULT_SHA256 = "f6f02444bfb67be52ae1369923b0d30d2d9b4285a2f975856667629120c01c3e"
BHS_THRESHOLD = 15.0
CLASSES = ("no_bhs", "bhs")

RelaxationTime = Literal["harris", "half_mass"]


class MoccaDataError(ValueError):
    """A MOCCA table cannot be read; the message names the file, field and value."""


class ChecksumError(MoccaDataError):
    """A fetched file's sha256 is not the expected one."""


@dataclasses.dataclass(frozen=True, eq=False)
class MoccaTable:
    """MOCCA models as arrays.

    Fields:
        features: (n, n_features) float64, columns in the order of `names`.
        labels: (n,) int64, 1 where the model hosts a BH subsystem.
        fallback: (n,) bool, whether black-hole natal kicks had fallback enabled.
        rows: (n,) int64, each model's row in the source file (0 = first data row).
        names: the feature names, a subset of `FEATURES` in its order.
        source: the file the table was read from.
    """

    features: np.ndarray
    labels: np.ndarray
    fallback: np.ndarray
    rows: np.ndarray
    names: tuple[str, ...]
    source: str

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def ids(self) -> tuple[str, ...]:
        """One id per model, `model-<row>`."""
        return tuple(f"model-{r}" for r in self.rows)

    def take(self, rows: np.ndarray) -> "MoccaTable":
        """The models at positions `rows` (k,) of this table."""
        rows = np.asarray(rows, dtype=np.int64)
        return dataclasses.replace(self, features=self.features[rows], labels=self.labels[rows],
                                   fallback=self.fallback[rows], rows=self.rows[rows])


def harris_relaxation_time(v_luminosity: np.ndarray, half_light_radius: np.ndarray) -> np.ndarray:
    """Median relaxation time [Myr] as the Harris catalogue estimates it, (n,) -> (n,).

    t = 2.055e6 yr / ln(0.4 N) x 3 x M^0.5 x r_h^1.5, with M = 2 L_V [M_sun] (mass-to-light
    ratio 2), N = M / (1/3 M_sun) stars and r_h in pc.
    """
    mass = 2.0 * np.asarray(v_luminosity, dtype=np.float64)
    n_stars = mass / (1.0 / 3.0)
    years = 2.055e6 / np.log(0.4 * n_stars) * 3.0 * np.sqrt(mass) * np.asarray(half_light_radius, np.float64) ** 1.5
    return years / 1e6


def sha256_of(data: bytes) -> str:
    """Hex sha256 digest of `data`."""
    return hashlib.sha256(data).hexdigest()


def fetch(url: str, sha256: str, destination: Path) -> Path:
    """Download `url` to `destination` unless a copy with the right checksum is already there.

    Raises ChecksumError (and keeps nothing) when the bytes do not hash to `sha256`.
    """
    destination = Path(destination)
    if destination.exists() and sha256_of(destination.read_bytes()) == sha256:
        return destination
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            data = response.read()
    except OSError as exc:
        raise MoccaDataError(f"{url}: download failed: {exc}") from None
    got = sha256_of(data)
    if got != sha256:
        raise ChecksumError(f"{url}: sha256 {got} does not match the expected {sha256}")
    destination.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(destination, data)
    return destination


def cache_dir() -> Path:
    """Where fetched tables are kept: $ALFRAME_CACHE/mocca, or ~/.cache/alframe/mocca."""
    root = os.environ.get("ALFRAME_CACHE") or Path.home() / ".cache" / "alframe"
    return Path(root) / "mocca"


def resolve_path(path: str | Path | None = None, *, url: str = DEFAULT_URL, sha256: str = DEFAULT_SHA256) -> Path:
    """The local file to read: `path` (the shared table by default) if it exists, else a
    checked download of `url` into `cache_dir()`."""
    local = Path(path) if path is not None else DEFAULT_PATH
    if local.exists():
        return local
    if not url:
        raise MoccaDataError(f"{local}: file not found and no URL to fetch it from")
    # The checksum in the name keeps copies of different files with the same name apart.
    return fetch(url, sha256, cache_dir() / f"{sha256[:16]}-{url.rsplit('/', 1)[-1] or 'table.csv'}")


def _numeric_column(frame: pd.DataFrame, column: str, source: str) -> np.ndarray:
    """A column as float64 (n,); NaN where empty; MoccaDataError where a cell does not parse."""
    text = frame[column].str.strip()
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(np.isnan(values) & text.notna().to_numpy() & (text != "").to_numpy())
    if len(bad):
        row = int(bad[0])
        cell = frame[column].iloc[row]
        # A written NaN parses, but as the marker of a missing value it would pass for an empty cell.
        why = f"{cell!r} is not a number (NaN)" if cell.strip().lower().lstrip("+-") == "nan" else \
            f"cannot parse {cell!r} as a number"
        # +2: one header line, and lines count from 1.
        raise MoccaDataError(f"{source}: line {row + 2}, column {column!r}: {why}")
    return values


@functools.lru_cache(maxsize=8)
def _read_columns(path: str, stamp: tuple[int, int]) -> tuple[dict[str, np.ndarray], int]:
    """The required columns of a MOCCA CSV as float64 arrays (NaN where empty), and the row count.

    `stamp` (modification time, size) keys the cache, so an edited file is read again.
    """
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[])
    except (OSError, pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise MoccaDataError(f"{path}: cannot read as CSV: {exc}".replace("\n", " ")) from None
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise MoccaDataError(f"{path}: missing column(s) {', '.join(repr(c) for c in missing)}")
    columns = {c: _numeric_column(frame, c, path) for c in REQUIRED_COLUMNS}
    for array in columns.values():
        array.setflags(write=False)
    return columns, len(frame)


def load_models(
    path: str | Path | None = None,
    *,
    url: str = DEFAULT_URL,
    sha256: str = DEFAULT_SHA256,
    relaxation_time: RelaxationTime = "harris",
    bhs_threshold: float = BHS_THRESHOLD,
    fallback_only: bool = False,
    velocity_dispersion: bool = True,
) -> MoccaTable:
    """Read a MOCCA table and derive its features and labels.

    Args:
        path: a MOCCA CSV; the shared `simulations.csv` by default. Fetched from `url` and
            checked against `sha256` when the file does not exist.
        relaxation_time: "harris" (the catalogue's estimate from L_V and r_h, the definition
            the observed clusters use) or "half_mass" (the model's own half-mass value).
        bhs_threshold: a model hosts a BH subsystem when singles + 2 binaries + others exceed it.
        fallback_only: keep only the models with fallback enabled.
        velocity_dispersion: keep the central velocity dispersion (drop it for clusters
            observed without one).

    Models with an empty cell in a needed column are left out, as in the source study
    (7 of 1,296 in the shared table). Returns a `MoccaTable` with n models.
    """
    if relaxation_time not in ("harris", "half_mass"):
        raise MoccaDataError(f"relaxation_time must be 'harris' or 'half_mass', got {relaxation_time!r}")
    if not math.isfinite(bhs_threshold):
        raise MoccaDataError(f"bhs_threshold must be finite, got {bhs_threshold!r}")
    source = str(resolve_path(path, url=url, sha256=sha256))
    stat = os.stat(source)
    c, _ = _read_columns(source, (stat.st_mtime_ns, stat.st_size))
    # Only an empty cell (NaN) leaves a model out; an infinite one is a damaged table.
    for column, values in c.items():
        infinite = np.flatnonzero(np.isinf(values))
        if len(infinite):
            row = int(infinite[0])
            raise MoccaDataError(f"{source}: line {row + 2}, column {column!r}: {float(values[row])!r} is not finite")
    complete = np.all([np.isfinite(v) for v in c.values()], axis=0)
    for column in (R_H, R_C, SB_TOTAL, L_TOTAL, L_V, SIGMA, T_RH):
        bad = np.flatnonzero(complete & ~(c[column] > 0))
        if len(bad):
            row = int(bad[0])
            raise MoccaDataError(f"{source}: line {row + 2}, column {column!r}: "
                                 f"{float(c[column][row])!r} is not positive")
    l_v = c[L_V]
    features = {
        "half_light_radius": c[R_H],
        "central_surface_brightness": l_v / c[L_TOTAL] * c[SB_TOTAL],
        "central_velocity_dispersion": c[SIGMA],
        "v_luminosity": l_v,
        "relaxation_time": c[T_RH],
        "core_radius": c[R_C],
    }
    if relaxation_time == "harris":
        features["relaxation_time"] = harris_relaxation_time(l_v, c[R_H])
    fallback_values = c[FALLBACK][complete]
    if not np.all(np.isin(fallback_values, (0.0, 1.0))):
        row = int(np.flatnonzero(complete)[np.flatnonzero(~np.isin(fallback_values, (0.0, 1.0)))[0]])
        raise MoccaDataError(f"{source}: line {row + 2}, column {FALLBACK!r}: "
                             f"expected 0 or 1, got {float(c[FALLBACK][row])!r}")

    keep = complete & (c[FALLBACK] == 1.0) if fallback_only else complete
    names = tuple(n for n in FEATURES if velocity_dispersion or n != VELOCITY_FEATURE)
    black_holes = c[SINGLE_BH] + 2.0 * c[BINARY_BH] + c[OTHER_BH]
    return MoccaTable(
        features=np.stack([features[n][keep] for n in names], axis=1),
        labels=(black_holes[keep] > bhs_threshold).astype(np.int64),
        fallback=(c[FALLBACK][keep] == 1.0),
        rows=np.flatnonzero(keep).astype(np.int64),
        names=names,
        source=source,
    )


MAX_CATALOG_VALUE = 1e30  # no cluster quantity comes near; larger ones are typos or overflow


def read_catalog(path: str | Path, *, velocity_dispersion: bool = True) -> tuple[tuple[str, ...], np.ndarray]:
    """Cluster names and features of a catalogue CSV of observed clusters.

    The CSV has a `Cluster Name` column (or `name`) and one column per feature, named as in
    `FEATURES` or as in the source study's tables (`CATALOG_COLUMNS`), in the units of the
    module docstring. Returns (names (n,), features (n, n_features)) with features in
    `FEATURES` order (without the velocity dispersion if `velocity_dispersion` is False).
    A file without rows, an empty or repeated cluster name (every repeated name is listed),
    and an empty, unparsable, NaN, infinite, non-positive or too large (>= MAX_CATALOG_VALUE)
    value raise MoccaDataError naming the file, line and column.
    """
    path = str(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[])
    except FileNotFoundError:
        raise MoccaDataError(f"{path}: file not found") from None
    except (OSError, pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise MoccaDataError(f"{path}: cannot read as CSV: {exc}".replace("\n", " ")) from None
    name_column = next((c for c in ("Cluster Name", "name", "cluster") if c in frame.columns), None)
    if name_column is None:
        raise MoccaDataError(f"{path}: missing column 'Cluster Name' (or 'name')")
    wanted = [n for n in FEATURES if velocity_dispersion or n != VELOCITY_FEATURE]
    columns = {n: next((s for s in (n, CATALOG_COLUMNS[n]) if s in frame.columns), None) for n in wanted}
    missing = [f"{CATALOG_COLUMNS[n]!r} (or {n!r})" for n, s in columns.items() if s is None]
    if missing:
        raise MoccaDataError(f"{path}: missing column(s) {', '.join(missing)}")
    if len(frame) == 0:
        raise MoccaDataError(f"{path}: no clusters (the file has a header and no rows)")
    names = frame[name_column].str.strip()
    for row, name in enumerate(names):
        if not name:
            raise MoccaDataError(f"{path}: line {row + 2}, column {name_column!r}: empty cluster name")
    repeated = names[names.duplicated()]
    if len(repeated):
        row = int(repeated.index[0])
        first = int(names[names == repeated.iloc[0]].index[0])
        others = [n for n in dict.fromkeys(repeated) if n != repeated.iloc[0]]
        also = f"; {len(others)} more names repeat: {', '.join(map(repr, others))}" if others else ""
        raise MoccaDataError(f"{path}: line {row + 2}, column {name_column!r}: cluster {repeated.iloc[0]!r} "
                             f"appears again (first on line {first + 2}){also}")
    values = np.stack([_numeric_column(frame, columns[n], path) for n in wanted], axis=1)
    # Positive and finite, and small enough that the log features stay finite.
    bad = np.argwhere(~((values > 0) & (values < MAX_CATALOG_VALUE)))
    if len(bad):
        row, col = (int(v) for v in bad[0])
        cell = frame[columns[wanted[col]]].iloc[row]
        if not cell.strip():
            why = "empty value"
        elif not values[row, col] > 0:
            why = f"{cell!r} is not positive"
        else:
            why = f"{cell!r} is not a finite value below {MAX_CATALOG_VALUE:g}"
        raise MoccaDataError(f"{path}: line {row + 2}, column {columns[wanted[col]]!r}: {why}")
    return tuple(names), values
