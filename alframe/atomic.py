"""Replacing a file so that a crash leaves the old contents or the new, never a mixture."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path: str | Path, data: bytes, *, durable: bool = True,
                     scratch_dir: str | Path | None = None) -> None:
    """Replace `path` with `data`: written to a temporary file beside it (or in `scratch_dir`,
    on the same file system), then renamed.

    With `durable` the data is fsynced before the rename, so a power cut cannot leave an
    empty file behind a completed rename; without it a killed process still leaves a whole
    file (the page cache outlives the process), at less cost.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent if scratch_dir is None else scratch_dir, prefix=f".{path.name}.",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
