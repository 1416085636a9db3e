"""The silhouette channel at the node: replayed silhouettes, fused decisions, events, --record and enrollment.

Real parts throughout: the bundled CMU walks as skeletons, the shipped TrackCon and SelfGait ONNX encoders,
a SQLite gallery holding both channels, ZeroMQ, and ``.gwrec``/``.gwsil`` files. The silhouettes are drawn
(a walker whose build differs per subject, legs swinging with the walk), as the demo has no video.
"""

from __future__ import annotations

import json
import os
import stat
from importlib.resources import files
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from engines.runtime.load import open_encoder, open_silhouette_encoder
from engines.track_distance import impostor_scale
from sensors.formats.gwrec import write_recording
from sensors.formats.gwsil import SilhouetteWriter, companion, read_gwsil
from sensors.replay import Replay
from sensors.silhouette_windows import windows_of
from stream.events import IDENTITY, Publisher
from stream.gallery.channel import SILHOUETTE
from stream.gallery.gallery import Gallery
from stream.gallery.store import Origin
from stream.matcher import SilhouetteChannel, TrackMatcher
from stream.node.demo import demo_split
from stream.node.node import Node, NodeConfig, Source
from stream.node.silhouette_inputs import ReplaySilhouettes
from stream.windows import track_windows
from tests.helpers import assert_one_line_error, gaitwatch

SUBJECTS_SHOWN = 3


def walker(build: int, frames: int, phase: float = 0.0) -> np.ndarray:
    """uint8 [frames, 64, 44]: a standing figure whose width and head depend on ``build``, legs swinging."""
    rows, cols = np.mgrid[0:64, 0:44]
    out = np.zeros((frames, 64, 44), np.uint8)
    half = 4 + 2 * build
    for i in range(frames):
        swing = 6 * np.sin(2 * np.pi * (i / 16 + phase))
        head = (rows - 6) ** 2 + (cols - 22) ** 2 <= (3 + build) ** 2
        trunk = (rows >= 10) & (rows < 36) & (abs(cols - 22) <= half)
        legs = (rows >= 36) & (
            (abs(cols - 22 - swing * (rows - 36) / 28) <= 2) | (abs(cols - 22 + swing * (rows - 36) / 28) <= 2)
        )
        out[i] = (head | trunk | legs) * 255
    return out


@pytest.fixture(scope="module")
def encoders():
    return open_encoder(None), open_silhouette_encoder(None)


@pytest.fixture(scope="module")
def walks():
    """(enroll, replay): the demo's walks of its first subjects, each with the build of its subject."""
    enroll, replay = demo_split()
    subjects = sorted({str(w.metadata["subject"]) for w in enroll})[:SUBJECTS_SHOWN]
    build = {s: i for i, s in enumerate(subjects)}
    keep = [w for w in enroll if str(w.metadata["subject"]) in build]
    plays = [w for w in replay if str(w.metadata["subject"]) in build]
    return keep, plays, build


def write_walk(path: Path, walk, build: int) -> np.ndarray:
    """The walk as a .gwrec with its .gwsil (one silhouette per frame); returns the silhouettes written."""
    write_recording(path, walk)
    drawn = walker(build, walk.num_frames, phase=0.3)
    with SilhouetteWriter(companion(path), method="mediapipe", sensor_id=walk.sensor_id) as writer:
        for i, (seq, t) in enumerate(zip(walk.seq, walk.t, strict=True)):
            writer.write(int(seq), float(t), np.array([0]), np.array([[0, 0, 44, 64]]), drawn[i : i + 1])
    return drawn


