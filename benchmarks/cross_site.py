"""Sites the encoders never trained on: CMU motion capture and CASIA-B video through the pose model.

Everything the node would do, with labels used only to score at the end:

- **CMU** (../shared/datasets/cmu-mocap, 8 subjects): the first trial of each subject is enrolled,
  the other 18 trials are the probes (all enrolled people: closed set and FRR).
- **CASIA-B** (../shared/media/casia-b, side view, MediaPipe pose as the camera node runs it): 001-004
  enrolled from nm-01; probes 001 nm-02..06 (must be named 001) and 006 nm-01 (never enrolled: must be
  "unknown"); 001's bag and coat walks are reported apart.

Per site and model: each probe track's final decision (the mean of all its windows against the
nearest enrolled track mean, what the node decides when the track ends), with the threshold of
``gaitwatch calibrate site`` (label-free: the site's enrolled identities and its probe recordings,
unlabeled) at FAR 1 %. Adapted rows: ``gaitwatch adapt``'s recipe (engines.adapt) run on all of the
site's recordings, unlabeled, with the statistics only and with the suggested fine-tune (each track a class);
then the gallery enrolled again with the adapted model. And ``gaitwatch adapt --gallery`` itself: the
suggested fine-tune on the enrolled tracks alone, each enrolled person a class (the names the user gave at
enrollment; it also measures what a stranger scores, by stand-in fine-tunes), and the gallery moved onto it
with ``gallery reembed``.
Writes benchmarks/results/cross_site.json and benchmarks/cross_site.md (``--name NAME``: NAME.json, NAME.md).

    python benchmarks/cross_site.py --checkpoint runs/trackcon-seed0/model.pt --baseline engines/data/simmc-kgbd.onnx
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gallery_adaptation import adapt_on_gallery  # the product's own commands

from engines.adapt import SUGGESTED_STEPS, adapt_checkpoint
from engines.checkpoint import atomic_save, load
from engines.export.artifact import export_onnx_artifact
from engines.runtime.load import open_encoder
from stream.gallery.gallery import Gallery
from stream.gallery.store import Origin
from stream.inputs import site_tracks
from stream.site_cli import site_report
from stream.site_impostors import SeenTrack

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
FAR = 0.01


@dataclass
class Track:
    path: Path
    person: str
    windows: np.ndarray
    start: float
    end: float


def read_tracks(paths: list[Path], person_of, f: int = 6, rate: float = 30.0) -> list[Track]:
    return [
        Track(paths[number], person_of(paths[number]), part.windows, part.t_start[0], part.t_end[-1])
        for number, _, part in site_tracks(paths, f, rate, None, None)
    ]


def cmu_site() -> tuple[list[Track], list[Track]]:
    subjects = sorted(p for p in (SHARED / "datasets/cmu-mocap").iterdir() if p.is_dir())
    enroll, probe = [], []
    for subject in subjects:
        trials = sorted(subject.glob("*.amc"))
        enroll.append(trials[0])
        probe += trials[1:]

    def person(path: Path) -> str:
        return path.parent.name

    return read_tracks(enroll, person), read_tracks(probe, person)


def casia_site() -> tuple[list[Track], list[Track]]:
    clips = SHARED / "media/casia-b"
    enroll = [clips / f"{s}-nm-01-090.avi" for s in ("001", "002", "003", "004")]
    probe = [clips / f"001-nm-0{n}-090.avi" for n in range(2, 7)] + [clips / "006-nm-01-090.avi"]
    probe += [clips / f"001-{c}-0{n}-090.avi" for c in ("bg", "cl") for n in (1, 2)]

    def person(path: Path) -> str:
        return path.name[:3]

    return read_tracks(enroll, person), read_tracks(probe, person)


def enrolled_gallery(encoder, enroll: list[Track], scratch: Path, keep_windows: bool = False) -> Path:
    """A new gallery with ``enroll``'s tracks, one identity per person (``keep_windows``: to adapt on it)."""
    gallery_path = scratch / f"gallery-{time.monotonic_ns()}.db"
    gallery = Gallery.create(gallery_path, encoder.card)
    identity = {}
    for track in enroll:
        if track.person not in identity:
            identity[track.person] = gallery.add_identity(track.person)
        windows = track.windows if keep_windows else [None] * len(track.windows)
        origins = [Origin(str(track.path), window=w) for w in windows]
        gallery.enroll(identity[track.person], encoder.encode(track.windows), origins)
    gallery.close()
    return gallery_path


