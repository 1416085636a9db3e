"""Checkpoints: the resumable training state, and the trained encoder with everything needed to rebuild it."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from sensors import atomic
from sensors.errors import FormatError, InputError


def atomic_save(obj: object, path: Path) -> None:
    """Write aside, then rename: a crash never leaves a half-written checkpoint."""
    partial = atomic.partial_path(path)
    torch.save(obj, partial)
    atomic.commit(partial, path)


def load(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such checkpoint")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)  # never unpickle code from a file
    except Exception as err:  # torch raises many types for a damaged file
        raise FormatError(path, "", f"not a readable checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(data, dict) or "method" not in data:
        raise FormatError(path, "", "not a gaitwatch checkpoint (no 'method')")
    return data


def load_encoder(path: str | Path) -> tuple[nn.Module, dict]:
    """The trained encoder (eval mode) and the checkpoint's description (method, config, split, ...)."""
    data = load(path)
    return encoder_from(data, path), describe(data)


def describe(data: dict) -> dict:
    """A checkpoint's description (method, config, split, training time, ...) without its tensors."""
    return {k: v for k, v in data.items() if k not in ("model_state", "optimizer_state", "rng_state")}


def encoder_from(data: dict, path: str | Path) -> nn.Module:
    """The trained encoder (eval mode) of a loaded checkpoint; with ``body_shape`` set (``gaitwatch export
    --body-shape``), its embeddings followed by each window's bone lengths (``engines.track_distance``)."""
    from engines.models.trackcon import WithBodyShape
    from engines.train.methods import get_method

    method = get_method(data["method"])
    model = method.build_model(data["config"], data["f"])
    try:
        model.load_state_dict(data["model_state"])
    except (RuntimeError, KeyError) as err:
        raise FormatError(path, "", f"weights do not fit the {data['method']} model ({err})") from None
    if not data.get("body_shape"):
        return model.encoder.eval()
    if data["method"] != WithBodyShape.method:
        raise FormatError(path, "body_shape", f"only a {WithBodyShape.method} model carries the body shape")
    return WithBodyShape(model.encoder).eval()
