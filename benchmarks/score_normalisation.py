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
  other identities' walks);
- centred: the distance after the enrolled walk means' mean is subtracted from every mean and each is
  scaled to unit length (centring reduces hubs, Suzuki et al. 2013);
- CSLS k: d minus half the identity's mean distance to its k nearest other identities, so that an identity
  in a crowded part of the space is judged more strictly (cross-domain similarity local scaling, Conneau et
  al. 2018, on the gallery side only: a live probe comes alone); the nearest identity by that score;
- whitened e: the distance after centring and PCA-whitening with the statistics of the run's own training walks'
  means (no labels; eigenvalues floored at e x the largest, ``engines.models.whiten``) and scaling to unit
  length (speaker verification's length normalisation, Garcia-Romero and Espy-Wilson 2011);
- shape-fused w (and "whitened 1e-4 + shape w"): the walk-mean distance (raw, or whitened 1e-4) divided by its
  median between two enrolled people's walks, plus w x the body-shape distance divided by its own such median.
  A walk's body shape is the median over its frames of the 19 bone lengths, z-scored with the enrolled walks'
  own mean and spread (fitted on the site, no labels: bone lengths differ between sensors); an identity's
  distance is its nearest enrolled walk's;
- site's choice: whitened 1e-4 where a label-free check on the enrolled people prefers it, else raw. The check:
  the share of enrolled walks whose two halves (in time) lie closer than the 1 % quantile of the distances
  between walks of two different enrolled people (one track is one person; two names are two people); the
  transform with the larger share wins, raw on a tie.

``--adapt-steps N``: per draw, the encoder (a TrackCon run) is first adapted on the enrolled people's gallery
walks, each person one class, as ``gaitwatch adapt --gallery --steps N`` does (``engines.adapt``); no probe
walk and no stranger is seen. ``--background training`` (or recordings/datasets) adds background tracks to that
fine-tune as ``gaitwatch adapt --background`` does: the run's own training tracks, which on a
``--hold-out-people`` run are other people than the validation's (at most 64 evenly spaced windows of each, as
``adapt`` keeps), or the tracks of the paths given.

Reported per score: walk top-1 of the enrolled probes (by that score's nearest identity) and FRR (enrolled
probes not named right) at the threshold that accepts exactly 1 % and 5 % of the stranger probes, mean ± std
over the draws (5; ``--draws D``: D). Writes benchmarks/results/score_normalisation.json and
benchmarks/score_normalisation.md (``--out DIR``: DIR/score_normalisation.md and DIR/results/ instead).

    python benchmarks/score_normalisation.py runs/trackcon-holdout-seed0
"""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from engines.adapt import adapt_checkpoint
from engines.checkpoint import encoder_from, load
from engines.metrics import pool_by_group
from engines.models import embed_in_batches
from engines.models.whiten import Whitening
from engines.protocol import HELD_OUT_PEOPLE, HELD_OUT_WALKS, load_protocol, load_split, validation_for
from engines.report import mean_std
from engines.runtime.load import open_encoder
from sensors.errors import InputError
from sensors.layouts import CANONICAL, bone_lengths
from sensors.progress import progress
from stream.adapt_cli import background_windows, evenly_spaced
from stream.threshold import threshold_for_far

ROOT = Path(__file__).resolve().parents[1]
TARGETS = (0.01, 0.05)
REPETITIONS = 5
CSLS_NEIGHBOURS = (3, 10)
WHITENING_FLOORS = (1e-3, 1e-4)
SHAPE_WEIGHTS = (0.25, 0.5)
SITE_CHOICE = ("site's choice", "whitened 0.0001")  # (its row, the transform the check may choose over raw)
HOLD_OUT_FLAG = {HELD_OUT_WALKS: "--hold-out-validation", HELD_OUT_PEOPLE: "--hold-out-people"}


def walk_means(embed: Callable[[np.ndarray], np.ndarray], windows: np.ndarray, walks: np.ndarray, labels: np.ndarray):
    return _pooled(embed(windows).astype(np.float64), walks, labels)


def _pooled(embedded: np.ndarray, walks: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each walk's mean embedding and its person."""
    pooled, ids = pool_by_group(embedded, walks)
    label_of = dict(zip(walks.tolist(), labels.tolist(), strict=True))
    return pooled, np.array([label_of[i] for i in ids.tolist()])


