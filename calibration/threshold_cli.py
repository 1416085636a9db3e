"""``gaitwatch calibrate threshold``: the distance threshold for a target false-accept rate, from KGBD walks."""

from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
from pathlib import Path

from sensors.errors import InputError


def add_commands(what: argparse._SubParsersAction) -> None:
    th = what.add_parser("threshold", help="genuine/impostor walk scores -> threshold per target FAR, EER, DET plot")
    th.add_argument("--data", type=Path, required=True, help="the KGBD zip or folder")
    th.add_argument("--split", help="kgbd:SEED (default: the split the model was trained on, else kgbd:0)")
    th.add_argument(
        "--on",
        choices=["validation", "test"],
        default="validation",
        help="validation (default): the split's training walks, so the test stays unseen",
    )
    th.add_argument("--model", type=Path, help="encoder artifact (default: the shipped model)")
    th.add_argument("--far", type=float, nargs="+", default=[0.01, 0.1], help="target false-accept rates")
    th.add_argument("--out", type=Path, required=True, help="folder for threshold.json and det.png")
    th.set_defaults(func=run_threshold)


def run_threshold(args: argparse.Namespace) -> int:
    from calibration.kgbd_scores import scores_for
    from calibration.threshold import calibrate, open_set_thresholds, write_det_plot
    from engines.protocol import load_protocol, load_split, validation_split
    from engines.runtime.load import open_encoder

    if importlib.util.find_spec("matplotlib") is None:
        raise InputError("the DET plot needs matplotlib: pip install -c constraints.txt 'gaitwatch[train]'")
    encoder = open_encoder(args.model)
    args.split = args.split or (encoder.card.get("training") or {}).get("split") or "kgbd:0"
    split = load_split(args.split)
    data = load_protocol(args.data, validation_split(split) if args.on == "validation" else split, f=encoder.f)
    with tempfile.TemporaryDirectory() as scratch:
        scores = scores_for(encoder, data, Path(scratch))
    genuine, impostor = scores.genuine_impostor()
    result = calibrate(genuine, impostor, tuple(args.far))
    open_set = open_set_thresholds(*scores.open_set(), tuple(args.far))
    args.out.mkdir(parents=True, exist_ok=True)
    report = {
        "model": encoder.card["file"]["name"],
        "model_sha256": encoder.card["file"]["sha256"],
        "data": str(args.data),
        "split": args.split,
        "part": args.on,
        "score": "Euclidean distance of a probe walk's mean embedding to the identity's nearest enrolled walk mean",
        **result.to_dict(),
        "open_set": open_set,
        "open_set_note": "threshold per target share of unknown people accepted as someone (each probe scored "
        "against the gallery without its own identity); the matcher's threshold. dir = detection and identification",
    }
    (args.out / "threshold.json").write_text(json.dumps(report, indent=1) + "\n")
    write_det_plot(genuine, impostor, result, args.out / "det.png")
    for row in report["thresholds"]:
        print(
            f"FAR target {row['target_far']:g}: threshold {row['threshold']:.4f} "
            f"(FAR {100 * row['far']:.2f}%, FRR {100 * row['frr']:.2f}%)"
        )
    print(
        f"EER {100 * result.eer:.2f}% at {result.eer_threshold:.4f}; {len(genuine)} genuine, {len(impostor)} impostor"
    )
    print(f"wrote {args.out / 'threshold.json'} and {args.out / 'det.png'}")
    return 0
