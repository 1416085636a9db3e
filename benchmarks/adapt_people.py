"""Does adapting the encoder on a site's enrolled people help it name them and turn strangers away? Measured on
people the encoder never trained on.

The model: a TrackCon run trained with ``--hold-out-people`` (53 validation people never seen,
``engines.protocol.people_validation_split``: one probe walk each, their other training walks the gallery).
Per repetition a seeded third of them are strangers (as ``benchmarks/score_normalisation.py`` draws them); the
encoder is adapted (``engines.adapt.adapt_checkpoint``, as ``gaitwatch adapt`` does) on the *enrolled* people's
gallery walks only, what a site has once it has enrolled them: no probe walk and no stranger is seen. Then
each probe walk's mean embedding is scored against the enrolled walks (raw distance, what the node uses).

Variants: not adapted; statistics only (``--steps 0``); a fine-tune with every gallery walk its own class
(``gaitwatch adapt WALKS``: recordings, tracks); a fine-tune with every enrolled person one class
(``gaitwatch adapt --gallery``: the user named them). Reported: walk top-1 of the enrolled probes, and FRR
(enrolled probes not named right) at the threshold that names none of the strangers (FAR 1 %), mean ± std
over the repetitions. Writes benchmarks/adapt_people.md and benchmarks/results/adapt_people.json.

    python benchmarks/adapt_people.py runs/trackcon-people-seed0
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from score_normalisation import scores  # the raw distance to each probe's nearest identity, as the node scores

from engines.adapt import adapt_checkpoint
from engines.checkpoint import encoder_from, load
from engines.metrics import pool_by_group
from engines.models import embed_in_batches
from engines.protocol import HELD_OUT_PEOPLE, load_protocol, load_split, people_validation_split
from engines.report import mean_std
from stream.threshold import threshold_for_far

ROOT = Path(__file__).resolve().parents[1]
REPETITIONS = 5
STEPS = (300, 1000)


def walk_means(encoder: torch.nn.Module, windows: np.ndarray, walks: np.ndarray, labels: np.ndarray):
    embedded = embed_in_batches(encoder, torch.from_numpy(windows))
    pooled, ids = pool_by_group(embedded.numpy().astype(np.float64), walks)
    label_of = dict(zip(walks.tolist(), labels.tolist(), strict=True))
    return pooled, np.array([label_of[i] for i in ids.tolist()])


def score(encoder: torch.nn.Module, data, strangers: np.ndarray) -> tuple[float, float]:
    """(walk top-1 of the enrolled probes, FRR at the threshold naming no stranger)."""
    probes, probe_people = walk_means(encoder, data.probe, data.probe_walk, data.probe_labels)
    gallery, gallery_people = walk_means(encoder, data.gallery, data.gallery_walk, data.gallery_labels)
    enrolled = ~np.isin(gallery_people, strangers)
    nearest, by_score = scores(probes, gallery[enrolled], gallery_people[enrolled])
    right, d1 = nearest == probe_people, by_score["raw"]
    known = ~np.isin(probe_people, strangers)
    threshold = threshold_for_far(d1[~known], 0.01)
    named = right[known] & (d1[known] <= threshold)
    return float(np.mean(right[known])), 1.0 - float(np.mean(named))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a TrackCon run folder trained with --hold-out-people")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/datasets/kgbd/KinectGait-master.zip")
    args = parser.parse_args()
    path = args.model / "model.pt" if args.model.is_dir() else args.model
    start = load(path)
    if start.get("held_out") != HELD_OUT_PEOPLE or start.get("method") != "trackcon":
        raise SystemExit(f"{args.model}: not a trackcon run trained with --hold-out-people")
    data = load_protocol(args.data, people_validation_split(load_split(start["split"])), progress=False, f=start["f"])
    everyone = np.unique(data.gallery_labels)
    variants = {"not adapted": None, "statistics only": ("walk", 0)}
    variants.update({f"{steps} steps, each walk a class": ("walk", steps) for steps in STEPS})
    variants.update({f"{steps} steps, each enrolled person a class (--gallery)": ("person", steps) for steps in STEPS})
    results: dict[str, dict[str, list[float]]] = {}
    for repetition in range(REPETITIONS):
        strangers = np.random.default_rng([repetition, 5]).choice(everyone, len(everyone) // 3, replace=False)
        site = ~np.isin(data.gallery_labels, strangers)
        for name, how in variants.items():
            began = time.perf_counter()
            if how is None:
                checkpoint = start
            else:
                classes = data.gallery_walk[site] if how[0] == "walk" else data.gallery_labels[site]
                checkpoint = adapt_checkpoint(
                    start, data.gallery[site], classes, steps=how[1], seed=repetition, show_progress=False
                )
            top1, frr = score(encoder_from(checkpoint, path), data, strangers)
            row = results.setdefault(name, {"top1": [], "frr": [], "seconds": []})
            row["top1"].append(top1)
            row["frr"].append(frr)
            row["seconds"].append(time.perf_counter() - began)
            print(f"draw {repetition}: {name}: top-1 {100 * top1:.1f}, FRR {100 * frr:.1f}", flush=True)
    out = ROOT / "benchmarks" / "results" / "adapt_people.json"
    out.write_text(json.dumps({"model": str(args.model), "split": start["split"], "results": results}, indent=1) + "\n")
    lines = [
        "# Adapting on a site's enrolled people (people never seen in training)",
        "",
        f"`python benchmarks/adapt_people.py {args.model}` (trained on {start['split']} with `--hold-out-people`). "
        f"Method in the script's docstring. In %, mean ± std over {REPETITIONS} draws of a third of the "
        f"{len(everyone)} people as strangers; adapted on the enrolled people's gallery walks only.",
        "",
        "| adaptation | walk top-1 (enrolled) | FRR at FAR 1 % | seconds (2 cores) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, row in results.items():
        top1, frr = mean_std([100 * v for v in row["top1"]]), mean_std([100 * v for v in row["frr"]])
        seconds = float(np.mean(row["seconds"]))
        lines.append(f"| {name} | {top1[0]:.1f} ± {top1[1]:.1f} | {frr[0]:.1f} ± {frr[1]:.1f} | {seconds:.0f} |")
    (ROOT / "benchmarks" / "adapt_people.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
