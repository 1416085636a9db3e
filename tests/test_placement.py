"""Putting MediaPipe's hip-centred skeletons back in camera space from image landmarks and intrinsics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from calibration.placement import Intrinsics, place_bodies
from sensors.errors import InputError


def test_the_translation_is_recovered_from_a_pinhole_projection():
    rng = np.random.default_rng(0)
    k = Intrinsics.from_fov(640, 480, 60.0)
    world = rng.normal(scale=0.3, size=(2, 33, 3)).astype(np.float32)  # hip-centred bodies
    where = np.array([[0.4, -0.1, 3.0], [-1.2, 0.2, 5.5]], np.float32)  # metres in front of the camera
    camera = world + where[:, None, :]
    x, y, z = camera[..., 0], camera[..., 1], camera[..., 2]
    pixels = np.stack([k.fx * x / z + k.cx, k.fy * y / z + k.cy], -1)
    visibility = np.ones((2, 33), np.float32)
    visibility[1, :30] = 0.1  # body 1: only 3 joints visible, too few to place
    placed = place_bodies(world, pixels.astype(np.float32), visibility, k)
    np.testing.assert_allclose(placed[0], camera[0], atol=1e-4)
    assert np.isnan(placed[1]).all()


def test_intrinsics_from_a_field_of_view_and_from_a_file(tmp_path: Path):
    k = Intrinsics.from_fov(320, 240, 90.0)
    assert k.fx == pytest.approx(160.0) and (k.cx, k.cy) == (160.0, 120.0)
    path = tmp_path / "cam.json"
    path.write_text('{"fx": 500, "fy": 501, "cx": 320, "cy": 240}')
    assert Intrinsics.from_file(path) == Intrinsics(500.0, 501.0, 320.0, 240.0)
    path.write_text('{"fx": 500}')
    with pytest.raises(InputError, match=r"cam\.json: expected a JSON object with numbers fx, fy, cx, cy"):
        Intrinsics.from_file(path)
    with pytest.raises(InputError, match="field of view"):
        Intrinsics.from_fov(320, 240, 200.0)


def test_the_camera_options_pick_intrinsics_in_one_order(tmp_path: Path):
    from calibration.placement import placer_for

    rng = np.random.default_rng(1)
    world = rng.normal(scale=0.3, size=(1, 33, 3)).astype(np.float32)
    pixels = rng.uniform(100, 300, size=(1, 33, 2)).astype(np.float32)
    visibility = np.ones((1, 33), np.float32)
    file_k, stored = Intrinsics(500.0, 500.0, 320.0, 240.0), Intrinsics(900.0, 900.0, 300.0, 200.0)
    path = tmp_path / "cam.json"
    path.write_text('{"fx": 500, "fy": 500, "cx": 320, "cy": 240}')

    def placed(place, k=None):
        return place(world, pixels, visibility, (640, 480)) if k is None else place_bodies(world, pixels, visibility, k)

    fov_k = Intrinsics.from_fov(640, 480, 70.0)
    np.testing.assert_array_equal(placed(placer_for(path, 70.0, stored)), placed(None, file_k))
    np.testing.assert_array_equal(placed(placer_for(None, 70.0, stored)), placed(None, fov_k))
    np.testing.assert_array_equal(placed(placer_for(None, None, stored)), placed(None, stored))
    assert placer_for(None, None, None) is None
