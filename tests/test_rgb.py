"""The RGB path on real CASIA-B clips: MediaPipe pose with the shipped model, the camera node, the preview."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mediapipe", reason="mediapipe not installed (the rgb extra)")
pytest.importorskip("cv2", reason="OpenCV not installed (the rgb extra)")

import cv2

from sensors.errors import InputError
from sensors.rgb import RgbPoseSource
from tests.helpers import assert_one_line_error, gaitwatch, gaitwatch_process
from tests.shared_data import CASIA, casia_clip

pytestmark = pytest.mark.skipif(not CASIA.exists(), reason=f"CASIA-B clips not found at {CASIA}")


def whole_body_in_view(name: str) -> np.ndarray:
    """Per image: the walker is entirely inside it, judged against the empty-scene clip (no pose model)."""
    background = _median_image(casia_clip("001-bkgrd"))
    capture, inside = cv2.VideoCapture(str(casia_clip(name))), []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        moving = np.abs(image.astype(np.int16) - background).max(axis=2) > 40
        columns, rows = np.flatnonzero(moving.sum(0) > 3), np.flatnonzero(moving.sum(1) > 3)
        tall = len(rows) > 0 and rows[-1] - rows[0] > 0.35 * image.shape[0]
        clear = len(columns) > 0 and columns[0] > 5 and columns[-1] < image.shape[1] - 5
        inside.append(bool(tall and clear))
    return np.asarray(inside)


def _median_image(path: Path) -> np.ndarray:
    capture, images = cv2.VideoCapture(str(path)), []
    while (read := capture.read())[0]:
        images.append(read[1])
    return np.median(np.stack(images), axis=0).astype(np.int16)


def test_the_walker_is_found_in_most_images_where_the_whole_body_is_in_view():
    for name in ("001-nm-01", "002-nm-01", "004-nm-01"):
        inside = whole_body_in_view(name)
        found = np.array([frame.num_bodies > 0 for frame in RgbPoseSource(str(casia_clip(name)))])
        assert len(found) == len(inside) and inside.sum() > 20
        assert found[inside].mean() >= 0.9, f"{name}: walker found in {found[inside].mean():.0%} of in-view images"


@pytest.mark.slow
def test_subject_001s_normal_walks_are_closer_to_each_other_than_to_the_others():
    from engines.runtime.load import open_encoder
    from sensors.formats import read_file
    from stream.windows import track_windows

    encoder = open_encoder()

    def walk_mean(name: str) -> np.ndarray:
        parts = list(track_windows(read_file(casia_clip(name)), encoder.f, float(encoder.card["rate_hz"])))
        return encoder.encode(np.concatenate([p.windows for p in parts])).mean(0)

    own = np.stack([walk_mean(f"001-nm-0{i}") for i in range(1, 7)])
    others = np.stack([walk_mean(f"{s}-nm-01") for s in ("002", "003", "004", "006")])
    within = np.linalg.norm(own[:, None] - own[None], axis=2)[np.triu_indices(6, 1)]
    between = np.linalg.norm(own[:, None] - others[None], axis=2)
    assert within.mean() < between.mean()
    assert (np.sort(np.linalg.norm(own[:, None] - own[None], axis=2), 1)[:, 1] < between.min(1)).all()


@pytest.mark.slow
def test_the_camera_node_names_001_in_every_later_normal_walk(tmp_path: Path):
    gallery = tmp_path / "casia.db"
    gaitwatch("gallery", "create", gallery)
    gaitwatch("gallery", "enroll", gallery, casia_clip("001-nm-01"), casia_clip("001-nm-02"), "--name", "001")
    for subject in ("002", "003", "004", "006"):
        gaitwatch("gallery", "enroll", gallery, casia_clip(f"{subject}-nm-01"), "--name", subject)
    for walk in ("001-nm-03", "001-nm-04", "001-nm-05", "001-nm-06"):
        preview = tmp_path / f"{walk}.mp4"
        out = gaitwatch(
            "camera",
            "--source",
            casia_clip(walk),
            "--gallery",
            gallery,
            "--pub",
            "tcp://127.0.0.1:0",
            "--preview",
            preview,
        ).stdout
        ended = [line for line in out.splitlines() if " ended " in line]
        assert len(ended) == 1 and "ended    001," in ended[0], out
        frames = cv2.VideoCapture(str(preview)).get(cv2.CAP_PROP_FRAME_COUNT)
        assert f"preview: {int(frames)} frames" in out and frames > 90


@pytest.mark.slow
def test_a_site_threshold_without_labels_names_001_and_rejects_the_stranger_006(tmp_path: Path):
    """The cross-site check of docs/site.md: calibrated on the site's clips with no labels, judged with them."""
    gallery = tmp_path / "casia.db"
    gaitwatch("gallery", "create", gallery)
    for subject in ("001", "002", "003", "004"):
        gaitwatch("gallery", "enroll", gallery, casia_clip(f"{subject}-nm-01"), "--name", subject)
    walks = [f"001-nm-0{n}" for n in range(2, 7)] + ["006-nm-01"]
    site = tmp_path / "site"
    gaitwatch(
        "calibrate", "site", *[casia_clip(w) for w in walks], "--gallery", gallery, "--out", site, "--far", "0.01"
    )
    for walk in walks:
        out = gaitwatch(
            "camera", "--source", casia_clip(walk), "--gallery", gallery, "--pub", "tcp://127.0.0.1:0",
            "--threshold", site / "threshold.json", "--far", "0.01",
        ).stdout  # fmt: skip
        ended = [line for line in out.splitlines() if " ended " in line]
        expected = "ended    unknown," if walk.startswith("006") else "ended    001,"
        assert len(ended) == 1 and expected in ended[0], out


