"""Site adaptation: statistics re-estimated on the site, a short fine-tune, an artifact a gallery can move onto."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxscript", reason="onnxscript (ONNX export) not installed: the 'train' extra")

from engines.adapt import BalancedDraw, adapt_checkpoint, reestimate_statistics
from engines.checkpoint import encoder_from, load
from engines.model_card import read_card
from engines.models.trackcon import mirrored
from engines.train.loop import train
from sensors.errors import InputError
from sensors.formats.gwrec import write_recording
from stream.gallery.location import gallery_location, open_store
from stream.node.demo import demo_split
from tests.helpers import assert_one_line_error, gaitwatch
from tests.small_trackcon import small_trackcon
from tests.synthetic_gait import synthetic_windows

DEMO = Path(__file__).resolve().parents[1] / "sensors" / "data" / "demo-cmu-walks.gwrec"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_trackcon(tmp_path_factory.mktemp("run"))


def _site(seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Another sensor: bodies 10 % larger, seen 0.3 m higher, by other people."""
    windows, _ = synthetic_windows(people=5, windows_per_person=16, seed=seed)
    windows = windows * 1.1 + np.array([0.0, 0.3, 0.0], np.float32)
    return windows.astype(np.float32), np.arange(len(windows)) // 8


def test_statistics_are_the_site_s_own_after_adaptation(checkpoint: Path):
    original = load(checkpoint)
    windows, tracks = _site()
    adapted = adapt_checkpoint(original, windows, tracks, steps=0, show_progress=False)
    encoder = encoder_from(adapted, checkpoint)
    seen = torch.from_numpy(windows)
    if encoder.symmetric:  # the statistics describe every window the model embeds: each and its mirror image
        seen = torch.cat([seen, mirrored(seen)])
    features = encoder.features(seen)
    torch.testing.assert_close(encoder.input_statistics.running_mean, features.mean(0), atol=1e-4, rtol=1e-4)
    before = encoder_from(original, checkpoint).input_statistics.running_mean
    assert not torch.allclose(before, encoder.input_statistics.running_mean, atol=1e-3)
    # nothing learned moved with statistics only, and the input checkpoint was left as it was
    for name, value in original["model_state"].items():
        if "running" not in name and "num_batches" not in name:
            torch.testing.assert_close(adapted["model_state"][name], value, rtol=0, atol=0, msg=name)
    assert "adaptation" not in original and adapted["adaptation"]["steps"] == 0


def test_fine_tuning_moves_the_weights_and_records_what_it_did(checkpoint: Path):
    original = load(checkpoint)
    windows, tracks = _site()
    adapted = adapt_checkpoint(original, windows, tracks, steps=5, show_progress=False)
    first = "mlp.0.weight"
    key = next(k for k in original["model_state"] if k.endswith(first))
    assert not torch.equal(adapted["model_state"][key], original["model_state"][key])
    info = adapted["adaptation"]
    assert info["tracks"] == 10 and info["windows"] == len(windows) and info["from"]["split"] == "kgbd:0"


def _background() -> tuple[np.ndarray, np.ndarray]:
    """People who are none of the site's: 4 of them, 2 tracks of 8 windows each."""
    windows, _ = synthetic_windows(people=4, windows_per_person=16, seed=11)
    return windows.astype(np.float32), np.arange(len(windows)) // 8 + 100  # any track numbers


def test_background_tracks_enter_the_fine_tune_but_not_the_statistics(checkpoint: Path):
    original = load(checkpoint)
    windows, tracks = _site()
    people = tracks // 2
    plain = adapt_checkpoint(original, windows, people, steps=5, show_progress=False)
    adapted = adapt_checkpoint(original, windows, people, steps=5, show_progress=False, background=_background())
    assert adapted["adaptation"]["background_tracks"] == 8 and plain["adaptation"]["background_tracks"] == 0
    assert adapted["adaptation"]["windows"] == len(windows)  # the site's: the background is no part of it
    key = next(k for k in original["model_state"] if k.endswith("mlp.0.weight"))
    assert not torch.equal(adapted["model_state"][key], plain["model_state"][key])  # same seed, other classes
    encoder = encoder_from(adapted, checkpoint)
    seen = torch.from_numpy(windows)
    if encoder.symmetric:
        seen = torch.cat([seen, mirrored(seen)])
    with torch.no_grad():  # the statistics describe the site's windows alone, as without a background
        features = encoder.features(seen)
    torch.testing.assert_close(encoder.input_statistics.running_mean, features.mean(0), atol=1e-4, rtol=1e-4)
    with pytest.raises(InputError, match="the background needs windows and a track for each"):
        adapt_checkpoint(original, windows, people, steps=1, show_progress=False,
                         background=(_background()[0], np.zeros(3, np.int64)))  # fmt: skip


