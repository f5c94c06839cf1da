"""What an ingest run did (kept free of Arrow: a run with nothing new answers from it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


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
    kept: int = 0  # rows of folders not named in this run
    #: rows by where their position came from (exif, xmp, table; none)
    position_sources: dict[str, int] = field(default_factory=dict)
    labelled: int = 0  # photos a table gave a position in this run
    imported: int = 0  # images written out of tables in this run (the rest were there)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> IngestReport:
        """A report as :meth:`to_dict` wrote it; TypeError for anything else."""
        kinds = {"int": int, "str": str, "dict[str, int]": dict, "list[str]": list}
        report = cls(**data)
        for item in fields(cls):
            value = getattr(report, item.name)
            if not isinstance(value, kinds[str(item.type)]) or isinstance(value, bool):
                raise TypeError(f"{item.name}: {value!r} is not {item.type}")
        return report
