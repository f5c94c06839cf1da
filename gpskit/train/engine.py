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
import numpy.typing as npt

from gpskit import __version__, arguments
from gpskit.atomic import atomic_path, write_text
from gpskit.dataset import Dataset
from gpskit.errors import InputError, UsageError
from gpskit.train import require_torch
from gpskit.train.data import (
    AUGMENTS,
    Augment,
    EpochSampler,
    SplitDataset,
    Target,
    read_split,
    target_columns,
    transforms,
)
from gpskit.train.heads import HEADS, Head, PositionHead, make_cells, output_size
from gpskit.train.loss import LOSSES, Loss, TargetScaler
from gpskit.train.metrics import errors_m, summary
from gpskit.train.model import ARCHS, FREEZABLE, Arch, build_model, freeze
from gpskit.train.predictor import (
    PREDICTION_FILE,
    Method,
    blend,
    build_index,
    head_positions,
    save_choice,
)
from gpskit.train.retrieval import HEADING_WINDOW, embed

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

    arch: str = Arch.RESNET101.value
    weights: str = "imagenet"
    dropout: float = 0.5
    loss: str = Loss.MSE_HAVERSINE.value
    alpha: float = 0.1
    freeze: tuple[str, ...] = ()
    target: str = Target.PHOTO.value
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
    augment: str = Augment.STANDARD.value
    amp: bool = True
    head: str = Head.CELLS.value  # measured best on the demo campus (see bench_train.py)
    knn: int = 8  # neighbours for retrieval (0: no retrieval index)

    def validate(self) -> None:
        if self.head not in HEADS:
            raise UsageError(f"--head must be one of {', '.join(HEADS)}, got {self.head!r}")
        arguments.number("--knn", self.knn, minimum=0, maximum=1000, integer=True)
        if self.arch not in ARCHS:
            raise UsageError(f"--arch must be one of {', '.join(ARCHS)}, got {self.arch!r}")
        unknown = sorted(set(self.freeze) - set(FREEZABLE))
        if unknown:
            raise UsageError(
                f"--freeze: unknown parts {unknown}; choose from {', '.join(FREEZABLE)}"
            )
        if self.augment not in AUGMENTS:
            raise UsageError(
                f"--augment must be one of {', '.join(AUGMENTS)}, got {self.augment!r}"
            )
        if self.loss not in LOSSES:
            raise UsageError(f"--loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        arguments.number("--epochs", self.epochs, minimum=1, integer=True)
        arguments.number("--batch-size", self.batch_size, minimum=1, integer=True)
        arguments.number("--image-size", self.image_size, minimum=32, maximum=4096, integer=True)
        arguments.number("--lr", self.lr, above=0, maximum=10)
        arguments.number("--weight-decay", self.weight_decay, minimum=0)
        arguments.number("--dropout", self.dropout, minimum=0, below=1)
        arguments.number("--alpha", self.alpha, minimum=0)
        arguments.number("--clip-grad", self.clip_grad, minimum=0)
        arguments.workers("--workers", self.workers, allow_zero=True)
        arguments.seed("--seed", self.seed)
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
    warnings: list[str] = field(default_factory=list)


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
    """DATASET/runs/<date>-<time>-<arch>, beside the splits the run trains on."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Dataset(splits_dir.parent).runs_dir / f"{stamp}-{arch}"


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


def _loader(dataset: Any, batch_size: int, workers: int, sampler: Any = None) -> Any:
    """A DataLoader in dataset order, or in ``sampler``'s (training: :class:`EpochSampler`).

    Its own generator keeps loader start-ups from drawing on the global random state (that
    dropout uses), so a resumed run draws exactly what an uninterrupted one does.
    """
    torch, _ = require_torch()
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=torch.cuda.is_available(),
        worker_init_fn=_init_loader_worker,
        generator=torch.Generator().manual_seed(0),
        drop_last=False,
    )


def _init_loader_worker(worker_id: int) -> None:
    """One torch thread per loader process: the processes are the parallelism, and two
    threads each make small ops like Normalize many times slower (oversubscription)."""
    import torch

    torch.set_num_threads(1)
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


@dataclass
class Session:
    """Everything one training run holds: data, model, optimisation, where it runs."""

    options: TrainOptions
    splits_dir: Path
    run_dir: Path
    device: Any
    rank: int
    world: int
    scaler: TargetScaler
    model: Any
    net: Any  # the model, wrapped in DistributedDataParallel under torchrun
    amp_dtype: Any
    grad_scaler: Any
    train_loader: Any
    sampler: Any
    val_loader: Any
    val_frame: Any
    parameters: list[Any]
    optimizer: Any
    schedule: Any
    position_head: PositionHead
    train_frame: Any = None
    start_epoch: int = 1
    board: Any = None  # TensorBoard writer (False: tensorboard is not installed)
    best: float = float("inf")
    best_epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def main_process(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def _start_process_group(device: Any, world: int) -> None:
    torch, _ = require_torch()
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        torch.cuda.set_device(device)


def _resumed_options(state: dict[str, Any], options: TrainOptions) -> TrainOptions:
    """The run's own options (its schedule spans all its epochs), except where the machine
    may differ (device, workers)."""
    saved = dict(state["options"])
    saved["freeze"] = tuple(saved.get("freeze", ()))
    # runs saved before heads and retrieval existed regressed coordinates, without an index
    saved.setdefault("head", Head.REGRESSION.value)
    saved.setdefault("knn", 0)
    return TrainOptions(**{**saved, "device": options.device, "workers": options.workers})


def _model_on(
    device: Any, options: TrainOptions, pretrained: bool, outputs: int
) -> tuple[Any, Any, Any]:
    """The model on its device, the AMP dtype (None: full precision) and the grad scaler."""
    torch, _ = require_torch()
    weights = options.weights if pretrained else "none"
    model = build_model(options.arch, weights, options.dropout, outputs)
    freeze(model, list(options.freeze))
    model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    amp_dtype = None
    if options.amp and device.type == "cuda":
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    grad_scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    return model, amp_dtype, grad_scaler


def _loaders(
    train_frame: Any,
    val_frame: Any,
    scaler: TargetScaler,
    options: TrainOptions,
    rank: int,
    world: int,
) -> tuple[Any, Any, Any]:
    """Training loader (its order from :class:`EpochSampler`, this process's share under
    torchrun) and validation loader."""
    size = options.image_size
    augment = transforms(size, True, options.hflip, options.augment)
    train_set = SplitDataset(
        train_frame, scaler, options.target, augment, size, augment_seed=options.seed
    )
    sampler = EpochSampler(len(train_set), options.seed, rank, world)
    train_loader = _loader(train_set, options.batch_size, options.workers, sampler)
    val_set = SplitDataset(val_frame, scaler, options.target, transforms(size, False), size)
    val_loader = _loader(val_set, options.batch_size, options.workers)
    return train_loader, sampler, val_loader


def setup(
    splits_dir: Path, run_dir: Path | None, options: TrainOptions, resume: bool
) -> tuple[Session, dict[str, Any] | None]:
    """Build the session (and read the checkpoint to resume from, if any)."""
    options.validate()
    torch, _ = require_torch()
    rank, local_rank, world = _distributed()
    device = pick_device(options.device, local_rank)
    _start_process_group(device, world)
    seed_everything(options.seed + rank)
    train_frame = read_split(splits_dir, "train")
    val_frame = read_split(splits_dir, "val")
    if not len(train_frame):
        raise InputError(f"{splits_dir}/train.parquet has no rows")
    state = None
    cells: npt.NDArray[np.float64] | None
    if resume:
        if run_dir is None:
            raise UsageError("--resume needs --out RUN_DIR (the run to continue)")
        state = load_checkpoint(run_dir / "last.pt")
        scaler = TargetScaler.from_dict(state["normalisation"])
        options = _resumed_options(state, options)
        cells = np.asarray(state.get("head", {}).get("cells", []), dtype=np.float64)
    else:
        lat_col, lon_col = target_columns(options.target)
        scaler = TargetScaler.fit(train_frame[lat_col], train_frame[lon_col])
        cells = _cells_for(options, scaler, train_frame)
    head = PositionHead(options.head, scaler, cells, options.loss, options.alpha)
    run_dir = run_dir or default_run_dir(splits_dir, options.arch)
    outputs = output_size(options.head, head.cells)
    model, amp_dtype, grad_scaler = _model_on(device, options, state is None, outputs)
    net = model
    if world > 1:
        device_ids = [device.index] if device.type == "cuda" else None
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    train_loader, sampler, val_loader = _loaders(
        train_frame, val_frame, scaler, options, rank, world
    )
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=options.lr, weight_decay=options.weight_decay)
    steps = options.epochs * max(1, len(train_loader))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=options.lr, total_steps=steps)
    session = Session(
        options, splits_dir, run_dir, device, rank, world, scaler, model, net, amp_dtype,
        grad_scaler, train_loader, sampler, val_loader, val_frame, parameters, optimizer,
        schedule, head, train_frame,
    )  # fmt: skip
    return session, state


def _cells_for(
    options: TrainOptions, scaler: TargetScaler, frame: Any
) -> npt.NDArray[np.float64] | None:
    """Cell centres for a cell head, from the training positions (None for regression)."""
    if options.head == Head.REGRESSION.value:
        return None
    lat_col, lon_col = target_columns(options.target)
    u, v = scaler.encode(frame[lat_col].to_numpy(float), frame[lon_col].to_numpy(float))
    return make_cells(np.column_stack([u, v]), frame.spot_id.to_numpy(), options.seed)


def restore(session: Session, state: dict[str, Any]) -> None:
    """Continue a run from its last checkpoint: weights, optimiser, schedule, history."""
    torch, _ = require_torch()
    session.model.load_state_dict(state["model"])
    session.optimizer.load_state_dict(state["optimizer"])
    session.schedule.load_state_dict(state["scheduler"])
    if state.get("grad_scaler"):
        session.grad_scaler.load_state_dict(state["grad_scaler"])
    session.start_epoch = int(state["epoch"]) + 1
    session.best, session.best_epoch = float(state["best_val_mean_m"]), int(state["best_epoch"])
    session.history = list(state.get("history", []))
    torch.set_rng_state(state["rng"]["torch"])
    if state["rng"].get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])


def write_run_options(session: Session) -> None:
    """options.json: every option, the splits and the target normalisation, for people."""
    session.run_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "options": asdict(session.options),
        "splits_dir": str(session.splits_dir.resolve()),
        "normalisation": session.scaler.to_dict(),
    }
    write_text(session.run_dir / "options.json", json.dumps(record, indent=2, sort_keys=True))


def train_one_epoch(
    session: Session, on_batch: Callable[[int, int], None] | None = None
) -> tuple[float, int]:
    """One pass over the training split; returns (summed loss, images) of this process."""
    torch, _ = require_torch()
    s = session
    s.net.train()
    seen, loss_sum = 0, 0.0
    for step, (images, targets, _) in enumerate(s.train_loader, start=1):
        images = images.to(s.device, non_blocking=True)
        targets = targets.to(s.device, non_blocking=True)
        if s.device.type == "cuda":
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(s.device.type, dtype=s.amp_dtype, enabled=s.amp_dtype is not None):
            outputs = s.net(images)
        loss = s.position_head.loss(outputs.float(), targets)
        s.optimizer.zero_grad(set_to_none=True)
        s.grad_scaler.scale(loss).backward()
        if s.options.clip_grad > 0:
            s.grad_scaler.unscale_(s.optimizer)
            torch.nn.utils.clip_grad_norm_(s.parameters, s.options.clip_grad)
        s.grad_scaler.step(s.optimizer)
        s.grad_scaler.update()
        s.schedule.step()
        loss_sum += float(loss.detach()) * len(images)
        seen += len(images)
        if on_batch and s.main_process:
            on_batch(step, len(s.train_loader))
    return loss_sum, seen


def validate(session: Session) -> tuple[float, float]:
    """Mean and median error (m) on the validation split (NaN when it is empty)."""
    s = session
    predictions = head_positions(
        s.model, s.val_loader, s.device, s.position_head, amp_dtype=s.amp_dtype
    )
    if not len(predictions):
        return float("nan"), float("nan")
    plat, plon = s.scaler.decode(predictions[:, 0], predictions[:, 1])
    lat_col, lon_col = target_columns(s.options.target)
    errors = errors_m(
        s.val_frame[lat_col].to_numpy(float), s.val_frame[lon_col].to_numpy(float), plat, plon
    )
    stats = summary(errors)
    return stats["mean_m"], stats["median_m"]


def _all_reduce(session: Session, loss_sum: float, seen: int) -> tuple[float, int]:
    """Loss and image counts summed over every process."""
    if not session.distributed:
        return loss_sum, seen
    torch, _ = require_torch()
    totals = torch.tensor([loss_sum, seen], dtype=torch.float64)
    torch.distributed.all_reduce(totals)
    return float(totals[0]), int(totals[1])


def checkpoint(session: Session, epoch: int) -> dict[str, Any]:
    """The checkpoint as plain data: loads with ``torch.load(weights_only=True)``."""
    torch, _ = require_torch()
    s = session
    return {
        "format": "gpskit-checkpoint",
        "version": CHECKPOINT_VERSION,
        "gpskit_version": __version__,
        "arch": s.options.arch,
        "options": {
            k: list(v) if isinstance(v, tuple) else v for k, v in asdict(s.options).items()
        },
        "normalisation": s.scaler.to_dict(),
        "head": s.position_head.state(),
        "splits_dir": str(s.splits_dir.resolve()),
        "model": s.model.state_dict(),
        "optimizer": s.optimizer.state_dict(),
        "scheduler": s.schedule.state_dict(),
        "grad_scaler": s.grad_scaler.state_dict() if s.grad_scaler.is_enabled() else {},
        "epoch": epoch,
        "best_epoch": s.best_epoch,
        "best_val_mean_m": s.best,
        "history": s.history,
        "rng": {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        },
    }


def log_board(session: Session, stats: EpochStats) -> None:
    """The epoch's figures as TensorBoard scalars in RUN_DIR/tensorboard/, when the optional
    ``tensorboard`` package is installed (``pip install 'gpskit[tensorboard]'``)."""
    if session.board is None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            session.board = False
            return
        session.board = SummaryWriter(log_dir=str(session.run_dir / "tensorboard"))
    if session.board is False:
        return
    scalars = {
        "loss/train": stats.train_loss,
        "error_m/val_mean": stats.val_mean_m,
        "error_m/val_median": stats.val_median_m,
        "optim/lr": stats.lr,
        "speed/images_per_s": stats.images_per_s,
    }
    for tag, value in scalars.items():
        if np.isfinite(value):
            session.board.add_scalar(tag, value, stats.epoch)
    session.board.flush()


def end_epoch(
    session: Session, epoch: int, loss_sum: float, seen: int, started: float
) -> EpochStats:
    """Validate, record the epoch, and write metrics.csv, last.pt and (if best) best.pt."""
    s = session
    train_seconds = time.perf_counter() - started
    val_mean, val_median = validate(s)
    stats = EpochStats(
        epoch=epoch,
        train_loss=loss_sum / max(1, seen),
        val_mean_m=val_mean,
        val_median_m=val_median,
        lr=float(s.schedule.get_last_lr()[0]),
        images_per_s=seen / max(train_seconds, 1e-9),
        seconds=time.perf_counter() - started,
    )
    s.history.append(asdict(stats))
    log_board(s, stats)
    if np.isfinite(val_mean) and val_mean < s.best:
        s.best, s.best_epoch = val_mean, epoch
    elif not len(s.val_frame):  # nothing to validate on: the latest epoch is the best known
        s.best_epoch = epoch
    _write_metrics(s.run_dir / "metrics.csv", s.history)
    state = checkpoint(s, epoch)
    save_checkpoint(s.run_dir / "last.pt", state)
    if s.best_epoch == epoch:
        save_checkpoint(s.run_dir / "best.pt", state)
    return stats


def train(
    splits_dir: Path,
    run_dir: Path | None,
    options: TrainOptions,
    *,
    resume: bool = False,
    on_epoch: Callable[[EpochStats], None] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train, evaluating on the val split after every epoch; write RUN_DIR."""
    torch, _ = require_torch()
    session, state = setup(splits_dir, run_dir, options, resume)
    if state is not None:
        restore(session, state)
    session.warnings = data_warnings(session)
    if session.main_process:
        for warning in session.warnings:
            if on_warning:
                on_warning(warning)
        write_run_options(session)
    for epoch in range(session.start_epoch, session.options.epochs + 1):
        session.sampler.set_epoch(epoch)
        started = time.perf_counter()
        loss_sum, seen = _all_reduce(session, *train_one_epoch(session, on_batch))
        if session.main_process:
            stats = end_epoch(session, epoch, loss_sum, seen, started)
            if on_epoch:
                on_epoch(stats)
        if session.distributed:
            torch.distributed.barrier()
    finished = (session.run_dir / PREDICTION_FILE).exists()
    if session.main_process and (session.start_epoch <= session.options.epochs or not finished):
        finish(session)  # also when a run was stopped between its last epoch and this
    if session.board:
        session.board.close()
    if session.distributed:
        torch.distributed.destroy_process_group()
    best = session.best if np.isfinite(session.best) else float("nan")
    return TrainResult(
        str(session.run_dir),
        session.options.epochs,
        session.best_epoch,
        best,
        session.history,
        str(session.device),
        session.world,
        session.warnings,
    )


def finish(session: Session) -> None:
    """With the best weights: embed the training photos (the retrieval index) and pick the
    run's default method (head, retrieval or blend, with or without the heading window) by
    its error on the validation split."""
    s = session
    state = load_checkpoint(s.run_dir / "best.pt")
    s.model.load_state_dict(state["model"])
    if not s.options.knn:
        save_choice(s.run_dir, Method.HEAD.value, 0, {})
        return
    size = s.options.image_size
    frame = s.train_frame
    plain = SplitDataset(frame, s.scaler, s.options.target, transforms(size, False), size)
    loader = _loader(plain, s.options.batch_size, s.options.workers)
    paths = (frame.root + "/" + frame.path).to_numpy(str)
    headings = frame.heading.to_numpy(float, na_value=np.nan)
    index = build_index(s.model, loader, s.device, plain.targets.double().numpy(), paths, headings)
    index.save(s.run_dir)
    if not len(s.val_frame):
        save_choice(s.run_dir, Method.RETRIEVAL.value, s.options.knn, {})
        return
    lat_col, lon_col = target_columns(s.options.target)
    truth = s.val_frame[lat_col].to_numpy(float), s.val_frame[lon_col].to_numpy(float)
    val_headings = s.val_frame.heading.to_numpy(float, na_value=np.nan)
    head = head_positions(s.model, s.val_loader, s.device, s.position_head)
    queries = embed(s.model, s.val_loader, s.device, descriptor=index.descriptor)
    found: dict[tuple[str, float | None], Any] = {(Method.HEAD.value, None): head}
    for window in (None, HEADING_WINDOW):
        near = index.query(queries, s.options.knn, val_headings, window)
        found[(Method.RETRIEVAL.value, window)] = near
        found[(Method.BLEND.value, window)] = blend(head, near)
    scores = {
        key: float(errors_m(*truth, *s.scaler.decode(p[:, 0], p[:, 1])).mean())
        for key, p in found.items()
    }
    method, window = min(scores, key=lambda key: scores[key])
    errors = {m + ("" if w is None else f" ±{w:g}°"): e for (m, w), e in scores.items()}
    save_choice(s.run_dir, method, s.options.knn, errors, window)


def data_warnings(session: Session) -> list[str]:
    """What makes this run's numbers weak or empty, said before it starts."""
    warnings = []
    train_size = len(session.train_loader.dataset)
    if train_size < 2:
        warnings.append(f"only {train_size} training photo: the model can only memorise it")
    if not len(session.val_frame):
        warnings.append(
            "the val split is empty: nothing measures overfitting, and best.pt is the last epoch"
        )
    if session.start_epoch > session.options.epochs:
        warnings.append(
            f"{session.run_dir} already trained all {session.options.epochs} epochs: nothing "
            "left to resume (the schedule is the run's own; start a new run to train longer)"
        )
    return warnings


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
