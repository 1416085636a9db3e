"""The silhouette companion file (.gwsil): round trip, crash safety, privacy, and the .gwrec left as it was."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from sensors.errors import FormatError, InputError
from sensors.formats.gwrec import RecordingWriter, read_gwrec
from sensors.formats.gwsil import SilhouetteWriter, companion, read_gwsil, record_dtype
from sensors.layouts import MEDIAPIPE_POSE


def crops(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 64, 44), dtype=np.uint8)


def write(path: Path, frames: int = 5, bodies: int = 2) -> np.ndarray:
    every = crops(frames * bodies)
    with SilhouetteWriter(path, method="mediapipe", sensor_id="cam") as writer:
        for i in range(frames):
            rows = slice(i * bodies, (i + 1) * bodies)
            boxes = np.tile([i, 1, i + 40, 121], (bodies, 1))
            writer.write(10 + i, i / 25, np.arange(bodies), boxes, every[rows])
    return every


def test_what_is_written_is_read_back(tmp_path: Path):
    path = tmp_path / "walk.gwsil"
    every = write(path)
    back = read_gwsil(path)
    assert np.array_equal(back.silhouettes, every)
    assert back.seq.tolist() == [10, 10, 11, 11, 12, 12, 13, 13, 14, 14]
    assert back.body_index.tolist() == [0, 1] * 5
    assert back.t[2] == pytest.approx(1 / 25)
    assert back.boxes[4].tolist() == [2, 1, 42, 121]
    assert back.method == "mediapipe" and back.header["sensor_id"] == "cam"
    assert back.truncation is None


def test_the_file_is_private_and_never_overwritten(tmp_path: Path):
    path = tmp_path / "walk.gwsil"
    write(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with pytest.raises(InputError, match="already exists"):
        SilhouetteWriter(path, method="mediapipe")


@pytest.mark.parametrize("cut", [1, 100, 2000])
def test_a_torn_tail_is_dropped_and_reported(tmp_path: Path, cut: int):
    path = tmp_path / "walk.gwsil"
    every = write(path)
    data = path.read_bytes()
    path.write_bytes(data[:-cut])
    back = read_gwsil(path)
    assert len(back.seq) == 9 and np.array_equal(back.silhouettes, every[:9])
    assert back.truncation is not None and "partly written" in back.truncation.reason


def test_a_corrupt_record_ends_what_is_read(tmp_path: Path):
    path = tmp_path / "walk.gwsil"
    every = write(path)
    data = bytearray(path.read_bytes())
    size = record_dtype(64, 44).itemsize
    start = len(data) - 10 * size
    data[start + 3 * size + 100] ^= 0xFF  # a flipped byte in the fourth record's pixels
    path.write_bytes(bytes(data))
    back = read_gwsil(path)
    assert np.array_equal(back.silhouettes, every[:3])
    assert "corrupt or torn record 3" in back.truncation.reason


def test_a_zero_filled_tail_as_a_power_cut_leaves(tmp_path: Path):
    path = tmp_path / "walk.gwsil"
    every = write(path)
    size = record_dtype(64, 44).itemsize
    with open(path, "r+b") as stream:
        stream.seek(-2 * size, os.SEEK_END)
        stream.write(bytes(2 * size))
    back = read_gwsil(path)
    assert np.array_equal(back.silhouettes, every[:8])


def test_wrong_files_are_one_clear_error(tmp_path: Path):
    path = tmp_path / "walk.gwsil"
    write(path)
    data = bytearray(path.read_bytes())
    other = tmp_path / "other.gwsil"
    other.write_bytes(b"GIF89a" + bytes(100))
    with pytest.raises(FormatError, match=r"other\.gwsil, byte 0: not a gaitwatch silhouette file"):
        read_gwsil(other)
    data[30] ^= 0x01  # inside the header
    other.write_bytes(bytes(data))
    with pytest.raises(FormatError, match="header checksum mismatch"):
        read_gwsil(other)
    other.write_bytes(bytes(data[:10]))
    with pytest.raises(FormatError, match="shorter than the 20-byte preamble"):
        read_gwsil(other)


def test_a_writer_refuses_silhouettes_of_another_size(tmp_path: Path):
    with (
        SilhouetteWriter(tmp_path / "w.gwsil", method="background") as writer,
        pytest.raises(InputError, match="expected uint8 \\[bodies, 64, 44\\]"),
    ):
        writer.write(0, 0.0, np.arange(1), np.zeros((1, 4)), np.zeros((1, 64, 64), np.uint8))


def test_the_companion_sits_beside_its_recording_and_the_recording_reads_as_before(tmp_path: Path):
    recording = tmp_path / "walk.gwrec"
    with RecordingWriter(recording, MEDIAPIPE_POSE) as writer:
        from sensors.frame import Frame

        joints = np.zeros((1, 33, 3), np.float32)
        writer.write_frame(Frame("cam", 0, 0.0, MEDIAPIPE_POSE, np.array([-1]), joints, np.ones((1, 33), np.float32)))
    assert companion(recording) == tmp_path / "walk.gwsil"
    assert not companion(recording).exists()
    assert read_gwrec(recording).num_frames == 1  # a recording without silhouettes is a whole recording


def test_a_writer_refuses_body_indexes_or_boxes_that_do_not_match(tmp_path: Path):
    with SilhouetteWriter(tmp_path / "w.gwsil", method="mediapipe") as writer:
        with pytest.raises(InputError, match="2 silhouettes, body indexes \\(1,\\)"):
            writer.write(0, 0.0, np.arange(1), np.zeros((2, 4)), crops(2))
        with pytest.raises(InputError, match="boxes \\(2, 3\\)"):
            writer.write(0, 0.0, np.arange(2), np.zeros((2, 3)), crops(2))
    assert len(read_gwsil(tmp_path / "w.gwsil").seq) == 0


def test_info_describes_a_silhouette_file_and_its_torn_tail(tmp_path: Path):
    from tests.helpers import assert_one_line_error, gaitwatch

    path = tmp_path / "walk.gwsil"
    write(path)
    assert "silhouettes  10 of 5 frames, 64x44, aligned" in gaitwatch("info", path).stdout
    path.write_bytes(path.read_bytes()[:-100])
    shown = gaitwatch("info", path).stdout
    assert "silhouettes  9 of 5 frames" in shown and "truncated    " in shown
    path.write_bytes(b"\x89GWREC\r\n" + bytes(40))
    assert_one_line_error(gaitwatch("info", path, ok=False), str(path), "not a gaitwatch silhouette file")