def test_each_batch_is_half_the_site_s_people_and_half_background():
    generator = torch.Generator().manual_seed(0)
    many = BalancedDraw(site=100, total=300, per_batch=64)
    for _ in range(20):
        chosen = np.array(many(generator))
        assert len(chosen) == len(set(chosen)) == 64
        assert (chosen < 100).sum() == 32 and ((chosen >= 100) & (chosen < 300)).sum() == 32
    few = BalancedDraw(site=5, total=15, per_batch=64)  # each part as many as it has
    chosen = np.array(few(generator))
    assert sorted(chosen) == list(range(15))


def test_reestimating_leaves_the_encoder_in_eval_mode(checkpoint: Path):
    encoder = encoder_from(load(checkpoint), checkpoint)
    reestimate_statistics(encoder, torch.from_numpy(_site()[0]))
    assert not encoder.training and all(not m.training for m in encoder.modules())


def test_what_cannot_be_adapted_is_refused(checkpoint: Path, tmp_path: Path):
    windows, tracks = _site()
    with pytest.raises(InputError, match="at least 2 tracks"):
        adapt_checkpoint(load(checkpoint), windows, np.zeros(len(windows), np.int64), steps=0, show_progress=False)
    simmc = train("simmc", windows, tmp_path, seed=0, description={}, config_overrides={"epochs": 1, "batch_size": 16},
                  show_progress=False)  # fmt: skip
    with pytest.raises(InputError, match="needs a trackcon checkpoint"):
        adapt_checkpoint(load(simmc), windows, tracks, steps=0, show_progress=False)


@pytest.mark.skipif(not DEMO.is_file(), reason="the bundled demo recording is missing")
def test_adapt_command_writes_an_artifact_a_gallery_moves_onto(checkpoint: Path, tmp_path: Path):
    out = tmp_path / "site-model"
    gaitwatch("adapt", DEMO, "--from", checkpoint, "--out", out, "--steps", "3")
    card = read_card(out / "model.onnx")
    assert card["method"] == "trackcon" and card["adaptation"]["steps"] == 3
    assert card["adaptation"]["recordings"] == [str(DEMO)] and card["adaptation"]["tracks"] >= 2
    assert (out / "model.pt").stat().st_mode & 0o777 == 0o600
    gallery = tmp_path / "people.db"
    gaitwatch("gallery", "create", gallery, "--model", checkpoint)
    gaitwatch("gallery", "enroll", gallery, DEMO, "--model", checkpoint, "--label", "subject", "--keep-windows")
    gaitwatch("gallery", "reembed", gallery, "--model", out / "model.onnx")
    stats = json.loads(gaitwatch("gallery", "stats", gallery, "--json").stdout)
    assert stats["model"]["model_sha256"] == card["file"]["sha256"]
    assert_one_line_error(gaitwatch("adapt", DEMO, "--from", checkpoint, "--out", out, ok=False), "already exists")
    onnx = gaitwatch("adapt", DEMO, "--from", out / "model.onnx", "--out", tmp_path / "again", ok=False)
    assert_one_line_error(onnx, "starts from a torch checkpoint")
    assert not (tmp_path / "again").exists()


def _within_over_between(checkpoint: dict, windows: np.ndarray, tracks: np.ndarray, people: np.ndarray) -> float:
    """Mean distance between track means of one person over that between people's: lower, people held together."""
    encoder = encoder_from(checkpoint, "adapted")
    with torch.no_grad():
        embedded = encoder(torch.from_numpy(windows)).numpy()
    means = np.stack([embedded[tracks == t].mean(axis=0) for t in np.unique(tracks)])
    owner = np.array([people[tracks == t][0] for t in np.unique(tracks)])
    gaps = np.linalg.norm(means[:, None] - means[None], axis=2)
    same, pair = owner[:, None] == owner[None], ~np.eye(len(owner), dtype=bool)
    return float(gaps[same & pair].mean() / gaps[~same].mean())


def test_adapting_on_enrolled_people_holds_each_person_s_tracks_together(checkpoint: Path):
    windows, tracks = _site()  # 5 people, 2 tracks of 8 windows each
    people = tracks // 2
    start = load(checkpoint)
    by_track = adapt_checkpoint(start, windows, tracks, steps=40, show_progress=False)
    by_person = adapt_checkpoint(start, windows, people, steps=40, show_progress=False)
    assert _within_over_between(by_person, windows, tracks, people) < _within_over_between(
        by_track, windows, tracks, people
    )


