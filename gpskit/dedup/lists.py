"""A photo's lists of hashes (its 18 crops, its 7 turned copies) held as numbers.

At 10M photos the crop lists are 180M hashes: as Python strings they would not fit in
memory, as ``uint64`` in Arrow they are 1.4 GB. The 64-bit hashes are parsed once from
the manifest's hex strings into an Arrow ``list<uint64>`` column (one buffer, no Python
objects). Their 256-bit twins (32 bytes each: 5.8 GB for the crops at 10M) are not held
at all: a search needs them only for the few pairs its 64-bit hashes matched, and
:class:`ListedLong` reads exactly those from the manifest file, a row group at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from gpskit.dataset import DatasetBusyError

CODES = pa.list_(pa.uint64())

#: The value of each ASCII byte as a hex digit (lower or upper case); 255: not a digit.
_NIBBLE = np.full(256, 255, np.uint8)
for _value, _digits in enumerate(zip("0123456789abcdef", "0123456789ABCDEF", strict=True)):
    _NIBBLE[[ord(d) for d in _digits]] = _value


def hex_codes(strings: pa.Array) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.bool_]]:
    """16-digit hex strings as uint64, and which entries were such strings (others: 0).
    Parsed a million at a time (180M crop hashes at 10M photos: memory stays flat)."""
    strings = strings.cast(pa.large_string()) if pa.types.is_string(strings.type) else strings
    n = len(strings)
    offsets = np.frombuffer(strings.buffers()[1], np.int64, n + 1, strings.offset * 8)
    data = strings.buffers()[2]
    raw = np.frombuffer(data, np.uint8) if data is not None else np.empty(0, np.uint8)
    valid = np.diff(offsets) == 16
    if strings.null_count:
        valid &= ~np.asarray(strings.is_null(), bool)
    values = np.zeros(n, np.uint64)
    ok = np.zeros(n, bool)
    step = 1 << 20
    for lo in range(0, n, step):
        rows = lo + np.flatnonzero(valid[lo : lo + step])
        starts = offsets[rows]
        if not len(rows):
            continue
        if starts[-1] - starts[0] == 16 * (len(rows) - 1):  # contiguous: a view, no gather
            digits = _NIBBLE[raw[starts[0] : starts[0] + 16 * len(rows)].reshape(-1, 16)]
        else:
            digits = _NIBBLE[raw[starts[:, None] + np.arange(16)]]
        good = (digits != 255).all(axis=1)
        packed = (digits[:, 0::2] << 4 | digits[:, 1::2]).astype(np.uint8)
        values[rows[good]] = np.ascontiguousarray(packed[good]).view(">u8").ravel()
        ok[rows[good]] = True
    return values, ok


def code_lists(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """A ``list<string>`` column of hex hashes as ``list<uint64>`` (same lists, same
    positions; an entry that is not a 16-digit hex string becomes null)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_null(array.type) or not len(array):
        return pa.array([None] * len(array), CODES)
    array = array.cast(pa.large_list(pa.large_string()))
    flat = array.flatten()  # the entries of the valid lists, in order
    values, ok = hex_codes(flat)
    items = pa.array(values, pa.uint64(), mask=~ok)
    offsets = np.frombuffer(array.buffers()[1], np.int64, len(array) + 1, array.offset * 8)
    offsets = (offsets - offsets[0]).astype(np.int32)
    mask = np.asarray(array.is_null(), bool) if array.null_count else None
    return pa.ListArray.from_arrays(
        pa.array(offsets), items, mask=pa.array(mask) if mask is not None else None
    )


def flat_codes(
    lists: Any,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.uint64]]:
    """The entries of a pandas column of lists (Arrow ``list<uint64>``, or Python lists of
    hex strings as a hand-built frame has them): for each valid entry, its row (position in
    the column), its position in its list, and its hash. Chunk by chunk: 180M entries
    never pass through one Arrow array."""
    array = pa.array(lists.array) if hasattr(lists.array, "__arrow_array__") else None
    if array is None or not pa.types.is_list(array.type) or array.type.value_type != pa.uint64():
        array = code_lists(pa.array(list(lists), pa.list_(pa.string()), from_pandas=True))
    chunks = array.chunks if isinstance(array, pa.ChunkedArray) else [array]
    found = []
    base = 0
    for chunk in chunks:
        rows, positions, codes = _flat_chunk(chunk)
        found.append((rows + base, positions, codes))
        base += len(chunk)
    if len(found) == 1:
        return found[0]
    if not found:
        empty = np.empty(0, np.int64)
        return empty, empty.copy(), np.empty(0, np.uint64)
    return (
        np.concatenate([f[0] for f in found]),
        np.concatenate([f[1] for f in found]),
        np.concatenate([f[2] for f in found]),
    )