def identity_distances(probes: np.ndarray, gallery: np.ndarray, owners: np.ndarray, people: np.ndarray) -> np.ndarray:
    """[probe, identity]: the distance to the identity's nearest enrolled walk mean."""
    return _per_identity(np.linalg.norm(probes[:, None] - gallery[None], axis=2), owners, people)


Transform = Callable[[np.ndarray], np.ndarray]


def scores(
    probes: np.ndarray,
    gallery: np.ndarray,
    owners: np.ndarray,
    transforms: dict[str, Transform] | None = None,
    shapes: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per score: (the nearest identity by that score per probe, its score); ``transforms``: more scores, each
    the raw distance after its transform of the walk means; ``shapes`` (the probe and gallery walks' body shapes):
    the shape-fused scores, on the raw distance and on ``SITE_CHOICE``'s transform where ``transforms`` has it."""
    people = np.unique(owners)
    per_identity = identity_distances(probes, gallery, owners, people)
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
    by_score = {
        "raw": (nearest, d1),
        "ratio": (nearest, d1 / d2),
        "T-norm": (nearest, (d1 - rest.mean(axis=1)) / rest.std(axis=1)),
        "Z-norm": (nearest, np.array([(d - centre[p]) / spread[p] for d, p in zip(d1, nearest, strict=True)])),
        "centred": _nearest(people, identity_distances(*_centred(probes, gallery), owners, people)),
    }
    neighbours = np.sort(_between_identities(gallery, owners, people), axis=1)
    for k in CSLS_NEIGHBOURS:
        crowding = neighbours[:, : min(k, len(people) - 1)].mean(axis=1)
        by_score[f"CSLS {k}"] = _nearest(people, per_identity - 0.5 * crowding[None])
    for name, transform in (transforms or {}).items():
        by_score[name] = _nearest(people, identity_distances(transform(probes), transform(gallery), owners, people))
    if shapes is not None:
        bases = {"shape-fused": _unchanged}
        if SITE_CHOICE[1] in (transforms or {}):
            bases[f"{SITE_CHOICE[1]} + shape"] = transforms[SITE_CHOICE[1]]
        for name, transform in bases.items():
            for weight in SHAPE_WEIGHTS:
                fused = shape_fused(transform(probes), transform(gallery), owners, *shapes, weight)
                by_score[f"{name} {weight:g}"] = _nearest(people, _per_identity(fused, owners, people))
    return by_score


def walk_shapes(windows: np.ndarray, walks: np.ndarray) -> np.ndarray:
    """Each walk's body shape (walks ascending, as ``pool_by_group`` orders them): the median over its frames of
    the canonical skeleton's bone lengths."""
    bones = bone_lengths(windows, CANONICAL)
    return np.stack([np.median(bones[walks == walk].reshape(-1, bones.shape[-1]), axis=0) for walk in np.unique(walks)])


def shape_fused(probes, gallery, owners, probe_shapes, gallery_shapes, weight: float) -> np.ndarray:
    """[probe walk, gallery walk]: the walk-mean distance plus ``weight`` x the body-shape distance, each divided
    by its median between two enrolled people's walks; shapes z-scored with the enrolled walks' statistics."""
    centre, spread = gallery_shapes.mean(axis=0), gallery_shapes.std(axis=0) + 1e-9
    z_probes, z_gallery = (probe_shapes - centre) / spread, (gallery_shapes - centre) / spread
    different = owners[:, None] != owners[None]
    total = np.zeros((len(probes), len(gallery)))
    for share, (a, b) in ((1.0, (probes, gallery)), (weight, (z_probes, z_gallery))):
        scale = np.median(np.linalg.norm(b[:, None] - b[None], axis=2)[different])
        total += share * np.linalg.norm(a[:, None] - b[None], axis=2) / scale
    return total


def _per_identity(per_walk: np.ndarray, owners: np.ndarray, people: np.ndarray) -> np.ndarray:
    return np.stack([per_walk[:, owners == p].min(axis=1) for p in people], axis=1)


def whitenings(training_means: np.ndarray) -> dict[str, Transform]:
    """Per floor e, "whitened e": centre, whiten (fitted on ``training_means``), scale to unit length."""
    out = {}
    for floor in WHITENING_FLOORS:
        whitening = Whitening(training_means.shape[1], floor)
        whitening.fit(torch.from_numpy(training_means))
        out[f"whitened {floor:g}"] = functools.partial(_whitened, whitening)
    return out


def half_walk_means(embedded: np.ndarray, walks: np.ndarray, labels: np.ndarray):
    """Per walk of 4 or more windows: the means of its first and its second half (in time), and its person."""
    first, second, people = [], [], []
    for walk in np.unique(walks):
        rows = np.flatnonzero(walks == walk)  # a walk's windows are stored in time order
        if len(rows) >= 4:
            half = len(rows) // 2
            first.append(embedded[rows[:half]].mean(axis=0))
            second.append(embedded[rows[half:]].mean(axis=0))
            people.append(labels[rows[0]])
    return np.array(first), np.array(second), np.array(people)


def half_walk_check(transform: Transform, halves: tuple, gallery: np.ndarray, owners: np.ndarray) -> float:
    """Label-free: the share of enrolled walks whose halves lie closer than 99 % of the pairs of two enrolled
    people's walks."""
    first, second, people = halves
    mine = np.isin(people, owners)
    genuine = np.linalg.norm(transform(first[mine]) - transform(second[mine]), axis=1)
    walks = transform(gallery)
    impostor = np.linalg.norm(walks[:, None] - walks[None], axis=2)[owners[:, None] != owners[None]]
    return float(np.mean(genuine < np.quantile(impostor, 0.01)))


def site_choice(by_score: dict, transforms: dict[str, Transform], halves: tuple, gallery, owners) -> tuple:
    """The ``SITE_CHOICE`` candidate's score where the half-walk check prefers its transform to none, else raw."""
    candidate = SITE_CHOICE[1]
    raw, transformed = (half_walk_check(t, halves, gallery, owners) for t in (_unchanged, transforms[candidate]))
    return by_score[candidate if transformed > raw else "raw"]


def _unchanged(means: np.ndarray) -> np.ndarray:
    return means


def _whitened(whitening: Whitening, means: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        out = whitening(torch.from_numpy(means).float()).double().numpy()
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def _nearest(people: np.ndarray, per_identity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return people[per_identity.argmin(axis=1)], per_identity.min(axis=1)


def _centred(probes: np.ndarray, gallery: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    centre = gallery.mean(axis=0)
    return tuple(
        shifted / np.linalg.norm(shifted, axis=1, keepdims=True) for shifted in (probes - centre, gallery - centre)
    )


def _between_identities(gallery: np.ndarray, owners: np.ndarray, people: np.ndarray) -> np.ndarray:
    """[identity, identity]: the nearest pair of their walk means; the diagonal infinite."""
    per_walk = identity_distances(gallery, gallery, owners, people)
    between = np.stack([per_walk[owners == p].min(axis=0) for p in people])
    np.fill_diagonal(between, np.inf)
    return between


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a run trained with --hold-out-validation or --hold-out-people")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/datasets/kgbd/KinectGait-master.zip")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks", help="folder for the table (results/ beside it: the JSON)"
    )
    parser.add_argument("--draws", type=int, default=REPETITIONS, help="draws of a third of the people as strangers")
    parser.add_argument("--adapt-steps", type=int, default=0, help="adapt on the enrolled people first (--gallery)")
    parser.add_argument(
        "--background",
        nargs="+",
        default=[],
        help="with --adapt-steps: background tracks in that fine-tune: 'training' (the run's own training tracks) "
        "or recordings/datasets (as adapt --background)",
    )
    args = parser.parse_args()
    if args.background and not args.adapt_steps:
        raise SystemExit("--background is for the fine-tune: give --adapt-steps too")
    try:
        encoder = open_encoder(args.model)
    except InputError as err:
        raise SystemExit(str(err)) from None
    training = encoder.card["training"]
    if training.get("held_out") not in (HELD_OUT_WALKS, HELD_OUT_PEOPLE):
        raise SystemExit(f"{args.model}: not trained with --hold-out-validation or --hold-out-people")
    split = load_split(training["split"])
    data = load_protocol(args.data, validation_for(split, training["held_out"]), progress=False, f=encoder.f)
    trained_on = load_protocol(args.data, split, progress=False, f=encoder.f).training_tracks(training["held_out"])
    everyone = np.unique(np.concatenate([data.probe_labels, data.gallery_labels]))
    shapes = walk_shapes(data.probe, data.probe_walk), walk_shapes(data.gallery, data.gallery_walk)
    start = load(_checkpoint_path(args.model)) if args.adapt_steps else None
    background = background_of(args.background, trained_on, start) if args.background else None
    # the same every draw unless the encoder is adapted per draw
    means, transforms = _all_walk_means(encoder.encode, data), _whitenings_of(encoder.encode, trained_on)
    measured: dict[str, dict[str, list[float]]] = {}
    for repetition in progress(range(args.draws), "Draws of strangers", total=args.draws):
        strangers = np.random.default_rng([repetition, 5]).choice(everyone, len(everyone) // 3, replace=False)
        if start is not None:
            adapted = adapted_on_enrolled(args, start, data, strangers, repetition, background)
            means, transforms = _all_walk_means(adapted, data), _whitenings_of(adapted, trained_on)
        (probes, probe_people), (gallery, gallery_people), halves = means
        enrolled = ~np.isin(gallery_people, strangers)
        known = ~np.isin(probe_people, strangers)
        gallery, gallery_people = gallery[enrolled], gallery_people[enrolled]
        by_score = scores(probes, gallery, gallery_people, transforms, (shapes[0], shapes[1][enrolled]))
        by_score[SITE_CHOICE[0]] = site_choice(by_score, transforms, halves, gallery, gallery_people)
        for name, (nearest, score) in by_score.items():
            right = nearest == probe_people
            row = measured.setdefault(name, {"top1": [], **{f"frr{t:g}": [] for t in TARGETS}})
            row["top1"].append(float(np.mean(right[known])))
            for target in TARGETS:
                threshold = threshold_for_far(score[~known], target)
                row[f"frr{target:g}"].append(1.0 - float(np.mean(right[known] & (score[known] <= threshold))))
    write_report(args, training, measured)


def adapted_on_enrolled(
    args: argparse.Namespace, start: dict, data, strangers: np.ndarray, draw: int, background: tuple | None
) -> Callable:
    """The encoder adapted on the enrolled people's gallery walks (each person a class), as a function of windows."""
    site = ~np.isin(data.gallery_labels, strangers)
    checkpoint = adapt_checkpoint(
        start,
        data.gallery[site],
        data.gallery_labels[site],
        steps=args.adapt_steps,
        seed=draw,
        show_progress=False,
        background=background,
    )
    return torch_embedder(encoder_from(checkpoint, _checkpoint_path(args.model)))


def background_of(sources: list[str], trained_on: tuple, start: dict) -> tuple[np.ndarray, np.ndarray]:
    """The fine-tune's background: the run's own training tracks (``training``) or the tracks of the paths, at most
    ``MAX_WINDOWS_PER_IDENTITY`` evenly spaced windows of each, as ``adapt --background`` keeps them."""
    if sources != ["training"]:
        return background_windows([Path(s) for s in sources], start["f"], float(start.get("rate_hz", 30.0)))
    windows, tracks = trained_on
    kept = []
    for track in np.unique(tracks):
        members = np.flatnonzero(tracks == track)
        kept.append(members[evenly_spaced(len(members))])
    chosen = np.concatenate(kept)
    return windows[chosen], tracks[chosen]


def torch_embedder(encoder: torch.nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    """A torch encoder as a function of windows, as ``walk_means`` takes it."""
    return lambda windows: embed_in_batches(encoder, torch.from_numpy(windows)).numpy()


def _whitenings_of(embed: Callable[[np.ndarray], np.ndarray], trained_on: tuple[np.ndarray, np.ndarray]):
    means, _ = pool_by_group(embed(trained_on[0]).astype(np.float64), trained_on[1])
    return whitenings(means)


def _checkpoint_path(model: Path) -> Path:
    return model / "model.pt" if model.is_dir() else model


def _all_walk_means(embed: Callable[[np.ndarray], np.ndarray], data) -> tuple[tuple, tuple, tuple]:
    """(probe walk means and people, gallery walk means and people, the gallery walks' half means): the gallery
    windows embedded once for both."""
    gallery = embed(data.gallery).astype(np.float64)
    return (
        walk_means(embed, data.probe, data.probe_walk, data.probe_labels),
        _pooled(gallery, data.gallery_walk, data.gallery_labels),
        half_walk_means(gallery, data.gallery_walk, data.gallery_labels),
    )


def write_report(args: argparse.Namespace, training: dict, measured: dict[str, dict[str, list[float]]]) -> None:
    out = args.out / "results" / "score_normalisation.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {"model": str(args.model), "split": training["split"], "adapt_steps": args.adapt_steps}
    record["background"] = args.background
    out.write_text(json.dumps({**record, "draws": args.draws, "measured": measured}, indent=1) + "\n")
    background = " ".join(args.background)
    command = f"python benchmarks/score_normalisation.py {args.model}" + "".join(
        f" --{flag} {value}"
        for flag, value in (("draws", args.draws), ("adapt-steps", args.adapt_steps), ("background", background))
        if value
    )
    adapted = (
        f", adapted per draw on the enrolled people (`--adapt-steps {args.adapt_steps}`"
        + (f", background `{background}`" if background else "")
        + ")"
        if args.adapt_steps
        else ""
    )
    lines = [
        "# Score normalisation against the raw distance (held-out validation walks)",
        "",
        f"`{command}` (a TrackCon run on {training['split']} trained with `{HOLD_OUT_FLAG[training['held_out']]}`"
        f"{adapted}). "
        f"Method in the script's docstring. In %, mean ± std over {args.draws} draws of a third of the people "
        "as strangers; FRR: enrolled probe walks not named right at the threshold that names that share of the "
        "strangers; lower is better.",
        "",
        "| score | walk top-1 (enrolled) | " + " | ".join(f"FRR at FAR {100 * t:g} %" for t in TARGETS) + " |",
        "| --- | ---: | " + " | ".join("---:" for _ in TARGETS) + " |",
    ]
    for name, row in measured.items():
        cells = [mean_std([100 * v for v in row[key]]) for key in ("top1", *(f"frr{t:g}" for t in TARGETS))]
        lines.append(f"| {name} | " + " | ".join(f"{m:.1f} ± {s:.1f}" for m, s in cells) + " |")
    lines += ["", "The node keeps the raw distance unless a normalisation does better here."]
    (args.out / "score_normalisation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
