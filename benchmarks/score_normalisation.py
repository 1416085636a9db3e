"""Does a normalised score separate strangers better than the raw distance? Measured on held-out validation walks.

The model: a run trained with ``--hold-out-validation`` (so the validation probe walks are unseen; the
validation split of its training walks, 160 probe walks) or ``--hold-out-people`` (53 people never seen in
training, scored alone; ``engines.protocol.people_validation_split``). Per repetition a seeded third of
the people scored are strangers (their gallery walks not enrolled). Each probe walk's mean embedding is
scored against every enrolled identity (distance to its nearest enrolled walk mean) with:

- raw: d1, the distance to the nearest identity (what the node uses);
- ratio: d1 / d2, the nearest against the second nearest identity (Lowe's ratio test);
- T-norm: (d1 - mean) / std of the probe's distances to all other identities (speaker verification's test
  normalisation);
- Z-norm: (d1 - median) / std of the nearest identity's own impostor distances (its walks against the
  other identities' walks).

Reported: FRR (enrolled probes not named right) at the threshold that accepts exactly 1 % and 5 % of
the stranger probes, mean ± std over 5 repetitions. Writes benchmarks/results/score_normalisation.json
and benchmarks/score_normalisation.md (``--out DIR``: DIR/score_normalisation.md and DIR/results/ instead).

    python benchmarks/score_normalisation.py runs/trackcon-holdout-seed0
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from engines.metrics import pool_by_group
from engines.protocol import HELD_OUT_PEOPLE, HELD_OUT_WALKS, load_protocol, load_split, validation_for
from engines.report import mean_std
from engines.runtime.load import open_encoder
from stream.threshold import threshold_for_far

ROOT = Path(__file__).resolve().parents[1]
TARGETS = (0.01, 0.05)
REPETITIONS = 5


def walk_means(encoder, windows: np.ndarray, walks: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pooled, ids = pool_by_group(encoder.encode(windows).astype(np.float64), walks)
    label_of = dict(zip(walks.tolist(), labels.tolist(), strict=True))
    return pooled, np.array([label_of[i] for i in ids.tolist()])


def scores(probes: np.ndarray, gallery: np.ndarray, owners: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(nearest identity per probe, each score per probe)."""
    people = np.unique(owners)
    distance = np.linalg.norm(probes[:, None] - gallery[None], axis=2)
    per_identity = np.stack([distance[:, owners == p].min(axis=1) for p in people], axis=1)
    order = np.argsort(per_identity, axis=1)
    rows = np.arange(len(probes))
    d1, d2 = per_identity[rows, order[:, 0]], per_identity[rows, order[:, 1]]
    rest = np.sort(per_identity, axis=1)[:, 1:]
    within = np.linalg.norm(gallery[:, None] - gallery[None], axis=2)
    centre, spread = {}, {}
    for person in people:
        impostor = within[owners == person][:, owners != person].ravel()
        centre[person], spread[person] = np.median(impostor), impostor.std()
    nearest = people[order[:, 0]]
    return nearest, {
        "raw": d1,
        "ratio": d1 / d2,
        "T-norm": (d1 - rest.mean(axis=1)) / rest.std(axis=1),
        "Z-norm": np.array([(d - centre[p]) / spread[p] for d, p in zip(d1, nearest, strict=True)]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a run trained with --hold-out-validation or --hold-out-people")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/datasets/kgbd/KinectGait-master.zip")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks", help="folder for the table (results/ beside it: the JSON)"
    )
    args = parser.parse_args()
    encoder = open_encoder(args.model)
    training = encoder.card["training"]
    if training.get("held_out") not in (HELD_OUT_WALKS, HELD_OUT_PEOPLE):
        raise SystemExit(f"{args.model}: not trained with --hold-out-validation or --hold-out-people")
    scored = validation_for(load_split(training["split"]), training["held_out"])
    data = load_protocol(args.data, scored, progress=False, f=encoder.f)
    probes, probe_people = walk_means(encoder, data.probe, data.probe_walk, data.probe_labels)
    gallery, gallery_people = walk_means(encoder, data.gallery, data.gallery_walk, data.gallery_labels)
    everyone = np.unique(np.concatenate([probe_people, gallery_people]))
    frr: dict[str, dict[float, list[float]]] = {}
    for repetition in range(REPETITIONS):
        strangers = np.random.default_rng([repetition, 5]).choice(everyone, len(everyone) // 3, replace=False)
        enrolled = ~np.isin(gallery_people, strangers)
        nearest, by_score = scores(probes, gallery[enrolled], gallery_people[enrolled])
        known = ~np.isin(probe_people, strangers)
        right = nearest == probe_people
        for name, score in by_score.items():
            for target in TARGETS:
                threshold = threshold_for_far(score[~known], target)
                rate = 1.0 - float(np.mean(right[known] & (score[known] <= threshold)))
                frr.setdefault(name, {}).setdefault(target, []).append(rate)
    out = args.out / "results" / "score_normalisation.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"model": str(args.model), "split": training["split"], "frr": frr}, indent=1) + "\n")
    lines = [
        "# Score normalisation against the raw distance (held-out validation walks)",
        "",
        f"`python benchmarks/score_normalisation.py {args.model}` (a TrackCon run on {training['split']} trained "
        "with `--hold-out-validation`). Method in the script's docstring. FRR in %, mean ± std over "
        f"{REPETITIONS} draws of a third of the people as strangers; lower is better.",
        "",
        "| score | " + " | ".join(f"FRR at FAR {100 * t:g} %" for t in TARGETS) + " |",
        "| --- | " + " | ".join("---:" for _ in TARGETS) + " |",
    ]
    for name, by_target in frr.items():
        cells = [mean_std([100 * v for v in by_target[t]]) for t in TARGETS]
        lines.append(f"| {name} | " + " | ".join(f"{m:.1f} ± {s:.1f}" for m, s in cells) + " |")
    lines += ["", "The node keeps the raw distance unless a normalisation does better here."]
    (args.out / "score_normalisation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
