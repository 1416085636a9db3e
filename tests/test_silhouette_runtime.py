"""Silhouette encoders at run time: the input check, ONNX Runtime and torch computing the same, skeleton and
silhouette openers refusing each other's artifacts, and ``gaitwatch export`` of a selfgait run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="torch not installed (the train extra)")
pytest.importorskip("onnxscript", reason="onnxscript not installed (the train extra)")
pytest.importorskip("cv2", reason="OpenCV not installed (the rgb extra)")

from engines.export.selfgait_artifact import export_selfgait
from engines.runtime.load import (
    SHIPPED_CHECKPOINT,
    SHIPPED_MODEL,
    SHIPPED_SILHOUETTE_MODEL,
    open_encoder,
    open_silhouette_encoder,
    shipped_silhouette_model,
)
from engines.runtime.silhouette_backend import CHUNK, SMALL_CALL, check_silhouettes
from engines.train.selfgait_run import train_selfgait
from sensors.errors import InputError
from sensors.formats.opengait_pkl import write_pkl
from tests.helpers import assert_one_line_error, gaitwatch
from tests.test_selfgait import walk

TINY = {"frames": 3, "batch_size": 3, "dim": 8, "hidden": 32, "projection": 16, "steps_per_epoch": 1, "epochs": 1}


@pytest.fixture(scope="module")
def walkers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three synthetic walkers as OpenGait pickles (quick to read)."""
    data = tmp_path_factory.mktemp("walkers")
    for subject, build in (("001", 0), ("002", 2), ("003", 4)):
        write_pkl(data / subject / "nm-01" / "090" / "090.pkl", walk(build, 8))
    return data


