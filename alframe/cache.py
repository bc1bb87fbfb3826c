"""A result cache in front of an oracle: an identical simulation is never run twice.

Each successful run is kept as one small file named by a hash of the simulator's version
string and the query's exact float64 bytes, written atomically (temporary file, then
rename), so any number of workers and sweeps can share one cache directory. Failed runs
are not cached: a later try may succeed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib
import inspect
import io
import os
import sys
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alframe.atomic import write_atomically
from alframe.oracle import Oracle, OutputSpec, Outcome
from alframe.space import Space


def query_key(version: str, query: np.ndarray) -> str:
    """The cache key of one query (dim,) under a simulator `version`: 32 hex digits."""
    row = np.ascontiguousarray(np.asarray(query, dtype="<f8") + 0.0)  # -0.0 and 0.0 are one input
    return hashlib.blake2b(version.encode() + b"\0" + row.tobytes(), digest_size=16).hexdigest()


def _module_files(module: types.ModuleType) -> list[Path]:
    """The files whose bytes define `module`: every .py file of a package's directory (a
    package's entry point usually re-exports code from its siblings), else its source file."""
    if hasattr(module, "__path__"):
        return sorted(p for d in module.__path__ for p in Path(d).rglob("*.py") if "__pycache__" not in p.parts)
    source = inspect.getsourcefile(module) or getattr(module, "__file__", None)
    if source is None:
        raise ValueError(f"module {module.__name__!r} has no source file to digest")
    return [Path(source)]


def source_digest(obj_or_module: object) -> str:
    """A digest (32 hex digits) of the source that defines a module, function or class: the
    module's source file, or every .py file of its package's directory when it is a package
    (or an object defined in a package's `__init__`). Any edit to those files changes it."""
    module = obj_or_module if isinstance(obj_or_module, types.ModuleType) else inspect.getmodule(obj_or_module)
    if module is None:
        raise ValueError(f"cannot tell which module defines {obj_or_module!r}")
    files = _module_files(module)
    roots = [Path(d) for d in getattr(module, "__path__", [])] or [files[0].parent]
    digest = hashlib.blake2b(digest_size=16)
    for path in files:
        # The path relative to the package, so a moved checkout digests the same.
        name = next((str(path.relative_to(r)) for r in roots if path.is_relative_to(r)), path.name)
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def target_digest(target: str) -> str:
    """`source_digest` of what a dotted `_target_` path names: the module it lives in (the
    longest importable prefix: a package's directory, or a module's file), together with the
    module that defines the named object when that is another one."""
    parts = target.split(".")
    for i in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:i])
        try:
            module = importlib.import_module(prefix)
        except ModuleNotFoundError as exc:
            if exc.name is None or not (prefix + ".").startswith(exc.name + "."):
                raise  # the module exists but imports something missing: say so
            continue  # not a module: an attribute path (a class's method, say)
        obj = module
        try:
            for name in parts[i:]:
                obj = getattr(obj, name)
        except AttributeError:
            raise ValueError(f"{target!r}: module {module.__name__!r} has no attribute {name!r}") from None
        digests = [source_digest(module)]
        defining = inspect.getmodule(obj)
        if defining is not None and defining is not module and not defining.__name__.startswith(module.__name__ + "."):
            digests.append(source_digest(defining))
        return digests[0] if len(digests) == 1 else hashlib.blake2b("|".join(digests).encode(),
                                                                    digest_size=16).hexdigest()
    raise ValueError(f"cannot import a module from the target {target!r}")


@dataclass(frozen=True)
class CachedOracle:
    """`oracle` behind a directory of results keyed by (version, query).

    Args:
        oracle: the simulator.
        directory: where results live (created on first use).
        version: names everything the results depend on besides the query: the simulator's
            code version and its settings. Change it and nothing old is reused.
        per_query: True: run the queries missing from the cache one `oracle.run` call each,
            each result cached as soon as its call returns, so that a run killed during a long
            batch (or test set) keeps what finished. False: run them in one call, for a
            simulator that runs a batch faster than its queries one by one. None (the
            default): one call when the oracle says it takes whole batches (a `FunctionOracle`
            with `vectorized=True`: a batch of 500 may cost what 5 single calls do), one call
            each otherwise.
    """

    oracle: Oracle
    directory: str | Path
    version: str
    per_query: bool | None = None

    @property
    def one_by_one(self) -> bool:
        """Whether missing queries run one `oracle.run` call each (see `per_query`)."""
        return self.per_query if self.per_query is not None else not getattr(self.oracle, "vectorized", False)

    @property
    def space(self) -> Space:
        return self.oracle.space

    @property
    def outputs(self) -> OutputSpec:
        return self.oracle.outputs

    def _path(self, key: str) -> Path:
        return Path(self.directory) / key[:2] / f"{key}.npy"

    def holds(self, query: np.ndarray) -> bool:
        """Whether a result of one query is kept (without reading it)."""
        return self._path(query_key(self.version, query)).exists()

    def lookup(self, query: np.ndarray) -> np.ndarray | None:
        """The cached output (n_outputs,) of one query, or None."""
        try:
            return np.load(self._path(query_key(self.version, query)))
        except (FileNotFoundError, ValueError, OSError):
            return None  # absent, or a file cut short by a crash: run it again

    def _store(self, query: np.ndarray, y: np.ndarray) -> None:
        path = self._path(query_key(self.version, query))
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(y, dtype=np.float64))
        write_atomically(path, buffer.getvalue(), durable=False)

    def run(self, queries: np.ndarray) -> Outcome:
        """Outcomes (n,) for queries (n, dim): cached ones at no cost, the rest from the oracle."""
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float64))
        n, n_outputs = len(queries), self.outputs.dim
        start = time.perf_counter()
        y = np.full((n, n_outputs), np.nan)
        ok = np.zeros(n, dtype=bool)
        error = np.array([""] * n, dtype=object)
        cost = np.zeros(n)
        for i, query in enumerate(queries):
            hit = self.lookup(query)
            if hit is not None:
                y[i], ok[i] = hit, True
        lookup_s = (time.perf_counter() - start) / max(n, 1)
        cost[ok] = lookup_s
        missing = np.flatnonzero(~ok)
        for part in ([[i] for i in missing] if self.one_by_one else [missing] if len(missing) else []):
            fresh = self.oracle.run(queries[part])
            if len(fresh) != len(part):
                raise ValueError(f"oracle returned {len(fresh)} results for {len(part)} queries")
            y[part], ok[part], error[part], cost[part] = fresh.y, fresh.ok, fresh.error, fresh.cost_s
            for i in np.asarray(part)[fresh.ok]:
                self._store(queries[i], y[i])
        return Outcome(y, ok, error, cost)

    @contextlib.contextmanager
    def exclusive(self, what: str) -> Iterator[None]:
        """Hold a lock named by `what` (and the version) in the cache directory while simulating
        it, so that a second process about to simulate the same queries (two jobs of a sweep
        drawing the same test set) waits, then finds them cached, instead of running them too.
        The operating system releases the lock if its holder dies."""
        name = hashlib.blake2b(f"{self.version}\0{what}".encode(), digest_size=8).hexdigest()
        path = Path(self.directory) / f"busy-{name}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print(f"alframe: another process is simulating the same {what} into {self.directory}; "
                      "waiting to reuse its results", file=sys.stderr, flush=True)
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def __len__(self) -> int:
        """Results in the cache directory."""
        return sum(1 for _ in Path(self.directory).glob("*/*.npy")) if Path(self.directory).exists() else 0
