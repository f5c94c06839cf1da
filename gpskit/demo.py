"""``gpskit demo``: the whole pipeline on the built-in synthetic campus, ending in one page.

synth -> ingest -> dedup -> coverage -> split -> train -> eval, then a check of every
injected defect against ``truth.csv`` and ``report.html`` (self-contained: images inlined).
The model is small for a CPU: resnet18 from scratch at 64 px (the study used resnet101 at
224 px with ImageNet weights on a GPU); the report says so.
"""

from __future__ import annotations

import base64
import html
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gpskit.atomic import OwnedFolder, write_text
from gpskit.coverage import CoverageOptions, coverage
from gpskit.dataset import Dataset
from gpskit.dedup import dedup
from gpskit.geo import haversine_m
from gpskit.ingest import IngestOptions, ingest
from gpskit.split import SplitOptions, split
from gpskit.synth import SynthOptions, synth
from gpskit.synth.defects import DEFECTS, Expect


@dataclass(frozen=True)
class DemoSize:
    """How big a campus and how long a training: sized so the default demo finishes in
    about 3 minutes on 2 CPU cores (photos at the smallest size ingest accepts, one pitch:
    the model sees 48 px anyway)."""

    spots: int
    pitches: tuple[float, ...]
    photo_size: tuple[int, int]
    epochs: int
    image_size: int
    max_side: int
    head: str = "cells"


FULL = DemoSize(
    spots=140, pitches=(0.0,), photo_size=(320, 240), epochs=10, image_size=48, max_side=96
)
QUICK = DemoSize(
    spots=48, pitches=(0.0,), photo_size=(320, 240), epochs=8, image_size=48, max_side=96
)


@dataclass
class DemoReport:
    out_dir: str
    seconds: dict[str, float] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    defects: list[dict[str, Any]] = field(default_factory=list)
    report: str = ""


def _by_file(table: pd.DataFrame) -> pd.DataFrame:
    """Rows keyed like truth.csv's ``file`` (photos/..., relative to the campus folder)."""
    table = table.copy()
    table["file"] = [f"{Path(r).name}/{p}" for r, p in zip(table.root, table.path, strict=True)]
    return table.set_index("file")


def _caught(expect: Expect, key: str, source: str, tables: dict[str, pd.DataFrame]) -> bool:
    """Whether the pipeline reported one injected file as ``expect`` says it must."""
    manifest: Any = tables["manifest"]
    dups: Any = tables["duplicates"]
    cover: Any = tables["coverage"]
    if key not in manifest.index:
        return False
    if expect.how == "reason":
        return expect.code in list(manifest.loc[key, "reasons"])
    if expect.how == "warning":
        return expect.code in list(manifest.loc[key, "warnings"])
    if expect.how == "outside":
        return key in cover.index and bool(cover.loc[key, "outside_region"])
    return bool(
        key in dups.index
        and source in dups.index
        and pd.notna(dups.loc[key, "group_id"])
        and dups.loc[key, "group_id"] == dups.loc[source, "group_id"]
        and (
            dups.loc[key, "kind"] == expect.code
            or (expect.code == "near" and dups.loc[key, "kind"] == "exact")
        )
    )


def check_defects(truth: pd.DataFrame, dataset: Dataset) -> list[dict[str, Any]]:
    """For each registered defect: how many were caught with the right reason or group."""
    tables = {
        "manifest": _by_file(dataset.load_manifest().to_pandas()),
        "duplicates": _by_file(dataset.load_duplicates().to_pandas()),
        "coverage": _by_file(dataset.load_coverage().to_pandas()),
    }
    rows = []
    for defect in DEFECTS.values():
        subset = truth[truth.defects.fillna("").str.split(";").map(lambda d, x=defect.name: x in d)]
        caught = sum(
            _caught(defect.expect, str(r.file), str(r.source), tables) for r in subset.itertuples()
        )
        rows.append(
            {
                "defect": defect.name,
                "expected": str(defect.expect),
                "injected": len(subset),
                "caught": caught,
                "recall": caught / len(subset) if len(subset) else None,
            }
        )
    return rows


