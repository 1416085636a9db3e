"""The README's picture of the dashboard (docs/dashboard.png), from a real run: the demo's walks replayed by a
real node with a site threshold calibrated on them, a real ``gaitwatch dashboard``, headless Chromium.

    python tools/dashboard_screenshot.py [--out docs/dashboard.png]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.dashboard_site import chromium_page, demo_site  # noqa: E402

LINES = 8  # timeline lines shown before the picture is taken


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard.png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gaitwatch-dashboard-shot-") as scratch:
        folder = Path(scratch)
        with demo_site(folder, calibrated=True) as site, chromium_page(folder / "profile", 1400, 900) as page:
            page.goto(f"{site.url}#token={site.token}")
            page.wait_for_function(
                "() => document.querySelector('.track:not(.unknown) canvas.front') && "
                f"document.querySelectorAll('#timeline li').length >= {LINES}",
                timeout=300_000,
            )
            page.wait_for_timeout(500)  # a few more frames drawn: the skeleton mid-stride
            page.screenshot(path=str(args.out), full_page=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
