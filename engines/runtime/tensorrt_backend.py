"""TensorRT backend: serialized engines (``.engine`` / ``.plan``) built by ``gaitwatch export --format tensorrt``.

Written against the TensorRT 10 Python API (named I/O tensors, ``set_input_shape``,
``set_tensor_address``, ``execute_async_v3``); device buffers are torch CUDA tensors, so this backend
needs ``tensorrt`` and a CUDA build of torch. It has not been run on the 2-core development machine
(no GPU, and TensorRT is installed from NVIDIA's own index); ``tests/test_tensorrt.py`` runs it where
both exist and skips with the reason elsewhere.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engines.model_card import read_card
from engines.runtime.base import check_windows
from sensors.errors import FormatError, InputError


def tensorrt_missing() -> str | None:
    """Why the TensorRT backend cannot run here, or None when it can."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return "tensorrt is not installed (pip install tensorrt from NVIDIA's index, on a machine with a GPU)"
    try:
        import torch
    except ImportError:
        return "torch is not installed (the TensorRT backend keeps its buffers in torch CUDA tensors)"
    if not torch.cuda.is_available():
        return "no CUDA GPU is visible to torch"
    return None


class TensorRTEncoder:
    backend = "tensorrt"

    def __init__(self, path: str | Path) -> None:
        reason = tensorrt_missing()
        if reason:
            raise InputError(f"{path}: cannot load a TensorRT engine here: {reason}")
        import tensorrt as trt
        import torch

        self._torch = torch
        self.path = Path(path)
        self.card = read_card(self.path)
        self.f = int(self.card["f"])
        self.embedding_dim = int(self.card["embedding_dim"])
        self.max_batch = int(self.card["tensorrt"]["max_batch"])
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self.engine is None:
            raise FormatError(
                self.path, "engine", "TensorRT cannot deserialize it (built by another TensorRT version?)"
            )
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or len(outputs) != 1:
            raise FormatError(self.path, "engine", f"expected one input and one output tensor, found {names}")
        self.input_name, self.output_name = inputs[0], outputs[0]
        self.stream = torch.cuda.Stream()

    def encode(self, windows: np.ndarray) -> np.ndarray:
        array = check_windows(windows, self.f, str(self.path))
        parts = [self._run(array[s : s + self.max_batch]) for s in range(0, len(array), self.max_batch)]
        return np.concatenate(parts) if parts else np.zeros((0, self.embedding_dim), np.float32)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.cuda.stream(self.stream):
            source = torch.from_numpy(batch).to("cuda", non_blocking=True)
            target = torch.empty((len(batch), self.embedding_dim), dtype=torch.float32, device="cuda")
            self.context.set_input_shape(self.input_name, tuple(source.shape))
            self.context.set_tensor_address(self.input_name, source.data_ptr())
            self.context.set_tensor_address(self.output_name, target.data_ptr())
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise RuntimeError(f"{self.path}: TensorRT execution failed for a batch of {len(batch)}")
            result = target.cpu()
        self.stream.synchronize()
        return result.numpy()
