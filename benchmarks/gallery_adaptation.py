"""Adapting a model on an enrolled gallery the way a user does: the product's own commands, for the benchmarks."""

from __future__ import annotations

import time
from pathlib import Path

from stream.cli import main as gaitwatch


def adapt_on_gallery(
    start: Path, gallery: Path, out: Path, steps: int, seed: int | None = None, background: list[Path] | None = None
) -> tuple[Path, float]:
    """``gaitwatch adapt --gallery GALLERY --from START --steps N [--background ...]`` (which also measures what a
    stranger scores, by stand-in fine-tunes), then ``gaitwatch gallery reembed``. The adapted ``model.onnx`` and
    the adaptation's seconds; the gallery has moved onto the adapted model."""
    adapt = ["adapt", "--gallery", str(gallery), "--from", str(start), "--out", str(out), "--steps", str(steps)]
    adapt += [arg for path in background or [] for arg in ("--background", str(path))]
    began = time.perf_counter()
    if gaitwatch(adapt + (["--seed", str(seed)] if seed is not None else [])):
        raise SystemExit(f"{start}: adaptation on {gallery} failed (above)")
    took = time.perf_counter() - began
    if gaitwatch(["gallery", "reembed", str(gallery), "--model", str(out / "model.onnx")]):
        raise SystemExit(f"re-embedding {gallery} onto {out / 'model.onnx'} failed (above)")
    return out / "model.onnx", took
