"""Arrow arrays built over buffers, without ``pa.array``.

Any call of ``pa.array`` asks pandas whether its argument is a pandas object, and so imports
it: ~0.17 s, more than a small ingest's own work. The ingest builds its arrays here instead
(tests/collectors/test_ingest.py checks that an ingest leaves pandas unimported).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa


def int64_array(values: np.ndarray | Sequence[int]) -> pa.Array:
    """An int64 array without nulls."""
    values = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])


def string_array(values: Sequence[str | None], *, large: bool = False) -> pa.Array:
    """A string (or large_string) array; None is null."""
    n = len(values)
    encoded = [b"" if v is None else v.encode("utf-8") for v in values]
    offsets = np.zeros(n + 1, dtype=np.int64 if large else np.int32)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    missing = np.fromiter((v is None for v in values), dtype=bool, count=n)
    nulls = int(missing.sum())
    validity = pa.py_buffer(np.packbits(~missing, bitorder="little")) if nulls else None
    kind = pa.LargeStringArray if large else pa.StringArray
    return kind.from_buffers(
        n, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded)), validity, nulls
    )
