"""The dashboard's server without a browser: its API and WebSocket feed over real ZeroMQ sockets, the write token,
a rogue publisher's garbage, a page that reads nothing, a node that restarts, and the command's checks."""

from __future__ import annotations

import json
import socket
import stat
import threading
from pathlib import Path

import pytest
import zmq

pytest.importorskip("starlette", reason="the dashboard extra (starlette, uvicorn) is not installed")

from starlette.testclient import TestClient

from stream.dashboard.app import build_app
from stream.dashboard.clients import LIMIT
from stream.dashboard.desk import Desk
from stream.events import IDENTITY, SCHEMA_VERSION, schema
from stream.gallery.gallery import Gallery
from tests.dashboard_helpers import (
    FakeNode,
    changes_of,
    dashboard_of,
    has_track,
    identity_payload,
    read_until,
)
from tests.helpers import assert_one_line_error, card, fill, gaitwatch, people

TOKEN = "a-test-token-of-some-length"


@pytest.fixture
def node():
    fake = FakeNode()
    yield fake
    fake.stop()


@pytest.fixture
def gallery_path(tmp_path: Path) -> Path:
    path = tmp_path / "people.db"
    gallery = Gallery.create(path, card())
    fill(gallery, *people(3, 4))  # "person 0", "person 1", "person 2"
    gallery.add_anonymous()
    gallery.close()
    return path


def test_the_page_gets_a_snapshot_then_tracks_with_their_skeleton_and_the_timeline(node):
    dashboard = dashboard_of(node)
    node.start()
    with TestClient(build_app(dashboard)) as client:
        assert "gaitwatch" in client.get("/").text
        assert client.get("/static/app.js").status_code == 200
        with client.websocket_connect("/ws") as ws:
            assert ws.receive_json()["type"] == "snapshot"
            node.start_track("1")
            node.send(IDENTITY, identity_payload("1", 7, "Ana", distance=0.12, windows=4))
            seen: list[dict] = []
            found = read_until(ws, lambda m: has_track(m, lambda t: t["name"] == "Ana"), seen=seen)
            track = next(c["track"] for c in changes_of(found, "track") if c["track"]["name"] == "Ana")
            assert track["key"] == "node-a/cam/1" and track["sensor"] == "cam" and track["windows"] == 4
            assert len(track["window"]) == 6 and len(track["window"][0]) == 20  # the matched skeleton
            lines = [c["line"]["kind"] for m in seen for c in changes_of(m, "timeline")]
            assert lines == ["start", "named"]
            status = read_until(ws, lambda m: bool(changes_of(m, "publisher")))
            publisher = changes_of(status, "publisher")[0]["publisher"]
            assert publisher["rates"]["frames"] == 30.0 and publisher["threshold"] == 0.3
            node.end_track("1")
            read_until(ws, lambda m: any(c["key"] == "node-a/cam/1" for c in changes_of(m, "gone")))
        state = client.get("/api/state").json()
        assert state["tracks"] == [] and state["feed"]["received"] >= 3
        assert [line["kind"] for line in state["timeline"]][-1] == "end"


