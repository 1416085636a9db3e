"""The engines package's commands: ``train`` and ``eval`` (self-supervised training and the KGBD
re-identification protocol, here), ``export`` (``export/cli.py``) and ``bench encoder`` (``runtime/cli.py``)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from engines.export import cli as export_cli
from engines.protocol import WINDOW_FRAMES
from engines.runtime import cli as runtime_cli
from sensors.cli_helpers import Commands, Groups, require_extra
from sensors.errors import InputError

if TYPE_CHECKING:
    from engines.runtime.base import Encoder

RAW = "raw"
logger = logging.getLogger("gaitwatch.eval")


def register(commands: Commands, groups: Groups) -> None:
    """``train``, ``eval``, ``export``, and ``encoder`` under the shared ``bench`` group."""
    train = commands.add_parser("train", help="train a gait encoder on the unlabeled training walks of a split")
    train.add_argument(
        "method",
        choices=["simmc", "age", "trackcon", "selfgait"],
        help="SimMC (Rao & Miao 2022), AGE/SGE-LA (Rao et al. 2020), TrackCon (ours: windows of one track are one "
        "person; docs/trackcon.md), or SelfGait (Liu et al. 2021: BYOL pre-training on silhouettes; "
        "docs/silhouettes.md)",
    )
    train.add_argument(
        "--data", type=Path, required=True, help="the KGBD zip or folder; for selfgait a silhouette dataset folder"
    )
    train.add_argument("--split", help="kgbd:SEED (a committed split manifest, seeds 0-4); not for selfgait")
    train.add_argument("--out", type=Path, required=True, help="run folder: checkpoints, loss log, loss plot")
    train.add_argument("--epochs", type=int, help="number of epochs (default: the method's own)")
    train.add_argument(
        "--frames",
        type=int,
        default=WINDOW_FRAMES,
        metavar="F",
        help="frames per window the encoder sees: the papers' protocol is 6 (0.2 s); more gives a skeleton encoder "
        "a longer context (its model card says F, and eval and the node cut windows of F frames); not for selfgait",
    )
    train.add_argument("--seed", type=int, help="training seed (default: the split's seed)")
    train.add_argument("--restart", action="store_true", help="ignore a checkpoint in --out instead of resuming")
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change one setting of the method's training config (recorded in the checkpoint and the model card), "
        "e.g. --set windows_per_group=0; repeat for several",
    )
    held_out = train.add_mutually_exclusive_group()
    held_out.add_argument(
        "--hold-out-validation",
        action="store_true",
        help="train without the walks that 'eval --on validation' probes with, so that score is on unseen walks "
        "(for choosing settings and methods; the shipped models train on every training walk)",
    )
    held_out.add_argument(
        "--hold-out-people",
        action="store_true",
        help="train without every walk of a seeded third of the validation people; 'eval --on validation' then "
        "scores those people alone, never seen in training, as a new site's people are",
    )
    train.add_argument(
        "--finetune",
        type=Path,
        metavar="FROM",
        help="a selfgait run folder or model.pt to fine-tune with labels (selfgait only; default: pre-train)",
    )
    train.add_argument(
        "--labelled-fraction",
        type=float,
        metavar="P",
        help="share of the training subjects whose labels fine-tuning may use (selfgait only; default 1.0)",
    )
    train.set_defaults(func=run_train)

    ev = commands.add_parser(
        "eval",
        help="re-identification accuracy (CMC top-k, mAP, nAUC) on KGBD probe/gallery, or of silhouette encoders "
        "on a silhouette dataset (--silhouettes)",
    )
    ev.add_argument(
        "models",
        nargs="*",
        help="models (.pt, .onnx, .engine) or run folders, each scored on its own split; 'raw'; "
        "default: the shipped TrackCon model (with --silhouettes: selfgait .onnx, .pt or run folders; "
        "default: the shipped silhouette model)",
    )
    ev.add_argument(
        "--data", type=Path, help="the KGBD zip or folder (skeleton encoders; needed without --silhouettes)"
    )
    ev.add_argument(
        "--silhouettes",
        type=Path,
        metavar="DATA",
        help="score silhouette encoders on this silhouette dataset folder (CASIA-B PNGs or OpenGait pickles), "
        "each sequence encoded whole (default: none, KGBD with --data)",
    )
    ev.add_argument(
        "--protocol",
        choices=["casia-b", "walks"],
        help="with --silhouettes: casia-b (the standard protocol on test subjects 075-124) or walks (each "
        "subject's first sequence is its gallery, the others probes); default: casia-b where the dataset has "
        "CASIA-B test subjects, else walks",
    )
    ev.add_argument("--split", action="append", default=[], help="kgbd:SEED; repeat for several (needed for 'raw')")
    ev.add_argument(
        "--on",
        choices=["test", "validation"],
        default="test",
        help="test: the split's probe and gallery walks; validation: a probe/gallery split of its training walks, "
        "for choosing settings without touching the test",
    )
    ev.add_argument(
        "--out", type=Path, help="folder for results.json and cmc.png (silhouettes: results.json) (default: print only)"
    )
    ev.set_defaults(func=run_eval)

    export_cli.add_commands(commands)
    runtime_cli.add_commands(groups["bench"])


def run_train(args: argparse.Namespace) -> int:
    require_extra("train", ("torch", "matplotlib"), "training")
    from engines.protocol import HELD_OUT_PEOPLE, HELD_OUT_WALKS, load_protocol, load_split, parse_split_spec
    from engines.train.loop import checked_config, train

    if args.epochs is not None and args.epochs < 1:
        raise InputError(f"--epochs: expected at least 1, got {args.epochs}")
    if args.seed is not None and not 0 <= args.seed < 2**32:
        raise InputError(f"--seed: expected 0 .. 2**32 - 1, got {args.seed}")
    if args.frames < 1:
        raise InputError(f"--frames: expected at least 1 frame per window, got {args.frames}")
    finetune = args.method == "selfgait" and args.finetune is not None
    overrides = {**config_settings(args.method, args.set, finetune), **({"epochs": args.epochs} if args.epochs else {})}
    if args.method == "selfgait" and args.frames != WINDOW_FRAMES:
        raise InputError("selfgait: --frames is for skeleton windows; a silhouette view's length is --set frames=N")
    if args.method == "selfgait":
        from engines.train.selfgait_cli import run_selfgait_train

        return run_selfgait_train(args, overrides)
    if args.finetune is not None or args.labelled_fraction is not None:
        raise InputError(f"{args.method}: --finetune and --labelled-fraction are selfgait's (fine-tuning with labels)")
    if args.split is None:
        raise InputError(f"{args.method} trains on KGBD: --split kgbd:SEED is needed")
    checked_config(args.method, overrides, args.frames)
    _, split_seed = parse_split_spec(args.split)
    split = load_split(args.split)
    data = load_protocol(args.data, split, f=args.frames)
    held_out = HELD_OUT_WALKS if args.hold_out_validation else HELD_OUT_PEOPLE if args.hold_out_people else None
    windows, tracks = data.training_tracks(held_out)
    description = {
        "split": args.split,
        "dataset": "kgbd",
        "data": str(args.data),
        "layout": "kinect_v1",
        "rate_hz": 30.0,
        "train_windows": len(windows),
        "held_out": held_out,
    }
    path = train(
        args.method,
        windows,
        args.out,
        seed=split_seed if args.seed is None else args.seed,
        description=description,
        config_overrides=overrides,
        resume=not args.restart,
        tracks=tracks,
    )
    print(f"model: {path}")
    return 0


def config_settings(method: str, settings: list[str], finetune: bool = False) -> dict:
    """``--set KEY=VALUE`` pairs as config overrides: only keys the method (or SelfGait's fine-tuning stage) has,
    values as JSON (numbers, true) of the default's type, so a typo is an error and not a setting silently ignored."""
    from engines.train.methods import get_method

    defaults = get_method(method).default_config()
    bounds = get_method(method).setting_bounds
    if finetune:
        from engines.train.selfgait_finetune import BOUNDS, DEFAULTS
        from engines.train.silhouette_augment import DEFAULTS as AUGMENT

        defaults = {key: value for key, value in {**AUGMENT, **DEFAULTS}.items() if key != "stage"}
        bounds = BOUNDS
    out = {}
    for setting in settings:
        key, sep, text = setting.partition("=")
        if not sep or key not in defaults:
            known = ", ".join(sorted(defaults))
            whose = f"{method} fine-tuning's" if finetune else f"{method}'s"
            raise InputError(f"--set {setting}: expected KEY=VALUE with KEY one of {whose} settings: {known}")
        try:
            value = json.loads(text)
        except ValueError:  # not JSON, or a number Python will not read (thousands of digits)
            value = None
        default = defaults[key]
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not type(default):
            raise InputError(f"--set {setting}: expected a {type(default).__name__} like the default {default!r}")
        if key in bounds and not bounds[key].admits(value):
            raise InputError(f"--set {setting}: {key} must be {bounds[key]}")
        out[key] = value
    return out


def _jobs(models: list[str], splits: list[str]) -> list[tuple[str, Encoder, str]]:
    """(name, encoder, split) for every evaluation; the raw baseline runs once per --split."""
    from engines.runtime.load import open_encoder, shipped_model

    jobs = []
    for spec in models or [str(shipped_model())]:
        if spec == RAW:
            if not splits:
                raise InputError("'raw' needs at least one --split kgbd:SEED")
            jobs += [(RAW, open_encoder(RAW), split) for split in splits]
            continue
        encoder = open_encoder(spec)
        trained_on = (encoder.card.get("training") or {}).get("split")
        if trained_on is None:
            raise InputError(f"{spec}: its model card names no training split, so no test split can be chosen")
        if splits and trained_on not in splits:
            raise InputError(
                f"{spec}: trained on split {trained_on}; evaluating it on {splits} would test on its training walks"
            )
        jobs.append((str(spec), encoder, trained_on))
    return jobs


def run_eval(args: argparse.Namespace) -> int:
    if args.silhouettes is not None:
        return run_silhouette_eval(args)
    if args.protocol is not None:
        raise InputError("--protocol applies to silhouette encoders: give --silhouettes DATA")
    if args.data is None:
        raise InputError("eval needs --data (KGBD, skeleton encoders) or --silhouettes DATA (silhouette encoders)")
    require_extra("train", ("torch", "matplotlib"), "evaluation")
    from engines.evaluate import evaluate
    from engines.model_card import learned_from_tracks
    from engines.protocol import load_protocol, load_split, validation_for
    from engines.report import summarise, write_cmc_plot

    rows = []
    for name, encoder, split_spec in _jobs(args.models, args.split):
        split = load_split(split_spec)
        training = encoder.card.get("training") or {}
        if args.on == "validation" and learned_from_tracks(encoder.card) and not training.get("held_out"):
            logger.warning(
                "%s learned from these validation walks as whole tracks: its validation scores are flattered; "
                "train it with --hold-out-validation to compare settings",
                name,
            )
        scored = validation_for(split, training.get("held_out")) if args.on == "validation" else split
        data = load_protocol(args.data, scored, f=encoder.f)
        results = evaluate(encoder, data)
        method = encoder.card["method"]
        training = encoder.card.get("training") or {}
        rows.append(
            {
                "model": name,
                "method": method,
                "backend": encoder.backend,
                "split": split_spec,
                "part": args.on,
                **{k: training[k] for k in ("train_seconds", "epoch", "train_windows", "held_out") if k in training},
                **{k: v.to_dict() for k, v in results.items()},
            }
        )
        w, k = results["window"], results["walk"]
        print(
            f"{method:6s} {split_spec:8s} {args.on:10s} "
            f"window top-1 {100 * w.top1:5.1f} mAP {100 * w.mAP:5.1f}   "
            f"walk top-1 {100 * k.top1:5.1f} mAP {100 * k.mAP:5.1f}",
            flush=True,
        )
    summary = summarise(rows)
    print(summary["table"])
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps({"runs": rows, "summary": summary["stats"]}, indent=1) + "\n")
        write_cmc_plot(rows, args.out / "cmc.png")
        print(f"wrote {args.out / 'results.json'} and {args.out / 'cmc.png'}")
    return 0


