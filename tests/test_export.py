"""Compiled encoders: ONNX export with the normalisation inside, parity with torch, the model card and the backends."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxscript", reason="onnxscript (ONNX export) not installed: the 'train' extra")

from engines.export.artifact import PARITY_LIMIT, export_onnx_artifact
from engines.export.parity import parity_windows
from engines.model_card import card_path, read_card
from engines.runtime.base import check_windows
from engines.runtime.load import open_encoder
from engines.runtime.onnx_backend import OnnxRuntimeEncoder
from engines.runtime.torch_backend import TorchEncoder
from engines.train.loop import train
from sensors.errors import FormatError, InputError
from tests.helpers import assert_one_line_error, gaitwatch
from tests.synthetic_gait import synthetic_windows

SMALL = {
    "simmc": {"epochs": 1, "batch_size": 64},  # the real width (hidden 256): export must handle the full model
    "age": {"epochs": 1, "batch_size": 64, "hidden": 32},  # with its whitening fitted on the training windows
    "trackcon": {"epochs": 1, "steps_per_epoch": 5, "tracks_per_batch": 8},  # real width; its statistics inside
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A briefly trained checkpoint of each learned method, plus 'raw'."""
    windows, _ = synthetic_windows(people=6, windows_per_person=40)
    root = tmp_path_factory.mktemp("runs")
    paths: dict[str, Path] = {"raw": Path("raw")}
    for method, overrides in SMALL.items():
        paths[method] = train(
            method,
            windows,
            root / method,
            seed=0,
            description={"split": "kgbd:0", "layout": "kinect_v1", "rate_hz": 30.0},
            config_overrides=overrides,
            show_progress=False,
            tracks=np.arange(len(windows)) // 10,  # read by trackcon only
        )
    return paths


@pytest.fixture(scope="module")
def exported(checkpoints: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("onnx")
    return {name: _export(path, out / f"{name}.onnx") for name, path in checkpoints.items()}


def _export(model: Path, out: Path) -> Path:
    export_onnx_artifact(model, out)
    return out


@pytest.mark.parametrize("method", ["raw", "simmc", "age", "trackcon"])
@pytest.mark.parametrize("batch", [1, 7, 64])
def test_onnx_runtime_matches_torch(checkpoints, exported, method: str, batch: int):
    reference = open_encoder(checkpoints[method])
    artifact = open_encoder(exported[method])
    assert isinstance(artifact, OnnxRuntimeEncoder) and isinstance(reference, TorchEncoder)
    windows = parity_windows(batch, 6, seed=100 + batch)  # not the windows the exporter checked with
    expected, got = reference.encode(windows), artifact.encode(windows)
    assert got.shape == expected.shape == (batch, reference.embedding_dim)
    assert np.abs(got - expected).max() <= PARITY_LIMIT


def test_the_graph_carries_the_normalisation(exported):
    encoder = open_encoder(exported["simmc"])
    windows = parity_windows(5, 6)
    moved = windows + np.array([3.0, 0.2, -1.0], np.float32)  # the same walk elsewhere in the room
    np.testing.assert_allclose(encoder.encode(moved), encoder.encode(windows), atol=1e-4)


def test_model_card_describes_the_artifact(checkpoints, exported):
    card = read_card(exported["simmc"])
    assert card["method"] == "simmc" and card["f"] == 6 and card["embedding_dim"] == 256
    assert card["metric"] == "euclidean" and card["layout"] == "kinect_v1" and card["rate_hz"] == 30.0
    assert card["gaitwatch_version"] == version("gaitwatch")
    assert card["training"]["split"] == "kgbd:0" and card["training"]["epoch"] == 1
    assert card["file"]["bytes"] == exported["simmc"].stat().st_size
    assert card["parity"]["max_abs_diff"] <= PARITY_LIMIT and card["parity"]["batches"] == [1, 7, 64]
    assert read_card(exported["raw"])["training"] is None


def test_a_card_that_does_not_match_its_file_is_refused(exported, tmp_path: Path):
    copy = tmp_path / "m.onnx"
    copy.write_bytes(exported["simmc"].read_bytes()[:-1] + b"\0")
    card_path(copy).write_text(card_path(exported["simmc"]).read_text())
    with pytest.raises(FormatError, match=r"m\.onnx\.card\.json, file\.sha256"):
        open_encoder(copy)
    for text in (b'{"f": ' + b"9" * 5000 + b"}", b"\xff\xfe not text"):  # a number Python refuses; not UTF-8
        card_path(copy).write_bytes(text)
        with pytest.raises(FormatError, match=r"m\.onnx\.card\.json, text: not readable JSON"):
            open_encoder(copy)
    card_path(copy).unlink()
    with pytest.raises(InputError, match="no model card"):
        open_encoder(copy)


def test_a_corrupt_graph_is_one_clear_error(exported, tmp_path: Path):
    from engines.model_card import write_card

    broken = tmp_path / "broken.onnx"
    broken.write_bytes(exported["simmc"].read_bytes()[:1000])
    write_card(broken, {k: v for k, v in read_card(exported["simmc"]).items() if k not in ("file", "card_version")})
    with pytest.raises(FormatError, match=r"broken\.onnx, graph: ONNX Runtime cannot load it"):
        open_encoder(broken)


def test_bad_windows_are_refused_naming_what_is_wrong(exported):
    encoder = open_encoder(exported["simmc"])
    with pytest.raises(InputError, match=r"shape \[4, 6, 25, 3\], expected \[N, 6, 20, 3\]"):
        encoder.encode(np.zeros((4, 6, 25, 3), np.float32))
    windows = parity_windows(3, 6)
    windows[2, 4, 11, 1] = np.nan
    with pytest.raises(InputError, match=r"window 2 .* \(frame 4, joint 11\)"):
        encoder.encode(windows)
    assert encoder.encode(np.zeros((0, 6, 20, 3), np.float32)).shape == (0, 256)
    assert check_windows(parity_windows(1, 6)[0].astype(np.float64), 6, "x").shape == (1, 6, 20, 3)


@pytest.mark.filterwarnings("ignore:overflow encountered")  # the huge-but-finite case overflows x.x on purpose
def test_the_fast_finite_check_misses_nothing_and_refuses_nothing_finite():
    windows = parity_windows(5, 6)
    windows[3, 0, 19, 2] = -np.inf
    with pytest.raises(InputError, match=r"window 3 .* \(frame 0, joint 19\)"):
        check_windows(windows, 6, "x")
    huge = parity_windows(2, 6) * np.float32(1e30)  # x.x overflows to inf, yet every value is finite
    assert check_windows(huge, 6, "x") is not None
    with pytest.raises(InputError, match="dtype <U1"):
        check_windows(np.full((1, 6, 20, 3), "a"), 6, "x")
    strided = parity_windows(4, 6)[::2]  # not contiguous: copied, still checked
    strided_bad = strided.copy()
    strided_bad[1, 2, 3, 0] = np.nan
    assert check_windows(strided, 6, "x").flags.c_contiguous
    with pytest.raises(InputError, match=r"window 1 .* \(frame 2, joint 3\)"):
        check_windows(parity_windows(4, 6)[::2] + strided_bad - strided, 6, "x")


def test_unknown_files_and_missing_tensorrt_name_the_problem(tmp_path: Path):
    odd = tmp_path / "model.bin"
    odd.write_bytes(b"x")
    with pytest.raises(InputError, match=r"unknown model file type .\.bin."):
        open_encoder(odd)
    with pytest.raises(InputError, match="no such model file"):
        open_encoder(tmp_path / "absent.onnx")
    from engines.runtime.tensorrt_backend import tensorrt_missing

    reason = tensorrt_missing()
    if reason is None:
        pytest.skip("TensorRT runs here; tests/test_tensorrt.py covers it")
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"not an engine")
    with pytest.raises(InputError, match="cannot load a TensorRT engine here"):
        open_encoder(engine)


