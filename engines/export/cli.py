"""``gaitwatch export``: a checkpoint (or the raw baseline) -> ONNX or TensorRT artifact + model card.

A selfgait checkpoint is a silhouette encoder: it goes to ``selfgait_artifact.export_selfgait`` (its own input and
card); TensorRT and KGBD scoring are skeleton-only and are refused for it in one line."""

from __future__ import annotations

import argparse
from pathlib import Path

from sensors.errors import InputError


def add_commands(commands: argparse._SubParsersAction) -> None:
    """``gaitwatch export`` (registered by ``engines.cli``)."""
    ex = commands.add_parser("export", help="compile a trained encoder to ONNX or a TensorRT engine, with a model card")
    ex.add_argument(
        "model",
        help="a checkpoint (.pt or run folder; selfgait too), 'raw', or an .onnx file (for --format tensorrt)",
    )
    ex.add_argument("--format", choices=["onnx", "tensorrt"], default="onnx", help="the artifact's kind")
    ex.add_argument("--out", type=Path, required=True, help="the artifact to write (.onnx, or .engine / .plan)")
    ex.add_argument(
        "--data", type=Path, help="KGBD zip or folder: score the artifact on its split for the card (default: no score)"
    )
    ex.add_argument(
        "--body-shape",
        action="store_true",
        help="a trackcon checkpoint: end each embedding with the window's bone lengths, which galleries compare "
        "apart and fuse (engines/track_distance.py); also writes the checkpoint beside --out (.pt), for adapt --from "
        "(its training data, or --data, refits calibrate site's prior)",
    )
    ex.add_argument("--f", type=int, default=6, help="window length in frames, for 'raw'")
    ex.add_argument("--precision", choices=["fp32", "fp16"], default="fp32", help="TensorRT precision")
    ex.add_argument("--max-batch", type=int, default=256, help="TensorRT optimisation profile: batch 1..this")
    ex.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    from engines.export.artifact import build_tensorrt_artifact, export_onnx_artifact, measure_accuracy
    from engines.model_card import read_card, write_card

    if args.out.is_dir():
        raise InputError(f"{args.out}: is a folder; --out names the artifact file")
    if _is_silhouette_model(args.model):
        return _export_selfgait(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.body_shape:
        from engines.export.body_shape import with_body_shape

        args.model = str(with_body_shape(args.model, args.out.with_suffix(".pt"), args.data))
    if args.format == "onnx":
        if args.out.suffix != ".onnx":
            raise InputError(f"{args.out}: an ONNX artifact's name ends in .onnx")
        card = export_onnx_artifact(args.model, args.out, args.f)
    else:
        if args.out.suffix not in (".engine", ".plan"):
            raise InputError(f"{args.out}: a TensorRT engine's name ends in .engine or .plan")
        card = build_tensorrt_artifact(args.model, args.out, args.f, args.precision, args.max_batch)
    if args.data:
        card["accuracy"] = measure_accuracy(args.out, args.data)
    path = write_card(args.out, card)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB) and {path.name}")
    parity = card["parity"]
    print(f"parity with {parity['reference']}: max |difference| {parity['max_abs_diff']:.2e}")
    read_card(args.out)  # the card just written names this very file
    return 0


def _is_silhouette_model(spec: str) -> bool:
    """Whether ``spec`` names a silhouette encoder: a selfgait checkpoint (or run), or a selfgait .onnx."""
    from engines.model_card import read_card
    from engines.runtime.load import resolve_artifact
    from engines.runtime.silhouette_backend import METHOD, is_silhouette_card

    target = resolve_artifact(spec)
    if target == "raw":
        return False
    if target.suffix == ".pt":
        from engines.checkpoint import load

        return load(target)["method"] == METHOD
    return target.suffix == ".onnx" and is_silhouette_card(read_card(target, verify=False))


def _export_selfgait(args: argparse.Namespace) -> int:
    """A selfgait checkpoint -> ONNX with its card (parity with torch checked by the exporter)."""
    if args.format == "tensorrt":
        raise InputError(f"{args.model}: TensorRT engines of silhouette encoders are not built; export to .onnx")
    if args.data:
        raise InputError(
            f"{args.model}: --data scores skeleton encoders on KGBD; score a silhouette encoder with "
            "'gaitwatch eval MODEL --silhouettes DATA'"
        )
    if args.out.suffix != ".onnx":
        raise InputError(f"{args.out}: an ONNX artifact's name ends in .onnx")
    if Path(args.model).suffix == ".onnx":
        raise InputError(f"{args.model}: already an exported silhouette encoder; export starts from its model.pt")
    from engines.export.selfgait_artifact import export_selfgait
    from engines.model_card import card_path

    args.out.parent.mkdir(parents=True, exist_ok=True)
    card = export_selfgait(args.model, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB) and {card_path(args.out).name}")
    print(f"parity with torch: max relative difference {card['parity']['max_relative_diff']:.2e}")
    return 0
