"""The training loop: AdamW + OneCycleLR, clipping, mixed precision on CUDA, DDP-aware.

Run under ``torchrun --nproc_per_node N -m gpskit train ...`` it trains with
DistributedDataParallel (gloo on CPU, nccl on GPU); rank 0 alone evaluates and writes.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from gpskit import __version__
from gpskit.atomic import atomic_path, write_text
from gpskit.errors import InputError, UsageError
from gpskit.train import require_torch
from gpskit.train.data import SplitDataset, read_split, target_columns, transforms
from gpskit.train.loss import LOSSES, GeoLoss, TargetScaler
from gpskit.train.metrics import errors_m, summary
from gpskit.train.model import build_model, freeze

CHECKPOINT_VERSION = 1
METRICS_FIELDS = (
    "epoch",
    "train_loss",
    "val_mean_m",
    "val_median_m",
    "lr",
    "images_per_s",
    "seconds",
)


@dataclass(frozen=True)
class TrainOptions:
    """Every training choice; stored in the checkpoints so eval and predict need nothing else."""

    arch: str = "resnet101"
    weights: str = "imagenet"
    dropout: float = 0.5
    loss: str = "mse+haversine"
    alpha: float = 0.1
    freeze: tuple[str, ...] = ()
    target: str = "photo"
    epochs: int = 30
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 64
    image_size: int = 224
    clip_grad: float = 1.0
    device: str = "auto"
    seed: int = 0
    workers: int = 2
    hflip: bool = False
    amp: bool = True

    def validate(self) -> None:
        if self.loss not in LOSSES:
            raise UsageError(f"--loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.image_size < 32:
            raise UsageError(
                "--epochs and --batch-size must be at least 1, --image-size at least 32"
            )
        if self.lr <= 0:
            raise UsageError(f"--lr must be positive, got {self.lr}")
        if self.device not in ("auto", "cpu", "cuda", "mps") and not self.device.startswith(
            "cuda:"
        ):
            raise UsageError(f"--device must be auto, cpu, cuda[:N] or mps, got {self.device!r}")
        target_columns(self.target)


@dataclass
class EpochStats:
    epoch: int
    train_loss: float
    val_mean_m: float
    val_median_m: float
    lr: float
    images_per_s: float
    seconds: float


@dataclass
class TrainResult:
    run_dir: str
    epochs: int
    best_epoch: int
    best_val_mean_m: float
    history: list[dict[str, Any]] = field(default_factory=list)
    device: str = "cpu"
    world_size: int = 1


def _distributed() -> tuple[int, int, int]:
    """(rank, local rank, world size) from torchrun's environment."""
    return (
        int(os.environ.get("RANK", 0)),
        int(os.environ.get("LOCAL_RANK", 0)),
        int(os.environ.get("WORLD_SIZE", 1)),
    )


def pick_device(name: str, local_rank: int = 0) -> Any:
    torch, _ = require_torch()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(
            f"--device {name}: CUDA is not available on this machine", hint="use --device cpu"
        )
    if name == "cuda":
        return torch.device("cuda", local_rank)
    return torch.device(name)