@pytest.fixture(scope="module")
def run(walkers: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-step seeded selfgait run (training costs ~3 s; its export in ``onnx`` ~12 s)."""
    out = tmp_path_factory.mktemp("run")
    train_selfgait(walkers, out, seed=1, config_overrides=TINY, show_progress=False)
    return out


@pytest.fixture(scope="module")
def onnx(run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "selfgait.onnx"
    export_selfgait(run, out)
    return out


def refusal(call, *needles: str) -> str:
    """The one-line InputError ``call()`` raises, checked to hold every needle."""
    with pytest.raises(InputError) as raised:
        call()
    message = str(raised.value)
    assert "\n" not in message and all(n in message for n in needles), message
    return message


def test_windows_are_checked_to_uint8_n_t_64_44_and_refused_in_one_line_naming_the_source():
    one = walk(1, 5)
    assert check_silhouettes(one, "cam").shape == (1, 5, 64, 44)
    strided = np.stack([walk(1, 5), walk(2, 5)])[:, ::2]
    checked = check_silhouettes(strided, "cam")
    assert checked.flags.c_contiguous and checked.dtype == np.uint8 and np.array_equal(checked, strided)
    mask = np.zeros((2, 3, 64, 44), bool)
    mask[0, 1, 10, 10] = True
    as_bytes = check_silhouettes(mask, "cam")
    assert as_bytes.dtype == np.uint8 and as_bytes[0, 1, 10, 10] == 255 and as_bytes.sum() == 255
    expected = "[N, T, 64, 44]"
    refusal(lambda: check_silhouettes(np.zeros((64, 44), np.uint8), "cam"), "cam:", expected, "[64, 44]")
    refusal(lambda: check_silhouettes(np.zeros((1, 5, 64, 64), np.uint8), "cam:"), expected, "[1, 5, 64, 64]")
    refusal(lambda: check_silhouettes(np.zeros((2, 1, 64, 44), np.uint8), "cam"), "cam:", "1 frames", "T >= 2")
    refusal(lambda: check_silhouettes(one.astype(np.float32), "cam"), "cam:", "aligned silhouettes are uint8 0..255")
    refusal(lambda: check_silhouettes(one.astype(np.int64), "cam"), "cam:", "int64")


def test_onnx_runtime_and_torch_compute_the_same_embeddings_for_any_batch_and_length(run: Path, onnx: Path):
    compiled, reference = open_silhouette_encoder(onnx), open_silhouette_encoder(run)
    assert (compiled.backend, reference.backend) == ("onnxruntime", "torch")
    assert compiled.f == reference.f == TINY["frames"] and reference.path == run / "model.pt"
    assert compiled.embedding_dim == reference.embedding_dim == (31 + 16) * TINY["dim"]
    assert compiled.card["layout"] == reference.card["layout"] == "silhouette_64x44"
    windows = np.stack([walk(0, 20), walk(3, 20), walk(5, 20)])
    got, expected = compiled.encode(windows), reference.encode(windows)
    assert got.dtype == expected.dtype == np.float32 and got.shape == (3, compiled.embedding_dim)
    assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()
    assert not np.allclose(got[0], got[1])  # different builds, different embeddings
    # a bulk call (threaded session, several chunks) gives each window what it gets alone
    long = np.stack([walk(b, 200) for b in range(3)])
    assert long.shape[0] * long.shape[1] > CHUNK > SMALL_CALL
    bulk = compiled.encode(long)
    alone = np.concatenate([compiled.encode(w) for w in long])
    assert np.abs(bulk - alone).max() <= 1e-5 * np.abs(alone).max()
    assert compiled.encode(np.zeros((0, 4, 64, 44), np.uint8)).shape == (0, compiled.embedding_dim)
    refusal(lambda: compiled.encode(walk(1, 9).astype(float)), str(onnx), "uint8 0..255")


def test_skeleton_and_silhouette_openers_refuse_each_others_artifacts(
    run: Path, onnx: Path, walkers: Path, tmp_path: Path
):
    refusal(lambda: open_encoder(onnx), str(onnx), "is a silhouette encoder", "skeleton channel")
    refusal(lambda: open_encoder(run), "model.pt", "is a silhouette encoder (method selfgait)")
    needles = ("is a skeleton encoder (layout kinect_v1)", "needs a silhouette encoder (a selfgait .onnx or run)")
    refusal(lambda: open_silhouette_encoder(SHIPPED_MODEL), str(SHIPPED_MODEL), *needles)
    refusal(lambda: open_silhouette_encoder(SHIPPED_CHECKPOINT), str(SHIPPED_CHECKPOINT), *needles)
    refusal(lambda: open_silhouette_encoder("raw"), "raw", *needles)
    engine = tmp_path / "selfgait.engine"
    engine.write_bytes(b"not built here")
    refusal(lambda: open_silhouette_encoder(engine), "TensorRT", "not built", ".onnx")
    refusal(lambda: open_silhouette_encoder(tmp_path / "absent.onnx"), "no such model file")
    assert open_encoder(SHIPPED_MODEL).card["layout"] == "kinect_v1"  # skeleton artifacts still open
    # the same refusals on the command line, before any data is read
    refused = gaitwatch("eval", onnx, "--data", tmp_path / "no-kgbd.zip", ok=False)
    assert_one_line_error(refused, "is a silhouette encoder")
    refused = gaitwatch("eval", SHIPPED_MODEL, "--silhouettes", walkers, ok=False)
    assert_one_line_error(refused, "is a skeleton encoder")


def test_the_shipped_silhouette_model_opens_encodes_and_its_absence_is_one_line(monkeypatch, tmp_path: Path):
    import engines.runtime.load as load

    assert shipped_silhouette_model() == SHIPPED_SILHOUETTE_MODEL
    shipped = open_silhouette_encoder(None)  # shipped with the package: it must be there
    assert shipped.card["method"] == "selfgait" and shipped.card["layout"] == "silhouette_64x44"
    window = (np.random.default_rng(0).random((2, shipped.f, 64, 44)) < 0.3).astype(np.uint8) * 255
    out = shipped.encode(window)
    assert out.shape == (2, shipped.card["embedding_dim"]) and np.isfinite(out).all()
    monkeypatch.setattr(load, "SHIPPED_SILHOUETTE_MODEL", tmp_path / "gone.onnx")
    refusal(lambda: load.open_silhouette_encoder(None), "shipped silhouette model is missing")


def test_gaitwatch_export_writes_a_selfgait_artifact_and_refuses_what_does_not_apply(run: Path, tmp_path: Path):
    out = tmp_path / "exported.onnx"
    ran = gaitwatch("export", run, "--out", out)
    assert "parity with torch: max relative difference" in ran.stdout
    card = json.loads((tmp_path / "exported.onnx.card.json").read_text())
    assert card["method"] == "selfgait" and card["layout"] == "silhouette_64x44" and card["f"] == TINY["frames"]
    assert card["input"]["dtype"] == "uint8" and card["parity"]["max_relative_diff"] <= 1e-4
    windows = np.stack([walk(2, 12), walk(4, 12)])
    got, expected = open_silhouette_encoder(out).encode(windows), open_silhouette_encoder(run).encode(windows)
    assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()
    engine = tmp_path / "x.engine"
    assert_one_line_error(gaitwatch("export", run, "--format", "tensorrt", "--out", engine, ok=False), "TensorRT")
    refused = gaitwatch("export", run, "--out", tmp_path / "y.onnx", "--data", tmp_path, ok=False)
    assert_one_line_error(refused, "--data", "--silhouettes")
    assert_one_line_error(gaitwatch("export", out, "--out", tmp_path / "z.onnx", ok=False), "model.pt")
    assert not engine.exists() and not (tmp_path / "y.onnx").exists() and not (tmp_path / "z.onnx").exists()


def test_fine_tuning_options_are_refused_for_skeleton_methods(tmp_path: Path):
    for option in (["--finetune", tmp_path], ["--labelled-fraction", "0.5"]):
        refused = gaitwatch(
            "train", "trackcon", "--data", tmp_path, "--split", "kgbd:0", "--out", tmp_path, *option, ok=False
        )
        assert_one_line_error(refused, "--finetune and --labelled-fraction are selfgait's")
