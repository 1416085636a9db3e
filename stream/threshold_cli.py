"""``gaitwatch calibrate threshold``: the matcher's distance threshold for a target false-accept rate, from KGBD
walks scored through a real gallery; the node reads the file it writes (``--threshold FILE --far F``)."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from sensors.cli_helpers import require_extra
from sensors.errors import InputError


def add_commands(what: argparse._SubParsersAction) -> None:
    """``threshold`` under the shared ``calibrate`` group."""
    th = what.add_parser("threshold", help="genuine/impostor walk scores -> threshold per target FAR, EER, DET plot")
    th.add_argument("--data", type=Path, required=True, help="the KGBD zip or folder")
    th.add_argument("--split", help="kgbd:SEED (default: the split the model was trained on, else kgbd:0)")
    th.add_argument(
        "--on",
        choices=["validation", "test"],
        default="validation",
        help="validation: the split's training walks, so the test stays unseen; test: its probe and gallery walks",
    )
    th.add_argument("--model", type=Path, help="encoder artifact (default: the shipped model)")
    th.add_argument("--far", type=float, nargs="+", default=[0.01, 0.1], help="target false-accept rates, in [0, 1]")
    th.add_argument("--out", type=Path, required=True, help="folder for threshold.json and det.png")
    th.set_defaults(func=run_threshold)


def run_threshold(args: argparse.Namespace) -> int:
    from engines.model_card import learned_from_tracks
    from engines.protocol import load_protocol, load_split, validation_split
    from engines.runtime.load import open_encoder
    from sensors import atomic
    from sensors.atomic import private_dir
    from stream.kgbd_scores import scores_for
    from stream.threshold import FORMAT, VERSION, calibrate, open_set_thresholds, write_det_plot

    require_extra("train", ("matplotlib",), "the DET plot")
    if any(not 0 <= far <= 1 for far in args.far):
        raise InputError(f"target false-accept rates must lie in [0, 1], got {args.far}")
    encoder = open_encoder(args.model)
    training = encoder.card.get("training") or {}
    args.split = args.split or training.get("split") or "kgbd:0"
    if learned_from_tracks(encoder.card) and args.on == "validation" and training.get("split") == args.split:
        raise InputError(
            f"{encoder.card['file']['name']} learned from the validation walks of {args.split} as whole tracks, so "
            "their distances are not a stranger's (a threshold from them names about 3 strangers in 10 as someone "
            "on KGBD's test walks); use `gaitwatch calibrate site` (label-free, on your own site), or --on test"
        )
    split = load_split(args.split)
    data = load_protocol(args.data, validation_split(split) if args.on == "validation" else split, f=encoder.f)
    with tempfile.TemporaryDirectory() as scratch:
        scores = scores_for(encoder, data, Path(scratch))
    genuine, impostor = scores.genuine_impostor()
    result = calibrate(genuine, impostor, tuple(args.far))
    open_set = open_set_thresholds(*scores.open_set(), tuple(args.far))
    private_dir(args.out)
    verification = result.to_dict()
    report = {
        "format": FORMAT,
        "version": VERSION,
        "model": encoder.card["file"]["name"],
        "model_sha256": encoder.card["file"]["sha256"],
        "data": str(args.data),
        "split": args.split,
        "part": args.on,
        "score": f"distance ({encoder.card['metric']}, engines/track_distance.py) of a probe walk's mean embedding to "
        "the identity's nearest enrolled walk mean",
        "matcher": {
            "note": "the node's threshold (--threshold FILE --far F): per target open-set FAR, the share of people "
            "who are not enrolled that are named as someone (each probe scored against the gallery without its "
            "own identity); dir = share of enrolled people named right within it",
            "thresholds": open_set,
        },
        "verification": {
            "note": "one probe against one claimed identity (genuine and impostor pairs); not the node's threshold",
            **verification,
        },
    }
    atomic.write_bytes(args.out / "threshold.json", (json.dumps(report, indent=1) + "\n").encode(), private=True)
    write_det_plot(genuine, impostor, result, args.out / "det.png")
    for row in open_set:
        print(
            f"matcher, FAR {row['target_far']:g}: threshold {row['threshold']:.4f} (strangers named "
            f"{100 * row['far']:.2f}%, enrolled people named right {100 * row['dir']:.2f}%)"
        )
    for row in verification["thresholds"]:
        print(
            f"verification, FAR {row['target_far']:g}: threshold {row['threshold']:.4f} "
            f"(FAR {100 * row['far']:.2f}%, FRR {100 * row['frr']:.2f}%)"
        )
    print(
        f"verification EER {100 * result.eer:.2f}% at {result.eer_threshold:.4f}; "
        f"{len(genuine)} genuine, {len(impostor)} impostor pairs"
    )
    print(f"wrote {args.out / 'threshold.json'} and {args.out / 'det.png'}")
    return 0