def demo_train_options(size: DemoSize) -> Any:
    """The CPU-sized model of the demo."""
    from gpskit.train.options import TrainOptions

    return TrainOptions(
        arch="resnet18",
        weights="none",
        epochs=size.epochs,
        image_size=size.image_size,
        head=size.head,
        knn=8,
        batch_size=64,
        lr=2e-3,
        dropout=0.2,
        augment="light",
        workers=0,
    )


def _pipeline(out: Path, size: DemoSize, workers: int | None, step: Any) -> dict[str, Any]:
    """Every step, each through ``step(name, fn)``; returns each step's result."""
    from gpskit.train.engine import train
    from gpskit.train.evaluate import evaluate

    campus, dataset, run_dir = out / "campus", out / "dataset", out / "run"
    synth_options = SynthOptions(
        spots=size.spots, pitches=size.pitches, size=size.photo_size, workers=workers
    )
    # the demo made campus/ (or clears it before a re-run): synth may write there
    split_options = SplitOptions(embed=True, max_side=size.max_side, force=True, workers=workers)
    return {
        "synth": step("synth", lambda: synth(campus, synth_options, force=True)),
        "ingest": step(
            "ingest",
            lambda: ingest(
                [campus / "photos"], dataset, IngestOptions(workers=workers, force=True)
            ),
        ),
        "quality": step("quality", lambda: _quality_sheet(dataset)),
        "dedup": step("dedup", lambda: dedup(dataset)),
        "coverage": step("coverage", lambda: coverage(dataset, CoverageOptions())),
        "split": step("split", lambda: split(dataset, split_options)),
        "train": step(
            "train", lambda: train(dataset / "splits", run_dir, demo_train_options(size))
        ),
        "eval": step("eval", lambda: evaluate(run_dir, "test")),
    }


def _quality_sheet(dataset: Path) -> dict[str, int]:
    """The worst photos of each image-quality check, drawn for the report; counts."""
    from gpskit.info import quality_offenders
    from gpskit.plots.sheets import quality_sheet

    offenders = quality_offenders(dataset)
    quality_sheet(offenders, dataset / "quality.png")
    table = Dataset(dataset).load_manifest(columns=["warnings"]).column("warnings").to_pylist()
    return {code: sum(code in w for w in table) for code in offenders}


def _gps_error(truth: pd.DataFrame) -> dict[str, float]:
    """How far the clean photos' fixes are from the truth (m)."""
    clean = truth[(truth.kind == "photo") & truth.defects.isna()]
    gps_error = haversine_m(
        clean.true_latitude, clean.true_longitude, clean.reported_latitude, clean.reported_longitude
    )
    return {
        "median": round(float(np.median(gps_error)), 2),
        "p90": round(float(np.percentile(gps_error, 90)), 2),
    }


def run_demo(
    out: Path,
    quick: bool = False,
    log: Any = print,
    workers: int | None = None,
    force: bool = False,
) -> DemoReport:
    """Run every step; write OUT/report.html. ``log`` gets one line per step.

    OUT is the demo's own folder: a re-run replaces what the last one wrote, and a
    non-empty folder the demo did not make is refused unless ``force``.
    """
    size = QUICK if quick else FULL
    report = DemoReport(str(out))
    folder = OwnedFolder(out, "demo")
    folder.claim(force)

    def step(name: str, fn: Any) -> Any:
        start = time.perf_counter()
        result = fn()
        report.seconds[name] = round(time.perf_counter() - start, 1)
        log(f"{name:<9} done in {report.seconds[name]:6.1f} s")
        return result

    done = _pipeline(out, size, workers, step)
    truth = pd.read_csv(out / "campus" / "truth.csv")
    report.defects = check_defects(truth, Dataset(out / "dataset"))
    report.results = {
        **{
            name: done[name].to_dict() for name in ("synth", "ingest", "dedup", "coverage", "split")
        },
        "quality": done["quality"],
        "train": vars(done["train"]),
        "eval": done["eval"],
        "gps_error_vs_truth_m": _gps_error(truth),
        "settings": {"size": vars(size), "train": dict(vars(demo_train_options(size)))},
    }
    report.report = str(out / "report.html")
    write_text(out / "report.html", render_report(report, out / "dataset", out / "run"))
    summary = {
        "seconds": report.seconds,
        "defects": report.defects,
        "gps_error_vs_truth_m": report.results["gps_error_vs_truth_m"],
        "eval": done["eval"]["metrics"],
        "baseline": done["eval"]["baseline_train_mean"],
    }
    write_text(out / "demo.json", json.dumps(summary, indent=2, default=str))
    folder.record(p for p in out.rglob("*") if p.is_file() and p != folder.marker)
    return report


