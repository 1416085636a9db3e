"""Silhouettes in the RGB path on CASIA-B: what making them costs per image, as a share of pose estimation.

Every walk clip runs through ``RgbPoseSource`` (VIDEO mode, the shipped full model) three times: without
silhouettes (the default), with MediaPipe's segmentation (``--silhouettes mediapipe``: the pose call also
returns the mask, then it is thresholded and aligned) and with background subtraction learned from
``001-bkgrd-090.avi`` (``--silhouettes background``). Per clip and method: ms per image in the pose call, ms
per image making silhouettes (mask to aligned 64 x 44), and that as a share of the pose time without
silhouettes. What asking MediaPipe for the mask adds inside the pose call is a difference of two pose times,
which a busy machine's drift between runs would swamp; so it is measured paired: two landmarkers, with and
without the mask, take turns on every image, and the per-image differences are summed. Last, encoding: the shipped
SelfGait model (``engines/data/selfgait-casia.onnx``) through the node's backend (ONNX Runtime, one thread for
small batches) on a window of ``f`` (its card's: 20) real silhouettes; the node cuts a window every f/2 images, so
its cost per image is a window's over f/2 images.
Writes ``benchmarks/results/silhouette_speed.json`` and ``benchmarks/silhouette_speed.md``.

    python benchmarks/silhouette_speed.py [--casia ../shared/media/casia-b]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WALKS = [f"001-nm-0{n}" for n in range(1, 7)] + ["001-bg-01", "001-bg-02", "001-cl-01", "001-cl-02"]
WALKS += ["002-nm-01", "003-nm-01", "004-nm-01", "006-nm-01"]
METHODS = (None, "mediapipe", "background")


def run(path: Path, method: str | None, background) -> dict:
    from sensors.rgb import RgbPoseSource

    source = RgbPoseSource(str(path), live=False, silhouettes=method, background=background)
    made = sum(int(e.silhouettes.valid.sum()) for e in source.estimates() if e.silhouettes is not None)
    stats = source.stats
    return {
        "images": stats.estimated,
        "with_person": stats.with_bodies,
        "silhouettes": made,
        "pose_ms": 1e3 * stats.pose_s / stats.estimated,
        "silhouette_ms": 1e3 * stats.silhouette_s / stats.estimated,
    }


def paired_mask_cost(path: Path) -> tuple[float, float]:
    """ms per image of the pose call without the mask, and with it, the two taking turns on each image."""
    import time

    import cv2
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    from sensors.rgb import shipped_pose_model

    def landmarker(masks: bool):
        options = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(shipped_pose_model())),
            running_mode=vision.RunningMode.VIDEO,
            output_segmentation_masks=masks,
        )
        return vision.PoseLandmarker.create_from_options(options)

    plain, masked = landmarker(False), landmarker(True)
    capture, spent, n = cv2.VideoCapture(str(path)), [0.0, 0.0], 0
    while (read := capture.read())[0]:
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=cv2.cvtColor(read[1], cv2.COLOR_BGR2RGB))
        for i, model in sorted(enumerate((plain, masked)), key=lambda pair: (pair[0] + n) % 2):  # alternate first
            began = time.perf_counter()
            model.detect_for_video(image, 40 * n)
            spent[i] += time.perf_counter() - began
        n += 1
    plain.close()
    masked.close()
    return 1e3 * spent[0] / n, 1e3 * spent[1] / n


def encoding_ms(path: Path, repeats: int = 20) -> tuple[float, int]:
    """(median ms, f): the time to encode one window of ``f`` real silhouettes (from ``path``) with the shipped
    silhouette model, through the node's backend (``open_silhouette_encoder``: ONNX Runtime, one thread for small
    batches)."""
    import time

    import numpy as np

    from engines.runtime.load import open_silhouette_encoder
    from sensors.rgb import RgbPoseSource

    encoder = open_silhouette_encoder(None)
    source = RgbPoseSource(str(path), live=False, silhouettes="mediapipe")
    crops = [e.silhouettes.crops[0] for e in source.estimates() if e.silhouettes.valid[:1].any()]
    window = np.stack(crops[: encoder.f])[None]
    encoder.encode(window)
    spent = []
    for _ in range(repeats):
        began = time.perf_counter()
        encoder.encode(window)
        spent.append(time.perf_counter() - began)
    return 1e3 * float(np.median(spent)), encoder.f


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--casia", type=Path, default=ROOT.parent / "shared" / "media" / "casia-b")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "silhouette_speed.json")
    parser.add_argument("--table", type=Path, default=ROOT / "benchmarks" / "silhouette_speed.md")
    args = parser.parse_args()
    if not args.casia.exists():
        raise SystemExit(f"CASIA-B clips not found at {args.casia}")
    from sensors.silhouette_sources import BackgroundModel

    rows = []
    for walk in WALKS:
        path = args.casia / f"{walk}-090.avi"
        runs = {}
        for method in METHODS:
            background = BackgroundModel.from_clip(args.casia / "001-bkgrd-090.avi") if method == "background" else None
            runs[method or "none"] = run(path, method, background)
        base = runs["none"]["pose_ms"]
        plain_ms, masked_ms = paired_mask_cost(path)
        row = {"clip": walk, "runs": runs, "paired_pose_ms": {"without_mask": plain_ms, "with_mask": masked_ms}}
        row["mask_in_pose_share"] = (masked_ms - plain_ms) / plain_ms
        row["mediapipe_share"] = row["mask_in_pose_share"] + runs["mediapipe"]["silhouette_ms"] / base
        row["background_share"] = runs["background"]["silhouette_ms"] / base
        rows.append(row)
        print(walk, {m: round(100 * row[f"{m}_share"], 2) for m in ("mediapipe", "background")}, flush=True)

    def total(method: str, field: str) -> float:
        return sum(r["runs"][method][field] * r["runs"][method]["images"] for r in rows)

    base = total("none", "pose_ms")
    images = [r["runs"]["none"]["images"] for r in rows]
    paired = {
        k: sum(r["paired_pose_ms"][k] * n for r, n in zip(rows, images, strict=True)) for k in rows[0]["paired_pose_ms"]
    }
    summary = {
        "mediapipe_mask_in_pose_share": (paired["with_mask"] - paired["without_mask"]) / paired["without_mask"],
        "mediapipe_align_share": total("mediapipe", "silhouette_ms") / base,
        "background_share": total("background", "silhouette_ms") / base,
    }
    summary["mediapipe_share"] = summary["mediapipe_mask_in_pose_share"] + summary["mediapipe_align_share"]
    window_ms, f = encoding_ms(args.casia / "001-nm-01-090.avi")
    stride = max(1, f // 2)  # as the node's silhouette ring
    pose_ms = base / sum(r["runs"]["none"]["images"] for r in rows)
    summary["selfgait_window_ms"] = window_ms
    summary["selfgait_window"], summary["selfgait_stride"] = f, stride
    summary["selfgait_share"] = window_ms / stride / pose_ms
    report = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}, "clips": rows, **summary}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    lines = [
        "# Silhouettes in the RGB path: cost per image as a share of pose estimation",
        "",
        f"`python benchmarks/silhouette_speed.py` on {os.cpu_count()} CPUs (Python {platform.python_version()}), "
        "CASIA-B side-view clips (320x240, 25 fps), MediaPipe pose (shipped full model, VIDEO mode). *pose ms*: the "
        "pose call without silhouettes; *mediapipe*: the mask asked of the same pose call (the pose call's extra "
        "time) plus thresholding and aligning it to 64x44; *background*: OpenCV MOG2 learned from "
        "`001-bkgrd-090.avi` then frozen, the person's blobs in their landmark box, aligned. Shares are of the "
        "pose time without silhouettes; *mask in pose*: what asking for the mask adds to the pose call, measured "
        "paired (two landmarkers, with and without the mask, taking turns on each image), as a share of the "
        "pose call without it.",
        "",
        "| clip | images | with a person | pose ms | mask in pose (paired) | mediapipe: align ms | mediapipe share "
        "| background ms | background share | silhouettes (mp / bg) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        none, mp, bg = r["runs"]["none"], r["runs"]["mediapipe"], r["runs"]["background"]
        lines.append(
            f"| {r['clip']} | {none['images']} | {none['with_person']} | {none['pose_ms']:.2f} | "
            f"{100 * r['mask_in_pose_share']:+.1f} % | "
            f"{mp['silhouette_ms']:.3f} | {100 * r['mediapipe_share']:.1f} % | {bg['silhouette_ms']:.3f} | "
            f"{100 * r['background_share']:.1f} % | {mp['silhouettes']} / {bg['silhouettes']} |"
        )
    lines += [
        "",
        f"All clips: MediaPipe silhouettes cost {100 * summary['mediapipe_share']:.1f} % of pose time "
        f"({100 * summary['mediapipe_mask_in_pose_share']:.1f} % more inside the pose call, "
        f"{100 * summary['mediapipe_align_share']:.1f} % thresholding and aligning); background subtraction "
        f"{100 * summary['background_share']:.1f} %. Without `--silhouettes` neither runs.",
        "",
        f"Encoding: the shipped SelfGait model (0.18 M parameters, the node's ONNX Runtime backend, one thread) takes "
        f"{window_ms:.1f} ms for a window of {f} silhouettes; the node's one window every {stride} images costs "
        f"{100 * summary['selfgait_share']:.1f} % of pose time per image.",
        "",
    ]
    args.table.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
