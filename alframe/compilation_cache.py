"""Compiled programs kept on disk, so that a new process does not compile them again.

JAX compiles each fit and prediction program the first time it meets their shapes. Within a
run the shapes stay fixed, so that happens in the first round only, but every new process pays
it again: each job of a sweep, a resumed run, each `alframe ask`. JAX's persistent compilation
cache keeps the compiled programs in a directory and reads them back in later processes; the
programs, and so the results, are the same. A 40-run job of the 1-D potential with a small MLP
committee took 22-25 s from a cold cache and 14 s from a warm one (2 cores).

    >>> from alframe.compilation_cache import enable              # doctest: +SKIP
    >>> enable("~/.cache/alframe/jax")                            # before the first fit

The directory is trusted: JAX runs what it finds there, so keep it where only you can write.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import jax


def default_directory() -> Path:
    """$XDG_CACHE_HOME/alframe/jax, or ~/.cache/alframe/jax: `compilation_cache` in conf/config.yaml."""
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "alframe" / "jax"


def enable(directory: str | os.PathLike | None) -> Path | None:
    """Keep every compiled JAX program in `directory` (created if missing; `~` expanded) and
    read them back from there; None leaves JAX as it is. Call it before the first compilation.
    A directory that cannot be created is warned about and left out.

    A directory already chosen through JAX's own setting (the environment variable
    `JAX_COMPILATION_CACHE_DIR`, or `jax.config`) is kept: the caller's choice wins. Every
    program is kept, however quickly it compiled: the many small ones of a committee add up.
    Returns the directory in use, or None.
    """
    chosen = jax.config.jax_compilation_cache_dir
    if chosen:
        return Path(chosen)
    if directory is None:
        return None
    path = Path(directory).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a read-only home, say: the run goes on, compiling as it would have
        warnings.warn(f"compilation cache {path} unusable ({exc.strerror or exc}); compiling in every process",
                      stacklevel=2)
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return path
