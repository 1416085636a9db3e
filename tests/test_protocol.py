"""The KGBD protocol: committed split manifests, window cutting, and loading a (fake) dataset."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from engines.protocol import (
    SPLITS_DIR,
    TRIM_FRAMES,
    Split,
    cut_windows,
    draw_kgbd_split,
    held_out_people,
    load_protocol,
    load_split,
    parse_split_spec,
    people_validation_split,
    split_path,
    validation_split,
    window_count,
)
from sensors.errors import FormatError, InputError
from sensors.formats.kgbd import FILE_JOINTS, KgbdDataset, KgbdWalk

SEEDS = range(5)


# --- the committed manifests (need the real dataset for the walk list) ---------------------------


@pytest.fixture(scope="module")
def kgbd_walks(kgbd_zip: Path) -> list[KgbdWalk]:
    return KgbdDataset(kgbd_zip).walks  # reads the zip's file list only


@pytest.fixture(scope="module")
def committed() -> dict[int, Split]:
    return {seed: load_split(f"kgbd:{seed}") for seed in SEEDS}


def test_manifests_are_committed_for_seeds_0_to_4():
    assert {f"kgbd-seed{s}.json" for s in SEEDS} <= {p.name for p in SPLITS_DIR.glob("*.json")}
    assert (SPLITS_DIR / "README.md").is_file()


def test_manifests_give_each_person_disjoint_gallery_probe_and_train(committed: dict[int, Split]):
    for seed, split in committed.items():
        split.check_disjoint()
        assert split.seed == seed and split.dataset == "kgbd"
        assert len(split.people) == 164
        for person in split.people:
            expected = (1, 1) if person == "Person015" else (2, 1)
            assert (len(split.gallery[person]), len(split.probe[person])) == expected, (seed, person)
            assert len(split.train[person]) >= 1


def test_manifests_cover_every_walk_of_the_dataset(committed: dict[int, Split], kgbd_walks: list[KgbdWalk]):
    every_walk = sorted((w.person, w.walk) for w in kgbd_walks)
    for split in committed.values():
        union = sorted(split.walks("gallery") + split.walks("probe") + split.walks("train"))
        assert union == every_walk
        assert split.counts() == {"people": 164, "gallery_walks": 327, "probe_walks": 164, "train_walks": 331}


def test_manifests_are_reproducible_from_their_seed(committed: dict[int, Split], kgbd_walks: list[KgbdWalk]):
    for seed, split in committed.items():
        assert draw_kgbd_split(kgbd_walks, seed) == split
        assert split_path(seed).read_text(encoding="utf-8") == split.to_json()


def test_different_seeds_draw_different_splits(committed: dict[int, Split]):
    probes = [tuple(split.walks("probe")) for split in committed.values()]
    assert len(set(probes)) == len(probes)


# --- split drawing, manifests, specs -----------------------------------------------------------


def fake_walks(counts: dict[str, int]) -> list[KgbdWalk]:
    return [KgbdWalk(p, k, f"{p}/{k}.txt") for p, n in sorted(counts.items()) for k in range(1, n + 1)]


def test_draw_assigns_2_1_rest_and_1_1_1_for_three_walks():
    split = draw_kgbd_split(fake_walks({"A": 6, "B": 4, "C": 3, "D": 5}), seed=7)
    sizes = {p: (len(split.gallery[p]), len(split.probe[p]), len(split.train[p])) for p in split.people}
    assert sizes == {"A": (2, 1, 3), "B": (2, 1, 1), "C": (1, 1, 1), "D": (2, 1, 2)}
    split.check_disjoint()
    assert draw_kgbd_split(fake_walks({"A": 6, "B": 4, "C": 3, "D": 5}), seed=7) == split


def test_draw_rejects_a_person_with_fewer_than_3_walks():
    with pytest.raises(InputError, match="B has 2 walk"):
        draw_kgbd_split(fake_walks({"A": 5, "B": 2}), seed=0)


def test_manifest_round_trips_and_is_stable():
    split = draw_kgbd_split(fake_walks({"Person002": 5, "Person001": 3}), seed=3)
    text = split.to_json()
    assert Split.from_json(text, "x.json") == split
    assert Split.from_json(text, "x.json").to_json() == text
    data = json.loads(text)
    assert list(data["people"]) == ["Person001", "Person002"]
    assert data["counts"] == {"people": 2, "gallery_walks": 3, "probe_walks": 2, "train_walks": 3}
    assert "protocol" in data


def edited(split: Split, change) -> str:
    data = json.loads(split.to_json())
    change(data)
    return json.dumps(data)


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda d: d.update(dataset="ntu"), "dataset"),
        (lambda d: d.update(seed="0"), "seed"),
        (lambda d: d.update(version=2), "version"),
        (lambda d: d["people"]["P1"].update(probe=[1]), "both gallery and probe"),  # P1/1 is in the gallery
        (lambda d: d["people"]["P1"].update(train=[0]), "walk numbers >= 1"),
        (lambda d: d["people"]["P1"].pop("train"), "exactly the keys"),
        (lambda d: d["people"]["P1"].update(probe=[]), "at least one gallery and one probe"),
        (lambda d: d["counts"].update(train_walks=9), "counts"),
    ],
)
def test_malformed_manifests_name_the_file_and_the_problem(change, where):
    split = Split("kgbd", 0, {"P1": [1, 2]}, {"P1": [3]}, {"P1": [4]})
    with pytest.raises(FormatError, match=where) as err:
        Split.from_json(edited(split, change), "splits/bad.json")
    assert "splits/bad.json" in str(err.value)


def test_invalid_json_names_the_line():
    with pytest.raises(FormatError, match=r"bad\.json, line 2: not valid JSON"):
        Split.from_json('{\n  "dataset": kgbd\n}', "bad.json")


def test_split_spec_parsing():
    assert parse_split_spec("kgbd:0") == ("kgbd", 0)
    assert parse_split_spec("kgbd:12") == ("kgbd", 12)
    for bad in ["kgbd", "kgbd:", "kgbd:-1", "ntu:0", "kgbd:x", "0"]:
        with pytest.raises(InputError, match="expected 'kgbd:SEED'"):
            parse_split_spec(bad)


def test_load_split_names_the_missing_manifest():
    with pytest.raises(InputError, match=r"kgbd-seed99\.json.*committed: kgbd:0"):
        load_split("kgbd:99")


# --- windows -------------------------------------------------------------------------------------


def frames(n: int) -> np.ndarray:
    """A walk whose x coordinate is the frame number, so windows show where they were cut."""
    joints = np.zeros((n, 20, 3), np.float32)
    joints[:, :, 0] = np.arange(n)[:, None]
    return joints


def starts_of(windows: np.ndarray) -> list[int]:
    return windows[:, 0, 0, 0].astype(int).tolist()


def test_non_overlapping_windows_after_trimming():
    windows = cut_windows(frames(20 + 6 * 3 + 5), f=6, stride=6)  # 3 whole windows, 5 frames left over
    assert windows.shape == (3, 6, 20, 3) and windows.dtype == np.float32
    assert starts_of(windows) == [10, 16, 22]
    np.testing.assert_array_equal(windows[1, :, 0, 0], np.arange(16, 22))


def test_exact_fit_and_overlapping_training_windows():
    assert starts_of(cut_windows(frames(20 + 12), f=6, stride=6)) == [10, 16]
    assert starts_of(cut_windows(frames(20 + 12), f=6, stride=3)) == [10, 13, 16]  # 19 + 6 > 32 - 10
    assert starts_of(cut_windows(frames(12), f=6, stride=6, trim=0)) == [0, 6]


def test_walks_too_short_give_no_windows():
    for n in [0, 5, 19, 20, 25]:  # 26 frames are needed for one window of 6 after trimming 10 + 10
        windows = cut_windows(frames(n), f=6, stride=6)
        assert windows.shape == (0, 6, 20, 3), n
    assert len(cut_windows(frames(26), f=6, stride=6)) == 1
    with pytest.raises(ValueError):
        cut_windows(frames(30), f=0, stride=6)


@pytest.mark.parametrize("n", [0, 25, 26, 31, 32, 100, 589])
@pytest.mark.parametrize(("f", "stride"), [(6, 6), (6, 3), (4, 1), (10, 10)])
def test_window_count_matches_cut_windows(n: int, f: int, stride: int):
    assert len(cut_windows(frames(n), f, stride)) == window_count(n, f, stride)


# --- load_protocol on a small fake KGBD folder ---------------------------------------------------

LENGTHS = {  # frames per walk: Person001 has 5 walks, Person002 4, Person003 3
    "Person001": [40, 43, 52, 60, 33],
    "Person002": [45, 50, 26, 70],
    "Person003": [38, 29, 64],
}


def write_fake_kgbd(root: Path, lengths: dict[str, list[int]]) -> Path:
    """Walks in KGBD's text format; x = frame number, y = walk number, z = person number."""
    for person, walks in lengths.items():
        folder = root / "Data" / person
        folder.mkdir(parents=True)
        for walk, n in enumerate(walks, start=1):
            pid = int(person.removeprefix("Person"))
            lines = [f"{name};{t};{walk};{pid}" for t in range(n) for name in FILE_JOINTS]
            (folder / f"{walk}.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def fake_kgbd(tmp_path: Path) -> Path:
    return write_fake_kgbd(tmp_path / "kgbd", LENGTHS)


def walks_of(data, role: str) -> dict[str, np.ndarray]:
    """Windows of each walk of one role, by walk name."""
    windows, walk_index = getattr(data, role), getattr(data, f"{role}_walk")
    return {data.walk_names[i]: windows[walk_index == i] for i in np.unique(walk_index)}


def test_load_protocol_keeps_every_probe_and_gallery_window(fake_kgbd: Path):
    split = draw_kgbd_split(KgbdDataset(fake_kgbd).walks, seed=1)
    data = load_protocol(fake_kgbd, split, progress=False)
    assert data.people == ["Person001", "Person002", "Person003"]
    assert len(data.walk_names) == sum(len(v) for v in LENGTHS.values())
    for role in ("probe", "gallery"):
        per_walk = walks_of(data, role)
        assert sorted(per_walk) == sorted(f"{p}/{w}" for p, w in split.walks(role))
        for name, windows in per_walk.items():
            person, walk = name.split("/")
            n = LENGTHS[person][int(walk) - 1]
            assert len(windows) == (n - 2 * TRIM_FRAMES) // 6  # every whole window, none dropped
            assert starts_of(windows) == list(range(TRIM_FRAMES, TRIM_FRAMES + 6 * len(windows), 6))
            assert (windows[..., 1] == int(walk)).all()  # y carries the walk number
            assert (windows[..., 2] == int(person.removeprefix("Person"))).all()
    for role in ("probe", "gallery"):
        labels, windows = getattr(data, f"{role}_labels"), getattr(data, role)
        person_numbers = windows[:, 0, 0, 2].astype(int)
        np.testing.assert_array_equal(np.array(data.people)[labels], [f"Person{n:03d}" for n in person_numbers])


def test_load_protocol_cuts_training_windows_with_the_train_stride(fake_kgbd: Path):
    split = draw_kgbd_split(KgbdDataset(fake_kgbd).walks, seed=1)
    data = load_protocol(fake_kgbd, split, train_stride=3, progress=False)
    expected = {f"{p}/{w}": window_count(LENGTHS[p][w - 1], 6, 3) for p, w in split.walks("train")}
    assert Counter(data.walk_names[i] for i in data.train_walk) == Counter(
        {name: count for name, count in expected.items() if count}
    )
    assert data.train.shape == (sum(expected.values()), 6, 20, 3) and data.train.dtype == np.float32
    assert data.summary()["train_windows"] == len(data.train)
    assert not hasattr(data, "train_labels")  # training is unsupervised: no labels exposed


def test_load_protocol_rejects_a_probe_walk_too_short_for_one_window(tmp_path: Path):
    root = write_fake_kgbd(tmp_path / "kgbd", {"Person001": [40, 40, 25], "Person002": [40, 40, 40]})
    split = Split(
        "kgbd", 0, {"Person001": [1], "Person002": [1]}, {"Person001": [3], "Person002": [2]}, {"Person002": [3]}
    )
    with pytest.raises(InputError, match=r"probe walk Person001/3 has 25 frames"):
        load_protocol(root, split, progress=False)


def test_load_protocol_names_walks_missing_from_the_dataset(fake_kgbd: Path):
    split = Split("kgbd", 0, {"Person001": [1, 9]}, {"Person001": [2]}, {"Person004": [1]})
    with pytest.raises(InputError, match=r"Person001/9 \(gallery\), Person004/1 \(train\)"):
        load_protocol(fake_kgbd, split, progress=False)


# --- the validation split: model selection inside the training walks -----------------------------


def test_validation_split_uses_only_training_walks(committed: dict[int, Split]):
    for split in committed.values():
        validation = validation_split(split)
        validation.check_disjoint()
        assert validation.train == {}
        for role in ("probe", "gallery"):
            assert set(validation.walks(role)) <= set(split.walks("train")), role
        assert set(validation.walks("probe")) | set(validation.walks("gallery")) == set(split.walks("train"))
        for person, walks in split.train.items():
            if len(walks) >= 2:
                assert len(validation.probe[person]) == 1 and len(validation.gallery[person]) == len(walks) - 1
            else:
                assert person not in validation.probe and validation.gallery[person] == walks
        assert validation_split(split) == validation  # drawn from the split's seed: reproducible


def test_validation_probe_is_drawn_from_the_seed(committed: dict[int, Split]):
    split = committed[0]
    reseeded = Split(split.dataset, 7, split.gallery, split.probe, split.train)  # same training walks
    assert validation_split(reseeded).probe != validation_split(split).probe


def test_holding_out_the_validation_probes_removes_exactly_their_training_windows(fake_kgbd: Path):
    split = draw_kgbd_split(KgbdDataset(fake_kgbd).walks, seed=1)
    data = load_protocol(fake_kgbd, split, train_stride=3, progress=False)
    windows, tracks = data.without_validation_probes()
    probes = {f"{p}/{w}" for p, w in validation_split(split).walks("probe")}
    assert probes and probes <= {f"{p}/{w}" for p, w in split.walks("train")}
    kept = Counter(data.walk_names[i] for i in tracks)
    everything = Counter(data.walk_names[i] for i in data.train_walk)
    assert kept == Counter({name: n for name, n in everything.items() if name not in probes})
    assert len(windows) == len(tracks) < len(data.train)
    for index in np.unique(tracks):  # the windows still carry their own walk (y = walk number)
        walk = data.walk_names[index].split("/")[1]
        assert (windows[tracks == index][..., 1] == int(walk)).all()


def test_people_validation_holds_a_seeded_third_of_the_validation_people(committed: dict[int, Split]):
    for split in committed.values():
        people = held_out_people(split)
        probed = validation_split(split).probe
        assert len(people) == len(probed) // 3 == 53 and set(people) <= set(probed)
        scored = people_validation_split(split)
        scored.check_disjoint()
        assert set(scored.probe) == set(scored.gallery) == set(people)
        assert all(scored.probe[p] == probed[p] for p in people)
        assert held_out_people(split) == people  # reproducible from the split's seed
    assert held_out_people(committed[0]) != held_out_people(committed[1])


def test_holding_out_people_removes_every_walk_of_theirs_and_nothing_else(fake_kgbd: Path):
    split = draw_kgbd_split(KgbdDataset(fake_kgbd).walks, seed=1)
    data = load_protocol(fake_kgbd, split, train_stride=3, progress=False)
    windows, tracks = data.without_validation_people()
    people = set(held_out_people(split))
    assert people
    kept = Counter(data.walk_names[i] for i in tracks)
    everything = Counter(data.walk_names[i] for i in data.train_walk)
    assert kept == Counter({name: n for name, n in everything.items() if name.split("/")[0] not in people})
    assert len(windows) == len(tracks) < len(data.train)
