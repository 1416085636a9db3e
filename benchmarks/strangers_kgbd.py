"""Strangers on KGBD: a third of the test people never enrolled; walk-level FRR at a stranger-accept rate (FAR).

Per split seed S and model (one trained on S's training walks):

1. on the test walks, a seeded two thirds of the 164 people have their gallery walks enrolled in a real
   gallery (SQLite, one track mean per walk); every probe walk is matched as the node matches a track
   (``Gallery.search_tracks``). A stranger's probe is a false accept when any identity is within the
   threshold; an enrolled person's probe is a false reject unless its own identity is the nearest and
   within it (FRR = 1 - detection-and-identification rate);
2. thresholds for FAR 1 % and 0.1 % come from two places, neither of them the test strangers:
   - **label-free site calibration** (``stream.site_cli.site_report``, what ``gaitwatch calibrate site`` does):
     impostor distances between the enrolled identities only (different names, different people), a
     robust normal fit and the open-set rate for this many identities, or the enrolled people's own
     leave-one-out scores where stricter (below 1 / n, their quantile at 1 / n);
   - **labelled validation** (what ``gaitwatch calibrate threshold`` does): KGBD's validation split of
     the training walks, each validation probe scored without its own identity;
3. for reference only, the DET curve of the test itself (FRR at exactly that FAR on the test strangers),
   which no deployment can know.

``--adapt-steps N``: after enrolling, the model (a TrackCon run) is adapted with ``gaitwatch adapt --gallery
--steps N`` on that gallery (fine-tuned on the enrolled people's gallery walks, each person one class; no
probe walk and no stranger is seen), the gallery moved onto it with ``gaitwatch gallery reembed``, and
everything after uses the adapted encoder; the site threshold then comes from what ``adapt`` measured a
stranger to score (``engines.adapt_strangers``), as ``calibrate site`` does for such a model. ``--background
PATH...`` adds ``adapt --background PATH`` (one per path) to it: recordings of people who are none of KGBD's (the CMU
walks), never KGBD's own training walks, which hold every test person, stranger or enrolled.

One stranger probe is 1.8 % of 55: a measured FAR of 0 at the 1 % target is expected, and 0.1 % cannot
be measured per seed, only predicted. So FAR is also measured on every walk of the strangers (their two
gallery walks, which no one enrolled, beside their probe walk: 164-165 stranger walks, one of them 0.6 %), and the
test DET read there too; the enrolled people's FRR is the same probe walks' either way.

Writes benchmarks/results/strangers_kgbd.json, the DET plot benchmarks/results/strangers_kgbd.png and
benchmarks/strangers_kgbd.md.

    python benchmarks/strangers_kgbd.py --model trackcon=runs/trackcon-seed{seed} --model simmc=runs/simmc-seed{seed}
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from gallery_adaptation import adapt_on_gallery  # the product's own commands

from engines.checkpoint import load
from engines.plotting import pyplot
from engines.protocol import load_protocol, load_split, validation_split
from engines.report import mean_std
from engines.runtime.load import open_encoder
from sensors.errors import InputError
from stream.gallery.gallery import Gallery
from stream.kgbd_scores import enroll_gallery_walks, probe_scores, scores_for
from stream.site_cli import site_report
from stream.threshold import open_set_thresholds, threshold_for_far

ROOT = Path(__file__).resolve().parents[1]
TARGETS = (0.01, 0.001)
STRANGER_SHARE = 1 / 3


def run_seed(
    model: Path,
    data_path: Path,
    raw_split: str | None = None,
    adapt_steps: int = 0,
    background: list[Path] | None = None,
) -> dict:
    encoder = open_encoder(model)
    split = load_split(raw_split or encoder.card["training"]["split"])
    with tempfile.TemporaryDirectory() as scratch:
        test = load_protocol(data_path, split, progress=False, f=encoder.f)
        rng = np.random.default_rng([split.seed, 3])
        strangers_drawn = rng.choice(len(test.people), round(STRANGER_SHARE * len(test.people)), replace=False)
        known = set(test.people) - set(np.array(test.people)[strangers_drawn])
        gallery_path = Path(scratch) / "test.db"
        gallery = Gallery.create(gallery_path, encoder.card)
        enroll_gallery_walks(gallery, encoder, test, known, keep_windows=bool(adapt_steps))
        gallery.close()
        if adapt_steps:
            encoder = adapted_on_gallery(model, gallery_path, adapt_steps, Path(scratch) / "adapted", background)
        validation = load_protocol(data_path, validation_split(split), progress=False, f=encoder.f)
        labelled = open_set_thresholds(*scores_for(encoder, validation, Path(scratch) / "val").open_set(), TARGETS)
        site, _ = site_report(gallery_path, encoder, [], list(TARGETS))
        gallery = Gallery.open(gallery_path, encoder.card)
        scores = probe_scores(gallery, encoder, test)
        strangers_gallery = probe_scores(gallery, encoder, test, "gallery", set(test.people) - known)
        identities = len(gallery.identities())
        gallery.close()
    is_known = np.array([p in known for p in scores.people])
    identified, nearest_other = scores.open_set()  # a stranger's own identity is not enrolled: nearest of all
    strangers, known_ids = nearest_other[~is_known], identified[is_known]
    every_stranger_walk = np.concatenate([strangers, strangers_gallery.open_set()[1]])
    result = {
        "model": str(model),
        "method": encoder.card["method"],
        "split": split.seed,
        "enrolled_people": identities,
        "known_probes": int(is_known.sum()),
        "stranger_probes": int((~is_known).sum()),
        "stranger_walks": len(every_stranger_walk),
        "rank1_known": float(np.mean(np.isfinite(known_ids))),
        "impostor_fit": site["impostor_fit"],
        "impostor_pairs": site["impostor_pairs"],
    }
    for target, labelled_row, site_row in zip(TARGETS, labelled, site["matcher"]["thresholds"], strict=True):
        chosen = site_row["threshold"]
        exact = threshold_for_far(strangers, target)
        exact_every = threshold_for_far(every_stranger_walk, target)
        result[f"far{target:g}"] = {
            "site": _at(chosen, known_ids, strangers, every_stranger_walk),
            "labelled": _at(labelled_row["threshold"], known_ids, strangers, every_stranger_walk),
            "test_det": {"threshold": exact, "frr": _frr(known_ids, exact)},
            "test_det_every_walk": {"threshold": exact_every, "frr": _frr(known_ids, exact_every)},
        }
    sweep = np.unique(np.concatenate([every_stranger_walk, known_ids[np.isfinite(known_ids)]]))
    result["det"] = {
        "far": [float(np.mean(strangers <= t)) for t in sweep],
        "far_every_walk": [float(np.mean(every_stranger_walk <= t)) for t in sweep],
        "frr": [_frr(known_ids, t) for t in sweep],
    }
    print(json.dumps({k: v for k, v in result.items() if k != "det"}), flush=True)
    return result


def adapted_on_gallery(model: Path, gallery: Path, steps: int, out: Path, background: list[Path] | None):
    """The encoder after ``gaitwatch adapt --gallery [--background ...]`` from ``model`` (a TrackCon run, with its
    own seed) and ``gallery reembed``."""
    start = model / "model.pt" if model.is_dir() else model
    adapted, _ = adapt_on_gallery(start, gallery, out, steps, seed=load(start)["seed"], background=background)
    return open_encoder(adapted)


def _at(threshold: float, known_ids: np.ndarray, strangers: np.ndarray, every_stranger_walk: np.ndarray) -> dict:
    """FRR and FAR at one threshold; FAR on the stranger probe walks and on every walk of the strangers."""
    return {
        "threshold": threshold,
        "frr": _frr(known_ids, threshold),
        "far": float(np.mean(strangers <= threshold)),
        "far_every_walk": float(np.mean(every_stranger_walk <= threshold)),
    }


def _frr(known_ids: np.ndarray, threshold: float) -> float:
    return float(1.0 - np.mean(known_ids <= threshold))


def _cell(values: list[float]) -> str:
    m, s = mean_std([100 * v for v in values])
    return f"{m:.1f} ± {s:.1f}"


def _cell_if_measured(values: list[float | None]) -> str:
    """Rows from runs before a figure was measured say so instead of showing a number."""
    return "not measured" if None in values else _cell(values)


def write_report(results: dict[str, list[dict]], command: str, kept: list[str]) -> None:
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "strangers_kgbd.json").write_text(json.dumps(results, indent=1) + "\n")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    palette = plt.get_cmap("tab20")  # one colour per row, however many rows the file has
    for row, (name, runs) in enumerate(results.items()):
        colour = palette(row % palette.N)
        for number, run in enumerate(runs):
            every = "far_every_walk" in run["det"]  # runs before it was measured have the probe walks only
            far = run["det"]["far_every_walk" if every else "far"]
            floor = 0.5 / run["stranger_walks" if every else "stranger_probes"]
            ax.plot(np.maximum(far, floor), np.maximum(run["det"]["frr"], 0.5 / run["known_probes"]),
                    color=colour, alpha=0.7, linestyle="-" if every else ":",
                    label=name if number == 0 else None)  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("strangers named as someone (open-set FAR)")
    ax.set_ylabel("enrolled people not named right (FRR)")
    ax.set_title("KGBD walks, a third never enrolled (a line per split seed;\n"
                 "solid: every walk of a stranger, dotted: their probe walks only)", fontsize=9)  # fmt: skip
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "strangers_kgbd.png", dpi=100)
    plt.close(fig)
    lines = [
        "# Strangers on KGBD: a third of the test people never enrolled (walk level)",
        "",
        f"`{command}`"
        + (f" (rows {', '.join(kept)}: from earlier runs)" if kept else "")
        + ". Method in the script's docstring. FRR = enrolled people not named right (rejected or named",
        "as someone else); FAR = strangers named as someone. Mean ± std over split seeds, in %.",
        "Thresholds: *site* = label-free (`calibrate site`: impostor pairs among the enrolled identities only;",
        "after `adapt --gallery`, what its stand-in fine-tunes measured a stranger to score);",
        "*labelled* = KGBD validation walks (`calibrate threshold`); *test DET* = set on the test strangers",
        "themselves, for reference only. FAR is measured on the strangers' probe walks (one each, as the",
        "enrolled people's) and, where a row says, on *every* walk of theirs (their gallery walks too, none of",
        "them enrolled: three times the stranger walks, so a 1 % FAR can be told from none).",
        "",
        "| model | seeds | rank-1 (enrolled) | target FAR | site: FRR | site: FAR, probe walks | site: FAR, every "
        "stranger walk | labelled: FRR | labelled: FAR, probe walks | test DET on the probe walks: FRR at exactly "
        "this FAR | test DET on every stranger walk: FRR |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, runs in results.items():
        for target in TARGETS:
            key = f"far{target:g}"
            cells = [
                _cell([r[key]["site"]["frr"] for r in runs]),
                _cell([r[key]["site"]["far"] for r in runs]),
                _cell_if_measured([r[key]["site"].get("far_every_walk") for r in runs]),
                _cell([r[key]["labelled"]["frr"] for r in runs]),
                _cell([r[key]["labelled"]["far"] for r in runs]),
                _cell([r[key]["test_det"]["frr"] for r in runs]),
                _cell_if_measured([r[key].get("test_det_every_walk", {}).get("frr") for r in runs]),
            ]
            lines.append(
                f"| {name} | {len(runs)} | {_cell([r['rank1_known'] for r in runs])} | {100 * target:g} % | "
                + " | ".join(cells)
                + " |"
            )
    first = next(iter(results.values()))[0]
    every_walk = next((runs[0]["stranger_walks"] for runs in results.values() if "stranger_walks" in runs[0]), 0)
    lines += [
        "",
        f"{first['enrolled_people']} people enrolled, {first['known_probes']} enrolled and "
        f"{first['stranger_probes']} stranger probe walks per seed"
        + (f" ({every_walk} stranger walks in all)" if every_walk else "")
        + ". "
        "DET curves: `benchmarks/results/strangers_kgbd.png`.",
    ]
    (ROOT / "benchmarks" / "strangers_kgbd.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        action="append",
        required=True,
        help="NAME=PATH with {seed} for each of --seeds (e.g. trackcon=runs/trackcon-seed{seed}), one model, "
        "or NAME=raw (the raw baseline on each of --seeds)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument(
        "--adapt-steps",
        type=int,
        default=0,
        help="adapt each TrackCon model on the enrolled people's gallery walks first (as adapt --gallery --steps N)",
    )
    parser.add_argument(
        "--background",
        nargs="+",
        type=Path,
        default=[],
        help="with --adapt-steps: adapt --background PATH, one per path (people none of KGBD's, e.g. the CMU walks)",
    )
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/datasets/kgbd/KinectGait-master.zip")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the rows of models not named here from the results file as they are (measured by earlier runs)",
    )
    args = parser.parse_args()
    if args.background and not args.adapt_steps:
        raise SystemExit("--background is for the fine-tune: give --adapt-steps too")
    earlier = ROOT / "benchmarks" / "results" / "strangers_kgbd.json"
    results = json.loads(earlier.read_text()) if args.keep and earlier.exists() else {}
    for spec in args.model:
        name, _, pattern = spec.partition("=")
        if pattern == "raw":  # nothing trained: one run per split seed
            results[name] = [run_seed(Path("raw"), args.data, f"kgbd:{s}") for s in args.seeds]
            continue
        paths = [Path(pattern.format(seed=s)) for s in args.seeds] if "{seed}" in pattern else [Path(pattern)]
        results[name] = [  # each on its own split
            run_seed(path, args.data, adapt_steps=args.adapt_steps, background=args.background) for path in paths
        ]
    models = " ".join(f"--model {m}" for m in args.model)
    kept = sorted(set(results) - {spec.partition("=")[0] for spec in args.model})
    command = f"python benchmarks/strangers_kgbd.py {models} --seeds {' '.join(map(str, args.seeds))}"
    command += f" --adapt-steps {args.adapt_steps}" if args.adapt_steps else ""
    command += f" --background {' '.join(map(str, args.background))}" if args.background else ""
    write_report(results, command + (" --keep" if args.keep else ""), kept)


if __name__ == "__main__":
    try:
        main()
    except InputError as err:  # a wrong path or a bad file: one line, as score_normalisation.py says it
        raise SystemExit(str(err)) from None
