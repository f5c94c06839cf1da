"""The full ingest run: find, plan, read, judge and write the manifest.

Every file found appears in the manifest, accepted or rejected with reason codes. Files are
read in isolated worker processes (:mod:`gpskit.pool`), so a decoder crash, a huge
allocation or a hang costs one row, not the run. Re-runs re-read only new or changed
files (same path, size and mtime are reused), and the manifest is replaced atomically.

The steps of a run, each in its module: find the files (:mod:`~gpskit.ingest.find`),
match them against the earlier rows (:mod:`~gpskit.ingest.plan`), read the rest in
workers (:mod:`~gpskit.ingest.read`) into judged rows (:mod:`~gpskit.ingest.rows`),
journaled as they arrive, then write the manifest (:mod:`~gpskit.ingest.assemble`) and
count what it holds (:mod:`~gpskit.ingest.report`).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from gpskit.dataset import Dataset
from gpskit.engines import Engine
from gpskit.extsort import RunSorter
from gpskit.ingest.assemble import assemble_manifest, judged_alike
from gpskit.ingest.find import Roots, scan_scoped
from gpskit.ingest.labels import LabelMatcher, apply_label
from gpskit.ingest.options import IngestOptions, ProgressCallback
from gpskit.ingest.plan import (
    PREVIOUS,
    Plan,
    make_plan,
    previous_keys,
    refile_keys,
    retried_rows,
    root_moves,
)
from gpskit.ingest.read import read_files
from gpskit.ingest.report import inside_inputs, scope_notes, threshold_hints
from gpskit.ingest.rows import judge, manifest_schema
from gpskit.ingest.sources import Resolved, refuse_dataset_inside_sources, resolve_inputs
from gpskit.ingest.stamp import RunStamp, discard
from gpskit.ingest.summary import IngestReport
from gpskit.pool import start_forkserver
from gpskit.reader import read_file
from gpskit.shards import RowGather, ShardWriter, remove_shards


def run_ingest(
    inputs: Sequence[Path | str],
    dataset_dir: Path | Dataset,
    options: IngestOptions,
    progress: ProgressCallback | None = None,
    stamp: RunStamp | None = None,
) -> IngestReport:
    """Scan ``inputs``, read new or changed files, judge every row, write the manifest;
    ``stamp`` (what the inputs were as the run began) is recorded when it can stand for
    the run (see :mod:`~gpskit.ingest.stamp`)."""
    dataset = Dataset.at(dataset_dir)
    refuse_dataset_inside_sources(inputs, dataset, options.columns)
    with dataset.writing("ingest"):
        discard(dataset.root)
        spill = dataset.state_dir / "ingest-sort"  # sorted runs of keys; gone after the run
        shutil.rmtree(spill, ignore_errors=True)
        try:
            report, sources = _ingest(inputs, dataset, options, progress, spill)
        finally:
            shutil.rmtree(spill, ignore_errors=True)
        plain = stamp is not None and not (sources.sources or sources.written)
        if plain and not retried_rows(dataset.manifest_path):  # timeouts: tried again next run
            assert stamp is not None
            stamp.save(report)
        return report


def _ingest(
    inputs: Sequence[Path | str],
    dataset: Dataset,
    options: IngestOptions,
    progress: ProgressCallback | None,
    spill: Path,
) -> tuple[IngestReport, Resolved]:
    notes: list[str] = []
    sources = resolve_inputs(inputs, dataset, options.columns, [Path(t) for t in options.labels])
    matcher = sources.matcher
    gather = RowGather([], manifest_schema())
    roots = Roots()
    previous = previous_keys(dataset, notes, gather, roots, spill, options.sort_rows)
    known_roots = len(roots.names)
    manifest = [i for i, path in enumerate(gather.paths) if path == dataset.manifest_path]
    judged = {i for i in manifest if judged_alike(dataset.manifest_path, options)}
    skip = [dataset.root, *sources.skip, *(Path(t) for t in options.labels)]
    files, scopes = scan_scoped(
        sources.inputs, spill, exclude=skip, roots=roots, run_rows=options.sort_rows
    )
    for listed, table in sources.listed:  # placed now that the scan has filed them
        matcher.add(table.under(listed.prefix), root=listed.root)
        matcher.list_table(table.source, listed.root, (listed.prefix + n for n in listed.names))
    moves = root_moves(scopes, roots, known_roots)
    if moves:  # rows moved under another root sort elsewhere: sort them again
        refiled = RunSorter(spill, PREVIOUS, run_rows=options.sort_rows, newest="source")
        for batch in previous.merged():
            refiled.add(refile_keys(batch, moves, roots))
        previous = refiled
    scanned = matcher.watch(files.batches(), roots)  # labels matched as the files pass
    plan = make_plan(scanned, previous.merged(), scopes, roots, options, spill)
    del previous
    pa.default_memory_pool().release_unused()
    if len(plan.to_read) and options.engine.engine == Engine.LOCAL.value:
        start_forkserver([read_file.__module__])  # its start overlaps what follows
    journal = _read_planned(plan, roots, options, dataset, matcher, progress)
    counts = assemble_manifest(
        dataset,
        plan.kept,
        gather,
        journal.written,
        files,
        options,
        judged,
        spill,
        matcher,
        sources.sources,
    )
    remove_shards(dataset.journal_dir)
    report = counts.report(dataset)
    report.read, report.reused = plan.read, plan.files - plan.read
    report.removed, report.kept = plan.removed + counts.dropped, plan.kept_rows - counts.dropped
    report.labelled, report.imported = matcher.matched, sources.written
    report.notes = notes + scope_notes(plan, options, scopes) + inside_inputs(dataset, inputs)
    report.notes += sources.notes + matcher.notes()
    decided = dataset.decision_state()
    if decided:
        report.notes.append(
            f"{decided.count} decisions people made apply over these rows wherever the "
            "manifest is read (`gpskit decisions` lists them)"
        )
    return _with_hints(report, options, inputs), sources


def _read_planned(
    plan: Plan,
    roots: Roots,
    options: IngestOptions,
    dataset: Dataset,
    matcher: LabelMatcher,
    progress: ProgressCallback | None,
) -> ShardWriter:
    """Read the planned files; each row labelled, judged and journaled as it arrives (to
    disk, not kept here: memory does not grow with them)."""
    journal = ShardWriter(dataset.journal_dir, manifest_schema(), rows=options.journal_rows)
    done = plan.files - plan.read
    if progress:
        progress(done, plan.files)

    def sink(row: dict[str, Any]) -> None:
        nonlocal done
        apply_label(row, matcher.label_for(row["root"], row["path"]))
        judge(row, options.thresholds, options.strict_quality)
        journal.add(row)
        done += 1
        if progress:
            progress(done, plan.files)

    dataset.log_dir.mkdir(parents=True, exist_ok=True)
    try:
        read_files(plan, roots, options, sink, dataset.log_dir / "ingest.log")
    finally:  # a run stopped (the store gone, Ctrl-C) keeps what it read for the next
        journal.flush()
    return journal


def _with_hints(
    report: IngestReport, options: IngestOptions, inputs: Sequence[Path | str]
) -> IngestReport:
    """The report with what its counts suggest: a threshold to move, a folder to check."""
    report.notes += threshold_hints(report, options)
    if not report.files:
        shown = ", ".join(str(given) for given in inputs)
        report.notes.append(f"warning: no files found in {shown}: is that the right folder?")
    return report
