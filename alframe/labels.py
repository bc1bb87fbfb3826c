"""A pool of items whose labels come from a person: images or rows of features to classify.

Active learning exists for labels that cost a person's time (Galaxy Zoo's galaxies, a
microscope's cells, a simulation's maps). The items are a `Pool` of feature rows the committee
learns from; each may also have a picture, which is what the person is shown. Nothing here
can produce a label: `run` refuses, and `alframe label RUN_DIR` serves the pool to people.

    >>> pool = item_pool("items.csv", features=["size", "colour"], classes=["spiral", "elliptical"],
    ...                  image="picture")                                    # doctest: +SKIP

The CSV has one row per item: an `item` column (optional; row numbers otherwise), the feature
columns, and optionally an image column of file paths (relative to the CSV's folder).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alframe.external import ExternalRunError
from alframe.oracle import Outcome, OutputSpec
from alframe.space import Pool
from alframe.tables import TableError, number, read_rows

IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
               ".webp": "image/webp", ".svg": "image/svg+xml"}


@dataclass(frozen=True, eq=False)
class ItemPool:
    """The oracle of items labelled by people.

    Args:
        space: the items' features, a `Pool` (n_items, n_features), with the item names as ids.
        outputs: the label (classification; its classes are the buttons a person is shown).
        images: a picture file per item (n_items,), or None where items are shown as features.
    """

    space: Pool
    outputs: OutputSpec
    images: tuple[Path, ...] | None = None

    def __post_init__(self) -> None:
        if self.outputs.task != "classification" or not self.outputs.classes:
            raise ValueError("an ItemPool's outputs must be a classification with named classes")
        if self.images is not None and len(self.images) != len(self.space):
            raise ValueError(f"ItemPool has {len(self.space)} items but {len(self.images)} images")

    def run(self, queries: np.ndarray) -> Outcome:
        raise ExternalRunError("these labels come from a person: serve the pool with `alframe label RUN_DIR`")

    def row_of(self, point) -> int:
        """The pool row of an asked point (n_features,)."""
        return int(self.space.index_of(np.asarray(point, dtype=np.float64)[None])[0])

    def item_name(self, row: int) -> str:
        return self.space.ids[row] if self.space.ids is not None else str(row)

    def features(self, row: int) -> dict[str, float]:
        """The features of item `row`, by name."""
        return {name: float(value) for name, value in zip(self.space.names, self.space.values[row])}

    def image(self, row: int) -> tuple[bytes, str]:
        """The picture of item `row` and its media type."""
        if self.images is None:
            raise LookupError("this pool has no images")
        path = self.images[row]
        return path.read_bytes(), IMAGE_TYPES[path.suffix.lower()]


def item_pool(path: str | Path, features: Sequence[str], classes: Sequence[str], *, label: str = "label",
              image: str | None = None, item: str = "item") -> ItemPool:
    """The items of a CSV to be labelled.

    Args:
        path: CSV with a header; one row per item.
        features: the columns the committee learns from (numbers, all finite).
        classes: the class names a person chooses among (at least two).
        label: the name of the label (the output).
        image: the column of picture paths (relative to the CSV's folder, or absolute), if any.
        item: the column of item names, if present (row numbers otherwise).
    """
    path = Path(path)
    header, rows = read_rows(path)
    features = list(features)
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be at least two distinct names, got {list(classes)}")
    for name in [*features, *([image] if image else [])]:
        if name not in header:
            raise TableError(f"{path}: no column {name!r} (the header has {header})")
    if not rows:
        raise TableError(f"{path}: no rows after the header")
    column = {name: i for i, name in enumerate(header)}
    values = np.empty((len(rows), len(features)))
    for i, row in enumerate(rows):
        values[i] = [number(path, i + 2, name, row[column[name]].strip()) for name in features]
    ids = tuple(row[column[item]].strip() for row in rows) if item in column else None
    if ids is not None and len(set(ids)) != len(ids):
        raise TableError(f"{path}: column {item!r} names an item twice")
    duplicated = len(np.unique(values, axis=0)) != len(values)
    if duplicated:
        raise TableError(f"{path}: two items have the same features; the committee could not tell them apart")
    images = None
    if image:
        images = []
        for row_number, row in enumerate(rows, start=2):
            file = Path(row[column[image]].strip())
            file = file if file.is_absolute() else path.parent / file
            if file.suffix.lower() not in IMAGE_TYPES:
                raise TableError(f"{path}: row {row_number}, column {image!r}: {file.name} is not an image "
                                 f"({', '.join(IMAGE_TYPES)})")
            if not file.is_file():
                raise TableError(f"{path}: row {row_number}, column {image!r}: no such file {file}")
            images.append(file.resolve())
        images = tuple(images)
    space = Pool(names=tuple(features), values=values, ids=ids)
    return ItemPool(space, OutputSpec(names=(label,), task="classification", classes=tuple(classes)), images)
