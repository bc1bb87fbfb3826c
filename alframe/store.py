"""The run store: an xarray Dataset persisted to zarr, appended as results arrive.

Layout (read it back with `xr.open_zarr(path)`):

- dims `sample` (one row per simulation run, in the order they completed), `input`,
  `output`, `round` (one row per committee fit), `test_sample` (the held-out test set);
- per run: `x` (sample, input), `y` (sample, output), `ok`, `error`, `cost_s`, `round_of`;
- per round: `n_runs`, `n_labeled`, the test metrics and timings (`fit_s`, `select_s`);
  per-output metrics (`mse_per_output`, `r2_per_output`) along (round, output);
- the test set: `x_test` (test_sample, input), `y_test` (test_sample, output);
- optionally a coordinate along `output` saying where each output sits (named by the
  attr `output_coord_name`, e.g. `ell`);
- attrs: `config` (the resolved config as JSON), `seed`, `alframe_version`, loop facts, and
  where given `output_units` (JSON list, one per output), `output_transform`,
  `output_coord_name`.

After every complete write a small commit record beside the store (`<store>.commit.json`:
each dim's size and the whole variables) is replaced atomically. A process killed during a write leaves at
most an uncommitted tail, which `RunStore.open` cuts off, so a resumed run continues from
the last whole write.

Appends along an existing dim bypass xarray and zarr's asynchronous machinery: each array's
tail chunk is kept in memory, encoded with the array's own codecs and written whole, then the
array's metadata, the consolidated metadata and the commit record are replaced, each file
atomically and in that order. A plain `xr.open_zarr` reader therefore sees every committed
append as soon as it is made, and never a torn chunk or metadata file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import xarray as xr
import zarr
from zarr.errors import ZarrUserWarning

from alframe.atomic import write_atomically
from alframe.oracle import STORE_NAMES, Outcome, OutputSpec

SAMPLE_CHUNK = 1024
# Beside the store (zarr warns about foreign files inside it), replaced atomically after every
# complete write: each dim's size and the variables that are whole. Anything beyond it (a
# write cut short by a crash) is cut off when the store reopens.
COMMIT_SUFFIX = ".commit.json"


def commit_path(path: Path) -> Path:
    """Where the commit record of the store at `path` lives."""
    return path.with_name(path.name + COMMIT_SUFFIX)
_RUN_VARS = ("x", "y", "ok", "error", "cost_s", "round_of")
ROUND_CHUNK = 512
DEFAULT_COORD_NAME = "output_coord"
_RESERVED = STORE_NAMES  # holds _RUN_VARS
# Which value kinds an append may cast into an array of a given kind (numbers into numbers,
# as xarray's append allows; strings only into strings).
_CASTS = {"f": "biuf", "i": "biu", "u": "bu", "b": "b", "O": "OUT", "T": "OUT", "U": "OUT"}


class StoreDamagedError(RuntimeError):
    """A store (or its commit record) that cannot be read back; the message names what is damaged."""


class StoreMismatchError(RuntimeError):
    """The store on disk was written by a different configuration."""


def _blank(shape: tuple[int, ...], *, text: bool) -> np.ndarray:
    """An array of `shape` saying "not recorded": "" for text, NaN otherwise (as float)."""
    return np.full(shape, "", dtype=object) if text else np.full(shape, np.nan, dtype=np.float64)


def _consolidated_metadata(path: Path) -> tuple[dict, dict[str, dict]]:
    """(the store's root zarr.json, its consolidated metadata: array name -> metadata)."""
    root = json.loads((path / "zarr.json").read_text())
    return root, (root.get("consolidated_metadata") or {}).get("metadata", {})


def _strings(values) -> np.ndarray:
    # Variable-length strings have a zarr v3 specification; fixed-width ones do not.
    return np.array([str(v) for v in values], dtype=object)


@contextlib.contextmanager
def naming(path: str | Path) -> Iterator[None]:
    """Let an OSError that names no file (a write into a full disk, say) name `path`."""
    try:
        yield
    except OSError as exc:
        if exc.filename is not None or exc.errno is None:
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc


def _replace_file(target: Path, data: bytes, scratch: Path) -> None:
    """Write `data` to `target` atomically (not fsynced: the store's policy, see the module doc).
    `scratch` names the directory the temporary file goes in (the target's file system)."""
    with naming(target):
        write_atomically(target, data, durable=False, scratch_dir=scratch.parent)


class _Column:
    """One zarr v3 array of the store growing along its first dim, appended chunk by chunk.

    The chunk being filled, `tail` (chunk_rows, *rest), is kept in memory, so an append
    encodes and writes whole chunks and never reads one back. Only the layouts this store
    writes are taken (regular chunks along the first dim only, "/"-separated default chunk
    keys, the bytes or vlen-utf8 codec followed by zstd); `load` returns None for any other,
    and the caller falls back to xarray.
    """

    def __init__(self, directory: Path, meta: dict[str, Any], dtype: np.dtype, fill: Any, length: int,
                 tail: np.ndarray, codecs: list):
        self.directory = directory
        self.meta = meta
        self.dtype = dtype
        self.fill = fill
        self.length = length
        self.tail = tail
        self._codecs = codecs

    @classmethod
    def load(cls, store: Path, name: str, dim: str, length: int) -> _Column | None:
        directory = store / name
        try:
            meta = json.loads((directory / "zarr.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        shape, dims = meta.get("shape", []), meta.get("dimension_names") or []
        grid, keys = meta.get("chunk_grid", {}), meta.get("chunk_key_encoding", {})
        if not (meta.get("node_type") == "array" and shape and dims and dims[0] == dim and shape[0] == length
                and grid.get("name") == "regular" and keys.get("name") == "default"
                and keys.get("configuration", {}).get("separator", "/") == "/"
                and not meta.get("storage_transformers")):
            return None
        chunk_shape = grid["configuration"]["chunk_shape"]
        if list(chunk_shape[1:]) != list(shape[1:]):
            return None
        codecs = cls._codecs_of(meta.get("codecs", []))
        if codecs is None:
            return None
        array = zarr.open_array(directory, mode="r", use_consolidated=False)
        strings = meta["codecs"][0]["name"] == "vlen-utf8"
        dtype = np.dtype(object) if strings else np.dtype(array.dtype)
        tail = np.full((chunk_shape[0], *shape[1:]), array.fill_value, dtype=dtype)
        start = length - length % chunk_shape[0]
        if length > start:
            tail[: length - start] = array[start:length]
        return cls(directory, meta, dtype, array.fill_value, length, tail, codecs)

    @staticmethod
    def _codecs_of(specs: list[dict[str, Any]]) -> list | None:
        """Encoders (chunk -> bytes, then bytes -> bytes) for the codecs this class writes, else None."""
        if len(specs) != 2 or specs[1].get("name") != "zstd":
            return None
        first, zstd = specs[0], specs[1].get("configuration", {})
        if first.get("name") == "vlen-utf8":
            serialise = numcodecs.VLenUTF8().encode
        elif first.get("name") == "bytes" and first.get("configuration", {}).get("endian", "little") == "little":
            def serialise(chunk: np.ndarray) -> bytes:
                dtype = chunk.dtype.newbyteorder("<") if chunk.dtype.itemsize > 1 else chunk.dtype
                return np.ascontiguousarray(chunk, dtype=dtype).tobytes()
        else:
            return None
        compressor = numcodecs.Zstd(level=zstd.get("level", 0), checksum=zstd.get("checksum", False))
        return [serialise, compressor.encode]

    def _encode(self, chunk: np.ndarray) -> bytes:
        data = chunk
        for codec in self._codecs:
            data = codec(data)
        return bytes(data)

    def write(self, values: np.ndarray, scratch: Path) -> None:
        """Write rows `values` (n, *rest) after the current end: their chunks, then the metadata."""
        rows = len(self.tail)
        values = np.asarray(values).astype(self.dtype, copy=False)
        done = 0
        while done < len(values):
            at = self.length % rows
            take = min(rows - at, len(values) - done)
            self.tail[at : at + take] = values[done : done + take]
            key = ("c", str(self.length // rows), *("0",) * (self.tail.ndim - 1))
            target = self.directory.joinpath(*key)
            target.parent.mkdir(parents=True, exist_ok=True)
            _replace_file(target, self._encode(self.tail), scratch)
            self.length += take
            done += take
            if self.length % rows == 0:
                self.tail = np.full(self.tail.shape, self.fill, dtype=self.dtype)
        self.meta["shape"][0] = self.length
        _replace_file(self.directory / "zarr.json", json.dumps(self.meta).encode(), scratch)


def _consolidate(path: Path) -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ZarrUserWarning, message="Consolidated metadata")
        zarr.consolidate_metadata(path)


def repair_hint(path: Path) -> str:
    """How to get past a damaged store at `path`, for the end of an error message."""
    return (f"`alframe repair {path.parent}` (or the same command with repair=true) cuts it back to its last "
            "good commit; or restore it from a copy, or start again in a new directory")


def _read_commit_record(path: Path) -> dict[str, Any] | None:
    """The commit record of the store at `path`, or None when there is none."""
    record = commit_path(path)
    try:
        commit = json.loads(record.read_text())
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError, IsADirectoryError) as exc:
        raise StoreDamagedError(f"{record} is damaged ({exc}); it records which rows of {path.name} are "
                                f"complete: {repair_hint(path)}") from None
    if not (isinstance(commit, dict) and isinstance(commit.get("sizes"), dict)
            and isinstance(commit.get("variables"), list)):
        raise StoreDamagedError(f"{record} is damaged (not a commit record): {repair_hint(path)}")
    return commit


def _read_commit(path: Path) -> dict[str, Any] | None:
    """The commit record; for a store moved without it, the last consolidated state."""
    commit = _read_commit_record(path)
    if commit is not None:
        return commit
    try:
        ds = xr.open_zarr(path, consolidated=True)
    except (FileNotFoundError, KeyError, ValueError, OSError, zarr.errors.BaseZarrError):
        return None
    return {"sizes": dict(ds.sizes), "variables": sorted(str(v) for v in ds.variables)}


def _written_by_alframe(path: Path) -> bool:
    try:
        root = json.loads((path / "zarr.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return False
    return "config" in root.get("attributes", {})


def _restore(path: Path, commit: Mapping[str, Any]) -> None:
    """Cut the store back to its last commit: drop arrays and rows written after it."""
    group = zarr.open_group(path, mode="r+", use_consolidated=False)
    sizes, keep = commit["sizes"], set(commit["variables"])
    changed = False
    for name in list(group.array_keys()):
        if name not in keep:
            del group[name]
            changed = True
            continue
        array = group[name]
        dims = array.metadata.dimension_names or ()
        committed = tuple(sizes.get(d, n) for d, n in zip(dims, array.shape))
        if committed != tuple(array.shape):
            array.resize(committed)
            changed = True
    try:
        xr.open_zarr(path, consolidated=True)
    except (KeyError, ValueError, OSError, zarr.errors.BaseZarrError):
        changed = True
    if changed:
        _consolidate(path)


def write_zarr(ds: xr.Dataset, path: str | Path, **kwargs: Any) -> None:
    """`ds.to_zarr` with consolidated metadata (the commit point), quietly: zarr 3 warns
    that consolidation is not yet in the v3 spec, but xarray reads it without a fallback."""
    with warnings.catch_warnings(), naming(path):
        warnings.filterwarnings("ignore", category=ZarrUserWarning, message="Consolidated metadata")
        ds.to_zarr(path, consolidated=True, **kwargs)


def read_run(path: str | Path, *, tries: int = 20, wait_s: float = 0.05) -> xr.Dataset:
    """Read a store, even one a running loop is writing to: its last committed state, loaded.

    Each variable is read on its own and cut to the committed sizes, so a reader never sees
    half an append (plain `xr.open_zarr` can, while a write is under way). A read that meets
    a chunk being rewritten is tried again, up to `tries` times.
    """
    path = Path(path)
    for attempt in range(tries):
        commit = _read_commit(path)
        if commit is None:
            raise FileNotFoundError(f"{path} holds no committed alframe run store")
        sizes = commit["sizes"]
        try:
            group = zarr.open_group(path, mode="r", use_consolidated=False)
            variables = {}
            for name in commit["variables"]:
                array = group[name]
                dims = tuple(array.metadata.dimension_names or ())
                region = tuple(slice(0, sizes.get(d, n)) for d, n in zip(dims, array.shape))
                variables[name] = (dims, array[region] if region else array[()])
            attrs = dict(group.attrs)
            # Coordinates that are not dims (an output coordinate) are named, as xarray writes
            # them, in the "coordinates" attribute of the group or of the arrays using them.
            named = set(str(attrs.pop("coordinates", "")).split())
            for name in commit["variables"]:
                named.update(str(group[name].attrs.get("coordinates", "")).split())
            coords = {d: variables.pop(d) for d in list(variables)
                      if variables[d][0] == (d,) or d in named}
            return xr.Dataset(variables, coords=coords, attrs=attrs)
        except (KeyError, ValueError, OSError, zarr.errors.BaseZarrError):
            if attempt == tries - 1:
                raise
            time.sleep(wait_s)
    raise AssertionError("unreachable")


def output_description(spec: OutputSpec) -> dict[str, Any]:
    """The `RunStore.open` keyword arguments that describe an oracle's outputs."""
    return {"output_coords": spec.coords, "output_coord_name": spec.coord_name,
            "output_units": spec.units, "output_transform": spec.transform}


def _output_attrs(output_names: tuple[str, ...], coords, coord_name, units, transform) -> dict[str, Any]:
    """Store attrs describing the outputs (units one per output), checked against their names."""
    n = len(output_names)
    attrs: dict[str, Any] = {}
    if coords is not None:
        if len(coords) != n:
            raise ValueError(f"output_coords has {len(coords)} values for {n} outputs {list(output_names)}")
        name = coord_name or DEFAULT_COORD_NAME
        if name in _RESERVED:
            raise ValueError(f"output_coord_name {name!r} is taken by the store; choose another")
        attrs["output_coord_name"] = name
    elif coord_name is not None:
        raise ValueError(f"output_coord_name {coord_name!r} needs output_coords, one per output")
    if units is not None:
        units = [units] * n if isinstance(units, str) else [str(u) for u in units]
        if len(units) != n:
            raise ValueError(f"output_units has {len(units)} entries for {n} outputs {list(output_names)}")
        attrs["output_units"] = units
    if transform is not None:
        attrs["output_transform"] = str(transform)
    return attrs


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _flat(item, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): value}


def _settings_that_differ(before: Mapping[str, Any], now: Mapping[str, Any], shown: int = 3) -> str:
    """The first `shown` settings whose values differ between two stores' attrs (their recorded
    config and loop settings), as "key old -> new, ..."; "" when the attrs do not say."""
    def settings(attrs: Mapping[str, Any]) -> dict[str, Any]:
        try:
            config = json.loads(attrs.get("config", "{}"))
        except (TypeError, ValueError):
            config = {}
        plain = {k: attrs[k] for k in ("seed", "budget", "batch_size", "in_flight", "refit_every") if k in attrs}
        return {**_flat(config if isinstance(config, dict) else {}), **plain}

    return differing_settings(settings(before), settings(now), shown)


def flat_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A nested config as {dotted key: value}."""
    return _flat(dict(config))


def differing_settings(before: Mapping[str, Any], now: Mapping[str, Any], shown: int = 3) -> str:
    """The first `shown` settings whose values differ between two configs (nested mappings,
    compared key by dotted key), as "key old -> new, ..."."""
    old, new = _flat(dict(before)), _flat(dict(now))
    changed = [k for k in sorted(set(old) | set(new)) if old.get(k, "(unset)") != new.get(k, "(unset)")]
    text = ", ".join(f"{k} {old.get(k, '(unset)')!r} -> {new.get(k, '(unset)')!r}" for k in changed[:shown])
    return text + (f" and {len(changed) - shown} more" if len(changed) > shown else "")


class RunStore:
    """Append-only access to one run's zarr store.

    Create or reopen with `RunStore.open(path, input_names=..., output_names=..., attrs=...)`,
    optionally describing the outputs (see `output_description`). `attrs["config_digest"]`
    (or, without one, `attrs["config"]`) identifies the run: reopening with a different one
    raises `StoreMismatchError` instead of mixing two experiments in one store.
    """

    def __init__(self, path: Path, input_names: tuple[str, ...], output_names: tuple[str, ...],
                 attrs: dict[str, Any], output_coords: tuple[float | str, ...] | None = None):
        self.path = path
        self.input_names = input_names
        self.output_names = output_names
        self.attrs = attrs
        self.output_coords = output_coords
        self._sizes: dict[str, int] = {}
        self._variables: set[str] = set()
        self._columns: dict[str, _Column] = {}
        self._attrs_written = True

    @classmethod
    def open(cls, path: str | Path, *, input_names, output_names, attrs: Mapping[str, Any],
             output_coords: tuple[float | str, ...] | None = None, output_coord_name: str | None = None,
             output_units: tuple[str, ...] | str | None = None,
             output_transform: str | None = None) -> "RunStore":
        """Create or reopen the store at `path`.

        Args:
            input_names, output_names: the `input` and `output` coordinates.
            attrs: run attributes (dicts and lists are stored as JSON).
            output_coords: where each output sits (one number or string per output), stored as
                a coordinate along `output` named `output_coord_name` (default "output_coord").
            output_units: one string for every output or one per output; stored as the attr
                `output_units`, a JSON list with one entry per output.
            output_transform: what the simulator applied to its outputs (attr `output_transform`).
        """
        path = Path(path)
        output_names = tuple(output_names)
        described = _output_attrs(output_names, output_coords, output_coord_name, output_units, output_transform)
        attrs = {**described, **attrs}
        attrs = {k: (json.dumps(v, sort_keys=True) if isinstance(v, dict | list) else v) for k, v in attrs.items()}
        store = cls(path, tuple(input_names), output_names, attrs,
                    None if output_coords is None else tuple(output_coords))
        finish_repair(path)
        if path.exists() and not path.is_dir():
            raise StoreDamagedError(f"{path} is a file, not a run store; move it away or choose another directory")
        if not path.exists():
            return store
        commit = _read_commit(path)
        if commit is None:
            if _written_by_alframe(path):
                # Killed while the store was first being written: nothing was committed.
                shutil.rmtree(path)
                return store
            raise StoreMismatchError(f"{path} exists but is not an alframe run store; choose another path")
        _restore(path, commit)
        existing = xr.open_zarr(path, consolidated=True)
        identity = "config_digest" if "config_digest" in attrs else "config"
        if existing.attrs.get(identity) != attrs.get(identity):
            differs = _settings_that_differ(existing.attrs, attrs)
            raise StoreMismatchError(
                f"{path} holds a run made with a different config, seed or loop settings"
                + (f" ({differs})" if differs else "") + "; resume only with the same ones, or write to a new directory"
            )
        before, now = existing.attrs.get("simulator_version"), attrs.get("simulator_version")
        if before is not None and now is not None and before != now:
            raise StoreMismatchError(
                f"{path} holds runs of another version of the simulator ({before}; it is now {now}): new runs "
                "would mix with the old; write to a new directory, or, if the change leaves every result as it "
                "was, declare one `version` on the oracle and keep it")
        store.attrs = {**existing.attrs, **attrs}
        store._attrs_written = store.attrs == existing.attrs
        store._sizes = dict(commit["sizes"])
        store._variables = set(commit["variables"])
        return store

    def _commit(self) -> None:
        # The attrs too: they hold the run's config, and a repair needs them should the
        # store's root metadata be lost.
        record = {"sizes": self._sizes, "variables": sorted(self._variables), "attrs": self.attrs}
        final = commit_path(self.path)
        _replace_file(final, json.dumps(record, default=str).encode(), final.with_name(final.name + ".tmp"))

    @property
    def exists(self) -> bool:
        return self.path.exists()

    @property
    def sizes(self) -> dict[str, int]:
        """The committed size of each dim."""
        return dict(self._sizes)

    def read(self) -> xr.Dataset:
        """The committed contents, loaded into memory."""
        if not self._variables:
            return xr.Dataset(attrs=dict(self.attrs))
        return xr.open_zarr(self.path, consolidated=True).load()

    def _coords(self) -> dict[str, Any]:
        coords: dict[str, Any] = {"input": _strings(self.input_names), "output": _strings(self.output_names)}
        if self.output_coords is not None:
            values = self.output_coords
            values = _strings(values) if all(isinstance(v, str) for v in values) else np.asarray(values, np.float64)
            coords[self.attrs["output_coord_name"]] = ("output", values)
        return coords

    def _put(self, ds: xr.Dataset, dim: str, encoding: dict[str, Any]) -> None:
        if not (dim in self._sizes and self._append(ds, dim)):
            self._put_with_xarray(ds, dim, encoding)
        self._commit()

    def _put_with_xarray(self, ds: xr.Dataset, dim: str, encoding: dict[str, Any]) -> None:
        """First writes of a dim, and anything `_append` does not take: xarray writes and consolidates."""
        self._columns.clear()
        ds.attrs = dict(self.attrs)
        if not self._variables:
            write_zarr(ds.assign_coords(self._coords()), self.path, mode="w", encoding=encoding)
        elif dim in self._sizes:
            write_zarr(ds, self.path, append_dim=dim)
        else:
            write_zarr(ds.assign_coords(self._coords()), self.path, mode="a", encoding=encoding)
        for name, size in ds.sizes.items():
            self._sizes[name] = self._sizes.get(name, 0) + size if name == dim and name in self._sizes else size
        self._variables.update(str(v) for v in ds.variables)
        self._variables.update(self._coords())
        self._attrs_written = True

    def _append(self, ds: xr.Dataset, dim: str) -> bool:
        """Append `ds` along the existing `dim` chunk by chunk (see `_Column`). Returns False,
        having written nothing, unless its variables are exactly the store's arrays along `dim`
        with values castable to their types."""
        root, consolidated = _consolidated_metadata(self.path)
        along = {name for name, meta in consolidated.items() if (meta.get("dimension_names") or [None])[0] == dim}
        names = [str(v) for v in ds.variables]
        if set(names) != along or any(ds[name].dims[:1] != (dim,) for name in names):
            return False
        for name in names:
            if name not in self._columns:
                column = _Column.load(self.path, name, dim, self._sizes[dim])
                if column is None:
                    return False
                self._columns[name] = column
        if any(np.asarray(ds[name].values).dtype.kind not in _CASTS.get(self._columns[name].dtype.kind, "")
               for name in names):
            return False
        if not self._attrs_written:
            self._write_attrs({})
            root = json.loads((self.path / "zarr.json").read_text())
            consolidated = root["consolidated_metadata"]["metadata"]
        scratch = self.path.with_name(self.path.name + ".write.tmp")
        for name in names:
            self._columns[name].write(ds[name].values, scratch)
        size = self._sizes[dim] + ds.sizes[dim]
        for name in names:
            consolidated[name]["shape"][0] = size
        _replace_file(self.path / "zarr.json", json.dumps(root).encode(), scratch)
        self._sizes[dim] = size
        return True

    def append_runs(self, x: np.ndarray, outcome: Outcome, *, round_index: int | np.ndarray) -> None:
        """Record finished runs: x (n, n_inputs), their outcome, and the round (fit) whose
        committee chose them: one for all, or one per run, (n,)."""
        n = len(x)
        if n == 0:
            return
        round_of = np.broadcast_to(np.asarray(round_index, dtype=np.int32), (n,))
        ds = xr.Dataset(
            {
                "x": (("sample", "input"), np.asarray(x, dtype=np.float64)),
                "y": (("sample", "output"), np.asarray(outcome.y, dtype=np.float64)),
                "ok": ("sample", np.asarray(outcome.ok, dtype=bool)),
                "error": ("sample", _strings(outcome.error)),
                "cost_s": ("sample", np.asarray(outcome.cost_s, dtype=np.float64)),
                "round_of": ("sample", np.array(round_of)),
            }
        )
        encoding = {
            name: {"chunks": (SAMPLE_CHUNK, *ds[name].shape[1:])} for name in _RUN_VARS
        }
        self._put(ds, "sample", encoding)

    def append_round(self, metrics: Mapping[str, Any]) -> None:
        """Record one round's metrics: scalars, along `round`, or arrays (n_outputs,), one
        value per output, along (round, output)."""
        variables = {}
        for name, value in metrics.items():
            if isinstance(value, str):  # e.g. the family a committee chose: variable-length
                variables[name] = ("round", _strings([value]))
                continue
            value = np.asarray(value)
            if value.ndim == 0:
                variables[name] = ("round", value[None])
            elif value.shape == (len(self.output_names),):
                variables[name] = (("round", "output"), value[None])
            else:
                raise ValueError(f"round metric {name!r} has shape {value.shape}; expected a scalar or "
                                 f"one value per output, ({len(self.output_names)},)")
        ds = xr.Dataset(variables)
        if self._sizes.get("round", 0):
            ds = self._matching_round_columns(ds)
        self._put(ds, "round", {name: {"chunks": (ROUND_CHUNK, *ds[name].shape[1:])} for name in ds.data_vars})

    def _matching_round_columns(self, ds: xr.Dataset) -> xr.Dataset:
        """A round record with the store's round variables: a variable the store has and the
        record lacks is given a blank (NaN, or "" for text); one the record brings that the store
        lacks (a metric added by a newer version, a committee that reports something new) is first
        written for the earlier rounds, blank. Otherwise an append would leave variables of
        different lengths along `round`, which no reader can open."""
        along = {name: meta for name, meta in _consolidated_metadata(self.path)[1].items()
                 if (meta.get("dimension_names") or [None])[0] == "round"}
        missing = {name: meta for name, meta in along.items() if name not in ds.variables}
        if missing:
            ds = ds.assign({name: (tuple(meta["dimension_names"]),
                                   _blank((1, *meta["shape"][1:]), text=meta["data_type"] == "string"))
                            for name, meta in missing.items()})
        new = [str(name) for name in ds.variables if str(name) not in along]
        if new:
            n_rounds = self._sizes["round"]
            ds = ds.assign({name: ds[name].astype(np.float64) for name in new if ds[name].dtype.kind in "iub"})
            earlier = xr.Dataset({name: (ds[name].dims, _blank((n_rounds, *ds[name].shape[1:]),
                                                               text=ds[name].dtype.kind in "OUST"))
                                  for name in new}, attrs=dict(self.attrs))
            self._columns.clear()
            write_zarr(earlier.assign_coords(self._coords()), self.path, mode="a",
                       encoding={name: {"chunks": (ROUND_CHUNK, *ds[name].shape[1:])} for name in new})
            self._variables.update(new)
        return ds

    def write_test_set(self, x: np.ndarray, y: np.ndarray) -> None:
        """Record the held-out test set: x (m, n_inputs), y (m, n_outputs)."""
        ds = xr.Dataset(
            {
                "x_test": (("test_sample", "input"), np.asarray(x, dtype=np.float64)),
                "y_test": (("test_sample", "output"), np.asarray(y, dtype=np.float64)),
            }
        )
        self._put(ds, "test_sample", {})

    def update_attrs(self, **attrs: Any) -> None:
        """Set attributes of the store (committed at once)."""
        self.attrs.update(attrs)
        if self._variables:
            self._write_attrs(attrs)

    def _write_attrs(self, attrs: Mapping[str, Any]) -> None:
        with naming(self.path):
            group = zarr.open_group(self.path, mode="r+", use_consolidated=False)
            group.attrs.update({**(self.attrs if not self._attrs_written else {}), **attrs})
            _consolidate(self.path)
        self._attrs_written = True
        self._commit()


# -- repair ---------------------------------------------------------------------------------

GROWING_DIMS = ("sample", "round")
_TEST_VARS = ("x_test", "y_test")
REPAIR_SUFFIX = ".repair"
DAMAGED_SUFFIX = ".damaged"


class RepairRefused(StoreDamagedError):
    """A damaged store of which a repair could keep nothing it can vouch for."""


@dataclass(frozen=True)
class StoreSurvey:
    """What of a store can be read back.

    Fields:
        committed: each dim's committed size.
        readable: each dim's size once every unreadable row (and everything after it) is cut
            off; a dim missing here keeps none of its variables.
        variables: the dims of every variable that can be kept.
        attrs: the store's attrs (from its root metadata, or the copy in its commit record).
        design_runs: the leading runs of the initial design (chosen by no round), among the readable.
        damage: what was found damaged, a phrase each; empty for an undamaged store.
    """

    committed: dict[str, int]
    readable: dict[str, int]
    variables: dict[str, tuple[str, ...]]
    attrs: dict[str, Any]
    design_runs: int
    damage: tuple[str, ...]


def _root_metadata(path: Path) -> dict[str, Any] | None:
    try:
        root = json.loads((path / "zarr.json").read_text())
    except (OSError, ValueError):
        return None
    return root if isinstance(root, dict) and root.get("node_type") == "group" else None


def _array_dims(path: Path, name: str, consolidated: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The dims of array `name`, from its own metadata or else the consolidated copy."""
    for source in (lambda: json.loads((path / name / "zarr.json").read_text()), lambda: consolidated[name]):
        try:
            dims = source().get("dimension_names")
        except (OSError, ValueError, KeyError, AttributeError):
            continue
        if isinstance(dims, list) and all(isinstance(d, str) for d in dims):
            return tuple(dims)
    return None


def _readable_rows(path: Path, name: str, dims: tuple[str, ...], rows: int) -> int:
    """How many of the first `rows` rows of array `name` read back, chunk by chunk."""
    try:
        array = zarr.open_array(path / name, mode="r")
        if tuple(array.metadata.dimension_names or ()) != dims or not array.ndim:
            return 0
        n, step = min(rows, array.shape[0]), array.chunks[0]
    except Exception:  # noqa: BLE001 - damaged metadata: zarr raises many kinds
        return 0
    for start in range(0, n, step):
        try:
            array[start : min(start + step, n)]
        except Exception:  # noqa: BLE001 - a truncated or garbled chunk
            return start
    return n


def survey_store(path: str | Path) -> StoreSurvey:
    """Read every committed chunk of the store at `path` and say what survives.

    Raises `RepairRefused` when nothing can be kept: the path is a file, the attrs (the run's
    config) are lost, no record says which rows are complete, or the coordinates are unreadable.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RepairRefused(f"{path} is a file, not a run store: there is nothing to keep; move it away, "
                            "or start again in a new directory")
    if not path.is_dir():
        raise RepairRefused(f"{path} does not exist: there is nothing to repair")
    damage = []
    try:
        commit = _read_commit_record(path)
    except StoreDamagedError:
        commit, damage = None, [f"{commit_path(path).name} unreadable"]
    root = _root_metadata(path)
    if root is None:
        damage.append("root metadata lost")
    consolidated = ((root or {}).get("consolidated_metadata") or {}).get("metadata") or {}
    attrs = (root or {}).get("attributes", (commit or {}).get("attrs"))
    if not isinstance(attrs, dict) or "config" not in attrs:
        raise RepairRefused(f"{path}: its attributes (the run's config) are lost with its root metadata, and "
                            "no copy is kept beside it; restore it from a copy, or start again in a new directory")
    if commit is not None:
        committed, names = {str(k): int(v) for k, v in commit["sizes"].items()}, [str(v) for v in commit["variables"]]
    elif consolidated:
        # Consolidated only after all of an append's chunks are written: a whole state.
        committed, names = {}, sorted(consolidated)
        for meta in consolidated.values():
            committed.update(zip(meta.get("dimension_names") or (), meta.get("shape") or ()))
    else:
        raise RepairRefused(f"{path}: neither a commit record nor its metadata says which rows are complete; "
                            "restore it from a copy, or start again in a new directory")
    readable, variables = dict(committed), {}
    for name in names:
        dims = _array_dims(path, name, consolidated)
        if dims is None:
            dims = (("sample", "input") if name == "x" else ("sample",) if name in _RUN_VARS
                    else ("test_sample", "input") if name in _TEST_VARS else None)
        if dims is None:
            raise RepairRefused(f"{path}: the metadata of {name!r} is lost; restore it from a copy, or start again "
                                "in a new directory")
        first = dims[0] if dims else None
        rows = committed.get(first, 0) if first else 1
        got = _readable_rows(path, name, dims, rows)
        variables[name] = dims
        if got == rows:
            continue
        damage.append(f"{name} unreadable from row {got}")
        if first in GROWING_DIMS:
            readable[first] = min(readable[first], got)
        elif first == "test_sample":
            readable.pop("test_sample", None)  # drawn again, the same, on resume
        else:
            raise RepairRefused(f"{path}: its coordinate {name!r} cannot be read back; restore it from a copy, "
                                "or start again in a new directory")
    for dim in (*GROWING_DIMS, "test_sample"):
        if readable.get(dim, 0) == 0:
            readable.pop(dim, None)
    variables = {name: dims for name, dims in variables.items() if not dims or dims[0] in readable}
    if "sample" not in readable and "test_sample" not in readable:
        raise RepairRefused(f"{path}: no run and no test set can be read back ({'; '.join(damage)}); "
                            "restore it from a copy, or start again in a new directory")
    design_runs = 0
    if "round_of" in variables:
        round_of = zarr.open_array(path / "round_of", mode="r")[: readable["sample"]]
        design_runs = int(np.argmax(round_of != 0)) if np.any(round_of != 0) else len(round_of)
    return StoreSurvey(committed, readable, variables, dict(attrs), design_runs, tuple(damage))


def _cut_dataset(path: Path, survey: StoreSurvey, sizes: Mapping[str, int]) -> tuple[xr.Dataset, dict[str, Any]]:
    """The kept variables of the store, cut to `sizes`, and their chunk encodings."""
    variables, encoding = {}, {}
    for name, dims in survey.variables.items():
        if dims and sizes.get(dims[0], 0) == 0:
            continue
        array = zarr.open_array(path / name, mode="r")
        region = tuple(slice(0, sizes.get(d, n)) for d, n in zip(dims, array.shape))
        variables[name] = (dims, array[region] if region else array[()])
        if dims:
            encoding[name] = {"chunks": tuple(array.chunks)}
    # Coordinates that are not dims are named, as xarray writes them, in "coordinates" attributes.
    named = set(str(survey.attrs.get("coordinates", "")).split())
    for name in variables:
        named.update(str(zarr.open_array(path / name, mode="r").attrs.get("coordinates", "")).split())
    coords = {name: variables.pop(name) for name in list(variables) if variables[name][0] == (name,) or name in named}
    attrs = {k: v for k, v in survey.attrs.items() if k != "coordinates"}
    return xr.Dataset(variables, coords=coords, attrs=attrs), encoding


def repair_staging(path: Path) -> Path:
    """The directory a repair of the store at `path` prepares its files in."""
    return path.with_name(path.name + REPAIR_SUFFIX)


def stage_store(path: str | Path, survey: StoreSurvey, sizes: Mapping[str, int],
                attrs: Mapping[str, Any]) -> list[str]:
    """Write, under `repair_staging(path)`, a copy of the store cut to `sizes` (only the dims in
    it are kept), with `attrs`, and its commit record. Returns their names, for `commit_repair`."""
    path = Path(path)
    staging = repair_staging(path)
    staging.mkdir(exist_ok=True)
    copy = staging / path.name
    shutil.rmtree(copy, ignore_errors=True)
    ds, encoding = _cut_dataset(path, survey, sizes)
    ds.attrs = dict(attrs)
    write_zarr(ds, copy, mode="w", encoding={k: v for k, v in encoding.items() if k in ds.variables})
    kept = {name for name in survey.variables if name in ds.variables}
    record = {"sizes": {d: int(n) for d, n in ds.sizes.items()}, "variables": sorted(kept), "attrs": dict(attrs)}
    write_atomically(staging / commit_path(path).name, json.dumps(record, default=str).encode(), durable=True)
    return [commit_path(path).name, path.name]


def commit_repair(path: str | Path, *, replace: list[str], remove: list[str]) -> None:
    """Commit a staged repair and apply it: the files named in `replace` (staged under
    `repair_staging(path)`) take the place of those beside the store, those in `remove` go.

    The commit point is one atomic write (the manifest); `finish_repair` completes an applied
    repair cut short, so a crash at any moment leaves the old files or the repaired ones."""
    path = Path(path)
    manifest = {"replace": list(replace), "remove": list(remove)}
    write_atomically(repair_staging(path) / "manifest.json", json.dumps(manifest).encode(), durable=True)
    finish_repair(path)


def finish_repair(path: str | Path) -> None:
    """Complete a committed repair of the store at `path` (each step can be redone), or drop
    one that was never committed. The store replaced is kept at `<store>.damaged`."""
    path = Path(path)
    staging = repair_staging(path)
    if not staging.is_dir():
        return
    try:
        manifest = json.loads((staging / "manifest.json").read_text())
    except (OSError, ValueError):
        shutil.rmtree(staging)
        return
    for name in manifest["remove"]:
        (path.parent / name).unlink(missing_ok=True)
    for name in manifest["replace"]:
        staged, live = staging / name, path.parent / name
        if not (staged.exists() or staged.is_symlink()):
            continue  # moved in already
        if staged.is_dir():
            kept = path.with_name(name + DAMAGED_SUFFIX)
            if live.exists():
                if kept.is_dir():
                    shutil.rmtree(kept)
                else:
                    kept.unlink(missing_ok=True)
                os.replace(live, kept)
        os.replace(staged, live)
    shutil.rmtree(staging)
