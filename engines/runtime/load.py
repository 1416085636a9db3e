"""Open an encoder artifact with the backend its file calls for.

``.onnx`` -> ONNX Runtime, ``.engine`` / ``.plan`` -> TensorRT, ``.pt`` -> torch (a training
checkpoint or ``model.pt``; a run folder means its ``model.pt``), ``raw`` -> the raw baseline.
Skeleton and silhouette encoders take different windows, so each opener refuses the other kind in one line
instead of failing inside the runtime on a shape.
"""

from __future__ import annotations

from pathlib import Path

from engines.model_card import read_card
from engines.runtime.base import Encoder
from engines.runtime.silhouette_backend import METHOD, SilhouetteEncoder, is_silhouette_card, skeleton_model_error
from sensors.errors import GaitwatchError, InputError

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "data"
SHIPPED_MODEL = SHIPPED_DIR / "trackcon-kgbd.onnx"
SHIPPED_CHECKPOINT = SHIPPED_DIR / "trackcon-kgbd.pt"  # its checkpoint: what ``gaitwatch adapt`` starts from
SHIPPED_SIMMC = SHIPPED_DIR / "simmc-kgbd.onnx"  # an earlier default, kept selectable with --model
SHIPPED_TRACKCON_V1 = SHIPPED_DIR / "trackcon-v1-kgbd.onnx"  # the default before the symmetric TrackCon, kept for
# galleries bound to it (they refuse any other model until ``gallery reembed`` moves them)
SHIPPED_SILHOUETTE_MODEL = SHIPPED_DIR / "selfgait-casia.onnx"  # the silhouette channel's default encoder
SUFFIXES = {".onnx": "onnxruntime", ".engine": "tensorrt", ".plan": "tensorrt", ".pt": "torch"}


def shipped_model() -> Path:
    """The encoder gaitwatch ships and uses wherever no model is named: TrackCon trained on KGBD, as ONNX."""
    return SHIPPED_MODEL


def shipped_silhouette_model() -> Path:
    """The silhouette encoder gaitwatch ships and uses wherever none is named: SelfGait, as ONNX."""
    return SHIPPED_SILHOUETTE_MODEL


def shipped_with_sha256(sha256: str) -> Path | None:
    """The shipped artifact whose card names this sha256, if any: how to tell a user which file a gallery needs."""
    for artifact in sorted(SHIPPED_DIR.glob("*.onnx")):
        try:
            card = read_card(artifact, verify=False)  # the card's word is enough to name a file in a message
        except GaitwatchError:
            continue
        if card["file"].get("sha256") == sha256:
            return artifact
    return None


def shipped_checkpoint() -> Path:
    """The shipped TrackCon training checkpoint: the starting point of site adaptation."""
    if not SHIPPED_CHECKPOINT.is_file():
        raise InputError(f"{SHIPPED_CHECKPOINT}: the shipped trackcon checkpoint is missing; name one with --from")
    return SHIPPED_CHECKPOINT


def resolve_artifact(spec: str | Path | None) -> Path | str:
    """A model argument as a file path (run folders -> their model.pt; None -> the shipped model) or "raw"."""
    if spec is None:
        return SHIPPED_MODEL
    if str(spec) == "raw":
        return "raw"
    path = Path(spec)
    if path.is_dir():
        if not (path / "model.pt").is_file():
            raise InputError(f"{spec}: a folder without model.pt (a run folder has one once training has ended)")
        path = path / "model.pt"
    if not path.is_file():
        raise InputError(f"{spec}: no such model file (expected .onnx, .engine, .plan, .pt, a run folder or 'raw')")
    if path.suffix not in SUFFIXES:
        raise InputError(f"{path}: unknown model file type {path.suffix!r}; expected one of {', '.join(SUFFIXES)}")
    return path


def open_encoder(spec: str | Path | None = None, device: str = "auto", f: int = 6) -> Encoder:
    """The skeleton encoder behind ``spec`` (see ``resolve_artifact``); ``device`` applies to ONNX Runtime."""
    target = resolve_artifact(spec)
    if target == "raw":
        from engines.runtime.torch_backend import TorchEncoder

        return TorchEncoder.raw(f)
    backend = SUFFIXES[target.suffix]
    if backend == "onnxruntime":
        from engines.runtime.onnx_backend import OnnxRuntimeEncoder

        _refuse_silhouette_card(target)  # (no TensorRT engine of a silhouette encoder is ever built)
        return OnnxRuntimeEncoder(target, device=device)
    if backend == "tensorrt":
        from engines.runtime.tensorrt_backend import TensorRTEncoder

        return TensorRTEncoder(target)
    try:
        from engines.checkpoint import load
        from engines.runtime.torch_backend import TorchEncoder
    except ImportError:
        raise InputError(
            f"{target}: torch checkpoints need torch: pip install -c constraints.txt 'gaitwatch[train]'"
        ) from None
    if load(target)["method"] == METHOD:
        raise _silhouette_model_error(target, "method selfgait")
    return TorchEncoder.from_checkpoint(target)


def open_silhouette_encoder(spec: str | Path | None = None) -> SilhouetteEncoder:
    """The silhouette encoder behind ``spec``: a selfgait ``.onnx``, ``model.pt`` or run folder (its ``model.pt``);
    None -> the shipped one. Skeleton encoders and TensorRT engines are refused in one line."""
    if spec is None and not SHIPPED_SILHOUETTE_MODEL.is_file():
        raise InputError(f"{SHIPPED_SILHOUETTE_MODEL}: the shipped silhouette model is missing; name a selfgait model")
    target = resolve_artifact(SHIPPED_SILHOUETTE_MODEL if spec is None else spec)
    if target == "raw":
        raise skeleton_model_error("raw", "kinect_v1")
    if SUFFIXES[target.suffix] == "tensorrt":
        raise InputError(f"{target}: TensorRT engines of silhouette encoders are not built; use the selfgait .onnx")
    return SilhouetteEncoder(target)  # refuses a skeleton .onnx or checkpoint by its card or method


def _refuse_silhouette_card(target: Path) -> None:
    """InputError where an artifact's card says it encodes silhouettes (the backend reads the card again)."""
    card = read_card(target, verify=False)
    if is_silhouette_card(card):
        raise _silhouette_model_error(target, f"layout {card.get('layout')}")


def _silhouette_model_error(target: Path, what: str) -> InputError:
    return InputError(
        f"{target} is a silhouette encoder ({what}); the skeleton channel needs a skeleton encoder "
        "(a .onnx, .engine, .pt or run of simmc, age or trackcon)"
    )