def test_gallery_changes_need_the_token_go_through_the_store_and_reach_every_page(node, gallery_path):
    dashboard = dashboard_of(node, Desk(gallery_path, writable=True), token=TOKEN)
    node.start()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(build_app(dashboard)) as client:
        listed = client.get("/api/gallery").json()
        assert listed["total"] == 4 and [i["name"] for i in listed["identities"]][:3] == [
            f"person {k}" for k in range(3)
        ]
        assert [i["name"] for i in client.get("/api/gallery", params={"q": "SON 1"}).json()["identities"]] == [
            "person 1"
        ]
        first = listed["identities"][0]["id"]
        for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token"}, {"Authorization": TOKEN}):
            refused = client.post("/api/gallery/rename", json={"id": first, "name": "Ana"}, headers=headers)
            assert refused.status_code == 401
        assert "Ana" not in gaitwatch("gallery", "list", gallery_path).stdout
        with client.websocket_connect("/ws") as one, client.websocket_connect("/ws") as two:
            done = client.post("/api/gallery/rename", json={"id": first, "name": "Ana"}, headers=auth)
            assert done.status_code == 200 and done.json()["was"] == "person 0"
            for page in (one, two):  # every open page is told
                told = read_until(page, lambda m: bool(changes_of(m, "gallery")))
                assert changes_of(told, "gallery")[0]["change"]["name"] == "Ana"
        names = {r["id"]: r["name"] for r in json.loads(gaitwatch("gallery", "list", gallery_path, "--json").stdout)}
        assert names[first] == "Ana"

        ids = [i["id"] for i in listed["identities"]]
        anonymous = next(i for i in listed["identities"] if i["anonymous"])
        refused = client.post("/api/gallery/enroll", json={"id": ids[1], "name": "Bo"}, headers=auth)
        assert refused.status_code == 400 and "not anonymous" in refused.json()["error"]
        enrolled = client.post("/api/gallery/enroll", json={"id": anonymous["id"], "name": "Cy"}, headers=auth)
        assert enrolled.status_code == 200 and enrolled.json()["was"].startswith("anonymous-")
        merged = client.post("/api/gallery/merge", json={"source": ids[1], "into": ids[0]}, headers=auth)
        assert merged.json()["moved"] == 4
        removed = client.post("/api/gallery/remove", json={"id": ids[2]}, headers=auth)
        assert removed.json()["embeddings"] == 4
        for body, status in (({"id": "x", "name": "A"}, 400), ({"id": 99999, "name": "A"}, 400), ({"id": 1}, 400)):
            assert client.post("/api/gallery/rename", json=body, headers=auth).status_code == status
        assert "no identity '99999'" in client.post("/api/gallery/remove", json={"id": 99999}, headers=auth).text
    rows = json.loads(gaitwatch("gallery", "list", gallery_path, "--json").stdout)  # durable, seen by the CLI
    assert {r["name"]: r["embeddings"] for r in rows} == {"Ana": 8, "Cy": 0}


