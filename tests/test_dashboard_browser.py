"""The dashboard in a real browser (headless Chromium from the distribution, driven by Playwright) against a
real node replaying the demo: people named as they walk, the timeline growing, a rename made on the page
reaching the node's next events and ``gaitwatch gallery list``, and a screenshot kept."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.dashboard_site import CHROMIUM, chromium_page, demo_site
from tests.helpers import gaitwatch

pytestmark = pytest.mark.slow
WAIT_MS = 180_000  # a bound on waiting for a condition on a loaded machine, not a speed requirement
NAMED = "() => [...document.querySelectorAll('.track:not(.unknown) .name')].some(n => n.textContent.startsWith('CMU'))"


def _skip_without_a_browser() -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium chromium-driver)")
    pytest.importorskip("playwright", reason="playwright is not installed (the dev extra)")
    pytest.importorskip("starlette", reason="the dashboard extra is not installed")


def _renamed_in_an_event(pub: str, name: str) -> bool:
    """Whether the node publishes an identity event naming ``name`` (read from a subscriber of its own)."""
    from stream.events import IDENTITY
    from stream.subscriber import Subscriber

    with Subscriber(pub, topics=[IDENTITY], timeout_s=120) as events:
        for seen, event in enumerate(events):
            if event.name == name:
                return True
            if seen > 2000:  # the demo loops: minutes of decisions without that name
                return False
    return False


def test_the_page_follows_the_demo_and_a_rename_reaches_the_node_and_the_gallery(tmp_path: Path):
    _skip_without_a_browser()
    from PIL import Image

    with demo_site(tmp_path) as site, chromium_page(tmp_path / "chromium-profile") as page:
        page.goto(f"{site.url}#token={site.token}")
        page.wait_for_function(NAMED, timeout=WAIT_MS)  # the demo's people, named as they walk
        before = page.locator("#timeline li").count()
        page.wait_for_function(f"() => document.querySelectorAll('#timeline li').length > {before}", timeout=WAIT_MS)

        identity = page.locator(".track:not(.unknown) .id").first.text_content().lstrip("#")
        row = page.locator(f'#gallery tr[data-id="{identity}"]')
        row.locator(".rename-name").fill("Walker Renamed")
        row.locator("button.rename").click()
        page.wait_for_function(
            "() => document.querySelector('#gallery-message').textContent.includes('Walker Renamed')", timeout=WAIT_MS
        )
        assert _renamed_in_an_event(site.pub, "Walker Renamed")  # the node names them so in its next events
        page.wait_for_function(  # and the page shows it, from those events
            "() => [...document.querySelectorAll('.track .name')].some(n => n.textContent === 'Walker Renamed')",
            timeout=WAIT_MS,
        )
        assert "Walker Renamed" in gaitwatch("gallery", "list", site.gallery).stdout

        shot = tmp_path / "dashboard.png"
        page.screenshot(path=str(shot), full_page=True)
    with Image.open(shot) as image:
        assert image.width >= 1000 and image.height >= 600
        colours = image.convert("RGB").resize((200, 150)).getcolors(200 * 150)
        assert colours is not None and len(colours) > 20, "the screenshot is (nearly) one colour"
    if os.environ.get("GAITWATCH_ARTIFACTS"):  # CI keeps it (the folder is gitignored where in the checkout)
        folder = Path(os.environ["GAITWATCH_ARTIFACTS"])
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, folder / "dashboard.png")