@pytest.mark.skipif(not DEMO.is_file(), reason="the bundled demo recording is missing")
def test_adapt_command_learns_from_a_gallery_s_enrolled_people(checkpoint: Path, tmp_path: Path):
    gallery = tmp_path / "people.db"
    gaitwatch("gallery", "create", gallery, "--model", checkpoint)
    gaitwatch("gallery", "enroll", gallery, DEMO, "--model", checkpoint, "--label", "subject", "--keep-windows")
    people = len(json.loads(gaitwatch("gallery", "list", gallery, "--json").stdout))
    out = tmp_path / "site-model"
    gaitwatch("adapt", "--gallery", gallery, "--from", checkpoint, "--out", out, "--steps", "3")
    card = read_card(out / "model.onnx")
    assert card["adaptation"]["gallery"] == str(gallery) and card["adaptation"]["recordings"] == []
    assert card["adaptation"]["tracks"] == people > 2  # one class per enrolled person, not per track
    strangers = card["adaptation"]["strangers"]  # measured by 4 stand-ins, each leaving a fold of people out
    store = open_store(gallery_location(str(gallery)), writable=False)
    enrolled_tracks = len(store.track_means().owners)
    store.close()
    assert strangers["folds"] == 4 and strangers["nearest_count"] == enrolled_tracks
    both = tmp_path / "both"
    gaitwatch("adapt", DEMO, "--gallery", gallery, "--from", checkpoint, "--out", both, "--steps", "3")
    assert read_card(both / "model.onnx")["adaptation"]["tracks"] > people  # the recordings' tracks beside them
    gaitwatch("gallery", "reembed", gallery, "--model", out / "model.onnx")
    calibrated = gaitwatch("calibrate", "site", DEMO, "--gallery", gallery, "--model", out / "model.onnx",
                           "--out", tmp_path / "site")  # fmt: skip
    assert "warning" not in calibrated.stderr
    report = json.loads((tmp_path / "site" / "threshold.json").read_text())
    assert report["impostor_pairs"]["measured_at_adaptation"]  # the stand-ins' scores, not the trained-apart pairs
    assert report["impostor_pairs"]["identities"] == strangers["pair_count"]
    gaitwatch("gallery", "enroll", gallery, DEMO, "--model", out / "model.onnx", "--name", "newcomer")
    later = gaitwatch("calibrate", "site", "--gallery", gallery, "--model", out / "model.onnx",
                      "--out", tmp_path / "site-later")  # fmt: skip
    assert "1 more people are enrolled than the model was adapted on" in later.stderr
    two = tmp_path / "two.db"  # too few people to leave any out: nothing measured, and calibration says so
    gaitwatch("gallery", "create", two, "--model", checkpoint)
    gaitwatch("gallery", "enroll", two, DEMO, "--model", checkpoint, "--label", "subject", "--keep-windows")
    for identity in json.loads(gaitwatch("gallery", "list", two, "--json").stdout)[2:]:
        gaitwatch("gallery", "remove", two, f"id:{identity['id']}")
    few = gaitwatch("adapt", "--gallery", two, "--from", checkpoint, "--out", tmp_path / "few", "--steps", "3")
    assert "fewer than 3 enrolled people" in few.stderr and read_card(tmp_path / "few" / "model.onnx")[
        "adaptation"]["strangers"] is None  # fmt: skip
    again = gaitwatch("adapt", "--gallery", gallery, "--from", out / "model.pt", "--out", tmp_path / "again",
                      "--steps", "3")  # fmt: skip
    assert "already fine-tuned on a gallery" in again.stderr  # its stand-ins would know whom they leave out
    assert read_card(tmp_path / "again" / "model.onnx")["adaptation"]["strangers"] is None
    gaitwatch("gallery", "reembed", two, "--model", tmp_path / "few" / "model.onnx")
    optimistic = gaitwatch("calibrate", "site", DEMO, "--gallery", two, "--model", tmp_path / "few" / "model.onnx",
                           "--out", tmp_path / "site-few")  # fmt: skip
    assert "without measuring what a stranger scores" in optimistic.stderr
    bare = tmp_path / "bare.db"
    gaitwatch("gallery", "create", bare, "--model", checkpoint)
    gaitwatch("gallery", "enroll", bare, DEMO, "--model", checkpoint, "--label", "subject")
    refused = gaitwatch("adapt", "--gallery", bare, "--from", checkpoint, "--out", tmp_path / "x", ok=False)
    assert_one_line_error(refused, "enroll with --keep-windows")
    nothing = gaitwatch("adapt", "--from", checkpoint, "--out", tmp_path / "y", ok=False)
    assert_one_line_error(nothing, "needs recordings of the site, a --gallery")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


