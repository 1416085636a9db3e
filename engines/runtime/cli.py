"""``gaitwatch bench encoder``: speed of every available backend for one model, as JSON and a markdown table."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sensors.cli_helpers import command_line
from sensors.errors import InputError


def add_commands(bench: argparse._SubParsersAction) -> None:
    """``gaitwatch bench encoder`` (registered by ``engines.cli`` into the shared ``bench`` group)."""
    enc = bench.add_parser("encoder", help="one model through every backend available here, at each --batches size")
    enc.add_argument("--model", type=Path, help="ONNX artifact (default: the shipped TrackCon)")
    enc.add_argument("--checkpoint", type=Path, help="torch reference (default: the .pt shipped beside the model)")
    enc.add_argument("--engine", type=Path, help="a TensorRT engine of the same model, timed where TensorRT runs")
    enc.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64, 256], help="batch sizes to time")
    enc.add_argument("--seconds", type=float, default=2.0, help="minimum timing per cell, seconds")
    enc.add_argument("--out", type=Path, help="JSON report (default: print the table only)")
    enc.add_argument("--table", type=Path, help="markdown table (default: beside --out, .md)")
    enc.set_defaults(func=run_bench_encoder)


def run_bench_encoder(args: argparse.Namespace) -> int:
    from engines.runtime.bench import markdown_table, run_benchmark
    from engines.runtime.load import open_encoder, shipped_model
    from engines.runtime.onnx_backend import OnnxRuntimeEncoder

    if any(b < 1 for b in args.batches):
        raise InputError(f"--batches: every batch size must be at least 1, got {args.batches}")
    model = args.model or shipped_model()
    checkpoint = args.checkpoint or model.with_suffix(".pt")
    encoders = [open_encoder(checkpoint), OnnxRuntimeEncoder(model, device="cpu")]
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        encoders.append(OnnxRuntimeEncoder(model, device="cuda"))
    if args.engine:
        encoders.append(open_encoder(args.engine))
    report = run_benchmark(encoders, tuple(args.batches), args.seconds)
    table = markdown_table(report, command_line(args))
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {args.out}")
    if args.out or args.table:
        table_path = args.table or args.out.with_suffix(".md")
        table_path.parent.mkdir(parents=True, exist_ok=True)
        table_path.write_text(table)
        print(f"wrote {table_path}")
    return 0
