"""Images held in a table (the Hub's ``image`` column), written once into the dataset's
``imported/<name>/<split>/`` folder so every step reads them as photos.

A file is named by its bytes (``<sha256 prefix>.jpg``, or ``<prefix>-<its own name>``): a
row removed from or moved in the table renames nothing, two shards of one split never
write over each other, and a re-run rewrites nothing that is unchanged. A cell with no
image becomes an empty file, so its row says ``empty_file`` rather than vanish. Each
folder holds a ``.gpskit-source`` file naming the source its images came from; a folder
of another source is never written.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpskit import atomic, paths
from gpskit.dataset import Dataset
from gpskit.errors import InputError
from gpskit.layout import IMPORTED_DIR

#: The file in an ``imported/`` folder that names the source its images came from.
SOURCE_MARKER = ".gpskit-source"
#: Image formats by their first bytes, for the names of images written out of a table.
_MAGIC = (
    (b"\xff\xd8\xff", ".jpg"), (b"\x89PNG", ".png"), (b"RIFF", ".webp"), (b"II*\x00", ".tif"),
    (b"MM\x00*", ".tif"), (b"GIF8", ".gif"), (b"BM", ".bmp"), (b"\x00\x00\x00", ".heic"),
)  # fmt: skip


def source_id(source: str) -> str:
    """A source as its marker records it: a hub id as given, a path made absolute."""
    return source if source.startswith("hf://") else str(Path(source).resolve())


def image_value(value: Any) -> tuple[bytes | None, str | None]:
    """The bytes and original name of a table's image cell (the Hub's ``{bytes, path}``
    struct, or bytes); anything else holds no image."""
    if isinstance(value, dict):
        data, original = value.get("bytes"), value.get("path")
        data = bytes(data) if isinstance(data, bytes | bytearray | memoryview) else None
        return data, (original if isinstance(original, str) and original else None)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value), None
    return None, None


def file_name(data: bytes, original: str | None, empty_key: str) -> str:
    """An image's name in its folder, from its bytes (and its own name, when it has one);
    an empty cell's from ``empty_key`` (its table and row)."""
    if not data:
        return f"empty-{hashlib.sha256(empty_key.encode()).hexdigest()[:16]}"
    digest = hashlib.sha256(data).hexdigest()[:16]
    if original:
        base = re.sub(r"[^A-Za-z0-9._-]", "_", original.replace("\\", "/").rsplit("/", 1)[-1])
        base = base.strip("._")[-80:]
        if base:
            return f"{digest}-{base}"
    return digest + next((e for magic, e in _MAGIC if data.startswith(magic)), ".bin")


@dataclass
class ImportedFolders:
    """The ``imported/`` folders filled this run, each with the names written into it."""

    dataset: Dataset
    names: dict[Path, set[str]] = field(default_factory=dict)
    by_source: dict[str, Path] = field(default_factory=dict)
    written: int = 0

    def folder(self, name: str, source: str) -> Path:
        """The folder of ``source``'s images: ``name``, or ``name-2``... when that one
        holds another source's (its marker says whose)."""
        source = source_id(source)
        if source in self.by_source:
            return self.by_source[source]
        base = self.dataset.root / IMPORTED_DIR
        paths.require_folder_or_missing(base, "the imported images' folder")
        for number in range(1, 10_000):
            root = base / (name if number == 1 else f"{name}-{number}")
            marker = root / SOURCE_MARKER
            if root in self.names:
                continue
            if paths.kind(marker) == paths.FILE:
                if paths.read_text(marker).strip() != source:
                    continue
            elif root.exists():
                continue  # not gpskit's
            root.mkdir(parents=True, exist_ok=True)
            atomic.write_text(marker, source + "\n")
            self.names[root], self.by_source[source] = set(), root
            return root
        raise InputError(f"{base}: too many imported folders named {name}")

    def write(self, root: Path, where: str, data: bytes) -> None:
        """Write an image unless the same bytes are there already."""
        self.names[root].add(where)
        target = root / where
        try:
            if (
                target.stat().st_size == len(data)
                and _digest(target) == hashlib.sha256(data).digest()
            ):
                return
        except OSError:
            pass
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = target.with_name(f".gpskit-{target.name}.part")
        staged.write_bytes(data)
        os.replace(staged, target)
        self.written += 1

    def remove_stale(self) -> None:
        """Remove the images its source no longer has (a row gone from the table), so the
        manifest drops them as it drops deleted photos."""
        for root, names in self.names.items():
            for folder, _, files in os.walk(root):
                for file in files:
                    inside = Path(folder, file).relative_to(root).as_posix()
                    if inside != SOURCE_MARKER and inside not in names:
                        Path(folder, file).unlink(missing_ok=True)


def _digest(path: Path) -> bytes:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").digest()