def test_a_read_only_dashboard_lists_but_changes_nothing(node, gallery_path):
    dashboard = dashboard_of(node, Desk(gallery_path, writable=False), token=None)
    with TestClient(build_app(dashboard)) as client:
        assert client.get("/api/gallery").json()["total"] == 4
        answer = client.post("/api/gallery/remove", json={"id": 1}, headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status_code == 403
        assert client.get("/api/state").json()["gallery"]["writable"] is False
    assert "person 0" in gaitwatch("gallery", "list", gallery_path).stdout


def _valid(topic: str, seq: int, **fields) -> list[bytes]:
    payload = {"schema": SCHEMA_VERSION, "topic": topic, "publisher": "rogue", "seq": seq, "topic_seq": seq,
               "t_emit": 1.0, **fields}  # fmt: skip
    return [topic.encode(), json.dumps(payload).encode()]


def test_garbage_from_a_rogue_publisher_is_counted_and_the_feed_goes_on(tmp_path):
    import jsonschema

    context = zmq.Context.instance()
    rogue = context.socket(zmq.PUB)
    port = rogue.bind_to_random_port("tcp://127.0.0.1")
    from stream.dashboard.clients import Clients
    from stream.dashboard.feed import Feed
    from stream.dashboard.live import LiveState
    from stream.subscriber import Subscriber

    subscriber = Subscriber(f"tcp://127.0.0.1:{port}")
    state, clients = LiveState(), Clients()
    from stream.dashboard.app import Dashboard

    dashboard = Dashboard(state, clients, Feed(subscriber, state, clients), "rogue")
    garbage = [
        [b"gaitwatch.identity"],
        [b"gaitwatch.identity", b"\xff\xfe"],
        [b"gaitwatch.identity", b"{not json"],
        [b"gaitwatch.identity", b"[" * 100_000],
        [b"gaitwatch.identity", b"[1, 2]"],
        [b"gaitwatch.identity", json.dumps({"schema": 99}).encode()],
        _valid(IDENTITY, 1, sensor="cam", track="cam/1"),  # fields missing
        _valid(IDENTITY, 2, **{**identity_payload("1", 3, "Ana"), "windows": "many"}),
        _valid("gaitwatch.status", 3, uptime_s=1, rates={}, queues={}, dropped={}, tracks="none"),
    ]
    good = _valid(IDENTITY, 4, **identity_payload("2", 5, "Bo"))
    jsonschema.validate(json.loads(good[1]), schema())
    stop = threading.Event()

    def spam() -> None:  # ZeroMQ gives no moment at which the subscriber has joined: send until it shows
        while not stop.is_set():
            for frames in [*garbage, good]:
                rogue.send_multipart(frames)
            stop.wait(0.05)

    with TestClient(build_app(dashboard)) as client, client.websocket_connect("/ws") as ws:
        sender = threading.Thread(target=spam)
        sender.start()
        try:
            read_until(ws, lambda m: has_track(m, lambda t: t["name"] == "Bo"))
            feed = read_until(ws, lambda m: any(c["feed"]["malformed"] >= 9 for c in changes_of(m, "feed")))
        finally:
            stop.set()
            sender.join()
        counts = changes_of(feed, "feed")[-1]["feed"]["malformed_kinds"]
        assert {"wrong part count", "not UTF-8", "not JSON", "not an object", "unknown schema version"} <= set(counts)
        assert {"missing field", "wrong type"} <= set(counts)
        assert [t["name"] for t in client.get("/api/state").json()["tracks"]] == ["Bo"]
    rogue.close()


@pytest.mark.slow
def test_a_page_that_reads_nothing_neither_slows_the_feed_nor_grows_without_bound(node):
    """A page's socket that is never read (a real uvicorn server, a real WebSocket client that stops reading):
    every event still reaches the dashboard, none lost, and that page's queue stays bounded by coalescing and
    dropping; a page that reads is served all along."""
    import uvicorn
    from websockets.sync.client import connect

    dashboard = dashboard_of(node)
    server = uvicorn.Server(uvicorn.Config(build_app(dashboard), log_level="warning", lifespan="on"))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    serving = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    serving.start()
    node.start()
    try:
        while not server.started:
            serving.join(0.05)
        with connect(f"ws://127.0.0.1:{port}/ws", max_queue=1) as slow, connect(f"ws://127.0.0.1:{port}/ws") as fast:
            slow.recv()  # its snapshot; then it reads no more
            while dashboard.clients.counts()["pages"] < 2:
                fast.recv()
            sent = 20_000
            for track in range(96):
                node.start_track(str(track))
            for n in range(sent):  # 96 tracks, each named someone else every 10 events: coalescing and timeline
                track = str(n % 96)
                node.send(IDENTITY, identity_payload(track, 1 + (n // 960) % 5, f"p{(n // 960) % 5}", windows=3 + n))
            while not has_track(json.loads(fast.recv()), lambda t: t["windows"] == 2 + sent):
                pass  # the fast page has the last event's change: the feed has read every event before it
            subscriber = dashboard.feed.subscriber
            assert subscriber.counts[("node-a", IDENTITY)].received == sent and subscriber.gaps == 0
            assert node.publisher.dropped == 0
            pages = list(dashboard.clients._clients)
            assert max(page.coalesced + page.dropped for page in pages) > 0
            assert all(len(page.pending) <= LIMIT for page in pages)
    finally:
        server.should_exit = True
        serving.join(10)


def _bound_again(endpoint: str) -> FakeNode:
    """A node on the endpoint of one that just stopped: ZeroMQ closes a socket in the background, so its port is
    free a moment later, not at once."""
    import time

    from sensors.errors import InputError

    for _ in range(600):
        try:
            return FakeNode(endpoint, "node-a")
        except InputError:
            time.sleep(0.05)
    raise AssertionError(f"{endpoint} never became free again")


def test_a_restarted_node_is_followed_and_its_old_tracks_are_dropped(node):
    dashboard = dashboard_of(node)
    node.start()
    endpoint = node.endpoint
    with TestClient(build_app(dashboard)) as client, client.websocket_connect("/ws") as ws:
        node.start_track("1")
        node.send(IDENTITY, identity_payload("1", 3, "Ana"))
        read_until(ws, lambda m: has_track(m, lambda t: t["name"] == "Ana"))
        node.stop()
        restarted = _bound_again(endpoint)
        from tests.helpers import subscribed

        subscribed(restarted.publisher, lambda: None)  # the dashboard's socket reconnects by itself
        restarted.start()
        try:
            restarted.start_track("9")
            restarted.send(IDENTITY, identity_payload("9", 4, "Bo"))
            seen: list[dict] = []
            read_until(ws, lambda m: seen.extend(changes_of(m, "gone")) or has_track(m, lambda t: t["name"] == "Bo"))
            assert any(c["key"] == "node-a/cam/1" for c in seen)
            state = client.get("/api/state").json()
            assert [t["name"] for t in state["tracks"]] == ["Bo"] and state["feed"]["restarts"] >= 1
            assert any(line["kind"] == "restart" for line in state["timeline"])
        finally:
            restarted.stop()


def test_the_command_refuses_bad_input_in_one_line(tmp_path: Path):
    assert_one_line_error(gaitwatch("dashboard", "--http", "nonsense", ok=False), "--http nonsense", "HOST:PORT")
    exposed = gaitwatch("dashboard", "--http", "0.0.0.0:0", ok=False)
    assert_one_line_error(exposed, "--http 0.0.0.0:0", "--insecure")
    bad = tmp_path / "threshold.json"
    bad.write_text("{}")
    assert_one_line_error(gaitwatch("dashboard", "--threshold", bad, ok=False), "not a threshold file")
    loose = tmp_path / "token"
    loose.write_text("x" * 32)
    loose.chmod(0o644)
    assert_one_line_error(gaitwatch("dashboard", "--token-file", loose, ok=False), "readable by others")
    assert_one_line_error(gaitwatch("dashboard", "--gallery", tmp_path / "none.db", ok=False), "no gallery here")
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        taken = f"127.0.0.1:{busy.getsockname()[1]}"
        assert_one_line_error(gaitwatch("dashboard", "--http", taken, ok=False), "cannot bind")
    finally:
        busy.close()


def test_a_token_file_is_made_private_and_read_again(tmp_path: Path):
    from stream.dashboard.access import authorized, token_from_file

    path = tmp_path / "token"
    made, fresh = token_from_file(path)
    assert fresh and stat.S_IMODE(path.stat().st_mode) == 0o600
    again, fresh = token_from_file(path)
    assert again == made and not fresh
    assert authorized(f"Bearer {made}", made) and not authorized(f"Bearer {made}x", made)
    assert not authorized(None, made) and not authorized(f"Bearer {made}", None)


def test_det_data_of_a_labelled_and_a_site_threshold_file(tmp_path: Path):
    from stream.dashboard.det import read_det
    from stream.threshold import FORMAT

    labelled = {
        "format": FORMAT,
        "matcher": {"thresholds": [{"target_far": 0.01, "threshold": 0.3, "far": 0.008, "dir": 0.9}]},
        "verification": {"thresholds": [{"target_far": 0.01, "threshold": 0.35, "far": 0.01, "frr": 0.2}],
                         "eer": 0.05, "eer_threshold": 0.4},
    }  # fmt: skip
    site = {"format": FORMAT, "source": "site", "matcher": {"thresholds": [{"target_far": 0.001, "threshold": 0.23,
                                                                            "far": 0.001}]}}  # fmt: skip
    (tmp_path / "l.json").write_text(json.dumps(labelled))
    (tmp_path / "s.json").write_text(json.dumps(site))
    det = read_det(tmp_path / "l.json")
    assert det["matcher"][0]["frr"] == pytest.approx(0.1) and det["verification"][0]["frr"] == 0.2
    assert det["eer"] == 0.05
    only = read_det(tmp_path / "s.json")
    assert only["matcher"][0] == {"table": "matcher", "target_far": 0.001, "threshold": 0.23, "far": 0.001, "frr": None}


def test_a_launch_file_starts_a_dashboard_beside_its_node_on_the_node_s_events_gallery_and_threshold(tmp_path: Path):
    from sensors.errors import InputError
    from stream.cli import build_parser
    from stream.node.launch import launch_argv, launch_plan

    path = tmp_path / "site" / "node.toml"
    path.parent.mkdir()
    path.write_text(
        '[replay]\npaths = ["w.gwrec"]\ngallery = "g.db"\nthreshold = "t.json"\npub = "tcp://127.0.0.1:5599"\n'
        '[dashboard]\nhttp = "127.0.0.1:8099"\n'
    )
    parser = build_parser()
    node, dashboard = launch_plan(path, parser)
    assert launch_argv(path, parser) == node and node[0] == "replay"
    args = parser.parse_args(dashboard)
    assert args.command == "dashboard" and args.sub == "tcp://127.0.0.1:5599" and args.http == "127.0.0.1:8099"
    assert args.gallery == path.parent / "g.db" and args.threshold == path.parent / "t.json"
    path.write_text('[dashboard]\nsub = "tcp://127.0.0.1:5599"\n[listen]\n[replay]\n')
    with pytest.raises(InputError, match="optionally with a \\[dashboard\\] beside it"):
        launch_plan(path, parser)


def test_the_identity_event_carries_its_window_to_the_millimetre_and_stays_readable_without_it():
    import jsonschema
    import numpy as np

    from stream.events import SCHEMA_MINOR, window_field
    from stream.subscriber import parse

    joints = np.random.default_rng(0).normal(size=(6, 20, 3)).astype(np.float32)
    joints[2, 5] = np.nan  # a lost joint
    field = window_field(joints)
    assert np.asarray(field["joints"][0], float) == pytest.approx(np.round(joints[0].astype(float), 3), abs=1e-9)
    assert field["joints"][2][5] == [None, None, None]
    payload = {"schema": SCHEMA_VERSION, "schema_minor": SCHEMA_MINOR, "topic": IDENTITY, "publisher": "n",
               "seq": 1, "topic_seq": 1, "t_emit": 1.0, **identity_payload("1", 3, "Ana"), "window": field}  # fmt: skip
    jsonschema.validate(payload, schema())
    assert parse([IDENTITY.encode(), json.dumps(payload).encode()]).payload["window"]["joints"][2][5][0] is None
    older = {k: v for k, v in payload.items() if k not in ("schema_minor", "window")}  # a node before revision 1
    jsonschema.validate(older, schema())
    assert parse([IDENTITY.encode(), json.dumps(older).encode()]).name == "Ana"


def test_a_fused_decision_reaches_the_page_with_what_each_channel_said():
    import jsonschema

    from stream.dashboard.live import LiveState
    from stream.events import SCHEMA_MINOR
    from stream.subscriber import parse

    view = {"distance": 0.1, "windows": 2}
    channels = {"skeleton": {"identity": 3, "name": "Ana", **view}, "silhouette": {"identity": 4, "name": "Bo", **view},
                "agree": False, "weight": 0.5}  # fmt: skip
    envelope = {"schema": SCHEMA_VERSION, "schema_minor": SCHEMA_MINOR, "topic": IDENTITY, "publisher": "n",
                "seq": 1, "topic_seq": 1, "t_emit": 1.0}  # fmt: skip
    payload = {**envelope, **identity_payload("1", 3, "Ana"), "channels": channels}
    jsonschema.validate(payload, schema())
    event = parse([IDENTITY.encode(), json.dumps(payload).encode()])
    state = LiveState()
    state.apply(event)
    (track,) = state.snapshot()["tracks"]
    assert track["channels"]["silhouette"]["name"] == "Bo" and track["channels"]["agree"] is False
    older = {k: v for k, v in payload.items() if k != "channels"}  # a node without silhouettes
    state = LiveState()
    state.apply(parse([IDENTITY.encode(), json.dumps(older).encode()]))
    assert state.snapshot()["tracks"][0]["channels"] is None