@pytest.fixture(scope="module")
def gallery_path(tmp_path_factory, encoders, walks) -> Path:
    """A gallery of the shown subjects: skeleton windows and drawn silhouettes of their enrolled walk."""
    encoder, silhouettes = encoders
    keep, _, build = walks
    path = tmp_path_factory.mktemp("both") / "both.db"
    gallery = Gallery.create(path, encoder.card)
    for walk in keep:
        subject = str(walk.metadata["subject"])
        identity = gallery.add_identity(f"CMU subject {subject}")
        for part in track_windows(walk, encoder.f, float(encoder.card["rate_hz"])):
            gallery.enroll_track(identity, part, encoder.encode, "enroll")
        drawn = walker(build[subject], walk.num_frames)
        cut, _, _ = windows_of(walk.t, drawn, silhouettes.f, silhouettes.f // 2, None)
        vectors = silhouettes.encode(cut)
        gallery.enroll_channel(SILHOUETTE, identity, vectors, [Origin("enroll", "0")] * len(vectors), silhouettes.card)
    gallery.close()
    return path


def run_node(tmp_path: Path, gallery_path: Path, encoders, recordings: list[Path], weight: float = 0.5, **options):
    encoder, silhouettes = encoders
    events: list[tuple[str, dict]] = []
    inputs = ReplaySilhouettes(recordings)
    replay = Replay(inputs.recordings, speed=None, sensor_id=None)
    inputs.replay = replay
    gallery = Gallery.open(gallery_path, encoder.card)
    publisher = Publisher("tcp://127.0.0.1:0", "test")
    try:
        node = Node(
            [Source(replay, track_labels=replay.track_labels, silhouettes=inputs)],
            encoder,
            gallery,
            publisher,
            NodeConfig(silhouette_method="replayed"),
            on_event=lambda topic, payload: events.append((topic, payload)),
            silhouette_encoder=silhouettes,
            silhouette_channel=SilhouetteChannel(silhouettes.card, weight),
            **options,
        )
        counters = node.run()
        scales = (
            impostor_scale(gallery.tracks.index.vectors, gallery.tracks.index.owners),
            gallery.channel_scale(SILHOUETTE),
        )
    finally:
        publisher.close()
        gallery.close()
    return events, counters, scales


@pytest.fixture(scope="module")
def played(tmp_path_factory, gallery_path, encoders, walks):
    _, plays, build = walks
    folder = tmp_path_factory.mktemp("plays")
    paths = []
    for i, walk in enumerate(plays):
        path = folder / f"walk{i}.gwrec"
        write_walk(path, walk, build[str(walk.metadata["subject"])])
        paths.append(path)
    return paths


def test_a_replay_with_silhouettes_decides_on_both_channels_and_says_what_each_said(
    tmp_path, gallery_path, encoders, played
):
    events, counters, (skeleton_scale, silhouette_scale) = run_node(tmp_path, gallery_path, encoders, played)
    identities = [payload for topic, payload in events if topic == IDENTITY]
    assert counters.silhouette_windows > 0 and identities
    schema = json.loads(files("stream").joinpath("events.schema.json").read_text())
    fused = [p for p in identities if "silhouette" in p["channels"]]
    assert fused, "no decision had a silhouette window"
    envelope = {"schema": 2, "schema_minor": 2, "topic": IDENTITY, "publisher": "t", "seq": 1, "topic_seq": 1}
    for payload in identities:
        jsonschema.validate({**payload, **envelope, "t_emit": 0.0}, schema)
        assert payload["channels"]["weight"] == 0.5
        assert payload["channels"]["skeleton"]["windows"] == payload["windows"]
    agreeing = [p for p in fused if p["channels"]["agree"]]
    assert agreeing
    for payload in agreeing:  # both name the decided identity: its fused distance is the documented mean
        skeleton, silhouette = payload["channels"]["skeleton"], payload["channels"]["silhouette"]
        assert skeleton["identity"] == silhouette["identity"] == payload["identity"]
        expected = 0.5 * skeleton["distance"] + 0.5 * silhouette["distance"] * skeleton_scale / silhouette_scale
        assert payload["distance"] == pytest.approx(expected, rel=1e-5)
    before = [p for p in identities if "silhouette" not in p["channels"]]
    for payload in before:  # no silhouette window yet: the skeleton channel alone
        assert payload["channels"]["agree"] is None
        assert payload["distance"] == pytest.approx(payload["channels"]["skeleton"]["distance"])


def test_the_skeleton_weight_one_decides_as_a_node_without_silhouettes(tmp_path, gallery_path, encoders, played):
    events, _, _ = run_node(tmp_path, gallery_path, encoders, played[:2], weight=1.0)
    for topic, payload in events:
        if topic == IDENTITY:
            assert payload["identity"] == payload["channels"]["skeleton"]["identity"]
            assert payload["distance"] == pytest.approx(payload["channels"]["skeleton"]["distance"])


def test_record_keeps_each_frame_s_silhouettes_beside_its_skeleton(tmp_path, gallery_path, encoders, played, walks):
    out = tmp_path / "again.gwrec"
    run_node(tmp_path, gallery_path, encoders, played[:1], record=out)
    kept = read_gwsil(companion(out))
    assert stat.S_IMODE(os.stat(companion(out)).st_mode) == 0o600
    _, plays, build = walks
    drawn = walker(build[str(plays[0].metadata["subject"])], plays[0].num_frames, phase=0.3)
    assert np.array_equal(kept.silhouettes, drawn)  # every frame had one body, and its silhouette
    assert kept.body_index.tolist() == [0] * len(drawn)
    assert kept.header["method"] == "replayed"


def replay(recording: Path, gallery: Path, *options, ok: bool = True):
    """``gaitwatch replay`` of one recording against ``gallery``, as fast as it goes, on any free port, quietly."""
    argv = ["replay", recording, "--gallery", gallery, "--speed", "max", "--pub", "tcp://127.0.0.1:0", "--quiet"]
    return gaitwatch(*argv, *options, ok=ok)


def synthetic_card(name: str, dim: int) -> dict:
    sha = (name * 64)[:64]
    return {
        "file": {"sha256": sha, "name": name},
        "method": "test",
        "embedding_dim": dim,
        "metric": "euclidean",
        "f": 6,
        "rate_hz": 30.0,
    }


def test_a_clear_silhouette_overturns_a_close_skeleton_call_and_anonymous_tracks_keep_both(tmp_path: Path):
    skeleton_card, silhouette_card = synthetic_card("a", 2), synthetic_card("b", 3)
    gallery = Gallery.create(tmp_path / "g.db", skeleton_card)
    ana, ben, cy = (gallery.add_identity(n) for n in ("ana", "ben", "cy"))
    for identity, skeleton, silhouette in (
        (ana, [0, 0], [0, 0, 0]),
        (ben, [0.1, 0], [5, 0, 0]),
        (cy, [9, 9], [0, 9, 0]),
    ):
        gallery.enroll(identity, np.array([skeleton], np.float32), [Origin("s", str(identity))])
        gallery.enroll_channel(
            SILHOUETTE, identity, np.array([silhouette], np.float32), [Origin("s", str(identity))], silhouette_card
        )
    channel = SilhouetteChannel(silhouette_card, 0.5)
    matcher = TrackMatcher(gallery, threshold=100.0, min_windows=1, enroll_after=2, silhouettes=channel)
    matcher.observe_silhouettes(["t"], np.array([[5.1, 0, 0]]))  # ben's build, clearly
    decision = matcher.observe("t", np.array([0.04, 0.0]))  # a little nearer ana than ben by skeleton
    assert decision.channels["skeleton"].identity == ana
    assert decision.channels["silhouette"].identity == ben
    assert decision.identity == ben
    skeleton_only = TrackMatcher(gallery, threshold=100.0, min_windows=1)
    assert skeleton_only.observe("t", np.array([0.04, 0.0])).identity == ana
    # a stranger far from everyone in both channels, enrolled anonymously: both channels stored
    stranger = TrackMatcher(gallery, threshold=0.01, min_windows=1, enroll_after=2, silhouettes=channel)
    stranger.observe_silhouettes(["s"], np.array([[0, 0, 50]]))
    stranger.observe("s", np.array([50.0, 50.0]))
    made = stranger.observe("s", np.array([50.0, 50.0]))
    assert made.enrolled and made.identity is not None
    assert made.identity in gallery.channel_identities(SILHOUETTE)
    gallery.close()


def test_silhouettes_after_an_anonymous_enrollment_join_its_identity_and_a_removal_is_respected(tmp_path: Path):
    skeleton_card, silhouette_card = synthetic_card("a", 2), synthetic_card("b", 3)
    gallery = Gallery.create(tmp_path / "g.db", skeleton_card)
    for name, at in (("ana", 0.0), ("ben", 5.0)):
        identity = gallery.add_identity(name)
        gallery.enroll(identity, np.array([[at, 0]], np.float32), [Origin("s", name)])
        gallery.enroll_channel(SILHOUETTE, identity, np.array([[at, 0, 0]], np.float32), [Origin("s", name)],
                               silhouette_card)  # fmt: skip
    channel = SilhouetteChannel(silhouette_card, 0.5)
    matcher = TrackMatcher(gallery, threshold=0.5, min_windows=1, enroll_after=2, silhouettes=channel)
    far = np.array([50.0, 50.0])
    matcher.observe("t", far)
    made = matcher.observe("t", far)  # enrolled before any silhouette window of the track
    assert made.enrolled and made.identity not in gallery.channel_identities(SILHOUETTE)
    assert "silhouette" not in made.channels and made.distance == made.channels["skeleton"].distance
    matcher.observe_silhouettes(["t", "t"], np.array([[0, 50, 0], [0, 51, 0]]))
    later = matcher.observe("t", far)  # now near its own track: named, and its silhouettes added
    assert later.identity == made.identity and made.identity in gallery.channel_identities(SILHOUETTE)
    (means,) = [row for row in gallery.search_channel_many(SILHOUETTE, np.array([[0, 50.5, 0]]), 3)]
    assert means[0].identity == made.identity and means[0].distance == pytest.approx(0.0, abs=1e-5)
    gallery.remove(made.identity)  # removed (the dashboard, a shell) while the track is still in view
    matcher.observe_silhouettes(["t"], np.array([[0, 52, 0]]))
    after = matcher.observe("t", far)
    assert after.identity is None and not after.enrolled  # unknown now, and not enrolled again
    gallery.close()


def test_a_gallery_without_silhouettes_turns_the_channel_off_and_bad_weights_are_refused(
    tmp_path, gallery_path, played, encoders
):
    encoder, _ = encoders
    plain = tmp_path / "plain.db"
    Gallery.create(plain, encoder.card).close()
    ran = replay(played[0], plain)
    assert ran.returncode == 0, ran.stderr
    assert "silhouette channel: off" in ran.stdout
    ran = replay(played[0], gallery_path)
    assert ran.returncode == 0, ran.stderr
    assert "silhouette channel: on" in ran.stdout and "of silhouettes" in ran.stdout
    bad = replay(played[0], gallery_path, "--fusion-weight", "1.5", ok=False)
    assert_one_line_error(bad, "--fusion-weight")


def test_a_silhouette_model_other_than_the_channel_s_is_refused(tmp_path, gallery_path, played, encoders):
    import torch

    from engines.export.silhouette_onnx import export_silhouette_onnx
    from engines.model_card import write_card
    from engines.models.selfgait import SelfGaitBackbone

    other = tmp_path / "other.onnx"
    torch.manual_seed(7)
    export_silhouette_onnx(SelfGaitBackbone(f=encoders[1].f), other)  # another (untrained) SelfGait
    write_card(other, {k: v for k, v in encoders[1].card.items() if k not in ("file", "card_version")})
    ran = replay(played[0], gallery_path, "--silhouette-model", other, ok=False)
    assert_one_line_error(ran, "silhouette channel")


def test_calibrate_fusion_chooses_a_weight_from_labelled_walks_and_the_node_reads_it(
    tmp_path, gallery_path, played, walks
):
    _, plays, _ = walks
    named = [f"CMU subject {walk.metadata['subject']}={path}" for walk, path in zip(plays, played, strict=True)]
    out = tmp_path / "fusion.json"
    ran = gaitwatch("calibrate", "fusion", *named[:4], "--gallery", gallery_path, "--out", out)
    chosen = json.loads(out.read_text())
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert chosen["weight"] in [row["weight"] for row in chosen["rows"]] and len(chosen["rows"]) == 11
    assert f"fusion weight {chosen['weight']:.1f}" in ran.stdout
    replayed = replay(played[0], gallery_path, "--fusion-weight", out)
    assert f"skeleton weight {chosen['weight']}" in replayed.stdout
    chosen["models"]["silhouette"] = "0" * 64  # as if chosen with another silhouette model
    other = tmp_path / "other.json"
    other.write_text(json.dumps(chosen))
    refused = replay(played[0], gallery_path, "--fusion-weight", other, ok=False)
    assert_one_line_error(refused, "another silhouette model")
    again = gaitwatch("calibrate", "fusion", *named[:1], "--gallery", gallery_path, "--out", out, ok=False)
    assert_one_line_error(again, "already exists")
    plain = tmp_path / "plain.gwrec"
    write_recording(plain, plays[0])  # no .gwsil
    person = f"CMU subject {plays[0].metadata['subject']}"
    missing = gaitwatch("calibrate", "fusion", f"{person}={plain}", "--gallery", gallery_path, "--out",
                        tmp_path / "f2.json", ok=False)  # fmt: skip
    assert_one_line_error(missing, "plain.gwsil")
    nobody = gaitwatch("calibrate", "fusion", f"nobody={played[0]}", "--gallery", gallery_path, "--out",
                       tmp_path / "f2.json", ok=False)  # fmt: skip
    assert_one_line_error(nobody, "nobody")
    nameless = gaitwatch("calibrate", "fusion", str(plain), "--gallery", gallery_path, "--out", tmp_path / "f3.json",
                         ok=False)  # fmt: skip
    assert_one_line_error(nameless, "NAME=WALK")


def test_a_channel_bound_but_emptied_leaves_the_silhouettes_off(tmp_path, played, encoders, walks):
    encoder, silhouettes = encoders
    keep = walks[0]
    path = tmp_path / "emptied.db"
    gallery = Gallery.create(path, encoder.card)
    identity = gallery.add_identity("gone")
    walk = keep[0]
    for part in track_windows(walk, encoder.f, float(encoder.card["rate_hz"])):
        gallery.enroll_track(identity, part, encoder.encode, "enroll")
    cut, _, _ = windows_of(walk.t, walker(0, walk.num_frames), silhouettes.f, silhouettes.f // 2, None)
    vectors = silhouettes.encode(cut)
    gallery.enroll_channel(SILHOUETTE, identity, vectors, [Origin("enroll", "0")] * len(vectors), silhouettes.card)
    gallery.remove(identity)  # the channel stays bound to its model, and holds nothing
    assert gallery.channel_model(SILHOUETTE) is not None and not gallery.channel_identities(SILHOUETTE)
    gallery.close()
    ran = replay(played[0], path)
    assert "silhouette channel: off" in ran.stdout and "of silhouettes" not in ran.stdout


def test_silhouette_windows_waiting_for_the_encoder_are_bounded_and_a_live_source_s_extra_are_dropped(
    tmp_path, gallery_path, encoders
):
    from stream.node.node import SILHOUETTES_QUEUED

    encoder, silhouettes = encoders
    gallery = Gallery.open(gallery_path, encoder.card)
    publisher = Publisher("tcp://127.0.0.1:0", "test")
    try:
        node = Node([Source([], live=True)], encoder, gallery, publisher, NodeConfig(),
                    silhouette_encoder=silhouettes, silhouette_channel=SilhouetteChannel(silhouettes.card))  # fmt: skip
        window = np.zeros((silhouettes.f, 64, 44), np.uint8)
        for _ in range(SILHOUETTES_QUEUED + 6):  # nobody encodes meanwhile
            node._send_silhouette(("silhouette", "cam/1", window))
        assert node.work.qsize() == SILHOUETTES_QUEUED and node.counters.dropped_windows == 6
        taken = [node.work.get_nowait() for _ in range(10)]
        node._observe_silhouettes(taken)  # encoded: their room is given back
        for _ in range(12):
            node._send_silhouette(("silhouette", "cam/1", window))
        assert node.work.qsize() == SILHOUETTES_QUEUED and node.counters.dropped_windows == 8
    finally:
        publisher.close()
        gallery.close()