def test_bad_sources_and_models_are_one_clear_error(tmp_path: Path):
    with pytest.raises(InputError, match="no such video file"):
        RgbPoseSource(str(tmp_path / "absent.avi"))
    with pytest.raises(InputError, match="no such pose model"):
        RgbPoseSource(str(casia_clip("001-nm-01")), pose_model=tmp_path / "absent.task")
    broken = tmp_path / "broken.task"
    broken.write_bytes(b"not a model")
    with pytest.raises(InputError, match="cannot load this pose model"):
        list(RgbPoseSource(str(casia_clip("001-nm-01")), pose_model=broken))
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"not a video")
    gallery = tmp_path / "g.db"
    gaitwatch("gallery", "create", gallery)
    proc = gaitwatch("camera", "--source", junk, "--gallery", gallery, "--pub", "tcp://127.0.0.1:0", ok=False)
    assert_one_line_error(proc, "cannot open this camera, file or stream")


def test_a_recorded_clip_replays_to_the_same_person(tmp_path: Path):
    from sensors.formats import read_file

    out = tmp_path / "walk.gwrec"
    printed = gaitwatch("record", "--source", casia_clip("002-nm-01"), "--out", out).stdout
    recording = read_file(out)
    assert f"recorded {recording.num_frames} frames ({recording.num_body_frames} with a person" in printed
    assert recording.layout.name == "mediapipe_pose" and recording.num_body_frames > 50
    assert_one_line_error(
        gaitwatch("record", "--source", casia_clip("002-nm-01"), "--out", out, ok=False), "already exists"
    )


def test_one_camera_s_floor_fitted_from_three_walkers_agrees():
    """CASIA-B's side camera never moved: fitted from three people's clips (intrinsics from a guessed field
    of view, skeletons placed by ``calibration.placement``), its tilt and height must agree."""
    from calibration.floor import fit_floor
    from calibration.mapping import to_canonical
    from calibration.placement import placer
    from sensors.formats.video import read_video

    fits = [
        fit_floor([to_canonical(read_video(casia_clip(c), placer(None, 60.0)))], c)
        for c in ("001-nm-01", "002-nm-01", "003-nm-01")
    ]
    tilts, heights = [f.tilt_deg for f in fits], [f.offset for f in fits]
    assert max(tilts) - min(tilts) < 1.5, tilts
    assert max(heights) - min(heights) < 0.2 and min(heights) > 0.5 and max(heights) < 2.5, heights
    assert all(f.rms_m < 0.03 for f in fits)


def test_a_truncated_video_is_warned_about_in_one_line_naming_where_it_ended(tmp_path: Path):
    declared = int(cv2.VideoCapture(str(casia_clip("002-nm-01"))).get(cv2.CAP_PROP_FRAME_COUNT))
    data = casia_clip("002-nm-01").read_bytes()
    path = tmp_path / "cut.avi"
    path.write_bytes(data[: len(data) // 2])  # a copy or a recording that stopped half way
    proc = gaitwatch("info", path)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"warning: {path}: decoding stopped after image "), proc.stderr
    decoded = int(lines[0].split("after image ")[1].split()[0])
    assert 0.3 * declared < decoded < 0.7 * declared and f"of the {declared} the file declares" in lines[0]
    assert f"images={decoded}" in proc.stdout  # what was decoded is read


def test_a_video_with_no_decodable_image_is_one_clear_error(tmp_path: Path):
    data = casia_clip("002-nm-01").read_bytes()
    path = tmp_path / "empty.avi"
    path.write_bytes(data[: data.find(b"movi") + 8])  # the headers and the first image's chunk header: no image
    assert_one_line_error(gaitwatch("info", path, ok=False), str(path), "no image could be decoded")


def test_a_clip_runs_without_native_logging(tmp_path: Path):
    gallery = tmp_path / "g.db"
    gaitwatch("gallery", "create", gallery)
    gaitwatch("gallery", "enroll", gallery, casia_clip("001-nm-01"), "--name", "001")
    # a process of its own: MediaPipe and OpenCV write to file descriptor 2 directly, past sys.stderr
    proc = gaitwatch_process(
        "camera", "--source", casia_clip("001-nm-02"), "--gallery", gallery, "--pub", "tcp://127.0.0.1:0"
    )
    assert proc.stderr == "" and "ended    001," in proc.stdout, proc.stderr
    proc = gaitwatch_process("record", "--source", "7", "--out", tmp_path / "x.gwrec", ok=False)
    assert_one_line_error(proc, "7: OpenCV")


def test_a_preview_is_private_and_never_written_over_an_existing_file(tmp_path: Path):
    import os

    from stream.node.preview import PreviewWriter

    previous = os.umask(0o022)
    try:
        writer = PreviewWriter(tmp_path / "new.mp4", 25.0, (64, 48))
        writer.close()
    finally:
        os.umask(previous)
    assert (tmp_path / "new.mp4").stat().st_mode & 0o777 == 0o600
    source = tmp_path / "walk.mp4"
    source.write_bytes(b"the user's video")
    gallery = tmp_path / "g.db"
    gaitwatch("gallery", "create", gallery)
    camera = ("camera", "--source", source, "--gallery", gallery, "--preview", source, "--pub", "tcp://127.0.0.1:0")
    assert_one_line_error(gaitwatch(*camera, ok=False), "already exists")
    assert source.read_bytes() == b"the user's video"
