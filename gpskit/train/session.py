"""One training run's state (:class:`Session`): data, model, optimisation, where it runs;
built by :func:`setup`, new or resumed from ``last.pt``. Checkpoints are read and written
here, as data (no pickle on load).
"""

from __future__ import annotations

import io
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from gpskit.atomic import atomic_path
from gpskit.dataset import Dataset
from gpskit.errors import InputError, UsageError
from gpskit.layout import MANIFEST_FILE
from gpskit.outputs import output_folder
from gpskit.runfolder import RunFolder
from gpskit.splitfolder import SplitFolder
from gpskit.train import require_torch
from gpskit.train.data import (
    EpochSampler,
    SplitDataset,
    read_split,
    target_columns,
    transforms,
)
from gpskit.train.heads import PositionHead, make_cells, output_size
from gpskit.train.loss import TargetScaler
from gpskit.train.model import build_model, freeze
from gpskit.train.options import (
    CHECKPOINT_VERSION,
    Head,
    TrainOptions,
)

if TYPE_CHECKING:
    import pandas as pd
    import torch
    from torch.utils.data import DataLoader, DistributedSampler
    from torch.utils.tensorboard import SummaryWriter
else:  # the train extra's guard: one line saying how to install it
    torch, _ = require_torch()


def _distributed() -> tuple[int, int, int]:
    """(rank, local rank, world size) from torchrun's environment."""
    return (
        int(os.environ.get("RANK", 0)),
        int(os.environ.get("LOCAL_RANK", 0)),
        int(os.environ.get("WORLD_SIZE", 1)),
    )


def pick_device(name: str, local_rank: int = 0) -> Any:
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
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def default_run_dir(splits_dir: Path, arch: str) -> Path:
    """DATASET/runs/<date>-<time>-<arch>, beside the splits the run trains on."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return SplitFolder.at(splits_dir).runs_dir / f"{stamp}-{arch}"


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """torch.save into a temp file, then rename: a crash never leaves half a checkpoint."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint as data (``weights_only=True``: never runs code from the file)."""
    if not path.is_file():
        raise InputError(f"{path}: no such checkpoint", hint="train first with `gpskit train`")
    try:
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch's message runs to many lines of advice: the first says it
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"{path}: not a readable gpskit checkpoint ({first[:200]})",
            hint="gpskit loads checkpoints as data only; use a best.pt or last.pt gpskit wrote",
        ) from None
    if not isinstance(state, dict) or state.get("format") != "gpskit-checkpoint":
        raise InputError(f"{path}: not a gpskit checkpoint")
    if state.get("version") != CHECKPOINT_VERSION:
        raise InputError(
            f"{path}: checkpoint version {state.get('version')}, this gpskit reads {CHECKPOINT_VERSION}"
        )
    return state


def make_loader(dataset: Any, batch_size: int, workers: int, sampler: Any = None) -> Any:
    """A DataLoader in dataset order, or in ``sampler``'s (training: :class:`EpochSampler`).

    Its own generator keeps loader start-ups from drawing on the global random state (that
    dropout uses), so a resumed run draws exactly what an uninterrupted one does.
    """
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
    device: torch.device
    rank: int
    world: int
    scaler: TargetScaler
    model: torch.nn.Module
    net: torch.nn.Module  # the model, wrapped in DistributedDataParallel under torchrun
    amp_dtype: torch.dtype | None  # None: full precision
    grad_scaler: torch.amp.GradScaler
    train_loader: DataLoader[Any]
    sampler: EpochSampler | DistributedSampler[Any]
    val_loader: DataLoader[Any]
    val_frame: pd.DataFrame
    parameters: list[torch.nn.Parameter]
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    position_head: PositionHead
    train_frame: pd.DataFrame
    start_epoch: int = 1
    board: SummaryWriter | None = None  # TensorBoard, opened at the first epoch's end
    board_missing: bool = False  # tensorboard is not installed: no curves
    #: hears (phase, done, total) for the batches of validation and the retrieval index
    on_progress: Callable[[str, int, int], None] | None = None
    best: float = float("inf")
    best_epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def run(self) -> RunFolder:
        """The run folder: where each of its files goes."""
        return RunFolder(self.run_dir)

    @property
    def main_process(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def _start_process_group(device: Any, world: int) -> None:
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
    train_loader = make_loader(train_set, options.batch_size, options.workers, sampler)
    val_set = SplitDataset(val_frame, scaler, options.target, transforms(size, False), size)
    val_loader = make_loader(val_set, options.batch_size, options.workers)
    return train_loader, sampler, val_loader


def setup(
    splits_dir: Path,
    run_dir: Path | None,
    options: TrainOptions,
    resume: bool,
    replace: bool = False,
) -> tuple[Session, dict[str, Any] | None]:
    """Build the session (and read the checkpoint to resume from, if any)."""
    options.validate()
    if run_dir is not None:
        owner = Path(splits_dir).parent  # a dataset's splits/: its photos are never a run
        datasets = [Dataset(owner)] if (owner / MANIFEST_FILE).is_file() else []
        output_folder(run_dir, "--out", datasets=datasets, run=resume or replace)
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
        state = load_checkpoint(RunFolder(run_dir).last_path)
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
