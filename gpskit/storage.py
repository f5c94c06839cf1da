"""Where photos live: local paths, or any URL fsspec reaches (``s3://``, ``gs://``, ...).

Every read of a photo's bytes goes through here, so ingest, split's embedded images and
predict take ``s3://bucket/prefix/`` wherever they take a folder. Remote filesystems come
from fsspec and its protocol packages (``pip install 'gpskit[s3]'`` for S3); credentials
are found the usual way (environment variables, profiles, instance roles), and an
S3-compatible endpoint by ``AWS_ENDPOINT_URL``. ``file://`` URLs are plain local paths.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from gpskit.errors import InputError, MissingDependencyError, require_module

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
#: Install hints for the protocols users ask for most.
EXTRAS = {"s3": "gpskit[s3]", "s3a": "gpskit[s3]", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs"}


def is_url(location: str | Path) -> bool:
    """A remote location (``scheme://...``), not a local path or ``file://`` URL."""
    found = _SCHEME.match(str(location))
    return found is not None and found.group(1).lower() != "file"


def as_location(text: str) -> str | Path:
    """What the user typed as a photo location: a URL stays text, the rest is a Path."""
    if text.lower().startswith("file://"):
        return Path(text[len("file://") :])
    return text.rstrip("/") if is_url(text) else Path(text)


def join(root: str, relative: str) -> str:
    """A file's full location from its root and its path inside it."""
    return f"{root.rstrip('/')}/{relative}" if is_url(root) else os.path.join(root, relative)


def filesystem(url: str) -> tuple[Any, str]:
    """The fsspec filesystem of ``url`` and the path inside it (one line if unavailable)."""
    scheme = url.split("://", 1)[0].lower()
    core = require_module(
        "fsspec.core",
        f"{url}: reading {scheme}:// locations needs fsspec",
        EXTRAS.get(scheme, "fsspec"),
    )
    try:
        fs, path = core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise MissingDependencyError(
            f"{url}: no filesystem for {scheme}:// ({exc})",
            hint=f"pip install '{EXTRAS.get(scheme, 'fsspec')}'",
        ) from None
    return fs, str(path)


#: Environment variables that tell remote stores where and who.
STORE_VARIABLES = ("AWS_", "GOOGLE_", "GCS", "AZURE_", "FSSPEC_", "BOTO_")


class StoreSettings:
    """The caller's object-store settings as they are now, to apply in a worker process
    (local workers fork from a server started earlier; Ray workers run elsewhere)."""

    def __init__(self) -> None:
        self.values = {k: v for k, v in os.environ.items() if k.startswith(STORE_VARIABLES)}

    def __call__(self) -> None:
        for name in [k for k in os.environ if k.startswith(STORE_VARIABLES)]:
            if name not in self.values:
                del os.environ[name]
        os.environ.update(self.values)


@dataclass(frozen=True)
class Listed:
    """One object found under a URL."""

    relative: str
    size: int
    mtime_ns: int


def _mtime_ns(entry: dict[str, Any]) -> int:
    """An object's modification time, whatever the filesystem calls it (0 when none)."""
    for key in ("mtime", "LastModified", "last_modified", "updated", "modified", "created"):
        value = entry.get(key)
        if isinstance(value, datetime):
            return int(value.timestamp() * 1e9)
        if isinstance(value, (int, float)):
            return int(value * 1e9)
        if isinstance(value, str):
            try:
                return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1e9)
            except ValueError:
                continue
    return 0


#: Objects taken from a store's listing at a time (one S3 LIST page holds 1,000).
LIST_CHUNK = 1000


def list_remote(url: str) -> tuple[str, Iterator[Listed]]:
    """The root and every object under ``url`` (itself, if it is one object), as the store
    lists them: S3 is read a page at a time, so memory holds a page, not the listing.

    A missing location is one clear error; a prefix with nothing under it lists nothing.
    """
    fs, path = filesystem(url)
    scheme = url.split("://", 1)[0]
    try:
        if fs.isfile(path):
            info = fs.info(path)
            parent, name = path.rstrip("/").rsplit("/", 1)
            return f"{scheme}://{parent}", iter([Listed(name, int(info["size"]), _mtime_ns(info))])
        entries = _entries(fs, path)
        first = next(entries, None)
    except (OSError, PermissionError) as exc:  # botocore errors surface as OSError subclasses
        raise InputError(
            f"{url}: cannot be listed ({exc})", hint="check the URL and credentials"
        ) from None
    if first is None and not fs.exists(path):
        raise InputError(f"{url}: no such location", hint="check the bucket and prefix")
    head = [first] if first is not None else []
    return url.rstrip("/"), _objects(url, path, itertools.chain(head, entries))


def _objects(url: str, path: str, entries: Iterator[dict[str, Any]]) -> Iterator[Listed]:
    """The objects (not folder markers) among ``entries``, named relative to ``path``."""
    prefix = path.rstrip("/") + "/"
    try:
        for entry in entries:
            name = entry["name"]
            is_object = entry.get("type", "file") == "file" and not name.endswith("/")
            if is_object and name.startswith(prefix):
                yield Listed(name[len(prefix) :], int(entry.get("size") or 0), _mtime_ns(entry))
    except (OSError, PermissionError) as exc:
        raise InputError(
            f"{url}: the listing failed part-way ({exc})",
            hint="check the connection and credentials, then run ingest again",
        ) from None


def _entries(fs: Any, path: str) -> Iterator[dict[str, Any]]:
    """Every object under ``path``: page by page from S3 (s3fs's listing iterator), one
    ``find`` elsewhere."""
    fs.invalidate_cache(path)  # a listing cached earlier in this process may be stale
    pages = getattr(fs, "_iterdir", None)
    if pages is None or "s3" not in fs.protocol:
        yield from fs.find(path, detail=True).values()
        return
    bucket, key, _ = fs.split_path(path)
    stream = pages(bucket, delimiter="", prefix=key.rstrip("/") + "/" if key else "")
    done = False
    while not done:
        chunk, done = _sync(fs.loop, _take, stream, LIST_CHUNK)
        yield from chunk


async def _take(stream: Any, count: int) -> tuple[list[dict[str, Any]], bool]:
    """Up to ``count`` items of an async iterator, and whether it is used up."""
    items: list[dict[str, Any]] = []
    try:
        while len(items) < count:
            items.append(await stream.__anext__())
    except StopAsyncIteration:
        return items, True
    return items, False


def _sync(loop: Any, func: Any, *args: Any) -> Any:
    """Run an async function on fsspec's event loop (fsspec is imported only here)."""
    from fsspec.asyn import sync

    return sync(loop, func, *args)


def read_bytes(location: str) -> bytes:
    """Every byte of a local file or remote object."""
    if not is_url(location):
        with open(location, "rb") as fh:
            return fh.read()
    fs, path = filesystem(location)
    data: bytes = fs.cat_file(path)
    return data


def open_stream(location: str) -> IO[bytes]:
    """A seekable binary stream (remote: read in blocks as the reader asks)."""
    if not is_url(location):
        return open(location, "rb")
    fs, path = filesystem(location)
    stream: IO[bytes] = fs.open(path, "rb", block_size=256 * 1024)
    return stream


def size_of(location: str) -> int:
    """The size in bytes of a local file or remote object."""
    if not is_url(location):
        return os.path.getsize(location)
    fs, path = filesystem(location)
    return int(fs.size(path))
