"""The Kinect v2 adapter against a fake of exactly the pykinect2 runtime surface it uses (tests/fake_pykinect2).

What this shows: the adapter reads bodies, tracking ids, joints, tracking states and sensor times the
way pykinect2's source documents them, and the node runs on it. What it cannot show: a real sensor;
that was not available here.
"""

from __future__ import annotations

import sys
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from sensors.errors import InputError
from sensors.layouts import KINECT_V1, KINECT_V2

FAKE = Path(__file__).parent / "fake_pykinect2"


@pytest.fixture
def fake_runtime(monkeypatch):
    monkeypatch.syspath_prepend(str(FAKE))
    for name in [m for m in sys.modules if m.startswith("pykinect2")]:
        monkeypatch.delitem(sys.modules, name)
    from pykinect2 import PyKinectRuntime

    monkeypatch.setattr(PyKinectRuntime, "SCRIPT", [])
    monkeypatch.setattr(PyKinectRuntime, "OPENED", [])
    return PyKinectRuntime


def as_kinect_v2(canonical: np.ndarray) -> np.ndarray:
    """Kinect v1 / canonical joints [T, 20, 3] laid out as Kinect v2's 25 (spine and hand extras from neighbours)."""
    v1 = {name: i for i, name in enumerate(KINECT_V1.joints)}
    same = {
        "SpineBase": "HipCenter",
        "SpineMid": "Spine",
        "Neck": "ShoulderCenter",
        "SpineShoulder": "ShoulderCenter",
        "HandTipLeft": "HandLeft",
        "ThumbLeft": "HandLeft",
        "HandTipRight": "HandRight",
        "ThumbRight": "HandRight",
    }
    return np.stack([canonical[:, v1[same.get(name, name)]] for name in KINECT_V2.joints], axis=1)


def test_body_frames_become_frames_with_ids_states_and_sensor_time(fake_runtime):
    from sensors.kinect import KinectV2Source

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(25, 3)), rng.normal(size=(25, 3))
    states = np.full(25, 2)
    states[3], states[7] = 1, 0
    fake_runtime.SCRIPT[:] = [
        (10_000_000, [(72057594037928001, a, states)]),
        (10_333_333, [(72057594037928001, a, states), (72057594037928002, b, np.full(25, 2))]),
    ]
    source = KinectV2Source("hall")
    frames = list(islice(source, 2))
    assert [f.num_bodies for f in frames] == [1, 2] and frames[0].layout == KINECT_V2
    assert frames[1].track_ids.tolist() == [72057594037928001, 72057594037928002]
    np.testing.assert_allclose(frames[1].joints[1], b, rtol=1e-6)
    assert frames[0].confidence[0, 3] == 0.5 and frames[0].confidence[0, 7] == 0.0 and frames[0].confidence[0, 0] == 1
    assert frames[0].t == pytest.approx(1.0) and frames[1].t == pytest.approx(1.0333333)
    source.stop()
    list(source)  # the loop sees the stop and closes the runtime
    assert fake_runtime.OPENED[-1].closed


def test_the_node_names_walkers_seen_by_the_fake_kinect(fake_runtime, tmp_path: Path):
    from engines.runtime.load import open_encoder
    from sensors.kinect import KinectV2Source
    from stream.events import TRACK_END, Publisher
    from stream.node.demo import build_demo_gallery, demo_split
    from stream.node.node import Node, NodeConfig, Source

    encoder = open_encoder()
    enroll, walks = demo_split()
    gallery = build_demo_gallery(tmp_path / "demo.db", encoder, enroll)
    script, t, expected = [], 0.0, {}
    for k, walk in enumerate(walks[:6]):  # one after another, a new tracking id each, 1 s apart
        tracking_id = 72057594037928000 + k
        expected[tracking_id] = f"CMU subject {walk.metadata['subject']}"
        for joints in as_kinect_v2(walk.joints):
            script.append((round(t * 1e7), [(tracking_id, joints, np.full(25, 2))]))
            t += 1 / 30
        t += 1.0
    fake_runtime.SCRIPT[:] = script
    ends = []
    publisher = Publisher("tcp://127.0.0.1:0", "kinect-test")
    source = Source(islice(KinectV2Source("kinect"), len(script)))  # waits rather than drops: the fake is instant

    def on_event(topic: str, payload: dict) -> None:
        if topic == TRACK_END:
            ends.append(payload)

    node = Node([source], encoder, gallery, publisher, NodeConfig(), on_event)
    node.run()
    publisher.close()
    named = {int(end["track"].split("/")[1]): end["name"] for end in ends}
    assert named.keys() == expected.keys()
    assert sum(named[k] == expected[k] for k in expected) >= 5


def test_without_pykinect2_the_error_says_where_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "pykinect2", None)
    from sensors.kinect import KinectV2Source

    with pytest.raises(InputError, match=r"runs on Windows with the Kinect for Windows SDK 2\.0"):
        KinectV2Source()
