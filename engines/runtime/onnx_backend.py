"""ONNX Runtime backend: the CPU default of the live path (its CUDA provider where one is installed).

Why ONNX Runtime on CPU: for these small encoders, a call through torch eager costs far more in
dispatch than in arithmetic; ONNX Runtime's session runs the fixed graph (preprocessing included)
several times faster at batch 1 (``benchmarks/encoder_speed.md``). Two sessions share the file: a
single-threaded one for the small batches of the live path, a multi-threaded one for bulk encoding.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from engines.model_card import read_card
from engines.runtime.base import check_windows
from sensors.errors import FormatError, InputError

# Up to this many windows a call runs on one thread: thread start-up and hand-over cost more than
# they save on so little work (measured: batch 1 took 15 us on one thread, 20 us on two; batch 64
# the same on both; batch 256 1.7x faster on two).
SMALL_BATCH = 64


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise InputError("onnxruntime is not installed: pip install -c constraints.txt gaitwatch") from None
    return onnxruntime


class OnnxRuntimeEncoder:
    backend = "onnxruntime"

    def __init__(self, path: str | Path, device: str = "auto", threads: int | None = None) -> None:
        """device: "cpu", "cuda" or "auto" (CUDA when ONNX Runtime has that provider, else CPU)."""
        ort = _import_onnxruntime()
        self.path = Path(path)
        self.card = read_card(self.path)
        self.f = int(self.card["f"])
        self.embedding_dim = int(self.card["embedding_dim"])
        available = ort.get_available_providers()
        if device == "cuda" and "CUDAExecutionProvider" not in available:
            raise InputError(f"{path}: ONNX Runtime here has no CUDA provider (has {', '.join(available)})")
        use_cuda = device in ("cuda", "auto") and "CUDAExecutionProvider" in available
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if use_cuda else ["CPUExecutionProvider"]
        self._ort, self._providers, self._threads = ort, providers, threads or min(os.cpu_count() or 1, 8)
        self.session = self._session(1 if not use_cuda else self._threads)  # small batches: one thread is fastest
        self._large_session = None
        self.device = "cuda" if use_cuda else "cpu"
        self.input_name = self.session.get_inputs()[0].name
        self._outputs = [self.session.get_outputs()[0].name]
        self._source = str(self.path)
        # The live path calls with one window at a time, where ONNX Runtime's Python-side checks of the
        # feed (names, graph capture, OrtValue ownership: all fixed here) cost ~1.5 of ~16 us. Call the
        # bound C++ session directly where this onnxruntime has it (it has since 1.0), else the public run.
        self._run_small = getattr(self.session, "_sess", self.session).run

    def encode(self, windows: np.ndarray) -> np.ndarray:
        array = check_windows(windows, self.f, self._source)
        n = len(array)
        if n <= SMALL_BATCH or self._threads == 1 or self.device != "cpu":
            if n == 0:
                return np.zeros((0, self.embedding_dim), np.float32)
            return self._run_small(self._outputs, {self.input_name: array}, None)[0]
        if self._large_session is None:
            self._large_session = self._session(self._threads)
        return self._large_session.run(self._outputs, {self.input_name: array})[0]

    def _session(self, threads: int):
        options = self._ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.graph_optimization_level = self._ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            return self._ort.InferenceSession(str(self.path), options, providers=self._providers)
        except Exception as err:  # onnxruntime raises its own exception types for unreadable graphs
            raise FormatError(self.path, "graph", f"ONNX Runtime cannot load it ({str(err).splitlines()[0]})") from None
