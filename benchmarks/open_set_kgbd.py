"""Open-set identification on KGBD: half the people enrolled, the other half strangers.

Per split seed S (model: the SimMC run trained on that split's training walks):
1. thresholds for a target share of strangers accepted (1 %, 10 %) are calibrated on the validation
   split of S (training walks only; each validation probe scored without its own identity);
2. on the test walks, a seeded half of the 164 people have their gallery walks enrolled in a real
   gallery (SQLite, per-walk track means); every probe walk is matched (``Gallery.search_tracks``):
   a known person's probe counts as detected and identified when its own identity is the nearest and
   within the threshold; a stranger's probe is a false accept when anyone is within it.
Reported: DIR and the measured stranger-accept rate at the calibrated thresholds, rank-1 of the known
probes, and (for reference only) the DIR at exactly 1 % / 10 % with thresholds set on the test
strangers themselves. Writes benchmarks/results/open_set_kgbd.json, .png and benchmarks/open_set_kgbd.md.

    python benchmarks/open_set_kgbd.py --runs runs --data KGBD.zip
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from engines.plotting import pyplot
from engines.protocol import load_protocol, load_split, validation_split
from engines.report import mean_std
from engines.runtime.load import open_encoder
from stream.kgbd_scores import scores_for
from stream.threshold import open_set_thresholds, threshold_for_far

ROOT = Path(__file__).resolve().parents[1]
TARGETS = (0.01, 0.1)


def run_seed(run: Path, data_path: Path, seed: int) -> dict:
    encoder = open_encoder(run)
    split = load_split(encoder.card["training"]["split"])
    with tempfile.TemporaryDirectory() as scratch:
        validation = load_protocol(data_path, validation_split(split), progress=False)
        calibration = open_set_thresholds(*scores_for(encoder, validation, Path(scratch) / "val").open_set(), TARGETS)
        test = load_protocol(data_path, split, progress=False)
        rng = np.random.default_rng(seed)
        known = set(np.array(test.people)[np.sort(rng.choice(len(test.people), len(test.people) // 2, False))])
        scores = scores_for(encoder, test, Path(scratch) / "test", people=known)
    is_known = np.array([p in known for p in scores.people])
    identified = np.array(
        [
            row.get(p, np.inf) if row.get(p, np.inf) <= min(row.values()) else np.inf
            for p, row in zip(scores.people, scores.distances, strict=True)
        ]
    )
    nearest = np.array([min(row.values()) for row in scores.distances])
    strangers, known_ids = nearest[~is_known], identified[is_known]
    result = {
        "run": str(run),
        "split": split.seed,
        "known_people": len(known),
        "known_probes": int(is_known.sum()),
        "stranger_probes": int((~is_known).sum()),
        "rank1_known": float(np.mean(np.isfinite(known_ids))),
    }
    for row in calibration:
        t = row["threshold"]
        result[f"far{row['target_far']:g}"] = {
            "threshold": t,
            "validation_dir": row["dir"],
            "dir": float(np.mean(known_ids <= t)),
            "stranger_accept": float(np.mean(strangers <= t)),
            "reference_dir_at_exact_far": float(np.mean(known_ids <= threshold_for_far(strangers, row["target_far"]))),
        }
    sweep = np.unique(np.concatenate([strangers, known_ids[np.isfinite(known_ids)]]))
    result["curve"] = {
        "far": [float(np.mean(strangers <= t)) for t in sweep],
        "dir": [float(np.mean(known_ids <= t)) for t in sweep],
    }
    print(json.dumps({k: v for k, v in result.items() if k != "curve"}), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=ROOT / "runs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/datasets/kgbd/KinectGait-master.zip")
    args = parser.parse_args()
    results = [run_seed(args.runs / f"simmc-seed{s}", args.data, s) for s in args.seeds]
    out = ROOT / "benchmarks" / "results"
    (out / "open_set_kgbd.json").write_text(json.dumps(results, indent=1) + "\n")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for r in results:
        ax.plot(r["curve"]["far"], r["curve"]["dir"], label=f"split seed {r['split']}", alpha=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("strangers accepted as someone (open-set FAR)")
    ax.set_ylabel("detection and identification rate")
    ax.set_title("SimMC, KGBD walks, half the people unknown")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "open_set_kgbd.png", dpi=100)

    def cell(values: list[float]) -> str:
        m, s = mean_std([100 * v for v in values])
        return f"{m:.1f} ± {s:.1f}"

    lines = [
        "# Open-set identification on KGBD (SimMC, walk level, half the people unknown)",
        "",
        f"`python benchmarks/open_set_kgbd.py --runs runs --seeds {' '.join(map(str, args.seeds))} --data KGBD.zip`",
        "(the SimMC runs of [reid_kgbd.md](reid_kgbd.md)). Method in the script's docstring. Thresholds come from",
        "the validation split (training walks); the test walks only measure. Mean ± std over split seeds, in %.",
        "",
        "| target stranger-accept rate | DIR at calibrated threshold | stranger-accept measured on test "
        "| DIR on validation | reference: DIR at exactly this rate on test |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for target in TARGETS:
        key = f"far{target:g}"
        lines.append(
            f"| {100 * target:g} % | "
            + " | ".join(
                cell([r[key][m] for r in results])
                for m in ("dir", "stranger_accept", "validation_dir", "reference_dir_at_exact_far")
            )
            + " |"
        )
    lines += [
        "",
        f"Rank-1 of the known people's probes (closed set among the enrolled half): "
        f"{cell([r['rank1_known'] for r in results])} %. "
        f"{results[0]['known_probes']} known and {results[0]['stranger_probes']} stranger probes per seed.",
        "DIR-vs-FAR curves: `benchmarks/results/open_set_kgbd.png`.",
    ]
    (ROOT / "benchmarks" / "open_set_kgbd.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
