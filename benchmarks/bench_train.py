"""Training throughput on this machine, data-loading speed, retrieval, and demo error per head.

- images/s of a training step (forward + backward + AdamW) for each arch at --size on the
  CPU (or the GPU with --device cuda), random inputs, batch 16 by default, and per head
  (regression, cells, hybrid: the loss of each on the same backbone);
- data loading: images/s reading an embedded split (JPEG bytes in Parquet, 384 px) versus
  decoding the original 4032x3024 JPEGs (draft-decoded), through the same transforms;
- ``--pipeline``: a real DataLoader (workers, pinned memory) feeding training steps on an
  embedded split: images/s, peak GPU memory and the share of step time spent waiting for
  data (what benchmarks/gpu_check.sh runs);
- ``--retrieval N``: building, saving, loading and querying an index of N embeddings;
- ``--demo-heads``: the default demo's campus, one run per head: test error of each way of
  predicting against the training-centre baseline (about 7 minutes on 2 cores);
- ``--descriptors RUN [RUN ...]``: trained runs' retrieval error on val and test with each
  descriptor (what retrieval compares: the last block's pooled features, or the last
  two's), the index rebuilt from the run's own training split each time.

    python benchmarks/bench_train.py [--archs resnet18,resnet101] [--device cpu]
    python benchmarks/bench_train.py --archs resnet18 --size 48 --heads --retrieval 100000
    python benchmarks/bench_train.py --demo-heads
    python benchmarks/bench_train.py --descriptors demo/run
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

from gpskit.imaging import ImageColumn
from gpskit.train.data import transforms
from gpskit.train.model import build_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import make_photos


def step_rate(
    arch: str,
    device: str,
    batch: int,
    size: int,
    steps: int,
    channels_last: bool,
    amp: bool,
    head: str = "regression",
) -> float:
    from gpskit.train.heads import PositionHead, output_size
    from gpskit.train.loss import TargetScaler

    cells = torch.randn(48, 2).numpy() if head != "regression" else None
    position = PositionHead(head, TargetScaler(0.0, 0.0, (0.0, 0.0), (1.0, 1.0)), cells)
    model = build_model(arch, "none", outputs=output_size(head, position.cells)).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    images = torch.randn(batch, 3, size, size, device=device)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    target = torch.randn(batch, 2, device=device)
    dtype = torch.bfloat16 if amp else None

    def step() -> None:
        with torch.autocast(device.split(":")[0], dtype=dtype, enabled=amp):
            out = model(images)
        loss = position.loss(out.float(), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - start)


def loading_rates(count: int, cache: Path, max_side: int) -> tuple[float, float]:
    from gpskit.split.write import embed_from_path

    folder = cache / f"phone-{count}"
    make_photos(folder, count, (4032, 3024))
    paths = sorted(str(p) for p in folder.glob("*.jpg"))
    embedded = [{"bytes": embed_from_path(p, max_side), "path": p} for p in paths]
    originals = [{"bytes": None, "path": p} for p in paths]
    transform = transforms(224, train=True)
    rates = []
    for records in (embedded, originals):
        start = time.perf_counter()
        for record in records:
            transform(ImageColumn.decode(record, 224))
        rates.append(len(records) / (time.perf_counter() - start))
    return rates[0], rates[1]


def pipeline_rate(
    arch: str, device: str, batch: int, size: int, steps: int, workers: int, cache: Path
) -> dict[str, float]:
    """A DataLoader over an embedded split feeding AMP (bf16) channels_last training steps."""
    import pandas as pd

    from gpskit.split.write import embed_from_path
    from gpskit.train.data import SplitDataset
    from gpskit.train.loss import TargetScaler
    from gpskit.train.session import make_loader as _loader

    folder = cache / "phone-64-1024"
    make_photos(folder, 64, (1024, 768))
    paths = sorted(str(p) for p in folder.glob("*.jpg"))
    images = [{"bytes": embed_from_path(p, 320), "path": p} for p in paths]
    n = max(batch * (steps + 2), 64)
    frame = pd.DataFrame(
        {
            "image": [images[i % len(images)] for i in range(n)],
            "latitude": 39.95 + torch.rand(n).numpy() * 1e-3,
            "longitude": -75.19 + torch.rand(n).numpy() * 1e-3,
        }
    )
    scaler = TargetScaler(39.95, -75.19, (0.0, 0.0), (50.0, 50.0))
    dataset = SplitDataset(frame, scaler, "photo", transforms(size, True), size)
    loader = _loader(dataset, batch, workers)
    cuda = device.startswith("cuda")
    model = build_model(arch, "none").to(device)
    if cuda:
        model = model.to(memory_format=torch.channels_last)
        torch.cuda.reset_peak_memory_stats()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    waiting = total = 0.0
    seen = 0
    start = last = time.perf_counter()
    for i, (x, y, _) in enumerate(loader):
        got = time.perf_counter()
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=cuda):
            loss = torch.mean((model(x).float() - y) ** 2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if cuda:
            torch.cuda.synchronize()
        done = time.perf_counter()
        if i >= 2:  # after warm-up (workers starting, cuDNN autotune)
            waiting += got - last
            total += done - last
            seen += len(x)
        else:
            start = done
        last = done
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
    return {
        "images_per_s": seen / max(total, 1e-9),
        "loader_share": waiting / max(total, 1e-9),
        "peak_gib": peak,
        "seconds": last - start,
    }


def retrieval_rates(n: int, dim: int, queries: int, cache: Path) -> dict[str, float]:
    """Index build (save), load and query of ``n`` unit embeddings of ``dim`` dimensions."""
    import numpy as np

    from gpskit.train.retrieval import RetrievalIndex

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = RetrievalIndex(
        vectors, rng.normal(size=(n, 2)), np.array([f"{i}.jpg" for i in range(n)])
    )
    folder = cache / "retrieval"
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    index.save(folder)
    t1 = time.perf_counter()
    loaded = RetrievalIndex.load(folder)
    t2 = time.perf_counter()
    assert loaded is not None
    loaded.query(vectors[:queries], 8)
    t3 = time.perf_counter()
    return {
        "save_s": t1 - t0,
        "load_s": t2 - t1,
        "query_per_s": queries / (t3 - t2),
        "mb": (folder / "retrieval.npz").stat().st_size / 1e6,
    }


def demo_heads(cache: Path) -> None:
    """The default demo's campus; one run per head; test error of each method."""
    from dataclasses import replace

    from gpskit.coverage import CoverageOptions, coverage
    from gpskit.dedup import dedup
    from gpskit.demo import FULL, demo_train_options
    from gpskit.ingest import IngestOptions, ingest
    from gpskit.split import SplitOptions, split
    from gpskit.synth import SynthOptions, synth
    from gpskit.train.engine import train
    from gpskit.train.evaluate import evaluate

    root = cache / "demo-heads"
    dataset = root / "dataset"
    if not (dataset / "splits" / "test.parquet").exists():
        synth(
            root / "campus",
            SynthOptions(spots=FULL.spots, pitches=FULL.pitches, size=FULL.photo_size),
            force=True,
        )
        ingest([root / "campus" / "photos"], dataset, IngestOptions(force=True))
        dedup(dataset)
        coverage(dataset, CoverageOptions())
        split(dataset, SplitOptions(embed=True, max_side=FULL.max_side, force=True))
    print(f"demo campus: {FULL.spots} spots; {FULL.epochs} epochs at {FULL.image_size} px")
    print(
        f"  {'head':<11}{'train s':>8}{'head m':>9}{'retrieval m':>13}{'blend m':>9}{'baseline m':>12}"
    )
    for head in ("regression", "cells", "hybrid"):
        options = replace(demo_train_options(FULL), head=head)
        start = time.perf_counter()
        train(dataset / "splits", root / f"run-{head}", options)
        seconds = time.perf_counter() - start
        result = evaluate(root / f"run-{head}", "test", draw=False)
        m = {k: v["mean_m"] for k, v in result["methods"].items()}
        print(
            f"  {head:<11}{seconds:8.0f}{m['head']:9.1f}{m.get('retrieval', float('nan')):13.1f}"
            f"{m.get('blend', float('nan')):9.1f}{result['baseline_train_mean']['mean_m']:12.1f}"
        )


