"""Silhouette dataset readers: CASIA-B's PNG folders and OpenGait's pickles, read alike; bad files said clearly."""

from __future__ import annotations

import os
import pickle
import stat
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("cv2", reason="OpenCV not installed (the rgb extra)")

import cv2

from sensors.errors import FormatError, InputError
from sensors.formats.casia_silh import read_png_sequence
from sensors.formats.opengait_pkl import read_pkl, write_pkl
from sensors.formats.silhouette_dataset import PKL, PNG, SequenceKey, layout_of, read_dataset
from tests.helpers import assert_one_line_error, gaitwatch
from tests.silhouette_tree import TYPES, VIEWS, frame, write_png_tree


@pytest.fixture
def png_tree(tmp_path: Path) -> Path:
    root = tmp_path / "GaitDatasetB-silh"
    write_png_tree(root, {"001": 0, "075": 1}, frames=3)
    return tmp_path  # the folder holding GaitDatasetB-silh, as the dataset unpacks


def test_png_sequences_are_read_aligned_and_keyed(png_tree: Path):
    sequences = list(read_dataset(png_tree))
    assert len(sequences) == 2 * len(TYPES) * len(VIEWS)
    assert layout_of(png_tree / "GaitDatasetB-silh") == PNG
    first = sequences[0]
    assert first.key == SequenceKey("001", "bg-01", "000") and first.key.condition == "bg"
    assert first.frames.shape == (3, 64, 44) and first.frames.dtype == np.uint8
    assert (first.frames[:, 0].max(axis=1) > 127).all()  # the head touches the top row: height-normalised


def test_pickles_written_from_pngs_read_back_the_same(png_tree: Path, tmp_path: Path):
    out = tmp_path / "pkl"
    expected = {}
    for sequence in read_dataset(png_tree):
        key = sequence.key
        write_pkl(out / key.subject / key.type / key.view / f"{key.view}.pkl", sequence.frames)
        expected[key] = sequence.frames
    assert layout_of(out) == PKL
    back = {s.key: s.frames for s in read_dataset(out)}
    assert back.keys() == expected.keys()
    assert all(np.array_equal(back[k], expected[k]) for k in expected)
    one = out / "075" / "nm-01" / "090" / "090.pkl"
    assert stat.S_IMODE(os.stat(one).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(one.parent).st_mode) == 0o700
    with pytest.raises(InputError, match="already exists"):
        write_pkl(one, expected[SequenceKey("075", "nm-01", "090")])


def test_opengait_64_by_64_pickles_are_cut_to_44(tmp_path: Path):
    path = tmp_path / "000.pkl"
    frames = np.random.default_rng(0).integers(0, 256, (5, 64, 64), dtype=np.uint8)
    path.write_bytes(pickle.dumps(frames))
    assert np.array_equal(read_pkl(path), frames[:, :, 10:54])


def test_frames_without_a_person_are_left_out(tmp_path: Path):
    folder = tmp_path / "s"
    folder.mkdir()
    cv2.imwrite(str(folder / "a-001.png"), frame(1, "nm", "090", 0))
    cv2.imwrite(str(folder / "a-002.png"), np.zeros((240, 320), np.uint8))
    assert read_png_sequence(folder).shape == (1, 64, 44)


def bad_pickles(tmp_path: Path) -> list[tuple[Path, str]]:
    cases = []

    def case(name: str, data: bytes, expect: str) -> None:
        path = tmp_path / name / "000" / "000.pkl"
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        cases.append((path, expect))

    good = pickle.dumps(np.zeros((3, 64, 44), np.uint8))
    case("truncated", good[: len(good) // 2], "truncated or corrupt pickle")
    case("shape", pickle.dumps(np.zeros((3, 32, 32), np.uint8)), "shape [3, 32, 32]; expected uint8")
    case("dtype", pickle.dumps(np.zeros((3, 64, 44), np.float32)), "a float32 array")
    case("list", pickle.dumps([1, 2, 3]), "holds a list")
    case("code", pickle.dumps(os.getcwd), "refusing posix.getcwd")
    return cases


def test_bad_pickles_are_one_error_naming_the_file(tmp_path: Path):
    for path, expect in bad_pickles(tmp_path):
        with pytest.raises(FormatError, match=r"expected|refusing|truncated|holds") as caught:
            read_pkl(path)
        assert str(path) in str(caught.value) and expect in str(caught.value), str(caught.value)


def test_bad_pngs_are_one_error_naming_the_file(tmp_path: Path):
    folder = tmp_path / "001" / "nm-01" / "090"
    folder.mkdir(parents=True)
    good = cv2.imencode(".png", frame(1, "nm", "090", 0))[1].tobytes()
    (folder / "001-nm-01-090-001.png").write_bytes(good)
    bad = folder / "001-nm-01-090-002.png"
    for data, expect in (
        (good[: len(good) // 2], "not a readable PNG image (truncated or corrupt?)"),
        (cv2.imencode(".png", np.zeros((100, 100), np.uint8))[1].tobytes(), "a 100x100 image in a sequence of 320x240"),
        (cv2.imencode(".png", np.dstack([frame(1, "nm", "090", 1), np.zeros((240, 320, 2), np.uint8)]))[1].tobytes(),
         "a 3-channel uint8 image"),
    ):  # fmt: skip
        bad.write_bytes(data)
        ran = gaitwatch("silhouettes", "info", tmp_path, ok=False)
        assert_one_line_error(ran, str(bad), expect)


def test_two_pickles_in_one_sequence_and_an_empty_dataset_are_said(tmp_path: Path):
    folder = tmp_path / "ds" / "001" / "nm-01" / "090"
    folder.mkdir(parents=True)
    for name in ("a.pkl", "b.pkl"):
        (folder / name).write_bytes(pickle.dumps(np.zeros((1, 64, 44), np.uint8)))
    assert_one_line_error(gaitwatch("silhouettes", "info", tmp_path / "ds", ok=False), str(folder), "a.pkl, b.pkl")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(gaitwatch("silhouettes", "info", tmp_path / "empty", ok=False), "no subject/type/view")


def test_info_counts_what_a_dataset_holds(png_tree: Path):
    ran = gaitwatch("silhouettes", "info", png_tree)
    assert "2 subjects, 60 sequences (0 empty), 180 silhouettes" in ran.stdout


def test_a_png_declaring_a_huge_image_and_a_fifo_are_refused_before_reading(tmp_path: Path):
    from sensors.formats.casia_silh import read_png

    data = bytearray(cv2.imencode(".png", np.zeros((10, 10), np.uint8))[1].tobytes())
    data[16:20] = (100_000).to_bytes(4, "big")  # IHDR width: what a decompression bomb declares
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(bytes(data))
    with pytest.raises(FormatError, match=r"bomb\.png: a 100000x10 image"):
        read_png(bomb)
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "000.pkl"
        os.mkfifo(fifo)
        with pytest.raises(InputError, match="not a regular file"):
            read_pkl(fifo)
