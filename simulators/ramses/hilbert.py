"""RAMSES's Hilbert keys, vectorised: integer cell coordinates -> position along the curve.

RAMSES splits the box among CPUs by ranges of these keys (`bound_key` in the amr files, the
DOMAIN table in the info file). The state tables are those of RAMSES's `hilbert2d` and
`hilbert3d` (amr/hilbert.f90), indexed [state, (next state | digit), input digit]; in 1-D the
key is the coordinate itself.
"""

from __future__ import annotations

import numpy as np

__all__ = ["hilbert_keys"]

_STATE_2D = np.array([
    1, 0, 2, 0, 0, 1, 3, 2,
    0, 3, 1, 1, 0, 3, 1, 2,
    2, 2, 0, 3, 2, 1, 3, 0,
    3, 1, 3, 2, 2, 3, 1, 0,
]).reshape(4, 2, 4)

_STATE_3D = np.array([
    1, 2, 3, 2, 4, 5, 3, 5, 0, 1, 3, 2, 7, 6, 4, 5,
    2, 6, 0, 7, 8, 8, 0, 7, 0, 7, 1, 6, 3, 4, 2, 5,
    0, 9, 10, 9, 1, 1, 11, 11, 0, 3, 7, 4, 1, 2, 6, 5,
    6, 0, 6, 11, 9, 0, 9, 8, 2, 3, 1, 0, 5, 4, 6, 7,
    11, 11, 0, 7, 5, 9, 0, 7, 4, 3, 5, 2, 7, 0, 6, 1,
    4, 4, 8, 8, 0, 6, 10, 6, 6, 5, 1, 2, 7, 4, 0, 3,
    5, 7, 5, 3, 1, 1, 11, 11, 4, 7, 3, 0, 5, 6, 2, 1,
    6, 1, 6, 10, 9, 4, 9, 10, 6, 7, 5, 4, 1, 0, 2, 3,
    10, 3, 1, 1, 10, 3, 5, 9, 2, 5, 3, 4, 1, 6, 0, 7,
    4, 4, 8, 8, 2, 7, 2, 3, 2, 1, 5, 6, 3, 0, 4, 7,
    7, 2, 11, 2, 7, 5, 8, 5, 4, 5, 7, 6, 3, 2, 0, 1,
    10, 3, 2, 6, 10, 3, 4, 4, 6, 1, 7, 0, 5, 2, 4, 3,
]).reshape(12, 2, 8)


def hilbert_keys(coords: np.ndarray, bit_length: int) -> np.ndarray:
    """Hilbert keys of integer coordinates, (n, ndim) in [0, 2^bit_length) -> (n,) int64.

    Keys run over [0, 2^(ndim * bit_length)); one loop step per bit, vectorised over points.
    """
    coords = np.asarray(coords, dtype=np.int64)
    if coords.ndim != 2 or not 1 <= coords.shape[1] <= 3:
        raise ValueError(f"coords must have shape (n, ndim in 1..3), got {coords.shape}")
    ndim = coords.shape[1]
    if not 1 <= bit_length <= 62 // ndim:
        raise ValueError(f"bit_length {bit_length} out of range 1..{62 // ndim} for {ndim}-D")
    if coords.size and (coords.min() < 0 or coords.max() >= 2**bit_length):
        raise ValueError(f"coordinates must lie in [0, 2^{bit_length})")
    if ndim == 1:
        return coords[:, 0].copy()
    table = _STATE_2D if ndim == 2 else _STATE_3D
    ndigits = table.shape[2]
    # Flat lookups on (state * ndigits + digit), in small integer types: the loop runs per bit.
    next_state = (table[:, 0, :] * ndigits).astype(np.int16).reshape(-1)
    key_digit = table[:, 1, :].astype(np.int64).reshape(-1)
    columns = [np.ascontiguousarray(coords[:, d]) for d in range(ndim)]
    state = np.zeros(len(coords), dtype=np.int16)
    keys = np.zeros(len(coords), dtype=np.int64)
    for bit in range(bit_length - 1, -1, -1):
        # x is the most significant bit of the input digit, as in RAMSES.
        lookup = state + sum(((c >> bit) & 1).astype(np.int16) << (ndim - 1 - d)
                             for d, c in enumerate(columns))
        keys <<= ndim
        keys |= key_digit[lookup]
        state = next_state[lookup]
    return keys
