"""``gaitwatch eval MODEL --silhouettes DATA``: the CASIA-B protocol on a synthetic tree in CASIA-B's PNG layout,
the walks protocol on a small set like the product's own extractions, their tables and JSON, their refusals.

The model is an untrained SelfGait backbone exported with its card: the properties checked hold for any
deterministic encoder (a sequence identical to the gallery's is at distance 0), so no training is needed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="torch not installed (the train extra)")
pytest.importorskip("onnxscript", reason="onnxscript not installed (the train extra)")
pytest.importorskip("cv2", reason="OpenCV not installed (the rgb extra)")

import torch

from engines.export.silhouette_onnx import export_silhouette_onnx
from engines.model_card import write_card
from engines.models.selfgait import SelfGaitBackbone
from engines.runtime.load import SHIPPED_MODEL, SHIPPED_SILHOUETTE_MODEL
from sensors.formats.opengait_pkl import write_pkl
from sensors.silhouette import align
from tests.helpers import assert_one_line_error, gaitwatch
from tests.silhouette_tree import VIEWS, frame, write_png_tree

WALKERS = {"001": 0, "002": 2, "003": 4, "004": 6, "006": 8}  # the shared clips' five people, one view


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    backbone = SelfGaitBackbone(f=8, dim=8).eval()
    out = export_silhouette_onnx(backbone, tmp_path_factory.mktemp("model") / "untrained.onnx")
    card = {"method": "selfgait", "f": 8, "rate_hz": 25.0, "layout": "silhouette_64x44"}
    write_card(out, {**card, "embedding_dim": backbone.embedding_dim, "metric": "euclidean", "training": None})
    return out


@pytest.fixture(scope="module")
def casia(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("casia") / "GaitDatasetB-silh"
    write_png_tree(root, {"001": 0, "075": 0, "080": 3, "099": 6}, frames=4)  # 001: a training subject
    return root.parent


def sequence(build: int, condition: str, frames: int) -> np.ndarray:
    return np.stack([align(frame(build, condition, "090", step % 3)) for step in range(frames)])


@pytest.fixture(scope="module")
def walks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """OpenGait pickles as ``silhouettes extract`` writes them: nm-01, nm-02, bg-01, cl-01 per walker, one view."""
    root = tmp_path_factory.mktemp("walks")
    for subject, build in WALKERS.items():
        for kind in ("nm-01", "nm-02", "bg-01", "cl-01"):
            write_pkl(root / subject / kind / "090" / "090.pkl", sequence(build, kind[:2], 6))
    write_pkl(root / "006" / "cl-02" / "090" / "090.pkl", sequence(8, "cl", 1))  # too short to encode
    return root


def table_rows(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines() if line.startswith("| ")]


def test_casia_b_is_the_default_on_a_casia_tree_and_its_table_and_json_agree(model: Path, casia: Path, tmp_path):
    ran = gaitwatch("eval", model, "--silhouettes", casia, "--out", tmp_path)
    assert "protocol casia-b (default: CASIA-B test subjects (075-124) present)" in ran.stdout
    (result,) = json.loads((tmp_path / "results.json").read_text())["runs"]
    assert result["protocol"] == "casia-b" and result["backend"] == "onnxruntime" and result["method"] == "selfgait"
    assert result["sequences"] == 3 * 10 * len(VIEWS)  # only the test subjects are read: 001 is not
    assert result["probes"] == {"NM": 2 * 3 * 3, "BG": 2 * 3 * 3, "CL": 2 * 3 * 3}
    # NM probes are the gallery's very images on other views (alignment undoes the view's shift): all named
    assert result["mean"]["NM"] == 100.0
    header, _, *rows = table_rows(ran.stdout)
    assert header == ["probe", *VIEWS, "mean"]
    for condition, *cells, mean in rows:
        assert cells == [f"{result['rank1'][condition][v]:.1f}" for v in VIEWS]
        assert mean == f"{result['mean'][condition]:.1f}"
        assert result["mean"][condition] == pytest.approx(np.mean(list(result["rank1"][condition].values())))
    assert [r[0] for r in rows] == ["NM", "BG", "CL"]


def test_walks_names_each_probe_nearest_subject_and_its_scores_follow_from_the_ranks(
    model: Path, walks: Path, tmp_path
):
    ran = gaitwatch("eval", model, "--silhouettes", walks, "--out", tmp_path)
    assert "protocol walks (default: no CASIA-B test subjects (075-124))" in ran.stdout
    assert "left out 1 sequences of under 2 silhouettes" in ran.stdout
    (result,) = json.loads((tmp_path / "results.json").read_text())["runs"]
    assert result["protocol"] == "walks" and result["skipped_short"] == ["006/cl-02/090"]
    assert result["gallery"] == {s: f"{s}/nm-01/090" for s in WALKERS}  # nm-01, though bg-01 sorts first
    probes = {p["probe"]: p for p in result["probes"]}
    assert set(probes) == {f"{s}/{k}/090" for s in WALKERS for k in ("nm-02", "bg-01", "cl-01")}
    for subject in WALKERS:  # nm-02 is nm-01 again: at distance 0 from its own gallery
        same = probes[f"{subject}/nm-02/090"]
        assert same["nearest"] == subject and same["rank"] == 1 and same["distance"] == pytest.approx(0, abs=1e-3)
    ranks = np.array([p["rank"] for p in result["probes"]])
    assert ranks.max() > 1  # a coat makes a walker look like a broader one: the scores below are not all 100
    assert all((p["rank"] == 1) == (p["nearest"] == p["probe"][:3]) for p in result["probes"])
    assert result["rank1"] == pytest.approx(100 * np.mean(ranks == 1))
    assert result["mAP"] == pytest.approx(100 * np.mean(1 / ranks))  # one gallery sequence per subject
    rows = table_rows(ran.stdout)[2:]
    assert rows == [[p["probe"], p["nearest"], f"{p['distance']:.4f}", str(p["rank"])] for p in result["probes"]]
    summary = re.search(r"rank-1 ([\d.]+) %, mAP ([\d.]+) % \(15 probes, 5 gallery subjects\)", ran.stdout)
    assert summary and summary.groups() == (f"{result['rank1']:.1f}", f"{result['mAP']:.1f}")


def test_the_protocol_can_be_asked_for(model: Path, casia: Path, walks: Path, tmp_path: Path):
    ran = gaitwatch("eval", model, "--silhouettes", casia, "--protocol", "walks", "--out", tmp_path)
    assert "protocol walks (asked)" in ran.stdout
    (result,) = json.loads((tmp_path / "results.json").read_text())["runs"]
    assert sorted(result["gallery"]) == ["001", "075", "080", "099"]  # every subject, training ones too
    assert len(result["probes"]) == 4 * 10 * len(VIEWS) - 4
    refused = gaitwatch("eval", model, "--silhouettes", walks, "--protocol", "casia-b", ok=False)
    assert_one_line_error(refused, "no CASIA-B test-subject (075-124) sequences")


def test_without_a_model_the_shipped_silhouette_model_is_scored(walks: Path):
    if not SHIPPED_SILHOUETTE_MODEL.is_file():
        pytest.skip(f"{SHIPPED_SILHOUETTE_MODEL} is not in this tree")
    ran = gaitwatch("eval", "--silhouettes", walks)
    assert f"{SHIPPED_SILHOUETTE_MODEL} (onnxruntime) on {walks}: protocol walks" in ran.stdout
    assert "15 probes, 5 gallery subjects" in ran.stdout


def test_bad_folders_models_and_options_are_one_line_errors(model: Path, walks: Path, tmp_path: Path):
    def refused(*args: str | Path) -> object:
        return gaitwatch("eval", *args, ok=False)

    assert_one_line_error(refused(model, "--silhouettes", tmp_path / "absent"), "absent", "no such folder")
    (tmp_path / "empty" / "001" / "nm-01" / "090").mkdir(parents=True)
    assert_one_line_error(refused(model, "--silhouettes", tmp_path / "empty"), "no .png or .pkl")
    write_pkl(tmp_path / "short" / "001" / "nm-01" / "090" / "090.pkl", sequence(1, "nm", 1))
    assert_one_line_error(refused(model, "--silhouettes", tmp_path / "short"), "no sequence of 2 or more")
    assert_one_line_error(refused(SHIPPED_MODEL, "--silhouettes", walks), "is a skeleton encoder (layout kinect_v1)")
    assert_one_line_error(refused(model, "--silhouettes", walks, "--split", "kgbd:0"), "--split")
    assert_one_line_error(refused(model, "--protocol", "walks", "--data", tmp_path), "--protocol", "--silhouettes")
    assert_one_line_error(refused(model), "--data", "--silhouettes")
    assert not (tmp_path / "results.json").exists()
