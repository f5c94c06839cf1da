"""Training throughput on this machine and data-loading speed.

- images/s of a training step (forward + backward + AdamW) for resnet18 and resnet101 at
  224 px on the CPU (or the GPU with --device cuda), random inputs, batch 16 by default;
- data loading: images/s reading an embedded split (JPEG bytes in Parquet, 384 px) versus
  decoding the original 4032x3024 JPEGs (draft-decoded), through the same transforms.

    python benchmarks/bench_train.py [--archs resnet18,resnet101] [--device cpu]
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
    arch: str, device: str, batch: int, size: int, steps: int, channels_last: bool, amp: bool
) -> float:
    model = build_model(arch, "none").to(device)
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
        loss = torch.mean((out.float() - target) ** 2)
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
    make_photos(folder, count)
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
    args = parser.parse_args()
    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}")
    for arch in args.archs.split(","):
        rate = step_rate(
            arch, args.device, args.batch, args.size, args.steps, args.channels_last, args.amp
        )
        print(f"  train step {arch:>10} @ {args.size}px, batch {args.batch}: {rate:7.1f} images/s")
    embedded, originals = loading_rates(args.photos, args.cache, 384)
    print(
        f"  data loading, 1 process: embedded split {embedded:6.1f} images/s, "
        f"original 12 MP JPEGs {originals:6.1f} images/s ({embedded / originals:.1f}x)"
    )


if __name__ == "__main__":
    main()
