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
(``gaitwatch adapt --gallery``: the user named them), its site threshold set from the enrolled people's
distances to each other, or, as ``gaitwatch adapt --gallery`` records for ``calibrate site``, from what the
people left out of 4 stand-in fine-tunes score against those each trained on (``engines.adapt_strangers``).
Reported: walk top-1 of the enrolled probes; FRR (enrolled probes not named right) at the threshold that names
none of the strangers (FAR 1 %, set on the strangers: no site can know it); and the label-free site threshold
for FAR 1 % (``stream.site_impostors``, as ``calibrate site`` sets it) with the FRR and the share of strangers
named (measured FAR) it gives. Mean ± std over the repetitions. Writes benchmarks/adapt_people.md and
benchmarks/results/adapt_people.json.

    python benchmarks/adapt_people.py runs/trackcon-people-seed0
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from score_normalisation import (  # the raw distance to each probe's nearest identity, as the node scores
    scores,
    torch_embedder,
    walk_means,
)

from engines.adapt import SUGGESTED_STEPS, adapt_checkpoint
from engines.adapt_strangers import cross_fitted_strangers
from engines.checkpoint import encoder_from, load
from engines.impostors import ImpostorFit
from engines.protocol import HELD_OUT_PEOPLE, load_protocol, load_split, people_validation_split
from engines.report import mean_std
from engines.track_distance import TrackDistance
from stream.site_impostors import EnrolledTracks, site_threshold
from stream.threshold import threshold_for_far

ROOT = Path(__file__).resolve().parents[1]
REPETITIONS = 5
STEPS = (300, 1000)
TARGET = 0.01


def score(
    encoder: torch.nn.Module, data, strangers: np.ndarray, recorded: tuple | None, prior: dict | None
) -> dict[str, float]:
    """Walk top-1 of the enrolled probes, FRR at the threshold naming no stranger, and the site threshold's FRR
    and measured FAR (from ``recorded`` stranger scores when given, else the enrolled walks' own pairs)."""

    embed = torch_embedder(encoder)
    probes, probe_people = walk_means(embed, data.probe, data.probe_walk, data.probe_labels)
    gallery, gallery_people = walk_means(embed, data.gallery, data.gallery_walk, data.gallery_labels)
    enrolled = ~np.isin(gallery_people, strangers)
    nearest, d1 = scores(probes, gallery[enrolled], gallery_people[enrolled])["raw"]
    right = nearest == probe_people
    known = ~np.isin(probe_people, strangers)
    if recorded is None:
        tracks = EnrolledTracks.of(
            gallery_people[enrolled], gallery[enrolled], set(gallery_people.tolist()), TrackDistance()
        )
        recorded = tracks.identity_pairs(), tracks.leave_one_out_nearest()
    fit = ImpostorFit.of(recorded[0], prior)
    site, _ = site_threshold(fit, recorded[1], TARGET, len(np.unique(gallery_people[enrolled])))
    return {
        "top1": float(np.mean(right[known])),
        "frr": _frr(right[known], d1[known], threshold_for_far(d1[~known], TARGET)),
        "site_frr": _frr(right[known], d1[known], site),
        "site_far": float(np.mean(d1[~known] <= site)),
    }


def _frr(right: np.ndarray, distance: np.ndarray, threshold: float) -> float:
    return 1.0 - float(np.mean(right & (distance <= threshold)))


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
    variants[f"{SUGGESTED_STEPS} steps, --gallery, threshold from stand-ins (what adapt --gallery does)"] = (
        "person", SUGGESTED_STEPS, "stand-ins")  # fmt: skip
    results: dict[str, dict[str, list[float]]] = {}
    for repetition in range(REPETITIONS):
        strangers = np.random.default_rng([repetition, 5]).choice(everyone, len(everyone) // 3, replace=False)
        for name, how in variants.items():
            began = time.perf_counter()
            recorded = None
            if how is None:
                checkpoint = start
            else:
                site = ~np.isin(data.gallery_labels, strangers)
                classes = data.gallery_walk[site] if how[0] == "walk" else data.gallery_labels[site]
                checkpoint = adapt_checkpoint(
                    start, data.gallery[site], classes, steps=how[1], seed=repetition, show_progress=False
                )
                if len(how) > 2:
                    record = cross_fitted_strangers(start, data.gallery[site], classes, data.gallery_walk[site],
                                                    steps=how[1], seed=repetition, show_progress=False)  # fmt: skip
                    recorded = np.asarray(record["pairs"]), np.asarray(record["nearest"])
            measured = score(encoder_from(checkpoint, path), data, strangers, recorded, start.get("impostor_shape"))
            row = results.setdefault(name, {key: [] for key in (*measured, "seconds")})
            for key, value in measured.items():
                row[key].append(value)
            row["seconds"].append(time.perf_counter() - began)
            print(f"draw {repetition}: {name}: " + ", ".join(f"{k} {100 * v:.1f}" for k, v in measured.items()),
                  flush=True)  # fmt: skip
    out = ROOT / "benchmarks" / "results" / "adapt_people.json"
    out.write_text(json.dumps({"model": str(args.model), "split": start["split"], "results": results}, indent=1) + "\n")
    lines = [
        "# Adapting on a site's enrolled people (people never seen in training)",
        "",
        f"`python benchmarks/adapt_people.py {args.model}` (trained on {start['split']} with `--hold-out-people`). "
        f"Method in the script's docstring. In %, mean ± std over {REPETITIONS} draws of a third of the "
        f"{len(everyone)} people as strangers; adapted on the enrolled people's gallery walks only.",
        "",
        "| adaptation | walk top-1 (enrolled) | FRR at FAR 1 % (set on the strangers) | site threshold: FRR "
        "| site threshold: FAR measured | seconds (2 cores) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, row in results.items():
        cells = [mean_std([100 * v for v in row[key]]) for key in ("top1", "frr", "site_frr", "site_far")]
        seconds = float(np.mean(row["seconds"]))
        lines.append(f"| {name} | " + " | ".join(f"{m:.1f} ± {s:.1f}" for m, s in cells) + f" | {seconds:.0f} |")
    (ROOT / "benchmarks" / "adapt_people.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
