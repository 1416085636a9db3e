"""``gaitwatch gallery ...`` end to end on the shipped model and the bundled demo recording."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("hnswlib", reason="hnswlib not installed")
pytest.importorskip("onnxruntime", reason="onnxruntime not installed")

from sensors.demo import demo_recording_path
from tests.test_cli import assert_one_line_error, gaitwatch


def listing(path: Path) -> list[dict]:
    return json.loads(gaitwatch("gallery", "list", path, "--json").stdout)


def test_gallery_commands_on_the_demo_recording(tmp_path: Path):
    path = tmp_path / "people.db"
    gaitwatch("gallery", "create", path)
    out = gaitwatch("gallery", "enroll", path, demo_recording_path(), "--attribute", "site=cmu", "--attribute", "k=")
    out = out.stdout
    assert "enrolled" in out and "of 26 tracks" in out
    people = listing(path)
    assert [p["name"] for p in people] == ["02", "05", "06", "07", "08", "10", "32", "38"]  # CMU subjects
    total = sum(p["embeddings"] for p in people)
    shown = json.loads(gaitwatch("gallery", "show", path, "05").stdout)
    assert shown["name"] == "05" and sum(s["embeddings"] for s in shown["sources"]) == shown["embeddings"]
    assert shown["attributes"]["site"] == "cmu" and shown["attributes"]["k"] == ""
    gaitwatch("gallery", "rename", path, "05", "Ana")
    gaitwatch("gallery", "remove", path, "Ana")
    assert {p["name"] for p in listing(path)} == {"02", "06", "07", "08", "10", "32", "38"}
    gaitwatch("gallery", "export", path, tmp_path / "people.npz")
    copy = tmp_path / "copy.db"
    gaitwatch("gallery", "create", copy)
    gaitwatch("gallery", "import", copy, tmp_path / "people.npz")
    assert [(p["name"], p["embeddings"]) for p in listing(copy)] == [
        (p["name"], p["embeddings"]) for p in listing(path)
    ]
    stats = json.loads(gaitwatch("gallery", "stats", path, "--json").stdout)
    assert stats["embeddings"] == total - shown["embeddings"] and stats["model"]["dim"] == 256


def test_gallery_errors_are_one_line(tmp_path: Path):
    assert_one_line_error(gaitwatch("gallery", "list", tmp_path / "none.db", ok=False), "no gallery here")
    path = tmp_path / "g.db"
    gaitwatch("gallery", "create", path)
    assert_one_line_error(gaitwatch("gallery", "create", path, ok=False), "already exists")
    assert_one_line_error(gaitwatch("gallery", "show", path, "nobody", ok=False), "no identity 'nobody'")
    assert_one_line_error(
        gaitwatch("gallery", "enroll", path, tmp_path / "missing.gwrec", ok=False), "missing.gwrec: no such file"
    )
    proc = gaitwatch("gallery", "enroll", path, demo_recording_path(), "--attribute", "site", ok=False)
    assert_one_line_error(proc, "--attribute 'site': expected KEY=VALUE")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"nope")
    assert_one_line_error(gaitwatch("gallery", "import", path, junk, ok=False), "not a gallery export")


def test_reembed_moves_a_gallery_to_another_model(tmp_path: Path):
    pytest.importorskip("onnxscript", reason="exporting the second model needs the 'train' extra")
    path = tmp_path / "people.db"
    gaitwatch("gallery", "create", path)
    gaitwatch("gallery", "enroll", path, demo_recording_path(), "--keep-windows")
    before = listing(path)
    raw = tmp_path / "raw.onnx"
    gaitwatch("export", "raw", "--out", raw)
    refused = gaitwatch("gallery", "enroll", path, demo_recording_path(), "--model", raw, ok=False)
    assert_one_line_error(refused, "filled by simmc-kgbd.onnx", "gaitwatch gallery reembed")
    gaitwatch("gallery", "reembed", path, "--model", raw)
    stats = json.loads(gaitwatch("gallery", "stats", path, "--json").stdout)
    assert stats["model"]["model_name"] == "raw.onnx" and stats["model"]["dim"] == 360
    assert listing(path) == before  # the same people and embedding counts, now in the new model's space
    gaitwatch("gallery", "enroll", path, demo_recording_path(), "--model", raw, "--name", "again")

    bare = tmp_path / "bare.db"
    gaitwatch("gallery", "create", bare)
    gaitwatch("gallery", "enroll", bare, demo_recording_path())  # windows not kept
    assert_one_line_error(gaitwatch("gallery", "reembed", bare, "--model", raw, ok=False), "--keep-windows")
