"""Finding the files: every regular file under the inputs (folders, files, URLs), sorted
by (root, path) in spilled runs, with what each input covers.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from gpskit import storage
from gpskit.errors import InputError
from gpskit.extsort import KEY, RunSorter, sort_key
from gpskit.ingest.options import SORT_ROWS
from gpskit.layout import own_entries


@dataclass(frozen=True, slots=True)
class FileRef:
    """A file found by the scan (slots: a million of them are a few hundred MB less)."""

    root: str
    path: str
    size: int
    mtime_ns: int

    @property
    def absolute(self) -> str:
        return storage.join(self.root, self.path)


@dataclass
class ListedFiles:
    """Photos a table names by path, read where they are: ``names`` inside ``folder``. The
    scan says under which root they were filed (``root``, ``prefix``)."""

    folder: Path
    names: list[str]
    root: str = ""
    prefix: str = ""


@dataclass(frozen=True)
class Scope:
    """What one input covers: one file, or every path under ``prefix`` within ``root``."""

    root: str
    prefix: str  # "" for the whole root, "day2/" for a folder inside it, a path for a file
    exact: bool
    #: folders inside that could not be listed ("day2/locked/"): what they held is unknown,
    #: so their earlier rows stay
    holes: tuple[str, ...] = ()

    def covers(self, root: str, path: str) -> bool:
        if root != self.root or any(path.startswith(hole) for hole in self.holes):
            return False
        return path == self.prefix if self.exact else path.startswith(self.prefix)


class Roots:
    """Root folders as small numbers: keys of millions of rows hold each root once."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.ids: dict[str, int] = {}

    def id(self, root: str) -> int:
        if root not in self.ids:
            self.ids[root] = len(self.names)
            self.names.append(root)
        return self.ids[root]

    def encode(self, column: pa.Array | pa.ChunkedArray) -> npt.NDArray[np.int32]:
        """The id of every root string of ``column`` (new roots are added)."""
        for root in pc.unique(column).to_pylist():
            self.id(root)
        found = pc.index_in(column, value_set=pa.array(self.names, pa.string()))
        return np.asarray(found.to_numpy(zero_copy_only=False), dtype=np.int32)

    def strings(self, ids: pa.Array | pa.ChunkedArray) -> pa.Array:
        """The root strings of ``ids``."""
        return pa.array(self.names, pa.string()).take(ids)


class ScannedFiles:
    """The files a scan found, sorted by (root, path) without duplicates, as Arrow batches
    (``key``, ``root_id``, ``path``, ``size``, ``mtime_ns``, ``named``: the name is valid
    UTF-8 and the entry a regular file, one the reader may open). They wait in sorted runs (:class:`~gpskit.extsort.RunSorter`), spilled to disk
    past ``run_rows`` files: ~50 bytes a file in memory, and never more than a run."""

    def __init__(self, sorter: RunSorter, roots: Roots, root_ids: set[int]) -> None:
        self.sorter, self.roots, self.root_ids = sorter, roots, root_ids

    def batches(self) -> Iterator[pa.Table]:
        """The files in order (once)."""
        return self.sorter.merged()

    def refs(self) -> Iterator[FileRef]:
        """The files in order as :class:`FileRef` (once)."""
        for batch in self.batches():
            yield from file_refs(batch, self.roots)

    def root_names(self) -> list[str]:
        """The roots that hold the files, sorted."""
        return sorted(self.roots.names[i] for i in self.root_ids)


def file_refs(table: pa.Table, roots: Roots) -> Iterator[FileRef]:
    columns = table.select(["root_id", "path", "size", "mtime_ns"]).to_pydict()
    for root_id, path, size, mtime_ns in zip(*columns.values(), strict=True):
        yield FileRef(roots.names[root_id], path, size, mtime_ns)


#: Files found per Arrow batch of a scan.
SCAN_BATCH = 65_536


SCANNED = pa.schema(
    [
        (KEY, pa.string()), ("root_id", pa.int32()), ("path", pa.string()), ("size", pa.int64()),
        ("mtime_ns", pa.int64()), ("named", pa.bool_()),
    ]
)  # fmt: skip


