"""CSV files of queries and results, read strictly: a bad cell is named by file, row and column."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


class TableError(ValueError):
    """A CSV file that cannot be read as asked; the message names the file, row and column."""


def read_rows(path: str | Path) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a CSV file; rows are numbered from 2 in messages (the header is row 1)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's byte-order mark is not part of the header
    except OSError as exc:
        raise TableError(f"{path}: cannot read: {exc.strerror or exc}") from None
    rows = [row for row in csv.reader(io.StringIO(text))]
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise TableError(f"{path}: empty, no header row")
    header = [cell.strip() for cell in rows[0]]
    body = [row for row in rows[1:] if any(cell.strip() for cell in row)]
    for number, row in enumerate(rows[1:], start=2):
        if any(cell.strip() for cell in row) and len(row) != len(header):
            raise TableError(f"{path}: row {number} has {len(row)} cells, the header has {len(header)}")
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise TableError(f"{path}: column {duplicated[0]!r} appears twice in the header")
    return header, body


def number(path: str | Path, row: int, column: str, cell: str) -> float:
    """The finite float in a cell, or a TableError naming it."""
    try:
        value = float(cell)
    except ValueError:
        raise TableError(f"{path}: row {row}, column {column!r}: {cell!r} is not a number") from None
    if not math.isfinite(value):
        raise TableError(f"{path}: row {row}, column {column!r}: {cell!r} is not finite")
    return value


def label(path: str | Path, row: int, column: str, cell: str, classes: Sequence[str]) -> int:
    """A class, by name or index, as its index."""
    text = cell.strip()
    if text in classes:
        return list(classes).index(text)
    try:
        index = int(text)
    except ValueError:
        index = -1
    if 0 <= index < len(classes):
        return index
    raise TableError(f"{path}: row {row}, column {column!r}: {cell!r} is not one of the classes {list(classes)}")


def read_table(path: str | Path, columns: Sequence[str], *,
               classes: Mapping[str, Sequence[str] | None] | None = None) -> dict[str, np.ndarray]:
    """The named columns of a CSV as float arrays (n,), every cell checked (labels of a
    column in `classes` as class indices)."""
    header, rows = read_rows(path)
    missing = [name for name in columns if name not in header]
    if missing:
        raise TableError(f"{path}: no column {missing[0]!r} (the header has {header})")
    classes = dict(classes or {})
    out = {}
    for name in columns:
        j = header.index(name)
        if classes.get(name):
            out[name] = np.array([label(path, i, name, row[j], classes[name]) for i, row in enumerate(rows, start=2)],
                                 dtype=np.float64)
        else:
            out[name] = np.array([number(path, i, name, row[j]) for i, row in enumerate(rows, start=2)],
                                 dtype=np.float64)
    return out


def write_rows(header: Sequence[str], rows: Sequence[Sequence], out) -> None:
    """Write a CSV (header, then rows; floats at full precision) to an open text file."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([repr(float(v)) if isinstance(v, float | np.floating) else v for v in row])
