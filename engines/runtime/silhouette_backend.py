"""Silhouette encoders (SelfGait): aligned silhouette windows uint8 [N, T, 64, 44] -> embeddings [N, D].

Why apart from the skeleton backends: their input is canonical joints in metres of one fixed window length;
a silhouette encoder takes masks as stored (uint8, scaled inside the graph) of any length T >= 2 (a live
window, or a dataset's whole sequence as GaitSet scores it), so its check and its card differ. Two backends
behind one class: ONNX Runtime on an exported ``.onnx`` (the live path and bulk evaluation) and torch on a
selfgait ``model.pt`` (so a run can be evaluated before it is exported).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from engines.model_card import file_entry, read_card
from sensors.errors import FormatError, InputError
from sensors.silhouette import HEIGHT, WIDTH

LAYOUT = "silhouette_64x44"  # the card layout of every silhouette encoder (engines/export/selfgait_artifact.py)
METHOD = "selfgait"
MIN_FRAMES = 2  # the exported graph's least window length (engines/export/silhouette_onnx.py)
# Up to this many silhouettes a call runs on one thread, as onnx_backend.py runs small batches: a live window
# (30 silhouettes) took 18 ms on one thread and 32 ms on two on the shared 2-core machine (two threads were
# slower there at every size tried, up to [1, 120] and [4, 30]); bulk calls get a threaded session for
# machines with idle cores.
SMALL_CALL = 64
CHUNK = 512  # silhouettes per backend call: bounds the feature maps held at once (~1 MB per silhouette)

Run = Callable[[np.ndarray], np.ndarray]


def is_silhouette_card(card: dict) -> bool:
    """Whether a model card describes a silhouette encoder (by its layout, or by its method for older cards)."""
    return card.get("layout") == LAYOUT or card.get("method") == METHOD


def skeleton_model_error(source: str | Path, layout: str) -> InputError:
    """The one-line refusal of a skeleton encoder where a silhouette encoder is needed."""
    return InputError(
        f"{source} is a skeleton encoder (layout {layout}); the silhouette channel needs a silhouette encoder "
        "(a selfgait .onnx or run)"
    )


def check_silhouettes(windows: np.ndarray, source: str) -> np.ndarray:
    """``windows`` as C-contiguous uint8 [N, T, 64, 44] (one window [T, 64, 44] becomes N = 1).

    A bool mask becomes 0/255; any other dtype is refused rather than guessed at (floats could be 0..1 or
    0..255, and the graph scales by 255)."""
    array = np.asarray(windows)
    if array.ndim == 3:
        array = array[None]
    expected = f"expected [N, T, {HEIGHT}, {WIDTH}] or one window [T, {HEIGHT}, {WIDTH}] with T >= {MIN_FRAMES}"
    if array.ndim != 4 or array.shape[2:] != (HEIGHT, WIDTH):
        raise InputError(f"{source}: silhouette windows have shape {list(array.shape)}, {expected}")
    if array.shape[1] < MIN_FRAMES:
        raise InputError(f"{source}: silhouette windows of {array.shape[1]} frames, {expected}")
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * np.uint8(255)
    elif array.dtype != np.uint8:
        raise InputError(f"{source}: silhouettes have dtype {array.dtype}; aligned silhouettes are uint8 0..255")
    return np.ascontiguousarray(array)


class SilhouetteEncoder:
    """A silhouette encoder: ``encode(windows) -> float32 [N, D]``; ``f`` is the window length it trained on.

    The backend is chosen from the file, as for skeleton encoders: ``.pt`` (a selfgait ``model.pt`` or training
    checkpoint) runs in torch, anything else is an exported ``.onnx`` run by ONNX Runtime on CPU (``threads``: its
    bulk session's, default up to 8). Either refuses a skeleton encoder in one line."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        self.path = Path(path)
        self._source = str(self.path)
        if self.path.suffix == ".pt":
            self.backend, self.card, self._run = "torch", *_torch_model(self.path)
        else:
            self.backend, self.card, self._run = "onnxruntime", *_onnx_model(self.path, threads)
        self.f = int(self.card["f"])
        self.embedding_dim = int(self.card["embedding_dim"])

    def encode(self, windows: np.ndarray) -> np.ndarray:
        """Embeddings float32 [N, D] of silhouette windows uint8 [N, T, 64, 44] (see ``check_silhouettes``)."""
        array = check_silhouettes(windows, self._source)
        step = max(1, CHUNK // array.shape[1])
        parts = [self._run(array[s : s + step]) for s in range(0, len(array), step)]
        if not parts:
            return np.zeros((0, self.embedding_dim), np.float32)
        return np.concatenate(parts).astype(np.float32, copy=False)


def _onnx_model(path: Path, threads: int | None) -> tuple[dict, Run]:
    """The card and a run function of an exported silhouette encoder: one thread for small calls (SMALL_CALL)."""
    ort = _import_onnxruntime()
    card = read_card(path)
    if not is_silhouette_card(card):
        raise skeleton_model_error(path, card.get("layout", "unknown"))
    threads = threads or min(os.cpu_count() or 1, 8)

    def session(count: int):
        options = ort.SessionOptions()
        options.intra_op_num_threads = count
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types for unreadable graphs
            raise FormatError(path, "graph", f"ONNX Runtime cannot load it ({str(err).splitlines()[0]})") from None

    small = session(1)
    name, output = small.get_inputs()[0].name, small.get_outputs()[0].name
    large = None

    def run(array: np.ndarray) -> np.ndarray:
        nonlocal large
        if array.shape[0] * array.shape[1] <= SMALL_CALL or threads == 1:
            return small.run([output], {name: array})[0]
        if large is None:
            large = session(threads)
        return large.run([output], {name: array})[0]

    return card, run


def _torch_model(path: Path) -> tuple[dict, Run]:
    """The card and a run function of a selfgait checkpoint's online backbone, in torch (no export needed)."""
    try:
        import torch
    except ImportError:
        raise InputError(
            f"{path}: torch checkpoints need torch: pip install -c constraints.txt 'gaitwatch[train]'"
        ) from None
    from engines.checkpoint import describe, encoder_from, load
    from engines.export.selfgait_artifact import selfgait_card

    data = load(path)
    if data["method"] != METHOD:
        raise skeleton_model_error(path, data.get("layout", "kinect_v1"))
    module = encoder_from(data, path)
    card = {**selfgait_card(describe(data), int(module.embedding_dim)), "file": file_entry(path)}

    @torch.inference_mode()
    def run(array: np.ndarray) -> np.ndarray:
        return module(torch.from_numpy(array)).numpy()

    return card, run


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise InputError("onnxruntime is not installed: pip install -c constraints.txt gaitwatch") from None
    return onnxruntime
