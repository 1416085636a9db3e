"""``gaitwatch listen``'s live table as a person sees it: words not dicts, cut to the terminal, a history."""

from __future__ import annotations

import io

from rich.console import Console

from stream.events import IDENTITY, STATUS, TRACK_END, TRACK_START
from stream.node.live_table import _Table
from stream.subscriber import Event


def _event(topic: str, seq: int, **payload) -> Event:
    return Event(topic, "door-1", seq, 0.0, payload)


def test_the_table_fits_the_terminal_keeps_ended_tracks_and_says_when_the_node_finished():
    table = _Table("tcp://127.0.0.1:5557")
    screen = Console(width=100, height=24, record=True, file=io.StringIO())
    table.console = screen
    seq = 0
    for i in range(30):  # more people than the screen has rows for
        seq += 1
        table.show(_event(TRACK_START, seq, track=f"door/{i}", sensor="door"), None)
        seq += 1
        decision = {"identity": i % 3, "name": f"person {i % 3}", "known": True, "distance": 0.05, "windows": 4}
        table.show(_event(IDENTITY, seq, track=f"door/{i}", **decision), None)
    for i in range(12):
        seq += 1
        table.show(_event(TRACK_END, seq, track=f"door/{i}", identity=None, name=None, distance=0.2, windows=3), None)
    status = {
        "rates": {"body_frames": 180.0, "windows": 30.0, "decisions": 30.0},
        "queues": {"frames": 0, "work": 2},
        "dropped": {"frames": 1, "windows": 0, "events": 0},
        "tracks": [],
        "finished": True,
    }
    seq += 1
    table.show(_event(STATUS, seq, **status), None)
    screen.print(table._render(None))
    text = screen.export_text()
    lines = text.splitlines()
    assert len(lines) <= 24, text
    assert "node door-1: 180 body-frames/s" in text and "dropped 1 frames" in text and "{" not in text
    assert "node door-1 finished" in text
    assert "tracked now: 0" in text  # the status is the full current state
    assert "ended" in text and text.count("unknown") == _Table.HISTORY  # the last ended tracks, newest first


def test_a_crowd_larger_than_the_screen_is_cut_with_a_count():
    table = _Table("tcp://127.0.0.1:5557")
    screen = Console(width=100, height=20, record=True, file=io.StringIO())
    table.console = screen
    for i in range(40):
        table.show(_event(TRACK_START, i + 1, track=f"cam/{i:02d}", sensor="cam"), None)
    screen.print(table._render(None))
    text = screen.export_text()
    assert len(text.splitlines()) <= 20 and "... and" in text and "more" in text and "deciding" in text


def test_a_fused_decision_says_what_the_silhouette_channel_said():
    table = _Table("tcp://127.0.0.1:5557")
    screen = Console(width=120, height=20, record=True, file=io.StringIO())
    table.console = screen
    view = {"distance": 0.1, "windows": 2}
    agree = {"skeleton": {"identity": 1, "name": "ana", **view}, "silhouette": {"identity": 1, "name": "ana", **view}}
    differ = {"skeleton": {"identity": 1, "name": "ana", **view}, "silhouette": {"identity": 2, "name": "ben", **view}}
    silent = {"skeleton": {"identity": 1, "name": "ana", **view}}
    for seq, (track, channels, agreed) in enumerate(
        (("cam/1", agree, True), ("cam/2", differ, False), ("cam/3", silent, None)), start=1
    ):
        decision = {"identity": 1, "name": "ana", "known": True, "distance": 0.05, "windows": 4}
        fused = {**channels, "agree": agreed, "weight": 0.5}
        table.show(_event(IDENTITY, seq, track=track, **decision, channels=fused), None)
    screen.print(table._render(None))
    rows = {line.split()[1]: line for line in screen.export_text().splitlines() if "cam/" in line}
    assert "ana (silhouettes agree)" in rows["cam/1"]
    assert "ana (silhouettes: ben)" in rows["cam/2"]
    assert "silhouettes" not in rows["cam/3"]  # no silhouette window yet: the skeleton channel alone
