"""``gpskit ingest``: walk folders of photos and write one validated Parquet manifest.

Every file found appears in the manifest, accepted or rejected with reason codes. Files are
read in isolated worker processes (:mod:`gpskit.pool`), so a decoder crash, a huge
allocation or a hang costs one row, not the run. Re-runs re-read only new or changed
files (same path, size and mtime are reused), and the manifest is replaced atomically.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from PIL import Image, UnidentifiedImageError

from gpskit import checks
from gpskit.dataset import Dataset
from gpskit.errors import InputError, SchemaError, UsageError
from gpskit.exif import (
    GpsFlag,
    Metadata,
    Problem,
    displayed_size,
    orient,
    read_metadata,
    salvage_metadata,
)
from gpskit.imaging import (
    HASH_DECODE_SIDE,
    SUPPORTED_FORMATS,
    crop_hashes,
    normalise_format,
    open_image,
    phash,
    phash256,
    pixel_hash,
    register_heif,
    sniff_format,
)
from gpskit.pool import TIMED_OUT, run_isolated
from gpskit.schema import file_metadata, load_schema, write_table

ProgressCallback = Callable[[int, int], None]

#: Default per-file limits of the reader.
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MAX_PIXELS = 256_000_000  # above a 200 MP phone photo, below a decompression bomb
DEFAULT_MAX_MEMORY = 6 * 1024**3  # address space per worker: a bad file fails, not the machine


@dataclass(frozen=True)
class IngestOptions:
    """How to read and judge photos; thresholds default to the registered checks' defaults."""

    decode: bool = True
    workers: int | None = None
    timeout: float = DEFAULT_TIMEOUT_S
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_memory: int | None = DEFAULT_MAX_MEMORY
    thresholds: dict[str, float] = field(default_factory=checks.default_thresholds)
    force: bool = False

    def validate(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise UsageError(f"--workers must be at least 1, got {self.workers}")
        unknown = set(self.thresholds) - set(checks.default_thresholds())
        if unknown:
            raise UsageError(f"unknown check thresholds: {sorted(unknown)}")


@dataclass(frozen=True)
class FileRef:
    """A file found by the scan."""

    root: str
    path: str
    size: int
    mtime_ns: int

    @property
    def absolute(self) -> str:
        return os.path.join(self.root, self.path)


@dataclass
class IngestReport:
    """What a run did, for the summary table and ``--json``."""

    dataset_dir: str
    manifest: str
    files: int
    images: int
    accepted: int
    rejected: int
    read: int
    reused: int
    removed: int
    reasons: dict[str, int]
    warnings: dict[str, int]
    formats: dict[str, int]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- scanning ---------------------------------------------------------------------------


def scan(inputs: Sequence[Path], exclude: Iterable[Path] = ()) -> list[FileRef]:
    """Every regular file under the inputs (recursively), sorted, without duplicates."""
    excluded = [p.resolve() for p in exclude]
    found: dict[tuple[str, str], FileRef] = {}
    for given in inputs:
        if not given.exists():
            raise InputError(f"{given}: no such file or folder", hint="check the path")
        base = given.resolve()
        if base.is_file():
            _add(found, base.parent, base)
            continue
        for folder, dirnames, filenames in os.walk(base):
            here = Path(folder)
            dirnames[:] = sorted(d for d in dirnames if (here / d).resolve() not in excluded)
            for name in sorted(filenames):
                _add(found, base, here / name)
    return [found[key] for key in sorted(found)]


def _add(found: dict[tuple[str, str], FileRef], root: Path, path: Path) -> None:
    try:
        stat = path.stat()
    except OSError:
        return  # a dangling symlink or a file removed while scanning
    if not path.is_file():
        return
    rel = path.relative_to(root).as_posix()
    found[(str(root), rel)] = FileRef(str(root), rel, stat.st_size, stat.st_mtime_ns)


# --- reading one file (runs in a worker process) ------------------------------------------


def _init_worker(max_pixels: int) -> None:
    register_heif()
    warnings.simplefilter("ignore")
    # Pillow raises DecompressionBombError above twice this; we refuse above max_pixels first.
    Image.MAX_IMAGE_PIXELS = max_pixels


def read_file(path: str, decode: bool, max_pixels: int) -> dict[str, Any]:
    """Read one file's metadata (and, with ``decode``, its pixels and hashes).

    Never raises for a bad file: the problem goes into ``read_status`` and ``error``.
    """
    out: dict[str, Any] = {"read_status": checks.READ_OK, "decoded": False, "has_exif": False}
    try:
        if os.path.getsize(path) == 0:
            out["read_status"] = checks.READ_EMPTY
            return out
        source = _source(path, decode, out)
    except OSError as exc:
        out.update(read_status=checks.READ_UNREADABLE, error=f"{type(exc).__name__}: {exc}")
        return out
    try:
        img = open_image(source)
    except Image.DecompressionBombError as exc:
        out.update(read_status=checks.READ_TOO_MANY_PIXELS, error=str(exc))
        return out
    except Exception as exc:  # corrupt headers raise anything from SyntaxError to struct.error
        return _unopenable(path, out, exc)
    with img:
        meta = _read_header(img, source, out)
        if out.get("width") and out["width"] * out["height"] > max_pixels:
            out.update(
                read_status=checks.READ_TOO_MANY_PIXELS,
                error=f"{out['width']}x{out['height']} pixels > --max-pixels {max_pixels}",
            )
            return out
        if decode and img.format in SUPPORTED_FORMATS:
            _decode_and_hash(img, meta, out)
    return out


def _source(path: str, decode: bool, out: dict[str, Any]) -> Any:
    """What to open: the bytes in memory when decoding (hashed once), else the path."""
    if not decode:
        return path
    with open(path, "rb") as fh:
        data = fh.read()
    out["sha256"] = hashlib.sha256(data).hexdigest()
    return io.BytesIO(data)


def _read_header(img: Image.Image, source: Any, out: dict[str, Any]) -> Metadata:
    """Format, metadata and displayed size of an opened image, into ``out``."""
    out["format"] = normalise_format(img.format)
    try:
        meta = read_metadata(img)
    except Exception as exc:  # an EXIF block too broken for Pillow: keep the pixels
        meta = Metadata(gps_flags=[GpsFlag(Problem.MALFORMED, "exif")])
        out["error"] = f"EXIF: {type(exc).__name__}: {exc}"
    if not meta.has_exif and isinstance(source, io.BytesIO):
        # a container whose EXIF item the decoder missed (damaged HEIF boxes)
        meta = salvage_metadata(source.getvalue()) or meta
    out.update(meta.row_fields())
    with contextlib.suppress(Exception):  # a size Pillow cannot report stays empty
        out["width"], out["height"] = displayed_size(img, meta.orientation)
    return meta


def _decode_and_hash(img: Image.Image, meta: Metadata, out: dict[str, Any]) -> None:
    """Decode (JPEG draft-scaled), then the perceptual, crop and pixel hashes, into ``out``."""
    try:
        if img.format in ("JPEG", "MPO"):
            img.draft("L", (HASH_DECODE_SIDE, HASH_DECODE_SIDE))
        img.load()
        stored: Image.Image = img
        if max(stored.size) > 4 * HASH_DECODE_SIDE:
            # hash a bounded-size copy so PNG/TIFF/HEIF cost like a draft-decoded JPEG
            stored = stored.copy()
            stored.thumbnail((4 * HASH_DECODE_SIDE, 4 * HASH_DECODE_SIDE), Image.Resampling.BILINEAR)
        stored = stored.convert("L")
        gray = orient(stored, img.format, meta.orientation)
        out["phash"] = phash(gray)
        out["phash256"] = phash256(gray)
        out["crop_hashes"], out["crop_phash256"] = crop_hashes(gray)
        out["pixel_hash"] = pixel_hash(gray)
        out["stored_pixel_hash"] = pixel_hash(stored)
        out["decoded"] = True
    except Image.DecompressionBombError as exc:
        out.update(read_status=checks.READ_TOO_MANY_PIXELS, error=str(exc))
    except MemoryError as exc:
        out.update(read_status=checks.READ_DECODE_ERROR, error=f"MemoryError: {exc}")
    except Exception as exc:
        out.update(read_status=checks.READ_DECODE_ERROR, error=f"{type(exc).__name__}: {exc}")


def _unopenable(path: str, out: dict[str, Any], exc: Exception) -> dict[str, Any]:
    """No decoder opens the file: a known container is corrupt, anything else is no image.

    The EXIF block of a corrupt image is still read (as ExifTool does), so the manifest
    shows what the camera wrote even when the pixels are lost.
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read(64 * 1024 * 1024)
    except OSError:
        data = b""
    fmt = sniff_format(data[:64])
    if fmt is None:
        out["read_status"] = checks.READ_NOT_IMAGE
        return out
    out.update(format=fmt, read_status=checks.READ_DECODE_ERROR)
    if not isinstance(exc, UnidentifiedImageError):
        out["error"] = f"{type(exc).__name__}: {exc}"
    else:
        out["error"] = f"no decoder could open this {fmt} file"
    meta = salvage_metadata(data)
    if meta is not None:
        out.update(meta.row_fields())
    return out


# --- the run ------------------------------------------------------------------------------


def _previous_rows(dataset: Dataset, notes: list[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """Rows of the existing manifest, to reuse; none when it is of another schema version."""
    if not dataset.manifest_path.exists():
        return {}
    try:
        table = dataset.load_manifest()
    except SchemaError as exc:
        notes.append(f"the existing manifest cannot be reused ({exc}); every file is read again")
        return {}
    return {(r["root"], r["path"]): r for r in table.to_pylist()}


def _decodable_but_not_decoded(row: dict[str, Any]) -> bool:
    """A row from a ``--no-decode`` run that a full run must read again."""
    return (
        row["read_status"] == checks.READ_OK
        and row["format"] in SUPPORTED_FORMATS
        and not row["decoded"]
    )


def _reusable(old: dict[str, Any] | None, ref: FileRef, options: IngestOptions) -> bool:
    """An earlier row still describes the file: same size and mtime, decoded if needed."""
    return (
        old is not None
        and old["file_size"] == ref.size
        and old["mtime_ns"] == ref.mtime_ns
        and not (options.decode and _decodable_but_not_decoded(old))
    )


def _failure_row(status: str, detail: str | None) -> dict[str, Any]:
    return {"read_status": status, "decoded": False, "has_exif": False, "error": detail}


def _read_files(
    files: list[FileRef],
    to_read: list[int],
    options: IngestOptions,
    rows: dict[int, dict[str, Any]],
    progress: ProgressCallback | None,
) -> None:
    """Read the files at ``to_read`` in isolated workers; put each result in ``rows``."""
    done = len(files) - len(to_read)
    if progress:
        progress(done, len(files))
    tasks = [(files[i].absolute, options.decode, options.max_pixels) for i in to_read]
    for outcome in run_isolated(
        read_file,
        tasks,
        workers=options.workers,
        timeout=options.timeout,
        max_memory=options.max_memory,
        initializer=_partial_init(options.max_pixels),
    ):
        if outcome.failure is None:
            assert outcome.value is not None
            extracted = outcome.value
        else:
            crashed = outcome.failure != TIMED_OUT
            status = checks.READ_WORKER_CRASHED if crashed else checks.READ_TIMEOUT
            extracted = _failure_row(status, outcome.detail)
        ref = files[to_read[outcome.index]]
        rows[to_read[outcome.index]] = {
            "root": ref.root,
            "path": ref.path,
            "file_size": ref.size,
            "mtime_ns": ref.mtime_ns,
            **extracted,
        }
        done += 1
        if progress:
            progress(done, len(files))


def judge(row: dict[str, Any], thresholds: dict[str, float]) -> None:
    """Run the checks on one row: fill ``reasons``, ``warnings`` and ``status``."""
    reasons, warns = checks.evaluate(row, thresholds)
    row["reasons"], row["warnings"] = reasons, warns
    row["status"] = "rejected" if reasons else "accepted"
    row.setdefault("gps_flags", [])
    row.setdefault("crop_hashes", [])
    row.setdefault("crop_phash256", [])


def _write_manifest(
    dataset: Dataset, rows: list[dict[str, Any]], files: list[FileRef], options: IngestOptions
) -> pa.Table:
    schema = load_schema("manifest")
    columns = {name: [row.get(name) for row in rows] for name in schema.names}
    settings = {
        "inputs": sorted({ref.root for ref in files}),
        "decode": options.decode,
        "max_pixels": options.max_pixels,
        "thresholds": options.thresholds,
    }
    metadata = {"gpskit.ingest": json.dumps(settings, sort_keys=True)}
    table = pa.Table.from_pydict(columns, schema=schema.arrow_schema())
    write_table(table, dataset.manifest_path, schema, extra_metadata=metadata)
    return table


def ingest(
    inputs: Sequence[Path],
    dataset_dir: Path | Dataset,
    options: IngestOptions | None = None,
    progress: ProgressCallback | None = None,
) -> IngestReport:
    """Scan ``inputs``, read new or changed files, judge every row, write the manifest."""
    options = options or IngestOptions()
    options.validate()
    dataset = Dataset.at(dataset_dir)
    files = scan(inputs, exclude=[dataset.root])
    notes: list[str] = []
    previous = {} if options.force else _previous_rows(dataset, notes)
    rows: dict[int, dict[str, Any]] = {}
    for i, ref in enumerate(files):
        old = previous.get((ref.root, ref.path))
        if old is not None and _reusable(old, ref, options):
            rows[i] = old
    to_read = [i for i in range(len(files)) if i not in rows]
    reused = len(rows)
    _read_files(files, to_read, options, rows, progress)
    ordered = [rows[i] for i in range(len(files))]
    for row in ordered:
        judge(row, options.thresholds)
    table = _write_manifest(dataset, ordered, files, options)
    report = summarize(table, dataset)
    report.read, report.reused = len(to_read), reused
    report.removed = len(set(previous) - {(f.root, f.path) for f in files})
    report.notes = notes
    return report


class _partial_init:
    """Picklable initializer carrying the pixel limit into each worker."""

    def __init__(self, max_pixels: int) -> None:
        self.max_pixels = max_pixels

    def __call__(self) -> None:
        _init_worker(self.max_pixels)


def summarize(table: pa.Table, dataset: Dataset) -> IngestReport:
    """Counts by status, reason, warning and format of a manifest table."""
    status = table.column("status").to_pylist()
    reasons: Counter[str] = Counter()
    for codes in table.column("reasons").to_pylist():
        reasons.update(codes)
    warns: Counter[str] = Counter()
    for codes in table.column("warnings").to_pylist():
        warns.update(codes)
    formats = Counter(f for f in table.column("format").to_pylist() if f)
    read_ok = sum(1 for s in table.column("read_status").to_pylist() if s == checks.READ_OK)
    return IngestReport(
        dataset_dir=str(dataset.root),
        manifest=str(dataset.manifest_path),
        files=table.num_rows,
        images=read_ok,
        accepted=status.count("accepted"),
        rejected=status.count("rejected"),
        read=0,
        reused=0,
        removed=0,
        reasons=dict(reasons.most_common()),
        warnings=dict(warns.most_common()),
        formats=dict(formats.most_common()),
    )


def manifest_info(dataset_dir: Path | Dataset) -> tuple[IngestReport, dict[str, Any]]:
    """Summary of an existing manifest and the options it was made with."""
    dataset = Dataset.at(dataset_dir)
    table = dataset.load_manifest()
    meta = file_metadata(dataset.manifest_path)
    settings = json.loads(meta.get("gpskit.ingest", "{}"))
    settings["gpskit_version"] = meta.get("gpskit.version")
    return summarize(table, dataset), settings
