"""Silhouettes in the RGB path, on real CASIA-B clips with the shipped MediaPipe model: both methods, their
agreement, ``record`` keeping them crash-safe beside the skeletons, ``--preview`` showing them, ``extract``."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mediapipe", reason="mediapipe not installed (the rgb extra)")
pytest.importorskip("cv2", reason="OpenCV not installed (the rgb extra)")

import cv2

from sensors.errors import InputError
from sensors.rgb import RgbPoseSource
from sensors.silhouette import iou
from sensors.silhouette_sources import BackgroundModel
from tests.helpers import assert_one_line_error, gaitwatch
from tests.shared_data import CASIA, casia_clip

pytestmark = pytest.mark.skipif(not CASIA.exists(), reason=f"CASIA-B clips not found at {CASIA}")


def test_without_the_flag_no_silhouette_is_made():
    source = RgbPoseSource(str(casia_clip("002-nm-01")))
    estimates = list(source.estimates())
    assert all(e.silhouettes is None for e in estimates) and source.stats.silhouette_s == 0.0


def test_every_person_found_has_an_aligned_mediapipe_silhouette():
    source = RgbPoseSource(str(casia_clip("002-nm-01")), silhouettes="mediapipe")
    with_body = [e for e in source.estimates() if e.frame.num_bodies]
    assert len(with_body) > 50
    valid = np.array([e.silhouettes.valid[0] for e in with_body])
    assert valid.mean() >= 0.95
    crops = np.stack([e.silhouettes.crops[0] for e, v in zip(with_body, valid, strict=True) if v])
    assert crops.shape[1:] == (64, 44)
    assert (crops[:, 0].max(axis=1) > 127).mean() > 0.95  # height-normalised: the head reaches the top row
    assert (crops[:, -1].max(axis=1) > 127).mean() > 0.95  # and the feet the bottom one
    heights = np.array([e.silhouettes.boxes[0, 3] - e.silhouettes.boxes[0, 1] for e in with_body])
    assert np.median(heights) > 100  # the README: the walker is about 125 px tall


@pytest.mark.slow
def test_mediapipe_and_background_subtraction_agree_on_the_walker():
    background = BackgroundModel.from_clip(casia_clip("001-bkgrd"))
    runs = {}
    for method, model in (("mediapipe", None), ("background", background)):
        source = RgbPoseSource(str(casia_clip("001-nm-02")), silhouettes=method, background=model, keep_masks=True)
        runs[method] = list(source.estimates())
    both = [
        (a.silhouettes, b.silhouettes)
        for a, b in zip(runs["mediapipe"], runs["background"], strict=True)
        if a.frame.num_bodies and b.frame.num_bodies and a.silhouettes.valid[0] and b.silhouettes.valid[0]
    ]
    assert len(both) > 50
    full = np.array([iou(a.mask, b.mask) for a, b in both])
    aligned = np.array([iou(a.crops[0], b.crops[0]) for a, b in both])
    assert np.median(full) > 0.85 and np.median(aligned) > 0.8, (np.median(full), np.median(aligned))
    assert iou(both[0][0].mask, np.zeros_like(both[0][0].mask)) == 0.0


def test_a_background_clip_that_is_no_video_is_one_clear_error(tmp_path: Path):
    junk = tmp_path / "empty-scene.avi"
    junk.write_bytes(b"not a video")
    with pytest.raises(InputError, match=r"empty-scene\.avi: .*background clip"):
        BackgroundModel.from_clip(junk)


def test_record_keeps_silhouettes_beside_the_skeletons(tmp_path: Path):
    from sensors.formats import read_file
    from sensors.formats.gwsil import read_gwsil
    from sensors.silhouette_windows import track_silhouettes

    out = tmp_path / "walk.gwrec"
    printed = gaitwatch(
        "record", "--source", casia_clip("002-nm-01"), "--out", out, "--silhouettes", "mediapipe"
    ).stdout
    recording, silhouettes = read_file(out), read_gwsil(tmp_path / "walk.gwsil")
    assert f"; {len(silhouettes.seq)} silhouettes into {tmp_path / 'walk.gwsil'}" in printed
    assert stat.S_IMODE(os.stat(tmp_path / "walk.gwsil").st_mode) == 0o600
    assert silhouettes.method == "mediapipe" and silhouettes.truncation is None
    with_body = set(recording.seq[np.diff(recording.body_offsets) > 0].tolist())
    assert set(silhouettes.seq.tolist()) <= with_body and len(silhouettes.seq) >= 0.95 * len(with_body)
    (windows,) = track_silhouettes(silhouettes, recording, f=30, stride=15)
    assert len(windows.windows) >= 2 and windows.windows.shape[1:] == (30, 64, 44)
    (tmp_path / "y.gwsil").write_bytes(b"")
    proc = gaitwatch("record", "--source", casia_clip("002-nm-01"), "--out", tmp_path / "y.gwrec", "--silhouettes",
                     "mediapipe", ok=False)  # fmt: skip
    assert_one_line_error(proc, "y.gwsil: already exists")
    assert not (tmp_path / "y.gwrec").exists()


def test_a_background_clip_without_background_silhouettes_is_refused(tmp_path: Path):
    proc = gaitwatch(
        "record", "--source", casia_clip("002-nm-01"), "--out", tmp_path / "w.gwrec",
        "--background", casia_clip("001-bkgrd"), ok=False,
    )  # fmt: skip
    assert_one_line_error(proc, "--background: only with --silhouettes background")


@pytest.mark.slow
def test_the_preview_shows_the_silhouettes(tmp_path: Path):
    gallery = tmp_path / "casia.db"
    gaitwatch("gallery", "create", gallery)
    gaitwatch("gallery", "enroll", gallery, casia_clip("001-nm-01"), "--name", "001")
    runs = {}
    for flag in ([], ["--silhouettes", "background", "--background", casia_clip("001-bkgrd")]):
        preview = tmp_path / f"preview{len(flag)}.mp4"
        gaitwatch("camera", "--source", casia_clip("001-nm-02"), "--gallery", gallery, "--pub", "tcp://127.0.0.1:0",
                  "--preview", preview, *flag)  # fmt: skip
        capture, images = cv2.VideoCapture(str(preview)), []
        while (read := capture.read())[0]:
            images.append(read[1])
        runs[bool(flag)] = np.stack(images)
    plain, shown = runs[False], runs[True]
    assert plain.shape == shown.shape
    # the top-left corner holds the aligned silhouettes (white on black) where a person is seen
    corner = shown[:, :64, :44].astype(int)
    assert (corner.max(axis=(1, 2, 3)) > 200).sum() > 40
    assert magenta_pixels(shown).max() > 1000  # the walker's mask tinted
    assert magenta_pixels(plain).max() < 100


def magenta_pixels(images: np.ndarray) -> np.ndarray:
    """Per image, pixels far more blue and red than green (BGR)."""
    b, g, r = (images[..., i].astype(int) for i in range(3))
    return ((b - g > 60) & (r - g > 60)).sum(axis=(1, 2))


@pytest.mark.slow
def test_extracted_silhouettes_load_with_the_dataset_reader(tmp_path: Path):
    from sensors.formats.silhouette_dataset import SequenceKey, read_dataset

    out = tmp_path / "casia-ours"
    clips = [casia_clip("001-nm-01"), casia_clip("002-nm-01")]
    printed = gaitwatch("silhouettes", "extract", *clips, "--out", out).stdout
    sequences = {s.key: s.frames for s in read_dataset(out)}
    assert set(sequences) == {SequenceKey("001", "nm-01", "090"), SequenceKey("002", "nm-01", "090")}
    for frames in sequences.values():
        assert frames.shape[1:] == (64, 44) and len(frames) > 50
        assert f"{len(frames)} silhouettes of" in printed
    assert stat.S_IMODE(os.stat(out / "001" / "nm-01" / "090" / "090.pkl").st_mode) == 0o600
    again = gaitwatch("silhouettes", "extract", clips[0], "--out", out, ok=False)
    assert_one_line_error(again, "090.pkl: already exists")
    odd = tmp_path / "walk.avi"
    odd.write_bytes(clips[0].read_bytes())
    assert_one_line_error(gaitwatch("silhouettes", "extract", odd, "--out", out, ok=False), "not named like a CASIA-B")
    gaitwatch("silhouettes", "extract", odd, "--out", out, "--as", "ana/nm-01/090")
    assert len({s.key: s for s in read_dataset(out)}[SequenceKey("ana", "nm-01", "090")].frames) > 50


def test_large_images_are_subtracted_at_the_work_width_with_the_same_person():
    def foreground_masks(work_width: int) -> list[np.ndarray]:
        model = BackgroundModel.from_clip(casia_clip("001-bkgrd"), work_width=work_width)
        capture, masks = cv2.VideoCapture(str(casia_clip("001-nm-02"))), []
        while (read := capture.read())[0]:
            masks.append(model.foreground(read[1]))
        return masks

    full, half = foreground_masks(320), foreground_masks(160)
    assert all(m.shape == (240, 320) for m in half)
    seen = [i for i, m in enumerate(full) if np.count_nonzero(m) > 2000]
    assert len(seen) > 40
    assert np.median([iou(full[i], half[i]) for i in seen]) > 0.8


def test_a_background_of_another_size_than_the_images_is_refused():
    model = BackgroundModel.from_clip(casia_clip("001-bkgrd"))
    with pytest.raises(InputError, match=r"001-bkgrd-090\.avi: the background is 320x240, these images 640x480"):
        model.foreground(np.zeros((480, 640, 3), np.uint8))


@pytest.mark.slow
def test_a_killed_recording_keeps_every_silhouette_written(tmp_path: Path):
    import signal
    import subprocess
    import time

    from sensors.formats import read_file
    from sensors.formats.gwsil import read_gwsil, record_dtype
    from tests.helpers import GAITWATCH

    out = tmp_path / "walk.gwrec"
    argv = [GAITWATCH, "record", "--source", casia_clip("004-nm-01"), "--out", out, "--silhouettes", "mediapipe"]
    process = subprocess.Popen([str(a) for a in argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    silhouettes = tmp_path / "walk.gwsil"
    while process.poll() is None and (not silhouettes.exists() or silhouettes.stat().st_size < 10 * 2864):
        time.sleep(0.05)  # polling for a condition, not asserting a speed
    process.send_signal(signal.SIGKILL)
    process.wait()
    recording, kept = read_file(out), read_gwsil(silhouettes)
    assert len(kept.seq) >= 10 and record_dtype(64, 44).itemsize == 2864
    assert set(kept.seq.tolist()) <= set(recording.seq.tolist())  # a frame is written before its silhouettes


def test_camera_silhouettes_against_a_gallery_without_any_keep_the_skeleton_channel_alone(tmp_path: Path):
    gallery = tmp_path / "g.db"
    gaitwatch("gallery", "create", gallery)
    ran = gaitwatch(
        "camera", "--source", casia_clip("002-nm-01"), "--gallery", gallery, "--pub", "tcp://127.0.0.1:0",
        "--silhouettes", "mediapipe", "--quiet",
    )  # fmt: skip
    assert "silhouette channel: off" in ran.stdout and "of silhouettes" not in ran.stdout


@pytest.mark.slow
def test_the_camera_node_encodes_silhouettes_and_records_them(tmp_path: Path):
    from sensors.formats import read_file
    from sensors.formats.gwsil import read_gwsil

    enrolled = tmp_path / "enroll.gwrec"
    gaitwatch("record", "--source", casia_clip("002-nm-01"), "--out", enrolled, "--silhouettes", "mediapipe")
    gallery = tmp_path / "g.db"
    gaitwatch("gallery", "create", gallery)
    gaitwatch("gallery", "enroll", gallery, enrolled, "--name", "002", "--silhouette-model")  # alone: the shipped one
    gaitwatch("gallery", "enroll", gallery, tmp_path / "enroll.gwrec", "--name", "002-again")  # skeletons only
    out = tmp_path / "seen.gwrec"
    ran = gaitwatch(
        "camera", "--source", casia_clip("002-nm-01"), "--gallery", gallery, "--pub", "tcp://127.0.0.1:0",
        "--silhouettes", "mediapipe", "--record", out,
    )  # fmt: skip
    assert "silhouette channel: on" in ran.stdout
    assert "of silhouettes" in ran.stdout.splitlines()[-1]  # silhouette windows were encoded (the summary says)
    recording, kept = read_file(out), read_gwsil(out.with_suffix(".gwsil"))
    assert len(kept.seq) > 20 and set(kept.seq.tolist()) <= set(recording.seq.tolist())
    again = gaitwatch(
        "camera", "--source", casia_clip("002-nm-01"), "--gallery", gallery, "--pub", "tcp://127.0.0.1:0",
        "--silhouettes", "mediapipe", "--record", out, ok=False,
    )  # fmt: skip
    assert_one_line_error(again, "already exists")
