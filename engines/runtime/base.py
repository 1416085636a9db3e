"""What every runtime backend honours, and the input checks they share.

Why one place for the checks: a live node feeds windows from sensors, and a NaN joint or a window of
the wrong length must fail with one clear message before it reaches ONNX Runtime or TensorRT, whose
own errors name neither the window nor what was expected.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

from sensors.errors import InputError

NUM_JOINTS = 20


class Encoder(Protocol):
    """A loaded encoder artifact. ``encode`` maps canonical windows [N, f, 20, 3] (metres) to [N, D]."""

    backend: str  # "onnxruntime", "tensorrt" or "torch"
    f: int
    embedding_dim: int
    card: dict  # the model card (method, f, rate, layout, D, metric, training, accuracy, ...)

    def encode(self, windows: np.ndarray) -> np.ndarray: ...


def check_windows(windows: np.ndarray, f: int, source: str) -> np.ndarray:
    """``windows`` as C-contiguous float32 [N, f, 20, 3]; InputError naming the shape or the first bad window.

    Called on every ``encode``, so the common case is kept to a few cheap numpy calls (about 1.5 us
    for one window): a single dot product x.x is finite only when every coordinate is.
    """
    array = np.asarray(windows)
    if array.ndim == 3:
        array = array[None]  # one window
    if array.ndim != 4 or array.shape[1:] != (f, NUM_JOINTS, 3):
        raise InputError(f"{source}: windows have shape {list(array.shape)}, expected [N, {f}, {NUM_JOINTS}, 3]")
    if array.dtype != np.float32 or not array.flags.c_contiguous:
        if array.dtype.kind not in "fiu":
            raise InputError(f"{source}: windows have dtype {array.dtype}, expected float32 joint coordinates")
        array = np.ascontiguousarray(array, dtype=np.float32)
    flat = array.reshape(-1)
    if not math.isfinite(float(np.dot(flat, flat))):  # NaN or inf somewhere (or an overflow: checked below)
        _refuse_non_finite(array, source)
    return array


def _refuse_non_finite(array: np.ndarray, source: str) -> None:
    """InputError naming the first window, frame and joint with a NaN or infinite coordinate, if there is one."""
    finite = np.isfinite(array)
    if finite.all():
        return  # the dot product overflowed on huge but finite values: the graph decides what they mean
    bad = int(np.flatnonzero(~finite.reshape(len(array), -1).all(axis=1))[0])
    frame, joint = np.argwhere(~finite[bad].all(axis=2))[0]
    raise InputError(
        f"{source}: window {bad} has a NaN or infinite coordinate (frame {frame}, joint {joint}); "
        "drop or fill missing joints before encoding"
    )