def test_export_command_writes_artifact_and_card(checkpoints, tmp_path: Path):
    out = tmp_path / "simmc.onnx"
    proc = gaitwatch("export", checkpoints["simmc"].parent, "--out", out)
    assert "parity with torch" in proc.stdout and proc.stderr == ""
    card = json.loads(card_path(out).read_text())
    assert card["format"] == "onnx" and card["file"]["name"] == "simmc.onnx"
    assert_one_line_error(gaitwatch("export", checkpoints["simmc"], "--out", tmp_path / "x.pt", ok=False), ".onnx")
    assert_one_line_error(
        gaitwatch("export", tmp_path / "absent", "--out", tmp_path / "y.onnx", ok=False), "no such model file"
    )


def test_tensorrt_export_without_tensorrt_says_why(checkpoints, tmp_path: Path):
    from engines.runtime.tensorrt_backend import tensorrt_missing

    if tensorrt_missing() is None:
        pytest.skip("TensorRT runs here; tests/test_tensorrt.py covers it")
    proc = gaitwatch("export", checkpoints["simmc"], "--format", "tensorrt", "--out", tmp_path / "m.engine", ok=False)
    assert_one_line_error(proc, "cannot build a TensorRT engine here")


@pytest.mark.slow
def test_bench_encoder_times_every_backend(checkpoints, exported, tmp_path: Path):
    out = tmp_path / "speed.json"
    model, checkpoint = exported["simmc"], checkpoints["simmc"]
    gaitwatch(
        "bench",
        "encoder",
        "--model",
        model,
        "--checkpoint",
        checkpoint,
        "--batches",
        "1",
        "3",
        "--seconds",
        "0.01",
        "--out",
        out,
    )
    report = json.loads(out.read_text())
    cells = {(t["backend"], t["batch"]) for t in report["timings"]}
    assert {("torch", 1), ("torch", 3), ("onnxruntime", 1), ("onnxruntime", 3)} <= cells
    assert all(t["calls"] >= 50 and 0 < t["p50_ms"] <= t["p99_ms"] for t in report["timings"])
    assert {r["batch"] for r in report["ratios"]} == {1, 3}
    for ratio in report["ratios"]:
        assert ratio["rounds"] >= 5 and ratio["speedup_p10"] <= ratio["speedup_vs_torch"] <= ratio["speedup_p90"]
    assert "| onnxruntime | cpu | 3 |" in out.with_suffix(".md").read_text()


def test_an_artifact_that_fails_parity_is_deleted_with_its_card(exported, tmp_path: Path):
    from engines.export.artifact import _accept

    copy = tmp_path / "m.onnx"
    copy.write_bytes(exported["raw"].read_bytes())
    card = {k: v for k, v in read_card(exported["raw"]).items() if k not in ("file", "card_version")}
    with pytest.raises(InputError, match=r"onnxruntime differs from torch by 1\.00e-03"):
        _accept(copy, card, "torch", "onnxruntime", 1e-3, PARITY_LIMIT)
    assert not copy.exists() and not card_path(copy).exists()