def list_lengths(lists: Any) -> npt.NDArray[np.int64]:
    """How many entries each list of a pandas column of lists holds (0 for none)."""
    array = pa.array(lists.array) if hasattr(lists.array, "__arrow_array__") else None
    if array is not None and pa.types.is_list(array.type):
        chunks = array.chunks if isinstance(array, pa.ChunkedArray) else [array]
        parts = [np.asarray(c.value_lengths().fill_null(0), np.int64) for c in chunks]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)
    return np.array([len(v) if v is not None else 0 for v in lists], np.int64)


def _flat_chunk(
    array: pa.Array,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.uint64]]:
    lengths = np.asarray(array.value_lengths().fill_null(0), np.int64)
    total = int(lengths.sum())
    # positions in 32 bits where they fit: half the bytes over 180M entries
    small: Any = np.int32 if total < 2**31 else np.int64
    positions: Any = np.arange(total, dtype=small)
    positions -= np.repeat((np.cumsum(lengths) - lengths).astype(small), lengths)
    rows = np.repeat(np.arange(len(array), dtype=np.int64), lengths)
    flat = array.flatten()
    codes = np.asarray(flat.fill_null(0), np.uint64)
    if flat.null_count:
        valid = ~np.asarray(flat.is_null(), bool)
        return rows[valid], positions[valid], codes[valid]
    return rows, positions, codes


def read_code_lists(source: ManifestSource, column: str) -> pa.ChunkedArray | None:
    """A manifest's ``list<string>`` hash column as ``list<uint64>``, read and parsed a
    batch at a time (the strings of 180M crop hashes never held at once); None when the
    manifest has no such column."""
    import pyarrow.parquet as pq

    with pq.ParquetFile(source.path) as manifest:
        if column not in manifest.schema_arrow.names:
            return None
        chunks = [
            code_lists(batch.column(0))
            for batch in manifest.iter_batches(batch_size=1 << 16, columns=[column])
        ]
    source.check()
    return pa.chunked_array(chunks, CODES)


@dataclass(frozen=True)
class ManifestSource:
    """The manifest file a frame was read from, as it was then (inode, size, mtime)."""

    path: Path
    identity: tuple[int, int, int]

    @classmethod
    def of(cls, path: Path) -> ManifestSource:
        stat = path.stat()
        return cls(path, (stat.st_ino, stat.st_size, stat.st_mtime_ns))

    def check(self) -> None:
        stat = self.path.stat()
        if (stat.st_ino, stat.st_size, stat.st_mtime_ns) != self.identity:
            raise DatasetBusyError(
                f"{self.path} was replaced while dedup ran",
                hint="run dedup again when the other command has finished",
            )

    def entries(
        self, column: str, rows: npt.NDArray[np.int64], positions: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.uint64]:
        """The 256-bit hashes (``(k, 5)``, see :func:`gpskit.dedup.hashes.long_hashes`) at
        ``positions`` of the lists in ``column`` of manifest ``rows``."""
        import pyarrow.parquet as pq

        out = np.zeros((len(rows), 5), np.uint64)
        out[:, 4] = 1
        if not len(rows):
            return out
        self.check()
        with pq.ParquetFile(self.path) as source:
            metadata = source.metadata
            if column not in source.schema_arrow.names:
                return out
            ends = np.cumsum(
                [metadata.row_group(g).num_rows for g in range(metadata.num_row_groups)]
            )
            groups = np.searchsorted(ends, rows, side="right")
            for group in np.unique(groups):
                here = np.flatnonzero(groups == group)
                first = int(ends[group - 1]) if group else 0
                part = source.read_row_group(int(group), columns=[column]).column(0)
                _fill(out, here, part.combine_chunks(), rows[here] - first, positions[here])
        self.check()
        return out


def _fill(
    out: npt.NDArray[np.uint64],
    slots: npt.NDArray[np.int64],
    lists: pa.Array,
    rows: npt.NDArray[np.int64],
    positions: npt.NDArray[np.int64],
) -> None:
    lists = lists.cast(pa.large_list(pa.large_binary()))
    offsets = np.frombuffer(lists.buffers()[1], np.int64, len(lists) + 1, lists.offset * 8)
    lengths = np.diff(offsets)
    present = ~np.asarray(lists.is_null(), bool) if lists.null_count else np.ones(len(lists), bool)
    inside = present[rows] & (positions < lengths[rows])
    values = lists.values
    picked = values.take(pa.array(offsets[rows[inside]] + positions[inside]))
    for slot, value in zip(slots[inside], picked.to_pylist(), strict=True):
        if isinstance(value, bytes) and len(value) == 32:
            out[slot, :4] = np.frombuffer(value, ">u8")
            out[slot, 4] = 0


@dataclass(frozen=True)
class ListedLong:
    """256-bit hashes of list entries, read from the manifest when asked for: indexing it
    like an array of ``(n, 5)`` gives the rows asked for."""

    source: ManifestSource
    column: str
    rows: npt.NDArray[np.int64]
    positions: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: Any) -> npt.NDArray[np.uint64]:
        return self.source.entries(self.column, self.rows[index], self.positions[index])
