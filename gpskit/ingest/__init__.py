"""``gpskit ingest``: walk folders of photos and write one validated Parquet manifest.

Every file found appears in the manifest, accepted or rejected with reason codes. Files are
read in isolated worker processes (:mod:`gpskit.pool`), so a decoder crash, a huge
allocation or a hang costs one row, not the run. Re-runs re-read only new or changed
files (same path, size and mtime are reused), and the manifest is replaced atomically; a
re-run with nothing new answers from the last one and writes nothing
(:mod:`~gpskit.ingest.stamp`).

The steps of a run (:mod:`~gpskit.ingest.run`), each in its module: find the files
(:mod:`~gpskit.ingest.find`), match them against the earlier rows
(:mod:`~gpskit.ingest.plan`), read the rest in workers (:mod:`~gpskit.ingest.read`) into
judged rows (:mod:`~gpskit.ingest.rows`), journaled as they arrive, then write the
manifest (:mod:`~gpskit.ingest.assemble`) and count what it holds
(:mod:`~gpskit.ingest.report`).

This module stays free of Arrow and numpy: they are loaded only when there is work.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gpskit.errors import UsageError
from gpskit.ingest.options import IngestOptions, ProgressCallback
from gpskit.ingest.stamp import RunStamp
from gpskit.ingest.summary import IngestReport
from gpskit.layout import dataset_root

if TYPE_CHECKING:
    from gpskit.dataset import Dataset

__all__ = ["IngestOptions", "IngestReport", "ingest"]


def ingest(
    inputs: Sequence[Path | str],
    dataset_dir: Path | Dataset | None,
    options: IngestOptions | None = None,
    progress: ProgressCallback | None = None,
) -> IngestReport:
    """Scan ``inputs``, read new or changed files, judge every row, write the manifest.

    Rows of folders not named in this run are kept; rows of files that vanished from a
    scanned folder are dropped (all rows not found, with ``prune``). Each row read is
    journaled as it arrives, so a killed run resumes where it stopped.
    """
    options = options or IngestOptions()
    options.validate()
    if any(not str(given).strip() for given in inputs):
        raise UsageError(
            "an empty name among the photos to ingest (an unset variable?)",
            hint="name folders, files, tables or URLs",
        )
    root = dataset_root(dataset_dir)
    stamp = RunStamp.of(inputs, root, options)
    replayed = stamp.replay() if stamp is not None else None
    if replayed is not None:
        return replayed
    from gpskit.ingest.run import run_ingest

    return run_ingest(
        inputs, dataset_dir if dataset_dir is not None else root, options, progress, stamp
    )
