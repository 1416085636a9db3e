"""The README's pictures, made from real runs of the installed ``gaitwatch`` (nothing drawn by hand).

    python tools/readme_images.py [--cmu ../shared/datasets/cmu-mocap]
                                  [--casia ../shared/media/casia-b] [--only listen floor preview site]

Writes into docs/images/:
- listen.png   the demo replayed (left: the end of what ``gaitwatch replay`` prints) beside ``gaitwatch listen``'s
               table during the run
- floor.png    ``gaitwatch calibrate floor --plot`` on the bundled demo walks
- preview.png  a frame of ``gaitwatch camera --preview``: CASIA-B 001's third walk, 5 people enrolled from other walks
- site.png     ``gaitwatch calibrate site`` on the CMU walks: the first trial of each subject enrolled, the others
               given as the site's unlabeled recordings (needs --cmu and the train extra)
"""

from __future__ import annotations

import argparse
import io
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "images"
GAITWATCH = Path(sys.executable).with_name("gaitwatch")


def run(*args: object) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(GAITWATCH), *map(str, args)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"gaitwatch {' '.join(map(str, args))} failed: {proc.stderr.strip()}")
    return proc


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def terminal_png(panes: list[tuple[str, str]], path: Path, width_in: float = 16.0) -> None:
    """Text panes (title, text) side by side, as a dark terminal would show them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = max(len(text.splitlines()) for _, text in panes) + 2
    fig = plt.figure(figsize=(width_in, 0.17 * rows + 0.4), facecolor="#1e1e1e")
    for k, (title, text) in enumerate(panes):
        x = k / len(panes) + 0.005
        fig.text(x, 0.99, title, color="#8ab4f8", family="DejaVu Sans Mono", fontsize=8.5, va="top")
        fig.text(x, 0.99 - 1.6 / rows, text, color="#e8e8e8", family="DejaVu Sans Mono", fontsize=7.5, va="top")
    fig.savefig(path, dpi=110, facecolor=fig.get_facecolor())
    plt.close(fig)


def listen_image() -> None:
    from rich.console import Console

    from stream.events import IDENTITY, TRACK_END
    from stream.node.live_table import _Table
    from stream.subscriber import Subscriber

    endpoint = f"tcp://127.0.0.1:{free_port()}"
    node = subprocess.Popen(
        [str(GAITWATCH), "replay", "--speed", "2", "--pub", endpoint], stdout=subprocess.PIPE, text=True
    )
    table = _Table(endpoint)
    table.console = Console(width=96, height=34, record=True, file=io.StringIO())
    ended = 0
    with Subscriber(endpoint, timeout_s=60) as events:
        for event in events:
            table.show(event, events)
            ended += event.topic == TRACK_END
            if ended >= 8 and event.topic == IDENTITY:  # someone is being named right now
                break
        table.console.print(table._render(events))
    printed, _ = node.communicate(timeout=300)  # the whole run, to its summary
    wrapped = [part for line in printed.splitlines() for part in textwrap.wrap(line, 100, subsequent_indent="  ")]
    replay = "\n".join(wrapped[-34:])
    terminal_png(
        [("$ gaitwatch replay", replay), (f"$ gaitwatch listen {endpoint}", table.console.export_text())],
        OUT / "listen.png",
    )


def floor_image() -> None:
    from sensors.demo import demo_recording_path

    with tempfile.TemporaryDirectory() as scratch:
        calibration = Path(scratch) / "sensors.json"
        run("calibrate", "floor", demo_recording_path(), "--calibration", calibration, "--plot", OUT / "floor.png")


def preview_image(casia: Path) -> None:
    import cv2

    with tempfile.TemporaryDirectory() as scratch:
        gallery, video = Path(scratch) / "people.db", Path(scratch) / "preview.mp4"
        run("gallery", "create", gallery)  # enrolled as tests/test_rgb.py enrolls them
        run("gallery", "enroll", gallery, casia / "001-nm-01-090.avi", casia / "001-nm-02-090.avi", "--name", "001")
        for person in ("002", "003", "004", "006"):
            run("gallery", "enroll", gallery, casia / f"{person}-nm-01-090.avi", "--name", person)
        run("camera", "--source", casia / "001-nm-03-090.avi", "--gallery", gallery, "--fov", "60",
            "--preview", video, "--pub", "tcp://127.0.0.1:0", "--quiet")  # fmt: skip
        capture = cv2.VideoCapture(str(video))
        frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        capture.set(cv2.CAP_PROP_POS_FRAMES, int(frames * 0.6))  # late enough that the walker has been named
        ok, image = capture.read()
        capture.release()
        if not ok:
            raise SystemExit(f"{video}: no frame to show")
        cv2.imwrite(str(OUT / "preview.png"), image)


def site_image(cmu: Path) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        gallery, trials = Path(scratch) / "people.db", [sorted(s.glob("*.amc")) for s in sorted(cmu.iterdir())]
        run("gallery", "create", gallery)
        run("gallery", "enroll", gallery, *[t[0] for t in trials if t], "--label", "subject")
        others = [trial for t in trials for trial in t[1:]]
        run("calibrate", "site", *others, "--gallery", gallery, "--out", Path(scratch) / "site")
        (OUT / "site.png").write_bytes((Path(scratch) / "site" / "site.png").read_bytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cmu", type=Path, help="the folder of CMU subjects, for site.png")
    parser.add_argument("--casia", type=Path, help="the folder of CASIA-B clips, for preview.png")
    parser.add_argument("--only", nargs="+", choices=["listen", "floor", "preview", "site"], help="default: all")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    wanted = set(args.only or ["listen", "floor", "preview", "site"])
    jobs = {
        "listen": listen_image,
        "floor": floor_image,
        "preview": lambda: preview_image(args.casia) if args.casia else print("preview: skipped (no --casia)"),
        "site": lambda: site_image(args.cmu) if args.cmu else print("site: skipped (no --cmu)"),
    }
    for name in ("listen", "floor", "preview", "site"):
        if name in wanted:
            began = time.monotonic()
            jobs[name]()
            print(f"{name}: done in {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    main()
