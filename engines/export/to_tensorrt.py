"""ONNX file -> serialized TensorRT engine with an optimisation profile for batch 1..max_batch.

Written against the TensorRT 10 Python API (explicit batch is the only mode there, so the network is
created with no flags). Not run on the development machine (no GPU, no TensorRT); see
``tests/test_tensorrt.py`` for where it is tested.
"""

from __future__ import annotations

from pathlib import Path

from engines.export.to_onnx import INPUT_NAME
from engines.runtime.tensorrt_backend import tensorrt_missing
from sensors import atomic
from sensors.errors import FormatError, InputError

PRECISIONS = ("fp32", "fp16")


def build_engine(onnx_path: Path, out: Path, f: int, max_batch: int = 256, precision: str = "fp32") -> Path:
    """Build and write an engine for inputs [1..max_batch, f, 20, 3] (optimised for max_batch / 4)."""
    reason = tensorrt_missing()
    if reason:
        raise InputError(f"cannot build a TensorRT engine here: {reason}")
    if precision not in PRECISIONS:
        raise InputError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise FormatError(onnx_path, "graph", f"TensorRT's ONNX parser refused it: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 30)
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    shape = (f, 20, 3)
    profile.set_shape(INPUT_NAME, (1, *shape), (max(1, max_batch // 4), *shape), (max_batch, *shape))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise FormatError(onnx_path, "graph", "TensorRT could not build an engine from it (see the log above)")
    atomic.write_bytes(Path(out), bytes(serialized))
    return Path(out)


def tensorrt_version() -> str:
    import tensorrt as trt

    return trt.__version__
