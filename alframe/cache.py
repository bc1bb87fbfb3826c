"""A result cache in front of an oracle: an identical simulation is never run twice.

Each successful run is kept as one small file named by a hash of the simulator's version
string and the query's exact float64 bytes, written atomically (temporary file, then
rename), so any number of workers and sweeps can share one cache directory. Failed runs
are not cached: a later try may succeed.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alframe.oracle import Oracle, OutputSpec, Outcome
from alframe.space import Space


def query_key(version: str, query: np.ndarray) -> str:
    """The cache key of one query (dim,) under a simulator `version`: 32 hex digits."""
    row = np.ascontiguousarray(np.asarray(query, dtype="<f8") + 0.0)  # -0.0 and 0.0 are one input
    return hashlib.blake2b(version.encode() + b"\0" + row.tobytes(), digest_size=16).hexdigest()


@dataclass(frozen=True)
class CachedOracle:
    """`oracle` behind a directory of results keyed by (version, query).

    Args:
        oracle: the simulator.
        directory: where results live (created on first use).
        version: names everything the results depend on besides the query: the simulator's
            code version and its settings. Change it and nothing old is reused.
    """

    oracle: Oracle
    directory: str | Path
    version: str

    @property
    def space(self) -> Space:
        return self.oracle.space

    @property
    def outputs(self) -> OutputSpec:
        return self.oracle.outputs

    def _path(self, key: str) -> Path:
        return Path(self.directory) / key[:2] / f"{key}.npy"

    def lookup(self, query: np.ndarray) -> np.ndarray | None:
        """The cached output (n_outputs,) of one query, or None."""
        try:
            return np.load(self._path(query_key(self.version, query)))
        except (FileNotFoundError, ValueError, OSError):
            return None  # absent, or a file cut short by a crash: run it again

    def _store(self, query: np.ndarray, y: np.ndarray) -> None:
        path = self._path(query_key(self.version, query))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            np.save(f, np.asarray(y, dtype=np.float64))
        os.replace(tmp, path)

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
        if len(missing):
            fresh = self.oracle.run(queries[missing])
            y[missing], ok[missing], error[missing], cost[missing] = fresh.y, fresh.ok, fresh.error, fresh.cost_s
            for i in missing[fresh.ok]:
                self._store(queries[i], y[i])
        return Outcome(y, ok, error, cost)

    def __len__(self) -> int:
        """Results in the cache directory."""
        return sum(1 for _ in Path(self.directory).glob("*/*.npy")) if Path(self.directory).exists() else 0