# --- the page ------------------------------------------------------------------------------------


def _img(path: Path, alt: str) -> str:
    if not path.exists():
        return f"<p><em>{html.escape(alt)}: not drawn</em></p>"
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"><figcaption>{html.escape(alt)}</figcaption></figure>'


def _frame(page: Path) -> str:
    """A self-contained HTML page, inlined (the report stays one file)."""
    if not page.exists():
        return ""
    source = html.escape(page.read_text(encoding="utf-8"), quote=True)
    return (
        f'<iframe srcdoc="{source}" style="width:100%;height:560px;border:1px solid #ccc"></iframe>'
    )


def _table(rows: list[dict[str, Any]] | dict[str, Any], headers: tuple[str, str] = ("", "")) -> str:
    if isinstance(rows, dict):
        body = "".join(
            f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>"
            for k, v in rows.items()
        )
        return f"<table><tr><th>{headers[0]}</th><th>{headers[1]}</th></tr>{body}</table>"
    if not rows:
        return "<p>none</p>"
    columns = list(rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(r[c]))}</td>" for c in columns) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1 else f"{value:,.1f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items())
    return str(value)


STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
    table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
    th{background:#f3f3f3}figure{margin:1em 0}img{max-width:100%;border:1px solid #ddd}.note{background:#fff8e0;
    padding:.6em 1em;border-left:4px solid #e0b000}"""


def _error_row(name: str, figures: dict[str, Any]) -> dict[str, Any]:
    return {
        "predictor": name,
        **{k: figures[k] for k in ("mean_m", "median_m", "p90_m", "max_m", "rmse_m")},
        **{f"≤{t} m": figures["within_m"][t] for t in ("5", "10", "25", "50", "100")},
    }


def _split_rows(split: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "split": name,
            "photos": split["counts"][name],
            "units (spots)": split["units"][name],
            "nearest train photo, min (m)": split["leakage"]["nearest_train_m"]
            .get(name, {})
            .get("min_m", ""),
        }
        for name in ("train", "val", "test")
    ]


