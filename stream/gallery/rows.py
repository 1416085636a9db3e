"""A growable array: what the indexes and the store's track sums hold rows in.

Why not ``np.concatenate`` per append: that copies everything held on every append, O(n^2) over a gallery
read in chunks; here appends cost amortised O(rows added). Capacity grows by half, not double (at a million
256-D rows a doubling would hold a gigabyte of nothing), and keeps an eighth spare, so that the first rows
added to an index just read (a live node's first enrollment) copy nothing.
"""

from __future__ import annotations

import numpy as np


class Rows:
    def __init__(self, dtype, width: int | None = None) -> None:
        self._shape = () if width is None else (width,)
        self._data = np.zeros((0, *self._shape), dtype)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def view(self) -> np.ndarray:
        return self._data[: self._n]

    def grow(self, n: int) -> None:
        """Make the first ``n`` rows valid (new ones zero: storage beyond the rows held is never written)."""
        if n > len(self._data):
            size = max(n + n // 8, len(self._data) + len(self._data) // 2, 1024)
            grown = np.zeros((size, *self._shape), self._data.dtype)
            grown[: self._n] = self.view()
            self._data = grown
        self._n = max(self._n, n)

    def extend(self, n: int) -> np.ndarray:
        """``n`` more rows, to be written in place (a file read straight into them: no copy of it is made)."""
        start = self._n
        self.grow(start + n)
        return self._data[start : self._n]

    def append(self, rows: np.ndarray) -> None:
        rows = np.asarray(rows, self._data.dtype).reshape(-1, *self._shape)
        self.extend(len(rows))[:] = rows

    def keep(self, mask: np.ndarray) -> None:
        kept = self.view()[mask]
        self._data, self._n = kept, len(kept)

    def reorder(self, order: np.ndarray) -> None:
        """Rows in ``order`` (a permutation of the rows held)."""
        self._data, self._n = self.view()[order], len(order)
