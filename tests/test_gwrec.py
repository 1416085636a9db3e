"""gaitwatch's own format: round trips, truncation anywhere, killed writers, corrupt files."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sensors import atomic
from sensors.errors import FormatError, InputError
from sensors.formats.gwrec import RecordingWriter, read_gwrec, record_dtype, write_recording
from sensors.layouts import KINECT_V1, KINECT_V2, LAYOUTS
from sensors.recording import Recording
from tests.helpers import assert_one_line_error, gaitwatch


def random_recording(rng: np.random.Generator, layout=KINECT_V2, frames: int = 20, max_bodies: int = 3) -> Recording:
    counts = rng.integers(0, max_bodies + 1, size=frames)
    n = int(counts.sum())
    return Recording(
        layout=layout,
        t=np.cumsum(rng.uniform(0.01, 0.05, size=frames)),
        seq=np.arange(frames, dtype=np.int64) + 7,
        body_offsets=np.concatenate([[0], np.cumsum(counts)]),
        track_ids=rng.integers(-5, 2**40, size=n),
        joints=rng.normal(size=(n, layout.num_joints, 3)).astype(np.float32),
        confidence=rng.uniform(0, 1, size=(n, layout.num_joints)).astype(np.float32),
        sensor_id="kinect-hall",
        rate_hz=30.0,
        metadata={"person": "Ana", "nested": {"a": [1, 2]}},
    )


def assert_same(a: Recording, b: Recording) -> None:
    assert a.layout == b.layout
    np.testing.assert_array_equal(a.t, b.t)
    np.testing.assert_array_equal(a.seq, b.seq)
    np.testing.assert_array_equal(a.body_offsets, b.body_offsets)
    np.testing.assert_array_equal(a.track_ids, b.track_ids)
    np.testing.assert_array_equal(a.joints, b.joints)
    np.testing.assert_array_equal(a.confidence, b.confidence)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**32 - 1),
    frames=st.integers(0, 30),
    max_bodies=st.integers(0, 6),
    layout=st.sampled_from(sorted(LAYOUTS)),
)
def test_round_trip_any_frames_and_bodies(tmp_path: Path, seed: int, frames: int, max_bodies: int, layout: str):
    rec = random_recording(np.random.default_rng(seed), LAYOUTS[layout], frames, max_bodies)
    path = tmp_path / "rt.gwrec"
    write_recording(path, rec, overwrite=True)
    back = read_gwrec(path)
    assert_same(rec, back)
    assert back.metadata == rec.metadata
    assert back.sensor_id == "kinect-hall" and back.rate_hz == 30.0
    assert back.truncation is None


def test_streamed_frames_equal_bulk_write(tmp_path: Path):
    rec = random_recording(np.random.default_rng(1))
    with RecordingWriter(tmp_path / "s.gwrec", rec.layout, rate_hz=30.0) as writer:
        for frame in rec.frames():
            writer.write_frame(frame)
    write_recording(tmp_path / "b.gwrec", rec)
    assert (tmp_path / "s.gwrec").read_bytes()[-1000:] == (tmp_path / "b.gwrec").read_bytes()[-1000:]
    assert_same(read_gwrec(tmp_path / "s.gwrec"), rec)


def test_truncation_at_every_byte_offset_keeps_every_complete_frame(tmp_path: Path):
    rec = random_recording(np.random.default_rng(2), KINECT_V1, frames=6, max_bodies=2)
    full = tmp_path / "full.gwrec"
    write_recording(full, rec)
    data = full.read_bytes()
    record_size = record_dtype(KINECT_V1.num_joints).itemsize
    header_end = len(data) - record_size * int(np.maximum(np.diff(rec.body_offsets), 1).sum())
    frame_end = header_end + record_size * np.cumsum(np.maximum(np.diff(rec.body_offsets), 1))
    cut_path = tmp_path / "cut.gwrec"
    for cut in range(len(data) + 1):
        cut_path.write_bytes(data[:cut])
        if cut < header_end:
            with pytest.raises(FormatError, match=r"cut\.gwrec"):
                read_gwrec(cut_path)
            continue
        back = read_gwrec(cut_path)
        complete = int(np.searchsorted(frame_end, cut, side="right"))
        assert back.num_frames == complete, cut
        np.testing.assert_array_equal(back.t, rec.t[:complete])
        rows = rec.body_offsets[complete]
        np.testing.assert_array_equal(back.joints, rec.joints[:rows])
        if cut == header_end or cut in frame_end:
            assert back.truncation is None  # a cut between frames is indistinguishable from a shorter file
        else:
            assert back.truncation is not None and back.truncation.complete_frames == complete
            assert back.truncation.dropped_bytes == cut - (header_end if complete == 0 else frame_end[complete - 1])


def test_zero_filled_tail_is_reported_as_truncation(tmp_path: Path):
    rec = random_recording(np.random.default_rng(3), frames=5)
    path = tmp_path / "z.gwrec"
    write_recording(path, rec)
    with open(path, "ab") as f:
        f.write(b"\0" * 4096)
    back = read_gwrec(path)
    assert_same(back, rec)
    assert back.truncation is not None and "torn" in back.truncation.reason


def test_corrupt_record_in_the_middle_keeps_everything_before_it(tmp_path: Path):
    rec = random_recording(np.random.default_rng(4), frames=10, max_bodies=1)
    path = tmp_path / "c.gwrec"
    write_recording(path, rec)
    data = bytearray(path.read_bytes())
    size = record_dtype(rec.layout.num_joints).itemsize
    data[len(data) - 5 * size + 40] ^= 0xFF
    path.write_bytes(bytes(data))
    back = read_gwrec(path)
    assert back.num_frames == 5 and back.truncation is not None
    assert "corrupt record 5" in back.truncation.reason and "4 intact records after it" in back.truncation.reason
    np.testing.assert_array_equal(back.joints, rec.joints[:5])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "shorter than"),
        (b"hello world, this is not a recording at all", "not a gaitwatch recording"),
    ],
)
def test_not_a_recording(tmp_path: Path, content: bytes, message: str):
    path = tmp_path / "x.gwrec"
    path.write_bytes(content)
    with pytest.raises(FormatError, match=message):
        read_gwrec(path)


def test_corrupt_header_and_unknown_version(tmp_path: Path):
    rec = random_recording(np.random.default_rng(5), frames=2)
    path = tmp_path / "h.gwrec"
    write_recording(path, rec)
    data = bytearray(path.read_bytes())
    data[30] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(FormatError, match="header checksum"):
        read_gwrec(path)
    data[30] ^= 0x01
    data[8] = 99
    path.write_bytes(bytes(data))
    with pytest.raises(FormatError, match="version 99"):
        read_gwrec(path)


def test_writer_refuses_to_overwrite_and_checks_shapes(tmp_path: Path):
    path = tmp_path / "w.gwrec"
    writer = RecordingWriter(path, KINECT_V1)
    with pytest.raises(InputError, match=r"joints of shape \(1, 25, 3\)"):
        writer.write_arrays(
            np.array([0]), np.array([0.0]), np.array([0, 1]), [1], np.zeros((1, 25, 3)), np.ones((1, 25))
        )
    with pytest.raises(InputError, match=r"joint 0 \(HipCenter\): confidence 2 outside \[0, 1\]"):
        writer.write_arrays(
            np.array([0]), np.array([0.0]), np.array([0, 1]), [1], np.zeros((1, 20, 3)), np.full((1, 20), 2)
        )
    writer.close()
    with pytest.raises(InputError, match="already exists"):
        RecordingWriter(path, KINECT_V1)


KILLED_WRITER = textwrap.dedent(
    """
    import sys, numpy as np
    from sensors.formats.gwrec import RecordingWriter
    from sensors.layouts import KINECT_V2
    rng = np.random.default_rng(0)
    with RecordingWriter(sys.argv[1], KINECT_V2, rate_hz=30.0, fsync_every_s=None) as w:
        seq = 0
        while True:
            n = int(rng.integers(0, 4))
            w.write_arrays(np.array([seq]), np.array([seq / 30]), np.array([0, n]), np.arange(n),
                           np.full((n, 25, 3), seq, np.float32), np.ones((n, 25), np.float32))
            print(seq, flush=True)
            seq += 1
    """
)


@pytest.mark.parametrize("run", range(5))
def test_killed_writer_leaves_every_acknowledged_frame(tmp_path: Path, run: int):
    path = tmp_path / "killed.gwrec"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    acknowledged = -1
    deadline = time.monotonic() + 20
    target = 200 + 300 * run
    while acknowledged < target and time.monotonic() < deadline:
        acknowledged = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    back = read_gwrec(path)
    assert back.num_frames >= acknowledged + 1
    np.testing.assert_array_equal(back.seq, np.arange(back.num_frames))
    frame_of_body = back.frame_index_of_body
    np.testing.assert_array_equal(back.joints[:, 0, 0], back.seq[frame_of_body].astype(np.float32))


# --- hostile and invalid values: refused at the reader, never written by the writer ---------------------------


def test_header_is_read_from_the_first_bytes(tmp_path: Path):
    """A wrong file is refused from its first bytes: a 1 GiB file is not read to learn that."""
    path = tmp_path / "big.gwrec"
    rec = random_recording(np.random.default_rng(6), frames=2)
    write_recording(path, rec)
    data = bytearray(path.read_bytes())
    data[12:16] = (2**31).to_bytes(4, "little")  # a header length of 2 GiB, with every check word intact after it
    path.write_bytes(bytes(data))
    os.truncate(path, 2**30)
    tracemalloc.start()
    try:
        with pytest.raises(FormatError, match="header of 2,147,483,648 bytes, more than"):
            read_gwrec(path)
        assert tracemalloc.get_traced_memory()[1] < 2**20
    finally:
        tracemalloc.stop()


def test_lost_joints_stay_nan_and_every_value_is_checked(tmp_path: Path):
    rec = random_recording(np.random.default_rng(7), KINECT_V1, frames=4, max_bodies=1)
    rec.joints[:, 3] = np.nan  # a joint the sensor lost: kept, as the node expects
    path = tmp_path / "lost.gwrec"
    write_recording(path, rec)
    assert_same(read_gwrec(path), rec)
    cases = [
        ({"t": np.array([0.0, np.nan, 1.0, 2.0])}, "time nan s"),
        ({"t": np.array([0.0, 1.0, 0.5, 2.0])}, "time 0.5 s is before the previous frame's 1 s"),
        ({"t": np.array([0.0, 1.0, 2.0, 1e300])}, "time 1e+300 s"),
        ({"joints": np.full_like(rec.joints, np.inf)}, "coordinates (inf, inf, inf) m"),
        ({"joints": np.full_like(rec.joints, 2e4)}, "within ±10000 m"),
        ({"confidence": np.full_like(rec.confidence, np.nan)}, "confidence nan outside [0, 1]"),
        ({"rate_hz": "fast"}, "nominal rate 'fast'"),
        ({"rate_hz": float("inf")}, "nominal rate inf"),
        ({"metadata": [1, 2]}, "metadata: expected an object"),
        ({"metadata": {"tracks": 5}}, "metadata tracks"),
    ]
    for k, (change, message) in enumerate(cases):
        bad = Recording(**{**vars(rec), **change})
        out = tmp_path / f"bad{k}.gwrec"
        with pytest.raises(InputError, match=re.escape(message)):
            write_recording(out, bad)  # the writer refuses what the reader would refuse
        assert not out.exists() and not atomic.partial_path(out).exists()


def test_refused_header_creates_no_file(tmp_path: Path):
    path = tmp_path / "never.gwrec"
    with pytest.raises(InputError, match="nominal rate"):
        RecordingWriter(path, KINECT_V1, rate_hz=float("nan"))
    assert not path.exists()


def test_recordings_are_private_whatever_the_umask(tmp_path: Path):
    rec = random_recording(np.random.default_rng(8), frames=3)
    old = os.umask(0o022)
    try:
        write_recording(tmp_path / "whole.gwrec", rec)
        with RecordingWriter(tmp_path / "streamed.gwrec", rec.layout) as writer:
            writer.write_recording(rec)
        gaitwatch("convert", tmp_path / "whole.gwrec", tmp_path / "converted.gwrec")
    finally:
        os.umask(old)
    for name in ("whole.gwrec", "streamed.gwrec", "converted.gwrec"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name


def test_record_from_a_source_that_fails_leaves_no_file(tmp_path: Path):
    pytest.importorskip("cv2")
    clip = tmp_path / "broken.avi"
    clip.write_text("not a video")
    out = tmp_path / "walk.gwrec"
    assert_one_line_error(gaitwatch("record", "--source", clip, "--out", out, ok=False), "broken.avi")
    assert not out.exists()  # so the retry is not blocked
    out.write_bytes(b"someone else's file")
    assert_one_line_error(gaitwatch("record", "--source", clip, "--out", out, ok=False), "already exists")
    assert out.read_bytes() == b"someone else's file"
