"""Read speed of gaitwatch's own format vs KGBD text vs CMU ASF/AMC, in body-frames per second.

All three read the same kind of data (real walks) in one run on this machine:
the own-format file holds every KGBD walk, converted. Writes
``benchmarks/results/read_speed.json`` and ``benchmarks/read_speed.md``.

    python benchmarks/read_speed.py
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sensors.formats.cmu import read_amc
from sensors.formats.gwrec import read_gwrec, write_recording
from sensors.formats.kgbd import KgbdDataset
from sensors.recording import Recording

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
REPEATS = 3


def best_of(fn, repeats: int = REPEATS) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    kgbd_zip = SHARED / "kgbd" / "KinectGait-master.zip"
    cmu_dir = SHARED / "cmu-mocap"
    if not kgbd_zip.is_file() or not cmu_dir.is_dir():
        sys.exit(f"benchmark needs {kgbd_zip} and {cmu_dir}")
    rows = []

    dataset = KgbdDataset(kgbd_zip)
    seconds, walks = best_of(lambda: list(dataset), repeats=1)
    body_frames = sum(w.num_body_frames for w in walks)
    rows.append(("KGBD text (zip, 822 walks)", body_frames, seconds))

    amc_files = sorted(cmu_dir.glob("*/*.amc"))
    seconds, trials = best_of(lambda: [read_amc(p) for p in amc_files])
    rows.append(
        (f"CMU ASF/AMC ({len(amc_files)} trials, FK included)", sum(t.num_body_frames for t in trials), seconds)
    )

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "kgbd.gwrec"
        write_recording(path, Recording.concatenate(walks))
        size_mb = os.path.getsize(path) / 1e6
        seconds, rec = best_of(lambda: read_gwrec(path))
        rows.append((f"gaitwatch .gwrec (all KGBD walks, {size_mb:.0f} MB)", rec.num_body_frames, seconds))
        seconds, count = best_of(lambda: sum(1 for _ in rec.frames()))
        rows.append(("  .gwrec in memory -> Frame objects", count, seconds))

    results = {
        "benchmark": "read_speed",
        "command": "python benchmarks/read_speed.py",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "repeats": f"best of {REPEATS} (KGBD text: 1 pass)",
        "rows": [
            {"reader": name, "body_frames": n, "seconds": round(s, 4), "body_frames_per_s": round(n / s)}
            for name, n, s in rows
        ],
    }
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "read_speed.json").write_text(json.dumps(results, indent=2) + "\n")
    base = results["rows"][0]["body_frames_per_s"]
    table = [
        "# Read speed: body-frames per second",
        "",
        f"Command: `{results['command']}` — Python {results['machine']['python']}, "
        f"{results['machine']['cpus']} CPUs, {results['repeats']}.",
        "",
        "| reader | body-frames | seconds | body-frames/s | vs KGBD text |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for row in results["rows"]:
        table.append(
            f"| {row['reader']} | {row['body_frames']:,} | {row['seconds']:.3f} | "
            f"{row['body_frames_per_s']:,} | {row['body_frames_per_s'] / base:.1f}x |"
        )
    (ROOT / "benchmarks" / "read_speed.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