def _data_sections(report: DemoReport, dataset: Path) -> list[str]:
    """Sections 1-6: synth, ingest, defects, duplicates, coverage, split."""
    r = report.results
    spots = {k: v for k, v in r["coverage"]["spots"].items() if k != "missing_by_sector"}
    across = sum(r["split"]["leakage"]["duplicate_pairs_across"].values())
    return [
        "<h2>1. Synthetic photos</h2>",
        _table({k: v for k, v in r["synth"].items() if k != "out_dir"}),
        "<h2>2. Ingest</h2>",
        _table({k: r["ingest"][k] for k in ("files", "images", "accepted", "rejected")}),
        _table(r["ingest"]["reasons"], ("rejected because", "photos")),
        _table(r["quality"], ("image-quality warning", "photos")),
        _img(dataset / "quality.png", "the worst photos of each image-quality check"),
        "<h2>3. Injected defects, and whether the pipeline caught them</h2>",
        _table(report.defects),
        "<h2>4. Duplicates</h2>",
        _table(
            {
                "groups": r["dedup"]["groups"],
                "photos in groups": r["dedup"]["photos_in_groups"],
                "redundant copies": r["dedup"]["redundant"],
            }
        ),
        _img(dataset / "duplicates.png", "largest duplicate groups (keeper framed green)"),
        "<h2>5. Coverage</h2>",
        _table({"photos": r["coverage"]["photos"], "grid": r["coverage"]["grid"], "spots": spots}),
        _img(
            dataset / "coverage" / "coverage.png",
            "coverage map: photos by heading, empty cells, walking plan",
        ),
        "<p>The same, to explore (click a photo for its thumbnail; coverage/map.html):</p>",
        _frame(dataset / "coverage" / "map.html"),
        "<h2>6. Leak-free split (by spot)</h2>",
        _table(_split_rows(r["split"])),
        f"<p>Duplicate pairs across splits: {across}. Label-noise floor (GPS fixes around "
        f"their spot median): {_fmt(r['split']['label_noise_m'])}.</p>",
    ]


def _model_section(report: DemoReport, run_dir: Path) -> list[str]:
    """Section 7: the model on unseen spots, each way of predicting beside the baseline
    and the label noise."""
    r = report.results
    evaluation = r["eval"]
    rows = [
        _error_row(
            f"model: {name}" + (" (chosen on val)" if name == evaluation["method"] else ""), figures
        )
        for name, figures in evaluation["methods"].items()
    ]
    rows.append(_error_row("training centre (baseline)", evaluation["baseline_train_mean"]))
    ratio = evaluation["metrics"]["mean_m"] / evaluation["baseline_train_mean"]["mean_m"]
    return [
        "<h2>7. Training and evaluation on unseen spots (test split)</h2>",
        f"<p>The run predicts with <b>{html.escape(evaluation['method'])}</b> (best on the "
        f"validation split): its mean error is {ratio:.0%} of the baseline's. <i>head</i>: "
        f"the {html.escape(evaluation['head'])} head alone; <i>retrieval</i>: the "
        f"{evaluation['knn']} most similar training photos"
        + (
            f" facing within {evaluation['heading_window']:g}° of the photo's compass heading"
            if evaluation.get("heading_window")
            else ""
        )
        + "; <i>blend</i>: their mean.</p>",
        _table(rows),
        f"<p>Scatter of the GPS fixes around their spot median (the floor gpskit can measure on real "
        f"data): {_fmt(evaluation['label_noise_floor'])}. Here the truth is known too: the fixes "
        f"are off the true positions by {_fmt(r['gps_error_vs_truth_m'])} m, mostly by an error "
        "shared by all photos of a spot, which no spot median can reveal.</p>",
        _img(
            run_dir / "error_cdf-test.png",
            "error CDF: each way of predicting, the training-centre baseline, label noise",
        ),
        _img(
            run_dir / "map-test.png",
            "test photos: true (green) vs predicted (red) by the head and by retrieval",
        ),
    ]


def render_report(report: DemoReport, dataset: Path, run_dir: Path) -> str:
    """report.html: one self-contained page (images inlined)."""
    train = report.results["settings"]["train"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>gpskit demo report</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>gpskit demo: the synthetic campus, end to end</h1>",
        f"<p>Every step ran offline on this machine: {_fmt(report.seconds)} (seconds).</p>",
        "<p class='note'>The model is sized for a CPU: "
        f"{train['arch']} from scratch (no ImageNet weights) at {train['image_size']} px, "
        f"{train['epochs']} epochs, {train['head']} head. The synthetic campus is built in "
        "quarters of one architectural style each (as real campuses are), which is what a "
        "small model can learn in two minutes. The original study trained resnet101 with ImageNet weights at "
        "224 px on a GPU; run <code>gpskit train</code> with its defaults for that.</p>",
        *_data_sections(report, dataset),
        *_model_section(report, run_dir),
        "</body></html>",
    ]
    return "\n".join(parts)