class ScanBuffer:
    """Files as they are found, turned into Arrow every 64k files (Python objects for one
    file apiece would be most of the memory of a scan of millions) and sorted in runs."""

    def __init__(self, roots: Roots, sorter: RunSorter) -> None:
        self.roots, self.sorter = roots, sorter
        self.root_ids: list[int] = []
        self.paths: list[str] = []
        self.sizes: list[int] = []
        self.mtimes: list[int] = []
        self.named: list[bool] = []
        self.used: set[int] = set()

    def add(self, root_id: int, path: str, size: int, mtime_ns: int, named: bool = True) -> None:
        self.root_ids.append(root_id)
        self.paths.append(path)
        self.sizes.append(size)
        self.mtimes.append(mtime_ns)
        self.named.append(named)
        if len(self.paths) >= SCAN_BATCH:
            self._flush()

    def _flush(self) -> None:
        if not self.paths:
            return
        root_ids = pa.array(self.root_ids, pa.int32())
        paths = pa.array(self.paths, pa.string())
        self.used.update(pc.unique(root_ids).to_pylist())
        columns = [
            sort_key(self.roots.strings(root_ids), paths), root_ids, paths, self.sizes,
            self.mtimes, self.named,
        ]  # fmt: skip
        self.sorter.add(pa.table(dict(zip(SCANNED.names, columns, strict=True)), SCANNED))
        self.root_ids, self.paths, self.sizes, self.mtimes, self.named = [], [], [], [], []

    def files(self) -> ScannedFiles:
        """Sorted by (root, path); a file found twice (inputs that overlap) once."""
        self._flush()
        return ScannedFiles(self.sorter, self.roots, self.used)


def _root_for(base: Path, known_roots: Iterable[str]) -> Path | None:
    """The outermost known root that holds ``base`` (so one file keeps one row)."""
    holders = [Path(r) for r in known_roots if base == Path(r) or Path(r) in base.parents]
    return min(holders, key=lambda p: len(p.parts)) if holders else None


def scan_scoped(
    inputs: Sequence[Path | str | ListedFiles],
    spill: Path,
    exclude: Iterable[Path] = (),
    roots: Roots | None = None,
    run_rows: int | None = None,
) -> tuple[ScannedFiles, list[Scope]]:
    """Every regular file under the inputs (local paths or fsspec URLs), sorted, without
    duplicates, and what each input covers; sorted runs of more than ``run_rows`` files
    wait in ``spill``. A folder inside a root ``roots`` knows already, or inside another
    input, is filed under that root."""
    excluded = {p.resolve() for p in exclude}
    roots = roots or Roots()
    # a folder inside another folder of this run, or one the manifest has, is filed under
    # the outermost: one file, one row, however the inputs overlap
    known = list(roots.names) + [
        str(given.folder.resolve())
        if isinstance(given, ListedFiles)
        else str(given).rstrip("/")
        if storage.is_url(given)
        else str(Path(given).resolve())
        for given in inputs
        if isinstance(given, ListedFiles) or storage.is_url(given) or Path(given).is_dir()
    ]
    sorter = RunSorter(spill, SCANNED, run_rows=run_rows or SORT_ROWS)
    found = ScanBuffer(roots, sorter)
    scopes: list[Scope] = []
    for given in inputs:
        if isinstance(given, ListedFiles):
            scopes += _scan_listed(given, known, found, excluded)
            continue
        if storage.is_url(given):
            scopes.append(_scan_url(str(given), known, found))
            continue
        given = Path(given)
        if not given.exists():
            raise InputError(f"{given}: no such file or folder", hint="check the path")
        base = given.resolve()
        root = _root_for(base, known) or (base.parent if base.is_file() else base)
        if not _utf8(str(root)):
            raise InputError(
                f"{_shown(str(root))}: the folder's name is not valid UTF-8, which the manifest "
                "cannot record",
                hint="rename the folder (or give a folder above it that is named in UTF-8)",
            )
        root_id = roots.id(str(root))
        rel = base.relative_to(root).as_posix() if base != root else ""
        if base.is_file():
            _add(found, root_id, str(base), rel)
            scopes.append(Scope(str(root), rel, exact=True))
            continue
        unlisted: list[str] = []
        for folder, dirnames, filenames in os.walk(base, onerror=_unlisted(root, base, unlisted)):
            here = Path(folder)
            kept, filenames = own_entries(here, dirnames, filenames)  # a dataset's own files
            dirnames[:] = sorted(d for d in kept if _real(here / d) not in excluded)
            inside = here.relative_to(root).as_posix()
            prefix = "" if inside == "." else inside + "/"
            for name in sorted(filenames):
                if excluded and _real(here / name) in excluded:
                    continue
                _add(found, root_id, os.path.join(folder, name), prefix + name)
        scopes.append(Scope(str(root), f"{rel}/" if rel else "", False, tuple(unlisted)))
    return found.files(), scopes