def seed_everything(seed: int) -> None:
    torch, _ = require_torch()
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def default_run_dir(splits_dir: Path, arch: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return splits_dir.parent / "runs" / f"{stamp}-{arch}"


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """torch.save into a temp file, then rename: a crash never leaves half a checkpoint."""
    torch, _ = require_torch()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint as data (``weights_only=True``: never runs code from the file)."""
    torch, _ = require_torch()
    if not path.is_file():
        raise InputError(f"{path}: no such checkpoint", hint="train first with `gpskit train`")
    try:
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(f"{path}: not a readable gpskit checkpoint ({exc})") from None
    if not isinstance(state, dict) or state.get("format") != "gpskit-checkpoint":
        raise InputError(f"{path}: not a gpskit checkpoint")
    if state.get("version") != CHECKPOINT_VERSION:
        raise InputError(
            f"{path}: checkpoint version {state.get('version')}, this gpskit reads {CHECKPOINT_VERSION}"
        )
    return state


def _loader(
    dataset: Any, batch_size: int, shuffle: bool, workers: int, seed: int, sampler: Any = None
) -> Any:
    torch, _ = require_torch()
    generator = torch.Generator()
    generator.manual_seed(seed)
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=torch.cuda.is_available(),
        generator=generator,
        worker_init_fn=_seed_worker,
        drop_last=False,
    )


def _seed_worker(worker_id: int) -> None:
    import torch

    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def predict_batches(model: Any, loader: Any, device: Any, amp_dtype: Any) -> Any:
    """Standardised predictions for every item of ``loader``, in dataset order."""
    torch, _ = require_torch()
    model.eval()
    outputs: list[Any] = []
    indices: list[Any] = []
    with torch.no_grad():
        for images, _, index in loader:
            images = images.to(device, non_blocking=True)
            if device.type == "cuda":
                images = images.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                out = model(images)
            outputs.append(out.float().cpu())
            indices.append(index)
    if not outputs:
        return torch.empty((0, 2))
    order = torch.cat(indices).argsort()
    return torch.cat(outputs)[order]


def train(
    splits_dir: Path,
    run_dir: Path | None,
    options: TrainOptions,
    *,
    resume: bool = False,
    on_epoch: Callable[[EpochStats], None] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> TrainResult:
    """Train, evaluating on the val split after every epoch; write RUN_DIR."""
    options.validate()
    torch, _ = require_torch()
    rank, local_rank, world = _distributed()
    distributed = world > 1
    device = pick_device(options.device, local_rank)
    if distributed and not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend=backend)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    seed_everything(options.seed + rank)
    main_process = rank == 0

    train_frame = read_split(splits_dir, "train")
    val_frame = read_split(splits_dir, "val")
    if not len(train_frame):
        raise InputError(f"{splits_dir}/train.parquet has no rows")
    lat_col, lon_col = target_columns(options.target)
    if resume:
        if run_dir is None:
            raise UsageError("--resume needs --out RUN_DIR (the run to continue)")
        state = load_checkpoint(run_dir / "last.pt")
        scaler = TargetScaler.from_dict(state["normalisation"])
        # the schedule (OneCycleLR over all epochs) and the model are the run's own: keep
        # its options, except where the machine may differ
        saved = dict(state["options"])
        saved["freeze"] = tuple(saved.get("freeze", ()))
        options = TrainOptions(**{**saved, "device": options.device, "workers": options.workers})
    else:
        state = None
        scaler = TargetScaler.fit(train_frame[lat_col], train_frame[lon_col])
    run_dir = run_dir or default_run_dir(splits_dir, options.arch)

    model = build_model(options.arch, options.weights if state is None else "none", options.dropout)
    freeze(model, list(options.freeze))
    model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    amp_dtype = None
    if options.amp and device.type == "cuda":
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    grad_scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    net = (
        torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
        if distributed
        else model
    )

    train_set = SplitDataset(
        train_frame,
        scaler,
        options.target,
        transforms(options.image_size, True, options.hflip),
        options.image_size,
    )
    sampler = (
        torch.utils.data.distributed.DistributedSampler(train_set, shuffle=True, seed=options.seed)
        if distributed
        else None
    )
    train_loader = _loader(
        train_set, options.batch_size, True, options.workers, options.seed + rank, sampler
    )
    val_set = SplitDataset(
        val_frame, scaler, options.target, transforms(options.image_size, False), options.image_size
    )
    val_loader = _loader(val_set, options.batch_size, False, options.workers, options.seed)

    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=options.lr, weight_decay=options.weight_decay)
    steps = options.epochs * max(1, len(train_loader))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=options.lr, total_steps=steps)
    criterion = GeoLoss(scaler, options.loss, options.alpha)

    start_epoch, best, best_epoch, history = 1, float("inf"), 0, []
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["scheduler"])
        if state.get("grad_scaler"):
            grad_scaler.load_state_dict(state["grad_scaler"])
        start_epoch = int(state["epoch"]) + 1
        best, best_epoch = float(state["best_val_mean_m"]), int(state["best_epoch"])
        history = list(state.get("history", []))
        torch.set_rng_state(state["rng"]["torch"])
    if main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_text(
            run_dir / "options.json",
            json.dumps(
                {
                    "options": asdict(options),
                    "splits_dir": str(splits_dir.resolve()),
                    "normalisation": scaler.to_dict(),
                },
                indent=2,
                sort_keys=True,
            ),
        )

    for epoch in range(start_epoch, options.epochs + 1):
        if sampler is not None:
            sampler.set_epoch(epoch)
        net.train()
        started, seen, loss_sum = time.perf_counter(), 0, 0.0
        for step, (images, targets, _) in enumerate(train_loader, start=1):
            images = images.to(device, non_blocking=True)
            targets = targets.to(device, non_blocking=True)
            if device.type == "cuda":
                images = images.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                outputs = net(images)
            loss = criterion(outputs.float(), targets)
            optimizer.zero_grad(set_to_none=True)
            grad_scaler.scale(loss).backward()
            if options.clip_grad > 0:
                grad_scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(parameters, options.clip_grad)
            grad_scaler.step(optimizer)
            grad_scaler.update()
            schedule.step()
            loss_sum += float(loss.detach()) * len(images)
            seen += len(images)
            if on_batch and main_process:
                on_batch(step, len(train_loader))
        train_seconds = time.perf_counter() - started
        if distributed:
            totals = torch.tensor([loss_sum, seen], dtype=torch.float64)
            torch.distributed.all_reduce(totals)
            loss_sum, seen_all = float(totals[0]), int(totals[1])
        else:
            seen_all = seen
        if main_process:
            predictions = predict_batches(model, val_loader, device, amp_dtype)
            if len(predictions):
                plat, plon = scaler.decode(
                    predictions[:, 0].double().numpy(), predictions[:, 1].double().numpy()
                )
                errors = errors_m(
                    val_frame[lat_col].to_numpy(float),
                    val_frame[lon_col].to_numpy(float),
                    plat,
                    plon,
                )
                stats = summary(errors)
                val_mean, val_median = stats["mean_m"], stats["median_m"]
            else:
                val_mean = val_median = float("nan")
            epoch_stats = EpochStats(
                epoch=epoch,
                train_loss=loss_sum / max(1, seen_all),
                val_mean_m=val_mean,
                val_median_m=val_median,
                lr=float(schedule.get_last_lr()[0]),
                images_per_s=seen_all / max(train_seconds, 1e-9),
                seconds=time.perf_counter() - started,
            )
            history.append(asdict(epoch_stats))
            if np.isfinite(val_mean) and val_mean < best:
                best, best_epoch = val_mean, epoch
            elif not len(val_frame):  # nothing to validate on: the latest epoch is the best known
                best_epoch = epoch
            _write_metrics(run_dir / "metrics.csv", history)
            checkpoint = {
                "format": "gpskit-checkpoint",
                "version": CHECKPOINT_VERSION,
                "gpskit_version": __version__,
                "arch": options.arch,
                "options": {
                    k: list(v) if isinstance(v, tuple) else v for k, v in asdict(options).items()
                },
                "normalisation": scaler.to_dict(),
                "splits_dir": str(splits_dir.resolve()),
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": schedule.state_dict(),
                "grad_scaler": grad_scaler.state_dict() if grad_scaler.is_enabled() else {},
                "epoch": epoch,
                "best_epoch": best_epoch,
                "best_val_mean_m": best,
                "history": history,
                "rng": {"torch": torch.get_rng_state()},
            }
            save_checkpoint(run_dir / "last.pt", checkpoint)
            if best_epoch == epoch:
                save_checkpoint(run_dir / "best.pt", checkpoint)
            if on_epoch:
                on_epoch(epoch_stats)
        if distributed:
            torch.distributed.barrier()
    if distributed:
        torch.distributed.destroy_process_group()
    best_value = best if np.isfinite(best) else float("nan")
    return TrainResult(
        str(run_dir), options.epochs, best_epoch, best_value, history, str(device), world
    )


def _write_metrics(path: Path, history: list[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(METRICS_FIELDS))
    writer.writeheader()
    for row in history:
        writer.writerow(
            {
                k: (round(v, 6) if isinstance(v, float) else v)
                for k, v in row.items()
                if k in METRICS_FIELDS
            }
        )
    write_text(path, buffer.getvalue())
