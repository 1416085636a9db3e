"""``gaitwatch train selfgait --data DIR --out RUN [--finetune FROM [--labelled-fraction P]]``: BYOL pre-training
(no labels, the default) or fine-tuning a pre-training run with labels, then the ONNX encoder and its card.

Why under ``train`` and not ``silhouettes``: ``silhouettes`` lives in ``sensors``, which may not import the
engines; and the issue asks for ``gaitwatch train selfgait --data``. KGBD's options (``--split``,
``--hold-out-validation``) mean nothing for silhouettes and are refused, so nobody believes they applied.
"""

from __future__ import annotations

import argparse

from sensors.errors import InputError

ONNX_NAME = "selfgait.onnx"


def run_selfgait_train(args: argparse.Namespace, overrides: dict) -> int:
    """Train into ``args.out``; export ``selfgait.onnx`` beside ``model.pt`` where onnxscript is installed."""
    from engines.train.selfgait_run import finetune_selfgait, train_selfgait

    if args.split is not None or args.hold_out_validation or args.hold_out_people:
        raise InputError("selfgait trains on a silhouette dataset: --split and --hold-out-* are KGBD's")
    seed = 0 if args.seed is None else args.seed
    if args.finetune is not None:
        fraction = 1.0 if args.labelled_fraction is None else args.labelled_fraction
        model = finetune_selfgait(
            args.data,
            args.out,
            args.finetune,
            labelled_fraction=fraction,
            seed=seed,
            config_overrides=overrides,
            resume=not args.restart,
        )
    elif args.labelled_fraction is not None:
        raise InputError("--labelled-fraction: only with --finetune FROM (pre-training uses no labels)")
    else:
        model = train_selfgait(args.data, args.out, seed=seed, config_overrides=overrides, resume=not args.restart)
    print(f"model: {model}")
    try:
        import onnxscript  # noqa: F401
    except ImportError:
        print("no ONNX export (needs onnxscript: pip install -c constraints.txt 'gaitwatch[train]')")
        return 0
    from engines.export.selfgait_artifact import export_selfgait

    onnx = args.out / ONNX_NAME
    if onnx.exists():
        onnx.unlink()  # an earlier export of this run, before it trained more
    card = export_selfgait(model, onnx)
    print(f"encoder: {onnx} (parity with torch {card['parity']['max_relative_diff']:.1e} relative)")
    return 0