def _scan_listed(
    listed: ListedFiles, known: list[str], found: ScanBuffer, excluded: set[Path]
) -> list[Scope]:
    """The files a table names, each its own scope (a named file that is not there is
    left to the label notes: the table named a photo nobody has)."""
    base = listed.folder.resolve()
    root = _root_for(base, known) or base
    listed.root = str(root)
    listed.prefix = "" if base == root else base.relative_to(root).as_posix() + "/"
    root_id = found.roots.id(str(root))
    scopes = []
    for name in listed.names:
        location = base / name
        if excluded and any(p in excluded for p in (location, *location.parents)):
            continue  # a dataset's own file, or the table itself: never a photo
        if _add(found, root_id, str(location), listed.prefix + name):
            scopes.append(Scope(str(root), listed.prefix + name, exact=True))
    return scopes


def _unlisted(root: Path, base: Path, into: list[str]) -> Callable[[OSError], None]:
    """os.walk's error handler: the folders it could not list, as prefixes within ``root``
    (a folder whose listing fails is skipped by os.walk, silently unless asked)."""

    def skipped(error: OSError) -> None:
        where = Path(str(error.filename or base))
        inside = where.relative_to(root).as_posix() if where != root else ""
        into.append(f"{inside}/" if inside and inside != "." else "")

    return skipped


def _scan_url(url: str, known: list[str], found: ScanBuffer) -> Scope:
    """Every object under a URL into ``found``; filed under a known root that holds it."""
    listed_root, listed = storage.list_remote(url)
    holders = [r for r in known if listed_root == r or listed_root.startswith(r + "/")]
    root = min(holders, key=len) if holders else listed_root
    root_id = found.roots.id(root)
    inside = listed_root[len(root) + 1 :] + "/" if root != listed_root else ""
    last = ""
    for item in listed:
        last = inside + item.relative
        found.add(root_id, last, item.size, item.mtime_ns)
    if url.rstrip("/") != listed_root:  # one object
        return Scope(root, last, exact=True)
    return Scope(root, inside, exact=False)


def scan(inputs: Sequence[Path | str], exclude: Iterable[Path] = ()) -> list[FileRef]:
    """Every regular file under the inputs (recursively), sorted, without duplicates; what
    may not be opened (a FIFO, a device, a link to nothing, a name that is not UTF-8) is
    left out: callers read what this returns."""
    with tempfile.TemporaryDirectory(prefix="gpskit-scan-") as spill:
        found = scan_scoped(inputs, Path(spill), exclude)[0]
        return [
            ref
            for batch in found.batches()
            for ref in file_refs(batch.filter(batch["named"]), found.roots)
        ]


def _add(found: ScanBuffer, root_id: int, absolute: str, rel: str) -> bool:
    """Add one entry; False when it is gone (removed while scanning). What is not a regular
    file (a FIFO, a device, a socket, a dangling link or a link loop) is added too, to be
    recorded as unreadable without being opened (a FIFO would block the reader)."""
    try:
        info = os.stat(absolute)
    except OSError:
        try:
            info = os.lstat(absolute)  # the link itself: dangling, or a loop
        except OSError:
            return False
    named = _utf8(rel)  # if not, its row says so, under a name shown with \x escapes
    regular = stat.S_ISREG(info.st_mode)
    size = info.st_size if regular else 0
    found.add(root_id, rel if named else _shown(rel), size, info.st_mtime_ns, named and regular)
    return True


def _real(path: Path) -> Path:
    """``path`` with its links followed where they lead somewhere (a loop: as it is)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


def not_read_because(absolute: str) -> str:
    """Why a file the scan found is recorded without being read (see :func:`_add`)."""
    try:
        os.lstat(absolute)
    except OSError:  # recorded under a name shown with \x escapes, or gone since
        return NOT_UTF8
    try:
        info = os.stat(absolute)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symbolic link loop, not a file"
        return "a symbolic link to nothing (its target is gone)"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file (a FIFO, a device or a socket): it is never opened"
    return NOT_UTF8


def _utf8(name: str) -> bool:
    """Whether a name from the file system is valid UTF-8 (Python keeps the bytes of one
    that is not as lone surrogates, which Arrow strings cannot hold)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(name: str) -> str:
    """A name whose bytes are not all UTF-8, with those bytes as ``\\xff`` escapes."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


#: The reader's error for a file whose name the manifest cannot hold as it is.
NOT_UTF8 = "the file name is not valid UTF-8 (shown with \\x escapes): rename the file to read it"
