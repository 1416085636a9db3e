"""``gaitwatch gallery ...`` end to end on the shipped model and the bundled demo recording."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sensors.demo import demo_recording_path
from tests.helpers import assert_one_line_error, gaitwatch


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
    assert stats["embeddings"] == total - shown["embeddings"] and stats["model"]["dim"] == 128
    assert stats["tracks"] > 0 and stats["track_index"] == "exact"


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


@pytest.mark.slow
def test_reembed_moves_a_gallery_to_another_model(tmp_path: Path):
    pytest.importorskip("onnxscript", reason="exporting the second model needs the 'train' extra")
    path = tmp_path / "people.db"
    gaitwatch("gallery", "create", path)
    gaitwatch("gallery", "enroll", path, demo_recording_path(), "--keep-windows")
    before = listing(path)
    raw = tmp_path / "raw.onnx"
    gaitwatch("export", "raw", "--out", raw)
    refused = gaitwatch("gallery", "enroll", path, demo_recording_path(), "--model", raw, ok=False)
    assert_one_line_error(refused, "filled by trackcon-kgbd.onnx", "gaitwatch gallery reembed")
    gaitwatch("gallery", "reembed", path, "--model", raw)
    stats = json.loads(gaitwatch("gallery", "stats", path, "--json").stdout)
    assert stats["model"]["model_name"] == "raw.onnx" and stats["model"]["dim"] == 360
    assert listing(path) == before  # the same people and embedding counts, now in the new model's space
    gaitwatch("gallery", "enroll", path, demo_recording_path(), "--model", raw, "--name", "again")

    bare = tmp_path / "bare.db"
    gaitwatch("gallery", "create", bare)
    gaitwatch("gallery", "enroll", bare, demo_recording_path())  # windows not kept
    assert_one_line_error(gaitwatch("gallery", "reembed", bare, "--model", raw, ok=False), "--keep-windows")


def test_a_gallery_of_the_earlier_default_model_is_told_which_shipped_file_it_needs(tmp_path: Path):
    """A gallery filled before the default changed: the error names the shipped file that still opens it."""
    from engines.runtime.load import SHIPPED_TRACKCON_V1, shipped_model

    path = tmp_path / "people.db"
    gaitwatch("gallery", "create", path, "--model", SHIPPED_TRACKCON_V1)
    gaitwatch("gallery", "enroll", path, demo_recording_path(), "--model", SHIPPED_TRACKCON_V1)
    replay = ("replay", demo_recording_path(), "--gallery", path, "--speed", "max", "--pub", "tcp://127.0.0.1:0")
    refused = gaitwatch(*replay, ok=False)  # the default model is another one now
    assert_one_line_error(refused, f"--model {SHIPPED_TRACKCON_V1}", "gaitwatch gallery reembed")
    assert shipped_model() != SHIPPED_TRACKCON_V1
    assert " ended " in gaitwatch(*replay, "--model", SHIPPED_TRACKCON_V1).stdout


def _fake_gallery(path: Path, names: list[str]) -> Path:
    """A small gallery (a stand-in model, D = 16) for the commands that need no encoder."""
    from stream.gallery.gallery import Gallery
    from tests.helpers import card, fill, people

    gallery = Gallery.create(path, card())
    vectors, labels = people(len(names), 4)
    fill(gallery, vectors, labels)
    for identity, name in enumerate(names, start=1):
        gallery.rename(identity, name)
    gallery.close()
    return path


def test_importing_an_export_again_adds_nothing(tmp_path: Path):
    source = _fake_gallery(tmp_path / "a.db", ["Ana", "Bo", "Cy"])
    export = tmp_path / "a.npz"
    gaitwatch("gallery", "export", source, export)
    target = _fake_gallery(tmp_path / "b.db", ["Di"])
    assert "imported 3 identities, 12 embeddings" in gaitwatch("gallery", "import", target, export).stdout
    again = gaitwatch("gallery", "import", target, export).stdout
    assert "imported 0 identities" in again and "skipped 3 already here (Ana, Bo, Cy)" in again
    assert [p["name"] for p in listing(target)] == ["Di", "Ana", "Bo", "Cy"]
    # through another gallery: b's copies keep their origin in a, so a's export brings nothing new to c
    gaitwatch("gallery", "export", target, tmp_path / "b.npz")
    third = _fake_gallery(tmp_path / "c.db", ["Ed"])
    gaitwatch("gallery", "import", third, tmp_path / "b.npz")
    assert "skipped 3 already here" in gaitwatch("gallery", "import", third, export).stdout
    assert "skipped 3 already here" in gaitwatch("gallery", "import", source, export).stdout  # into itself
    assert sorted(p["name"] for p in listing(third)) == ["Ana", "Bo", "Cy", "Di", "Ed"]


def test_identity_references_are_unambiguous_on_the_command_line(tmp_path: Path):
    path = _fake_gallery(tmp_path / "g.db", ["02", "1", "Bo"])
    assert json.loads(gaitwatch("gallery", "show", path, "02").stdout)["id"] == 1
    proc = gaitwatch("gallery", "remove", path, "1", ok=False)
    assert_one_line_error(proc, "'1' is the name of identity 2 and the id of identity 1", "name:1 or id:1")
    gaitwatch("gallery", "rename", path, "name:1", "Cy")
    gaitwatch("gallery", "remove", path, "id:1")
    assert [p["name"] for p in listing(path)] == ["Cy", "Bo"]
    huge = "9" * 20
    assert_one_line_error(gaitwatch("gallery", "show", path, f"id:{huge}", ok=False), "not an identity id")
    for missing in (huge, "9" * 5000, "id:abc", "name:"):  # never a conversion error or a traceback
        assert_one_line_error(gaitwatch("gallery", "show", path, missing, ok=False))


def test_enrolling_nothing_is_an_error_and_writes_nothing(tmp_path: Path):
    import numpy as np

    from sensors.formats.gwrec import write_recording
    from sensors.layouts import KINECT_V1
    from sensors.recording import Recording

    path = tmp_path / "g.db"
    proc = gaitwatch("gallery", "enroll", path, demo_recording_path(), ok=False)
    assert_one_line_error(proc, "no gallery here", "gaitwatch gallery create")
    assert not list(tmp_path.iterdir())  # a mistyped gallery is never made
    gaitwatch("gallery", "create", path)
    unseen = tmp_path / "unseen.gwrec"  # a person whose joints are never all seen
    write_recording(unseen, Recording.single_body(KINECT_V1, np.full((12, 20, 3), np.nan, np.float32), 30.0))
    empty = tmp_path / "empty.gwrec"  # frames, nobody in them
    frames = np.arange(30)
    nobody = (np.zeros(31, np.int64), np.zeros(0, np.int64), np.zeros((0, 20, 3), np.float32), np.zeros((0, 20)))
    write_recording(empty, Recording(KINECT_V1, frames / 30.0, frames, *nobody, rate_hz=30.0))
    before = path.read_bytes()
    for clip in (unseen, empty):
        proc = gaitwatch("gallery", "enroll", path, demo_recording_path(), clip, "--name", "x", ok=False)
        assert_one_line_error(proc, f"{clip.name}: nothing to enroll", "nothing was written")
    assert listing(path) == [] and path.read_bytes() == before


def test_exports_are_private_under_the_usual_umask(tmp_path: Path):
    import os

    path = _fake_gallery(tmp_path / "g.db", ["Ana"])
    previous = os.umask(0o022)
    try:
        gaitwatch("gallery", "export", path, tmp_path / "g.npz")
    finally:
        os.umask(previous)
    assert (tmp_path / "g.npz").stat().st_mode & 0o777 == 0o600
    before = (tmp_path / "g.npz").read_bytes()
    for existing in (tmp_path / "g.npz", path):  # never overwritten: not an earlier export, not the gallery itself
        assert_one_line_error(gaitwatch("gallery", "export", path, existing, ok=False), "already exists")
    assert (tmp_path / "g.npz").read_bytes() == before and gaitwatch("gallery", "list", path).stdout


def test_a_listing_piped_into_a_reader_that_leaves_early_ends_quietly(tmp_path: Path):
    """``gaitwatch gallery list big.db | head -1``: the reader's leaving is no error."""
    import subprocess

    from stream.gallery.store import GalleryStore
    from tests.helpers import GAITWATCH, card

    path = tmp_path / "big.db"
    store = GalleryStore(path, card(), create=True)
    with store.transaction():
        for i in range(5000):
            store.add_identity(f"person {i}")
    store.close()
    proc = subprocess.Popen([str(GAITWATCH), "gallery", "list", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline().split()[0] == b"id"
    proc.stdout.close()  # the reader leaves
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and err == b""
