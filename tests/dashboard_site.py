"""A real demo site for the browser test, the benchmark and the README's screenshot: the demo's gallery in a
file, its other walks replayed by a real ``gaitwatch replay`` process, and a real ``gaitwatch dashboard``
process reading it; headless Chromium from the distribution, driven by Playwright (nothing downloaded)."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import GAITWATCH

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass(frozen=True)
class Site:
    gallery: Path
    pub: str  # the node's event endpoint
    url: str  # the dashboard's page
    token: str  # its write token


def build_demo_files(folder: Path) -> tuple[Path, Path]:
    """(the demo's gallery, the demo's replayed walks as one recording) in ``folder``."""
    from engines.runtime.load import open_encoder
    from sensors.formats.gwrec import write_recording
    from sensors.recording import Recording
    from stream.node.demo import build_demo_gallery, demo_split

    enroll, walks = demo_split()
    gallery, recording = folder / "demo.db", folder / "walks.gwrec"
    build_demo_gallery(gallery, open_encoder(), enroll).close()
    write_recording(recording, Recording.concatenate(walks))
    return gallery, recording


def wait_for_line(process: subprocess.Popen, log: Path, pattern: str) -> re.Match:
    """The first match of ``pattern`` in what ``process`` writes to ``log``, once it is there; fails if the
    process ends first (with what it said)."""
    regex = re.compile(pattern)
    while True:
        found = regex.search(log.read_text(errors="replace")) if log.exists() else None
        if found:
            return found
        if process.poll() is not None:
            raise AssertionError(f"{process.args[:2]} ended ({process.returncode}): {log.read_text()[-2000:]}")
        time.sleep(0.1)


def started(args: list, log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen([str(GAITWATCH), *map(str, args)], stdout=out, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def dashboard_process(folder: Path, *args: str | Path) -> Iterator[tuple[str, str]]:
    """``gaitwatch dashboard ARGS --http 127.0.0.1:0 --token-file ...``: (its page's address, its write token)."""
    token_file = folder / "dashboard.token"
    log = folder / "dashboard.log"
    process = started(["dashboard", *args, "--http", "127.0.0.1:0", "--token-file", token_file], log)
    try:
        url = wait_for_line(process, log, r"dashboard: (http://\S+)").group(1)
        yield url, token_file.read_text().strip()
    finally:
        stop(process)


@contextmanager
def demo_site(folder: Path, speed: str = "1", calibrated: bool = False) -> Iterator[Site]:
    """The demo's walks replayed (looping) against its gallery, and a dashboard on both; ``calibrated``: with a
    site threshold (``gaitwatch calibrate site`` on the walks) for the node and the dashboard's DET plot."""
    gallery, recording = build_demo_files(folder)
    threshold: list = []
    if calibrated:
        ran = subprocess.run(
            [
                str(GAITWATCH),
                "calibrate",
                "site",
                str(recording),
                "--gallery",
                str(gallery),
                "--out",
                str(folder / "site"),
            ],
            capture_output=True,
            text=True,
        )
        assert ran.returncode == 0, ran.stderr
        threshold = ["--threshold", folder / "site" / "threshold.json"]
    node_log = folder / "node.log"
    replay = ["replay", recording, "--gallery", gallery, "--speed", speed, "--loop", "--pub", "tcp://127.0.0.1:0"]
    node = started([*replay, "--node-id", "demo", *threshold], node_log)
    try:
        pub = wait_for_line(node, node_log, r"publishing on (tcp://\S+)").group(1)
        with dashboard_process(folder, "--sub", pub, "--gallery", gallery, *threshold) as (url, token):
            yield Site(gallery, pub, url, token)
    finally:
        stop(node)


@contextmanager
def chromium_page(profile: Path, width: int = 1400, height: int = 1000):
    """A page of headless Chromium (the distribution's) with a fresh profile in ``profile``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": width, "height": height},
        )
        try:
            yield context.new_page()
        finally:
            context.close()