def descriptors(runs: list[Path]) -> None:
    """Retrieval error (mean m, heading window 90 deg) on val and test per descriptor."""
    import json

    import numpy as np

    from gpskit.geo import haversine_m
    from gpskit.train.data import SplitDataset, read_split
    from gpskit.train.inference import load_run
    from gpskit.train.model import Descriptor
    from gpskit.train.retrieval import HEADING_WINDOW, RetrievalIndex, embed
    from gpskit.train.session import make_loader as _loader

    print(f"  {'run':<28}{'descriptor':<12}{'val m':>8}{'test m':>8}")
    for run_dir in runs:
        run = load_run(run_dir, "cpu")
        splits = Path(json.loads((run_dir / "options.json").read_text())["splits_dir"])
        size, knn = int(run.options["image_size"]), int(run.options.get("knn") or 8)
        frames = {name: read_split(splits, name) for name in ("train", "val", "test")}
        for descriptor in (d.value for d in Descriptor):
            vectors = {}
            for name, frame in frames.items():
                items = SplitDataset(frame, run.scaler, "photo", transforms(size, False), size)
                vectors[name] = embed(
                    run.model, _loader(items, 64, 0), run.device, None, descriptor
                )
            train = frames["train"]
            u, v = run.scaler.encode(
                train.latitude.to_numpy(float), train.longitude.to_numpy(float)
            )
            index = RetrievalIndex(
                vectors["train"], np.column_stack([u, v]), train.path.to_numpy(str),
                train.heading.to_numpy(float, na_value=np.nan), descriptor,
            )  # fmt: skip
            errors = []
            for name in ("val", "test"):
                frame = frames[name]
                headings = frame.heading.to_numpy(float, na_value=np.nan)
                found = index.query(vectors[name], knn, headings, HEADING_WINDOW)
                lat, lon = run.scaler.decode(found[:, 0], found[:, 1])
                truth = frame.latitude.to_numpy(float), frame.longitude.to_numpy(float)
                errors.append(float(np.mean(haversine_m(*truth, lat, lon))))
            print(f"  {str(run_dir)[-28:]:<28}{descriptor:<12}{errors[0]:8.1f}{errors[1]:8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", default="resnet18,resnet101")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--amp", action="store_true", help="bf16 autocast (GPU)")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--photos", type=int, default=40)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "gpskit-bench")
    parser.add_argument("--heads", action="store_true", help="step rate per head too")
    parser.add_argument("--pipeline", action="store_true", help="DataLoader + AMP steps")
    parser.add_argument("--workers", type=int, default=8, help="loader processes (--pipeline)")
    parser.add_argument("--retrieval", type=int, default=0, help="index size to time")
    parser.add_argument("--demo-heads", action="store_true", help="demo error per head")
    parser.add_argument("--descriptors", type=Path, nargs="+", help="runs: error per descriptor")
    args = parser.parse_args()
    if args.descriptors:
        descriptors(args.descriptors)
        return
    if args.demo_heads:
        demo_heads(args.cache)
        return
    if args.pipeline:
        for arch in args.archs.split(","):
            r = pipeline_rate(
                arch, args.device, args.batch, args.size, args.steps, args.workers, args.cache
            )
            print(
                f"  pipeline {arch} @ {args.size}px, batch {args.batch}, {args.workers} workers: "
                f"{r['images_per_s']:7.1f} images/s, loader wait {r['loader_share']:.0%} of "
                f"step time, peak GPU memory {r['peak_gib']:.1f} GiB"
            )
        return
    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}")
    for arch in args.archs.split(","):
        rate = step_rate(
            arch, args.device, args.batch, args.size, args.steps, args.channels_last, args.amp
        )
        print(f"  train step {arch:>10} @ {args.size}px, batch {args.batch}: {rate:7.1f} images/s")
        if args.heads:
            for head in ("cells", "hybrid"):
                rate = step_rate(
                    arch,
                    args.device,
                    args.batch,
                    args.size,
                    args.steps,
                    args.channels_last,
                    args.amp,
                    head,
                )
                print(f"  {'':>10} {head} head: {rate:7.1f} images/s")
    if args.retrieval:
        r = retrieval_rates(args.retrieval, 512, 10_000, args.cache)
        print(
            f"  retrieval, {args.retrieval:,} x 512 embeddings: save {r['save_s']:.2f} s "
            f"({r['mb']:.0f} MB), load {r['load_s']:.2f} s, {r['query_per_s']:,.0f} queries/s (k=8)"
        )
    embedded, originals = loading_rates(args.photos, args.cache, 384)
    print(
        f"  data loading, 1 process: embedded split {embedded:6.1f} images/s, "
        f"original 12 MP JPEGs {originals:6.1f} images/s ({embedded / originals:.1f}x)"
    )


if __name__ == "__main__":
    main()