def run_silhouette_eval(args: argparse.Namespace) -> int:
    """``eval --silhouettes DATA``: each model scored on the dataset's sequences (``engines.silhouette_eval``)."""
    from engines.runtime.load import open_silhouette_encoder
    from engines.runtime.silhouette_backend import MIN_FRAMES
    from engines.silhouette_eval import score_dataset
    from sensors.formats.silhouette_dataset import PNG, dataset_root, layout_of

    if args.data is not None or args.split or args.on != "test":
        raise InputError("--silhouettes scores on a silhouette dataset: --data, --split and --on are KGBD's")
    encoders = [open_silhouette_encoder(spec) for spec in args.models or [None]]  # a wrong model: before any reading
    if layout_of(dataset_root(args.silhouettes)) == PNG:
        require_extra("rgb", ("cv2",), "reading CASIA-B's PNG silhouettes")
    runs = []
    for encoder in encoders:
        scores = score_dataset(encoder, args.silhouettes, args.protocol)
        name = str(encoder.path)
        print(f"{name} ({encoder.backend}) on {args.silhouettes}: protocol {scores.protocol} ({scores.chosen})")
        if scores.encoded.skipped:
            print(f"left out {len(scores.encoded.skipped)} sequences of under {MIN_FRAMES} silhouettes")
        print(scores.table(), flush=True)
        runs.append({"model": name, "method": encoder.card["method"], "backend": encoder.backend, **scores.to_dict()})
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        results = {"data": str(args.silhouettes), "runs": runs}
        (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
        print(f"wrote {args.out / 'results.json'}")
    return 0