@pytest.mark.skipif(not DEMO.is_file(), reason="the bundled demo recording is missing")
def test_a_body_shape_model_keeps_its_body_shape_through_adaptation(checkpoint: Path, tmp_path: Path):
    from engines.track_distance import BODY_SHAPE, SHAPE_VALUES

    shaped = tmp_path / "shaped.onnx"
    gaitwatch("export", checkpoint, "--body-shape", "--out", shaped)
    start = shaped.with_suffix(".pt")
    gallery = tmp_path / "people.db"
    gaitwatch("gallery", "create", gallery, "--model", start)
    gaitwatch("gallery", "enroll", gallery, DEMO, "--model", start, "--label", "subject", "--keep-windows")
    out = tmp_path / "site-model"
    adapted = gaitwatch("adapt", "--gallery", gallery, "--from", start, "--out", out, "--steps", "3")
    assert "warning: --from carries the body shape" in adapted.stderr  # measured: no help after --gallery
    card = read_card(out / "model.onnx")
    assert card["metric"] == BODY_SHAPE and card["embedding_dim"] == read_card(shaped)["embedding_dim"]
    assert card["embedding_dim"] == 32 + SHAPE_VALUES and card["adaptation"]["strangers"]["folds"] == 4
    gaitwatch("gallery", "reembed", gallery, "--model", out / "model.onnx")
    gaitwatch("calibrate", "site", DEMO, "--gallery", gallery, "--model", out / "model.onnx", "--out", tmp_path / "s")
    assert BODY_SHAPE in json.loads((tmp_path / "s" / "threshold.json").read_text())["score"]


@pytest.mark.skipif(not DEMO.is_file(), reason="the bundled demo recording is missing")
def test_adapt_command_fine_tunes_against_background_people(checkpoint: Path, tmp_path: Path):
    first, others = demo_split()  # eight CMU subjects: five enrolled, three who never come to this site
    away = {"05", "06", "10"}
    files = {}
    for recording in first + others:
        kind = "background" if recording.metadata["subject"] in away else "site"
        path = tmp_path / kind / f"{recording.metadata['trial']}.gwrec"
        path.parent.mkdir(exist_ok=True)
        write_recording(path, recording)
        files.setdefault(kind, []).append(path)
    gallery = tmp_path / "people.db"
    gaitwatch("gallery", "create", gallery, "--model", checkpoint)
    gaitwatch("gallery", "enroll", gallery, *files["site"], "--model", checkpoint, "--label", "subject",
              "--keep-windows")  # fmt: skip
    out = tmp_path / "site-model"
    background = [arg for path in files["background"] for arg in ("--background", path)]
    ran = gaitwatch("adapt", "--gallery", gallery, "--from", checkpoint, "--out", out, "--steps", "3", *background)
    assert "background: 3 tracks" in ran.stdout
    card = read_card(out / "model.onnx")
    assert card["adaptation"]["background"] == [str(p) for p in files["background"]]
    assert card["adaptation"]["background_tracks"] == 3 and card["adaptation"]["tracks"] == 5
    assert card["adaptation"]["strangers"]["folds"] == 4  # the stand-ins fine-tune with the background too
    refused = tmp_path / "refused"
    site = files["site"][0]
    for flags, needle in (
        ((DEMO, "--steps", "3", *background), "give --gallery and --steps too"),
        (("--gallery", gallery, *background), "give --gallery and --steps too"),
        (("--gallery", gallery, "--steps", "3", "--background", tmp_path / "nowhere.gwrec"), "nowhere.gwrec"),
        # a shell pattern after --background: its second file would be read as the site's
        (("--gallery", gallery, "--steps", "3", "--background", *files["background"]), "one --background takes one"),
        ((site, "--gallery", gallery, "--steps", "3", "--background", site), "given as the site's recording"),
        ((site, "--gallery", gallery, "--steps", "3", "--background", tmp_path / "site"), "given as the site's"),
    ):
        assert_one_line_error(gaitwatch("adapt", *flags, "--from", checkpoint, "--out", refused, ok=False), needle)
        assert not refused.exists()
