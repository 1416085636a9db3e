"""Aligning a person's mask as the gait literature does: 64 rows tall, centred on the half-mass column, 64 x 44."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cv2", reason="OpenCV not installed (the rgb extra)")

from sensors.errors import InputError
from sensors.silhouette import HEIGHT, WIDTH, align, binary, bounding_box, cut_opengait, iou


def person(height: int = 240, width: int = 320, top: int = 40, left: int = 150, tall: int = 130, wide: int = 30):
    mask = np.zeros((height, width), np.uint8)
    mask[top : top + tall, left : left + wide] = 255
    return mask


def test_the_person_fills_the_64_rows_whatever_their_size_and_place():
    for tall, top, left in ((130, 40, 150), (60, 10, 5), (200, 20, 280)):
        crop = align(person(top=top, left=left, tall=tall, wide=tall // 4))
        assert crop.shape == (HEIGHT, WIDTH) and crop.dtype == np.uint8
        rows = np.flatnonzero(crop.max(axis=1) > 127)
        assert rows[0] == 0 and rows[-1] == HEIGHT - 1


def test_the_half_mass_column_is_the_crop_centre():
    mask = person(wide=20)
    mask[60:70, 170:200] = 255  # an arm out to the right: the centre moves less than the box's middle would
    crop = align(mask).astype(np.int64)
    mass = crop.sum(axis=0).cumsum()
    centre = int(np.searchsorted(mass, mass[-1] / 2))
    assert abs(centre - WIDTH // 2) <= 1


def test_scaling_keeps_the_aspect_ratio():
    crop = align(person(tall=128, wide=32))  # 4:1 -> 64 rows by 16 columns
    columns = np.flatnonzero(crop.max(axis=0) > 127)
    assert abs(len(columns) - 16) <= 1


def test_a_person_wider_than_the_crop_is_cut_at_its_sides_not_squeezed():
    crop = align(person(tall=64, wide=100))
    assert (crop[:, 0] > 127).all() and (crop[:, -1] > 127).all()


def test_no_person_is_none():
    assert align(np.zeros((240, 320), np.uint8)) is None
    speck = np.zeros((240, 320), np.uint8)
    speck[5:7, 5:7] = 255
    assert align(speck) is None


def test_probability_masks_and_0_255_masks_align_alike():
    mask = person()
    assert np.array_equal(align(mask.astype(np.float32) / 255), align(mask))


def test_a_mask_must_be_two_dimensional():
    with pytest.raises(InputError, match="expected \\[height, width\\]"):
        align(np.zeros((4, 4, 3), np.uint8))


def test_binary_thresholds_at_half_scale():
    assert binary(np.array([[0.2, 0.7]], np.float32)).tolist() == [[0, 255]]
    assert binary(np.array([[100, 200]], np.uint8)).tolist() == [[0, 255]]


def test_opengait_64_by_64_loses_10_columns_each_side():
    images = np.arange(2 * 64 * 64, dtype=np.int64).reshape(2, 64, 64).astype(np.uint8)
    assert np.array_equal(cut_opengait(images), images[:, :, 10:54])


def test_boxes_and_overlap():
    mask = person(top=40, left=150, tall=130, wide=30)
    assert bounding_box(mask) == (150, 40, 180, 170)
    assert iou(mask, mask) == 1.0
    other = person(top=40, left=165, tall=130, wide=30)
    assert iou(mask, other) == pytest.approx(15 / 45)
