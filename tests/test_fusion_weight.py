"""Choosing the fusion weight from labelled walks (stream/fusion_weight.py) and reading it back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sensors.errors import InputError
from stream.fusion_weight import FORMAT, VERSION, WalkScores, best, read_weight, weigh

SCALES = (1.0, 1.0)


def test_where_silhouettes_order_the_pairs_better_the_weight_leans_to_them():
    walks = [  # skeletons put ana's walk nearer ben; silhouettes are clear for both
        WalkScores(1, {1: 0.6, 2: 0.5}, {1: 0.1, 2: 0.9}),
        WalkScores(2, {1: 0.9, 2: 0.2}, {1: 0.8, 2: 0.1}),
    ]
    rows = weigh(walks, SCALES)
    by_weight = {row["weight"]: row for row in rows}
    assert by_weight[1.0]["auc"] == pytest.approx(0.75) and by_weight[1.0]["nearest_right"] == 1
    assert by_weight[0.0]["auc"] == 1.0 and by_weight[0.0]["nearest_right"] == 2
    chosen = best(rows)
    assert by_weight[chosen]["auc"] == 1.0 and chosen < 1.0
    assert by_weight[chosen]["gap"] == max(r["gap"] for r in rows if r["auc"] == 1.0)


def test_channels_that_agree_keep_the_even_weight_and_strangers_count_as_impostors_only():
    walks = [WalkScores(1, {1: 0.1, 2: 0.9}, {1: 0.1, 2: 0.9}), WalkScores(None, {1: 0.8, 2: 0.7}, {1: 0.8, 2: 0.7})]
    rows = weigh(walks, SCALES)
    assert all(row["auc"] == 1.0 and row["gap"] == pytest.approx(0.6) for row in rows)  # every weight the same
    assert best(rows) == 0.5
    assert rows[0]["walks"] == 1 and len(rows[0]["impostor"]) == 3  # ben, and the stranger's two
    with pytest.raises(InputError, match="walks of enrolled people"):
        weigh([walks[1]], SCALES)


def test_the_weight_is_a_number_or_a_file_made_for_these_models(tmp_path: Path):
    assert read_weight("0.3") == 0.3
    for bad in ("1.5", "-0.1", "nan"):
        with pytest.raises(InputError, match="from 0 to 1"):
            read_weight(bad)
    with pytest.raises(InputError, match="neither a number nor a file"):
        read_weight(str(tmp_path / "missing.json"))
    path = tmp_path / "fusion.json"
    path.write_text(json.dumps({"format": FORMAT, "version": VERSION, "weight": 0.2,
                                "models": {"skeleton": "a" * 64, "silhouette": "b" * 64}}))  # fmt: skip
    assert read_weight(str(path), "a" * 64, "b" * 64) == 0.2
    with pytest.raises(InputError, match="another silhouette model"):
        read_weight(str(path), "a" * 64, "c" * 64)
    for text in (b"{not json", b'{"weight": ' + b"9" * 5000 + b"}", b"\xff\xfe"):
        path.write_bytes(text)
        with pytest.raises(InputError, match="not a fusion weight file"):
            read_weight(str(path))
    path.write_text(json.dumps({"format": "gaitwatch-threshold", "version": 2}))
    with pytest.raises(InputError, match="not a fusion weight file"):
        read_weight(str(path))
