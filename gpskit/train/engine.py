"""The training loop: AdamW + OneCycleLR, clipping, mixed precision on CUDA, DDP-aware.

Run under ``torchrun --nproc_per_node N -m gpskit train ...`` it trains with
DistributedDataParallel (gloo on CPU, nccl on GPU); rank 0 alone evaluates and writes.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gpskit import __version__
from gpskit.atomic import write_text
from gpskit.train import require_torch
from gpskit.train.data import (
    SplitDataset,
    target_columns,
    transforms,
)
from gpskit.train.metrics import errors_m, summary
from gpskit.train.options import (
    CHECKPOINT_VERSION,
    METRICS_FIELDS,
    EpochStats,
    Method,
    TrainOptions,
    TrainResult,
)
from gpskit.train.predictor import (
    blend,
    build_index,
    head_positions,
    save_choice,
)
from gpskit.train.retrieval import HEADING_WINDOW, embed
from gpskit.train.session import (
    Session,
    load_checkpoint,
    make_loader,
    restore,
    save_checkpoint,
    setup,
)

if TYPE_CHECKING:
    import torch
else:  # the train extra's guard: one line saying how to install it
    torch, _ = require_torch()


def write_run_options(session: Session) -> None:
    """options.json: every option, the splits and the target normalisation, for people."""
    session.run_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "options": asdict(session.options),
        "splits_dir": str(session.splits_dir.resolve()),
        "normalisation": session.scaler.to_dict(),
    }
    write_text(session.run.options_path, json.dumps(record, indent=2, sort_keys=True))


def train_one_epoch(
    session: Session, on_batch: Callable[[int, int], None] | None = None
) -> tuple[float, int]:
    """One pass over the training split; returns (summed loss, images) of this process."""
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


class _Reporting:
    """A loader that reports each batch it yields (``on_progress(phase, done, total)``)."""

    def __init__(self, loader: Any, phase: str, hook: Callable[[str, int, int], None]) -> None:
        self.loader, self.phase, self.hook = loader, phase, hook

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Any]:
        total = len(self.loader)
        for done, batch in enumerate(self.loader, start=1):
            yield batch
            self.hook(self.phase, done, total)


def reporting(session: Session, phase: str, loader: Any) -> Any:
    """``loader``, reporting its batches to the session's progress hook (main process)."""
    hook = session.on_progress
    return _Reporting(loader, phase, hook) if hook and session.main_process else loader


def validate(session: Session) -> tuple[float, float]:
    """Mean and median error (m) on the validation split (NaN when it is empty)."""
    s = session
    predictions = head_positions(
        s.model,
        reporting(s, "validate", s.val_loader),
        s.device,
        s.position_head,
        amp_dtype=s.amp_dtype,
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
    totals = torch.tensor([loss_sum, seen], dtype=torch.float64)
    torch.distributed.all_reduce(totals)
    return float(totals[0]), int(totals[1])


def checkpoint(session: Session, epoch: int) -> dict[str, Any]:
    """The checkpoint as plain data: loads with ``torch.load(weights_only=True)``."""
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
    if session.board_missing:
        return
    if session.board is None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            session.board_missing = True
            return
        session.board = SummaryWriter(log_dir=str(session.run.tensorboard_dir))
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
    _write_metrics(s.run.metrics_path, s.history)
    state = checkpoint(s, epoch)
    save_checkpoint(s.run.last_path, state)
    if s.best_epoch == epoch:
        save_checkpoint(s.run.best_path, state)
    return stats


def train(
    splits_dir: Path,
    run_dir: Path | None,
    options: TrainOptions,
    *,
    resume: bool = False,
    replace: bool = False,
    on_epoch: Callable[[EpochStats], None] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
    on_epoch_start: Callable[[int], None] | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> TrainResult:
    """Train, evaluating on the val split after every epoch; write RUN_DIR.
    ``on_epoch_start(epoch)``, ``on_batch(step, batches)`` and ``on_epoch(stats)`` report
    progress (on the main process), ``on_progress(phase, done, total)`` the batches of
    validation and of building and choosing the retrieval index. An existing run in
    ``run_dir`` is continued with ``resume``, replaced with ``replace``, else refused."""
    session, state = setup(splits_dir, run_dir, options, resume, replace)
    session.on_progress = on_progress
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
        if on_epoch_start and session.main_process:
            on_epoch_start(epoch)
        started = time.perf_counter()
        loss_sum, seen = _all_reduce(session, *train_one_epoch(session, on_batch))
        if session.main_process:
            stats = end_epoch(session, epoch, loss_sum, seen, started)
            if on_epoch:
                on_epoch(stats)
        if session.distributed:
            torch.distributed.barrier()
    finished = session.run.prediction_path.exists()
    if session.main_process and (session.start_epoch <= session.options.epochs or not finished):
        finish(session)  # also when a run was stopped between its last epoch and this
    if session.board is not None:
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
    state = load_checkpoint(s.run.best_path)
    s.model.load_state_dict(state["model"])
    if not s.options.knn:
        save_choice(s.run_dir, Method.HEAD.value, 0, {})
        return
    size = s.options.image_size
    frame = s.train_frame
    plain = SplitDataset(frame, s.scaler, s.options.target, transforms(size, False), size)
    loader = make_loader(plain, s.options.batch_size, s.options.workers)
    paths = (frame.root + "/" + frame.path).to_numpy(str)
    headings = frame.heading.to_numpy(float, na_value=np.nan)
    index = build_index(
        s.model,
        reporting(s, "index", loader),
        s.device,
        plain.targets.double().numpy(),
        paths,
        headings,
    )
    index.cluster_if_large(s.options.knn)  # big indexes: the approximate search's clusters
    index.save(s.run_dir)
    if not len(s.val_frame):
        save_choice(s.run_dir, Method.RETRIEVAL.value, s.options.knn, {})
        return
    lat_col, lon_col = target_columns(s.options.target)
    truth = s.val_frame[lat_col].to_numpy(float), s.val_frame[lon_col].to_numpy(float)
    val_headings = s.val_frame.heading.to_numpy(float, na_value=np.nan)
    head = head_positions(s.model, reporting(s, "choose", s.val_loader), s.device, s.position_head)
    queries = embed(
        s.model, reporting(s, "choose", s.val_loader), s.device, descriptor=index.descriptor
    )
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
    train_size = len(session.train_frame)
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
