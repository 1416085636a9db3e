"""How AGE's embedding normalisation was chosen: variants scored on the *validation* split only.

The validation split (``engines.protocol.validation_split``) is drawn from each split's training
walks, so nothing here looks at the probe or gallery walks of the test. Each variant's statistics
are fitted on all training windows of the split, as the shipped encoder's whitening is. Writes
``benchmarks/results/age_selection.json`` and ``benchmarks/age_selection.md``.

    python benchmarks/age_selection.py runs/age-seed0 runs/age-seed1 --data KGBD.zip
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from engines.checkpoint import load_encoder
from engines.evaluate import _walk_level
from engines.metrics import reid_metrics_embeddings
from engines.models.whiten import Whitening
from engines.protocol import load_protocol, load_split, validation_split
from engines.runtime.torch_backend import TorchEncoder

ROOT = Path(__file__).resolve().parents[1]
Transform = Callable[[np.ndarray], np.ndarray]


def l2(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def per_axis_l2(x: np.ndarray) -> np.ndarray:
    return np.concatenate([l2(part) for part in np.split(x, 3, axis=1)], axis=1)


def zscore(train: np.ndarray) -> Transform:
    mean, std = train.mean(0), train.std(0) + 1e-6
    return lambda x: (x - mean) / std


def whitening(train: np.ndarray, eps: float) -> Transform:
    layer = Whitening(train.shape[1], eps)
    layer.fit(torch.from_numpy(train))
    return lambda x: layer(torch.from_numpy(x)).numpy()


def score(probe: np.ndarray, gallery: np.ndarray, data) -> dict[str, float]:
    window = reid_metrics_embeddings(probe, gallery, data.probe_labels, data.gallery_labels)
    p, pl = _walk_level(probe, data.probe_walk, data.probe_labels)
    g, gl = _walk_level(gallery, data.gallery_walk, data.gallery_labels)
    walk = reid_metrics_embeddings(p, g, pl, gl)
    return {
        "window_top1": 100 * window.top1,
        "window_mAP": 100 * window.mAP,
        "walk_top1": 100 * walk.top1,
        "walk_mAP": 100 * walk.mAP,
    }


@torch.inference_mode()
def contexts(encoder, windows: np.ndarray) -> np.ndarray:
    return np.concatenate(
        [encoder.contexts(torch.from_numpy(windows[s : s + 4096])).numpy() for s in range(0, len(windows), 4096)]
    )


def evaluate_run(run: Path, data_path: Path) -> dict[str, dict[str, float]]:
    encoder, info = load_encoder(run / "model.pt")
    split = load_split(info["split"])
    train = load_protocol(data_path, split).train
    val = load_protocol(data_path, validation_split(split))
    raw = TorchEncoder.raw(6)
    raw_train, raw_probe, raw_gallery = (raw.encode(x) for x in (train, val.probe, val.gallery))
    ctx_train, ctx_probe, ctx_gallery = (contexts(encoder, x) for x in (train, val.probe, val.gallery))
    variants: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, Transform]] = {
        "raw coordinates (the baseline)": (raw_train, raw_probe, raw_gallery, lambda x: x),
        "raw coordinates, z-score": (raw_train, raw_probe, raw_gallery, zscore(raw_train)),
        "AGE contexts, as published": (ctx_train, ctx_probe, ctx_gallery, lambda x: x),
        "AGE, L2-normalised": (ctx_train, ctx_probe, ctx_gallery, l2),
        "AGE, L2 per axis": (ctx_train, ctx_probe, ctx_gallery, per_axis_l2),
        "AGE, z-score": (ctx_train, ctx_probe, ctx_gallery, zscore(ctx_train)),
        **{
            f"AGE, PCA whitening eps {eps:g}": (ctx_train, ctx_probe, ctx_gallery, whitening(ctx_train, eps))
            for eps in (1e-3, 1e-4, 1e-5)
        },
    }
    results = {}
    for name, (_, probe, gallery, transform) in variants.items():
        results[name] = score(transform(probe), transform(gallery), val)
        print(f"{run.name}  {name:34s} " + "  ".join(f"{k} {v:5.1f}" for k, v in results[name].items()), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/datasets/kgbd/KinectGait-master.zip")
    args = parser.parse_args()
    per_run = {run.name: evaluate_run(run, args.data) for run in args.runs}
    names = list(next(iter(per_run.values())))
    keys = ("window_top1", "window_mAP", "walk_top1", "walk_mAP")
    mean = {n: {k: round(float(np.mean([r[n][k] for r in per_run.values()])), 2) for k in keys} for n in names}
    best = max((n for n in names if n.startswith("AGE")), key=lambda n: mean[n]["window_mAP"])
    out = ROOT / "benchmarks" / "results" / "age_selection.json"
    out.write_text(json.dumps({"runs": per_run, "mean": mean}, indent=1) + "\n")
    lines = [
        "# AGE: choosing the embedding normalisation on the validation split (training walks only)",
        "",
        f"`python benchmarks/age_selection.py {' '.join(str(r) for r in args.runs)} --data KGBD.zip`;",
        "validation split: per person with 2+ training walks, 1 walk as probe and the rest as gallery",
        "(`engines/protocol.py`).",
        "Statistics (z-score, whitening) fitted on all training windows of the split. Mean over the runs listed.",
        "",
        "| variant | window top-1 | window mAP | walk top-1 | walk mAP |",
        "| --- | ---: | ---: | ---: | ---: |",
        *(f"| {n} | " + " | ".join(f"{mean[n][k]:.1f}" for k in keys) + " |" for n in names),
        "",
        f"Best AGE variant by validation window mAP: {best}. The model uses PCA whitening, eps 1e-3",
        "(`engines/train/age.py`), chosen by this comparison on split seeds 0 and 1 before the final training runs.",
    ]
    (ROOT / "benchmarks" / "age_selection.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