def decide(model: Path, gallery_path: Path, probe: list[Track]) -> dict:
    """Each probe track's final decision against the gallery at ``calibrate site``'s threshold."""
    encoder = open_encoder(model)
    means = [encoder.encode(t.windows).astype(np.float64).mean(axis=0) for t in probe]
    seen = [SeenTrack(n, "probe", t.start, t.end, m) for n, (t, m) in enumerate(zip(probe, means, strict=True))]
    report, _ = site_report(gallery_path, encoder, seen, [FAR])
    threshold = report["matcher"]["thresholds"][0]["threshold"]
    gallery = Gallery.open(gallery_path, encoder.card)
    enrolled = {i.name for i in gallery.identities()}
    rows = []
    for track, mean in zip(probe, means, strict=True):
        best = gallery.search_tracks(mean.astype(np.float32), k=1)[0]
        nearest = gallery.name_of(best.identity)
        rows.append(
            {
                "probe": track.path.name,
                "person": track.person,
                "enrolled": track.person in enrolled,
                "nearest": nearest,
                "distance": best.distance,
                "named": nearest if best.distance <= threshold else None,
            }
        )
    gallery.close()
    return {
        "model": str(model),
        "threshold": threshold,
        "impostor_fit": report["impostor_fit"],
        "impostor_pairs": report["impostor_pairs"],
        "tracks": rows,
    }


def summary(decisions: dict) -> dict:
    rows = decisions["tracks"]
    known = [r for r in rows if r["enrolled"]]
    strangers = [r for r in rows if not r["enrolled"]]
    return {
        "nearest_right": sum(r["nearest"] == r["person"] for r in known),
        "named_right": sum(r["named"] == r["person"] for r in known),
        "named_wrong": sum(r["named"] not in (None, r["person"]) for r in known),
        "unknown": sum(r["named"] is None for r in known),
        "known": len(known),
        "strangers_rejected": sum(r["named"] is None for r in strangers),
        "strangers": len(strangers),
    }


def adapted(checkpoint: Path, tracks: list[Track], scratch: Path, steps: int) -> tuple[Path, float]:
    """An artifact adapted on ``tracks``' recordings as ``gaitwatch adapt`` does: every track its own class."""
    windows = np.concatenate([t.windows for t in tracks])
    ids = np.repeat(np.arange(len(tracks)), [len(t.windows) for t in tracks])
    began = time.perf_counter()
    result = adapt_checkpoint(load(checkpoint), windows, ids, steps=steps, show_progress=False)
    out = scratch / f"adapted-{time.monotonic_ns()}"
    out.mkdir()
    atomic_save(result, out / "model.pt")
    export_onnx_artifact(out / "model.pt", out / "model.onnx")
    return out / "model.onnx", time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="a trackcon model.pt (adaptation starts here)")
    parser.add_argument("--baseline", type=Path, action="append", default=[], help="other models, scored as they are")
    parser.add_argument("--name", default="cross_site", help="of the outputs: benchmarks/NAME.md, results/NAME.json")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        for site, read in (("CMU mocap", cmu_site), ("CASIA-B via MediaPipe", casia_site)):
            enroll, probe = read()
            models = [(str(m), m, None, None) for m in [*args.baseline, args.checkpoint]]
            for steps, what in ((0, "statistics only, --steps 0"), (SUGGESTED_STEPS, f"--steps {SUGGESTED_STEPS}")):
                model, seconds = adapted(args.checkpoint, enroll + probe, Path(scratch), steps)
                models.append((f"{args.checkpoint} adapted ({what})", model, seconds, None))
            gallery = enrolled_gallery(open_encoder(args.checkpoint), enroll, Path(scratch), keep_windows=True)
            out = Path(scratch) / f"adapted-gallery-{time.monotonic_ns()}"
            model, seconds = adapt_on_gallery(args.checkpoint, gallery, out, SUGGESTED_STEPS)
            name = f"{args.checkpoint} adapted on the gallery (--gallery, --steps {SUGGESTED_STEPS})"
            models.append((name, model, seconds, gallery))
            for name, path, took, adapted_gallery in models:
                gallery = adapted_gallery or enrolled_gallery(open_encoder(path), enroll, Path(scratch))
                decisions = decide(path, gallery, probe)
                entry = {"site": site, "name": name, "adapt_seconds": took, **decisions, "summary": summary(decisions)}
                print(json.dumps({k: entry[k] for k in ("site", "name", "threshold", "summary")}), flush=True)
                results.append(entry)
    out = ROOT / "benchmarks" / "results"
    (out / f"{args.name}.json").write_text(json.dumps(results, indent=1) + "\n")
    lines = [
        "# Sites never trained on: CMU mocap and CASIA-B through the pose model",
        "",
        f"`python benchmarks/cross_site.py --checkpoint {args.checkpoint}"
        + "".join(f" --baseline {b}" for b in args.baseline)
        + ("" if args.name == "cross_site" else f" --name {args.name}")
        + "`. Protocol in the script's docstring. Threshold: `calibrate site` at FAR 1 % (label-free).",
        "",
        "| site | model | nearest is right | named right | named wrong | unknown (enrolled) | strangers rejected "
        "| threshold | adaptation time |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        s = r["summary"]
        took = f"{r['adapt_seconds']:.0f} s" if r["adapt_seconds"] else "—"
        lines.append(
            f"| {r['site']} | {r['name']} | {s['nearest_right']}/{s['known']} | {s['named_right']}/{s['known']} | "
            f"{s['named_wrong']} | {s['unknown']} | {s['strangers_rejected']}/{s['strangers']} | "
            f"{r['threshold']:.4f} | {took} |"
        )
    lines += ["", f"Per-track decisions and distances: `benchmarks/results/{args.name}.json`."]
    (ROOT / "benchmarks" / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
