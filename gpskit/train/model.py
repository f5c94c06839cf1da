"""torchvision ResNets with the study's head: dropout + linear to (east, north)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any

from gpskit.errors import InputError, UsageError
from gpskit.train import require_torch
from gpskit.train.options import ARCHS, FREEZABLE


class WeightsUnavailableError(InputError):
    """ImageNet weights could not be fetched (offline)."""


def build_model(
    arch: str, weights: str = "imagenet", dropout: float = 0.5, outputs: int = 2
) -> Any:
    """A ResNet whose final layer is Dropout(p) + Linear(features, ``outputs``) (2: the
    study's east/north regression; see :mod:`gpskit.train.heads` for the others)."""
    torch, torchvision = require_torch()
    if arch not in ARCHS:
        raise UsageError(f"--arch must be one of {', '.join(ARCHS)}, got {arch!r}")
    if not 0 <= dropout < 1:
        raise UsageError(f"--dropout must be in [0, 1), got {dropout}")
    builder = getattr(torchvision.models, arch)
    if weights == "imagenet":
        enum = torchvision.models.get_model_weights(arch).DEFAULT
        try:
            model = builder(weights=enum)
        except Exception as exc:  # URLError, HTTPError, hash mismatch on a partial file
            raise WeightsUnavailableError(
                f"could not fetch torchvision's ImageNet weights for {arch} ({type(exc).__name__})",
                hint="connect once to fill the torch cache, or use --weights none, or --weights PATH "
                "(a local torchvision state dict)",
            ) from None
    else:
        model = builder(weights=None)
        if weights != "none":
            path = Path(weights)
            if not path.is_file():
                raise InputError(
                    f"--weights {weights}: no such file", hint="use imagenet, none, or a file path"
                )
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:
                raise InputError(f"--weights {path}: not a readable state dict ({exc})") from None
            state = state.get("model", state) if isinstance(state, dict) else state
            state = {k: v for k, v in state.items() if not k.startswith("fc.")}
            missing, unexpected = model.load_state_dict(state, strict=False)
            if unexpected or [k for k in missing if not k.startswith("fc.")]:
                raise InputError(
                    f"--weights {path}: does not fit {arch} (missing {len(missing)}, unexpected {len(unexpected)})"
                )
    features = model.fc.in_features
    model.fc = torch.nn.Sequential(torch.nn.Dropout(dropout), torch.nn.Linear(features, outputs))
    return model


class Descriptor(str, Enum):
    """What retrieval compares: pooled features of the last block (what earlier runs'
    indexes hold), or of the last two, each L2-normalised and concatenated. The middle
    block keeps finer texture (facades, windows) that tells neighbouring places apart: on
    the demo campus it lowered retrieval error on val (by 1.3-2.8 m) and test (1.6-2.8 m)
    in each of three runs (``benchmarks/bench_train.py --descriptors RUN``)."""

    LAYER4 = "layer4"
    LAYERS34 = "layers3+4"


#: What new runs store; an index records its own, and queries follow it.
DESCRIPTOR = Descriptor.LAYERS34.value


def features(model: Any, images: Any, descriptor: str = DESCRIPTOR) -> Any:
    """The backbone's pooled features for retrieval (see :class:`Descriptor`)."""
    torch, _ = require_torch()
    x = model.maxpool(model.relu(model.bn1(model.conv1(images))))
    middle = model.layer3(model.layer2(model.layer1(x)))
    last = torch.flatten(model.avgpool(model.layer4(middle)), 1)
    if descriptor == Descriptor.LAYER4.value:
        return last
    normalize = torch.nn.functional.normalize
    pooled = torch.flatten(model.avgpool(middle), 1)
    return torch.cat([normalize(pooled.float(), dim=1), normalize(last.float(), dim=1)], dim=1)


def freeze(model: Any, parts: list[str]) -> None:
    """Stop gradients for the named parts (stem = conv1 + bn1)."""
    unknown = set(parts) - set(FREEZABLE)
    if unknown:
        raise UsageError(
            f"--freeze: unknown parts {sorted(unknown)}; choose from {', '.join(FREEZABLE)}"
        )
    modules = {"stem": [model.conv1, model.bn1]}
    for name in FREEZABLE[1:]:
        modules[name] = [getattr(model, name)]
    for part in parts:
        for module in modules[part]:
            for parameter in module.parameters():
                parameter.requires_grad = False
