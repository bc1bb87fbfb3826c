"""Fortran sequential unformatted records, as RAMSES writes them (little-endian, int32 markers).

Every record is `int32 nbytes | payload | int32 nbytes`. `RecordReader` walks a file held in
memory and hands out records as numpy arrays (views on the file's bytes, no copies), checking
each marker pair so that a truncated or corrupted file fails at the record where it goes wrong,
with the file, the record number and what the record should have held in the message.
`write_records` is the inverse, for the writer.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

MARKER = np.dtype("<i4")


class RamsesFormatError(ValueError):
    """A RAMSES output that cannot be read: the message names the file and what is wrong."""


class RecordReader:
    """Sequential reader of one Fortran unformatted file, memory-mapped.

    Args:
        path: the file. Arrays handed out are read-only views on the mapping.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            with open(self.path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                # Mapped, not read: records a reader skips are never loaded from disk.
                self._buffer = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size \
                    else b""
        except FileNotFoundError:
            raise RamsesFormatError(f"{self.path}: file not found") from None
        self._size = len(self._buffer)
        self._markers = np.frombuffer(self._buffer, dtype=MARKER, count=self._size // 4)
        self.offset = 0
        self.record = 0  # number of the next record, counted from 0

    def _fail(self, what: str, problem: str) -> RamsesFormatError:
        return RamsesFormatError(f"{self.path}: record {self.record} ({what}) {problem}")

    def _marker(self, offset: int) -> int:
        # Aligned markers come from the precomputed view; odd offsets only in corrupt files.
        if offset % 4 == 0:
            return int(self._markers[offset // 4])
        return int.from_bytes(bytes(self._buffer[offset:offset + 4]), "little", signed=True)

    @property
    def at_end(self) -> bool:
        return self.offset >= self._size

    def peek_nbytes(self, what: str = "next record") -> int:
        """Payload size of the next record without consuming it."""
        if self.offset + 4 > self._size:
            raise self._fail(what, f"is missing: the file ends at byte {self._size} (truncated)")
        return self._marker(self.offset)

    def peek_sizes(self, nrecords: int) -> list[int]:
        """Payload sizes of up to `nrecords` next records that are whole, without consuming them."""
        sizes, offset = [], self.offset
        while len(sizes) < nrecords and offset + 4 <= self._size:
            nbytes = self._marker(offset)
            end = offset + 4 + nbytes
            if nbytes < 0 or end + 4 > self._size or self._marker(end) != nbytes:
                break
            sizes.append(nbytes)
            offset = end + 4
        return sizes

    def _check_record(self, offset: int, what: str) -> int:
        """Validate the record starting at `offset`; return its payload size."""
        if offset + 4 > self._size:
            raise self._fail(what, f"is missing: the file ends at byte {self._size} (truncated)")
        nbytes = self._marker(offset)
        if nbytes < 0:
            raise self._fail(what, f"has a negative length marker {nbytes} at byte {offset}")
        end = offset + 4 + nbytes
        if end + 4 > self._size:
            raise self._fail(
                what,
                f"claims {nbytes} bytes at byte {offset} but only {self._size - offset - 4} "
                f"remain (truncated file)",
            )
        tail = self._marker(end)
        if tail != nbytes:
            raise self._fail(
                what, f"has mismatched length markers {nbytes} and {tail} (wrong record length)"
            )
        return nbytes

    def read(self, dtype, count: int | None = None, *, what: str) -> np.ndarray:
        """The next record as a 1-D array of `dtype`; `count` items if given, else any number."""
        dtype = np.dtype(dtype)
        nbytes = self._check_record(self.offset, what)
        if count is not None and nbytes != count * dtype.itemsize:
            raise self._fail(
                what,
                f"has {nbytes} bytes, expected {count * dtype.itemsize} "
                f"({count} x {dtype.name}; wrong record length)",
            )
        if nbytes % dtype.itemsize:
            raise self._fail(what, f"has {nbytes} bytes, not a whole number of {dtype.name}")
        out = np.frombuffer(self._buffer, dtype=dtype, count=nbytes // dtype.itemsize,
                            offset=self.offset + 4)
        self.offset += nbytes + 8
        self.record += 1
        return out

    def read_scalar(self, dtype, *, what: str):
        return self.read(dtype, 1, what=what)[0].item()

    def read_block(self, nrecords: int, dtype, count: int, *, what: str) -> np.ndarray:
        """`nrecords` consecutive records of `count` items each, shape (nrecords, count).

        One strided view on the file's bytes instead of a loop over records; all 2 * nrecords
        markers are checked at once. Where they are not all right, the records are read one
        by one so that the error names the first bad one.
        """
        dtype = np.dtype(dtype)
        nbytes = count * dtype.itemsize
        stride = nbytes + 8
        end = self.offset + nrecords * stride
        fast = end <= self._size and self.offset % 4 == 0 and stride % dtype.itemsize == 0
        if fast and nrecords:
            first, step = self.offset // 4, stride // 4
            heads = self._markers[first:first + nrecords * step:step]
            tails = self._markers[first + 1 + nbytes // 4:first + nrecords * step:step]
            fast = bool(np.all(heads == nbytes) and np.all(tails == nbytes))
        if not fast:
            rows = [self.read(dtype, count, what=f"{what}, {i + 1} of {nrecords}")
                    for i in range(nrecords)]
            return np.stack(rows) if rows else np.empty((0, count), dtype=dtype)
        if nrecords == 0:
            return np.empty((0, count), dtype=dtype)
        # Payloads from the first one's start to the last one's end: markers included, skipped
        # by the stride.
        span = np.frombuffer(self._buffer, dtype=dtype, offset=self.offset + 4,
                             count=(end - self.offset - 8) // dtype.itemsize)
        view = np.lib.stride_tricks.as_strided(
            span, shape=(nrecords, count), strides=(stride, dtype.itemsize), writeable=False
        )
        self.offset = end
        self.record += nrecords
        return view

    def skip(self, nrecords: int = 1, *, what: str) -> None:
        """Step over `nrecords` records, checking their markers."""
        for _ in range(nrecords):
            nbytes = self._check_record(self.offset, what)
            self.offset += nbytes + 8
            self.record += 1

    def expect_end(self) -> None:
        if self.offset != self._size:
            raise RamsesFormatError(
                f"{self.path}: {self._size - self.offset} unexpected bytes after the last record "
                f"(record {self.record} at byte {self.offset})"
            )


def encode_record(payload: np.ndarray | bytes) -> bytes:
    """One Fortran record around `payload` (an array is written in its own dtype)."""
    data = payload if isinstance(payload, bytes) else np.ascontiguousarray(payload).tobytes()
    marker = np.int32(len(data)).tobytes()
    return marker + data + marker


def encode_block(values: np.ndarray) -> np.ndarray:
    """Each row of a 2-D array as one record, (nrecords, count) -> uint8 buffer, no loop."""
    nrecords, count = values.shape
    nbytes = count * values.dtype.itemsize
    out = np.empty((nrecords, nbytes + 8), dtype=np.uint8)
    marker = np.frombuffer(np.int32(nbytes).tobytes(), dtype=np.uint8)
    out[:, :4] = marker
    out[:, 4:4 + nbytes].view(values.dtype)[:] = values
    out[:, 4 + nbytes:] = marker
    return out


def write_records(path: str | os.PathLike, chunks: Iterable[bytes | np.ndarray]) -> None:
    """Write encoded records (from `encode_record` / `encode_block`) to `path`, in order."""
    with open(path, "wb") as f:
        for chunk in chunks:
            f.write(chunk if isinstance(chunk, bytes) else memoryview(chunk).cast("B"))
