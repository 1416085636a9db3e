"""The KGBD re-identification protocol of the literature (AGE, SimMC, TranSG), made reproducible.

Per person, 2 walks form the gallery, 1 the probe and the rest the unlabeled
training set (Person015, with 3 walks: 1 + 1 + 1); 10 frames are trimmed at each
end of every walk; probe and gallery walks are cut into non-overlapping windows
of f = 6 frames, each one probe or gallery sample. The published code draws the
split with no fixed seed, so its numbers cannot be reproduced exactly; here the
split is drawn from a seed and committed as a JSON manifest (``engines/splits``),
so every method in gaitwatch is trained and scored on the same walks.

Training windows carry no labels on purpose (the encoders learn without them);
the walk index each window came from is kept for diagnostics only. No probe or
gallery window is ever dropped (SimMC's loaders drop the last incomplete batch).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sensors import atomic
from sensors.errors import FormatError, InputError
from sensors.formats.kgbd import KgbdDataset, KgbdWalk
from sensors.progress import progress as progress_bar

TRIM_FRAMES = 10  # frames cut at each end of every walk
WINDOW_FRAMES = 6  # f: frames per window
TRAIN_STRIDE = 3  # training windows overlap: one starts every 3 frames
GALLERY_WALKS = 2  # per person with 4 or more walks (1 for a person with exactly 3)
PROBE_WALKS = 1
MANIFEST_VERSION = 1
SPLITS_DIR = Path(__file__).parent / "splits"
ROLES = ("gallery", "probe", "train")
PROTOCOL_TEXT = (
    "KGBD re-identification split: per person (sorted), the walks permuted with numpy default_rng(seed); "
    "first 2 walks gallery, next 1 probe, the rest unlabeled training (a person with 3 walks: 1 + 1 + 1). "
    f"Walks trimmed by {TRIM_FRAMES} frames at each end; probe and gallery cut into non-overlapping "
    f"windows of f = {WINDOW_FRAMES} frames, training windows every {TRAIN_STRIDE} frames; Euclidean distance."
)
_SPEC = re.compile(r"^(kgbd):(\d+)$")


@dataclass(frozen=True)
class Split:
    """Which walks (person -> walk numbers) form the gallery, the probe and the training set."""

    dataset: str
    seed: int
    gallery: dict[str, list[int]]
    probe: dict[str, list[int]]
    train: dict[str, list[int]]

    @property
    def people(self) -> list[str]:
        return sorted(set(self.gallery) | set(self.probe) | set(self.train))

    def role(self, name: str) -> dict[str, list[int]]:
        """The walks of one role: "gallery", "probe" or "train"."""
        if name not in ROLES:
            raise ValueError(f"unknown role {name!r}, expected one of {ROLES}")
        return getattr(self, name)

    def walks(self, name: str) -> list[tuple[str, int]]:
        """(person, walk) pairs of one role, sorted."""
        return sorted((person, walk) for person, walks in self.role(name).items() for walk in walks)

    def counts(self) -> dict[str, int]:
        return {"people": len(self.people), **{f"{r}_walks": len(self.walks(r)) for r in ROLES}}

    def check_disjoint(self) -> None:
        """Raise InputError naming the first walk that belongs to two roles (or twice to one)."""
        for person in self.people:
            seen: dict[int, str] = {}
            for name in ROLES:
                for walk in self.role(name).get(person, []):
                    if walk in seen:
                        where = f"split {self.dataset}:{self.seed}"
                        raise InputError(f"{where}: {person}/{walk} is in both {seen[walk]} and {name}")
                    seen[walk] = name

    def to_json(self) -> str:
        """Stable, human-readable manifest: one line per person, people and walk numbers sorted."""
        head = {
            "version": MANIFEST_VERSION,
            "dataset": self.dataset,
            "seed": self.seed,
            "protocol": PROTOCOL_TEXT,
            "counts": self.counts(),
        }
        lines = [f"  {json.dumps(key)}: {json.dumps(value)}," for key, value in head.items()]
        people = [
            f"    {json.dumps(person)}: {json.dumps({r: sorted(self.role(r).get(person, [])) for r in ROLES})}"
            for person in self.people
        ]
        return "{\n" + "\n".join(lines) + '\n  "people": {\n' + ",\n".join(people) + "\n  }\n}\n"

    @staticmethod
    def from_json(text: str, source: str | Path) -> Split:
        """Parse a manifest written by ``to_json``; FormatError naming ``source`` and what is wrong."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise FormatError(source, f"line {err.lineno}", f"not valid JSON ({err.msg})") from None
        except ValueError as err:  # an integer of thousands of digits: JSON allows it, Python refuses
            raise FormatError(source, "text", f"not readable JSON ({str(err)[:80]})") from None
        return _split_from_dict(data, str(source))


def _split_from_dict(data: object, source: str) -> Split:
    if not isinstance(data, dict):
        raise FormatError(source, "", "expected a JSON object with 'dataset', 'seed' and 'people'")
    if data.get("version") != MANIFEST_VERSION:
        raise FormatError(source, "version", f"expected {MANIFEST_VERSION}, got {data.get('version')!r}")
    if data.get("dataset") != "kgbd":
        raise FormatError(source, "dataset", f"expected 'kgbd', got {data.get('dataset')!r}")
    seed = data.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise FormatError(source, "seed", f"expected a non-negative integer, got {seed!r}")
    people = data.get("people")
    if not isinstance(people, dict) or not people:
        raise FormatError(source, "people", "expected an object person -> {gallery, probe, train}")
    roles: dict[str, dict[str, list[int]]] = {r: {} for r in ROLES}
    for person, entry in people.items():
        for name, walks in _person_entry(entry, f"people.{person}", source).items():
            roles[name][person] = walks
    split = Split("kgbd", seed, roles["gallery"], roles["probe"], roles["train"])
    try:
        split.check_disjoint()
    except InputError as err:
        raise FormatError(source, "people", str(err)) from None
    _check_counts(split, data.get("counts"), source)
    return split


def _person_entry(entry: object, where: str, source: str) -> dict[str, list[int]]:
    if not isinstance(entry, dict) or set(entry) != set(ROLES):
        raise FormatError(source, where, f"expected an object with exactly the keys {list(ROLES)}")
    for name in ROLES:
        walks = entry[name]
        if not isinstance(walks, list) or not all(_is_walk_number(w) for w in walks):
            raise FormatError(source, f"{where}.{name}", f"expected a list of walk numbers >= 1, got {walks!r}")
    if not entry["gallery"] or not entry["probe"]:
        raise FormatError(source, where, "every person needs at least one gallery and one probe walk")
    return {name: sorted(entry[name]) for name in ROLES}


def _is_walk_number(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _check_counts(split: Split, counts: object, source: str) -> None:
    """The manifest's counts must agree with its walks (catches hand edits that forgot one)."""
    if counts != split.counts():
        raise FormatError(source, "counts", f"stated {counts!r}, but the walks listed give {split.counts()}")


def draw_kgbd_split(walks: list[KgbdWalk], seed: int) -> Split:
    """Draw the literature's split from a seed: per person (sorted), permute walks; 2 gallery, 1 probe, rest train.

    A person with exactly 3 walks gets 1 gallery + 1 probe + 1 train; fewer than 3
    walks is an InputError. The same walks and seed always give the same split.
    """
    by_person: dict[str, list[int]] = {}
    for walk in walks:
        by_person.setdefault(walk.person, []).append(walk.walk)
    if not by_person:
        raise InputError("cannot draw a split: no walks")
    rng = np.random.default_rng(seed)
    roles: dict[str, dict[str, list[int]]] = {r: {} for r in ROLES}
    for person in sorted(by_person):
        numbers = sorted(by_person[person])
        if len(numbers) < 3:
            raise InputError(f"{person} has {len(numbers)} walk(s); the protocol needs at least 3")
        shuffled = [numbers[i] for i in rng.permutation(len(numbers))]
        n_gallery = GALLERY_WALKS if len(numbers) > 3 else 1
        cut = n_gallery + PROBE_WALKS
        roles["gallery"][person] = sorted(shuffled[:n_gallery])
        roles["probe"][person] = sorted(shuffled[n_gallery:cut])
        roles["train"][person] = sorted(shuffled[cut:])
    return Split("kgbd", int(seed), roles["gallery"], roles["probe"], roles["train"])


def validation_split(split: Split) -> Split:
    """A re-identification split drawn from the *training* walks of ``split`` only, for model selection.

    Per person with 2 or more training walks: 1 walk (drawn with ``default_rng([seed, 1])``) is the
    probe, the others the gallery; a person with a single training walk joins the gallery as a
    distractor. Its ``train`` is empty. The encoders never see labels, so scoring them on walks they
    were trained on picks settings without touching the probe and gallery walks of the test.
    """
    rng = np.random.default_rng([split.seed, 1])
    gallery: dict[str, list[int]] = {}
    probe: dict[str, list[int]] = {}
    for person in sorted(split.train):
        numbers = sorted(split.train[person])
        if len(numbers) >= 2:
            chosen = numbers[int(rng.integers(len(numbers)))]
            probe[person] = [chosen]
            numbers = [n for n in numbers if n != chosen]
        if numbers:
            gallery[person] = numbers
    return Split(split.dataset, split.seed, gallery, probe, {})


HELD_OUT_WALKS = "validation probe walks"  # what ``--hold-out-validation`` keeps out of training
HELD_OUT_PEOPLE = "validation people"  # what ``--hold-out-people`` keeps out of training


def held_out_people(split: Split) -> list[str]:
    """A seeded third of the people ``validation_split`` probes (drawn with ``default_rng([seed, 2])``), sorted.

    Why: a validation whose gallery walks were training tracks (``--hold-out-validation``) never meets a person
    the encoder has not seen, and a site's strangers and newly enrolled people are exactly that. These people
    leave training with all their walks (``ProtocolData.without_validation_people``) and are the whole of
    ``people_validation_split``."""
    probed = sorted(validation_split(split).probe)
    count = max(1, len(probed) // 3) if probed else 0
    chosen = np.random.default_rng([split.seed, 2]).choice(len(probed), count, replace=False)
    return sorted(probed[i] for i in chosen)


def people_validation_split(split: Split) -> Split:
    """``validation_split`` restricted to ``held_out_people``: people the encoder never saw, one probe walk each,
    the others their gallery."""
    whole = validation_split(split)
    people = held_out_people(split)
    gallery, probe = {p: whole.gallery[p] for p in people}, {p: whole.probe[p] for p in people}
    return Split(split.dataset, split.seed, gallery, probe, {})


def validation_for(split: Split, held_out: str | None) -> Split:
    """The validation split that scores a model trained with ``held_out`` out of training (its card says)."""
    return people_validation_split(split) if held_out == HELD_OUT_PEOPLE else validation_split(split)


def split_path(seed: int) -> Path:
    """Where the committed manifest of ``kgbd:SEED`` lives."""
    return SPLITS_DIR / f"kgbd-seed{seed}.json"


def parse_split_spec(spec: str) -> tuple[str, int]:
    """``"kgbd:SEED"`` -> ("kgbd", SEED); InputError on anything else."""
    match = _SPEC.match(spec.strip())
    if not match:
        raise InputError(f"split {spec!r}: expected 'kgbd:SEED' with SEED a non-negative integer, e.g. 'kgbd:0'")
    return match.group(1), int(match.group(2))


def load_split(spec: str) -> Split:
    """The committed manifest of a split spec such as ``"kgbd:0"``."""
    dataset, seed = parse_split_spec(spec)
    path = split_path(seed)
    if not path.is_file():
        committed = sorted(SPLITS_DIR.glob("kgbd-seed*.json"))
        available = ", ".join(f"kgbd:{p.stem.removeprefix('kgbd-seed')}" for p in committed)
        raise InputError(f"{path}: no manifest for split {spec!r} (committed: {available or 'none'})")
    split = Split.from_json(path.read_text(encoding="utf-8"), path)
    if (split.dataset, split.seed) != (dataset, seed):
        raise FormatError(path, "seed", f"manifest is for {split.dataset}:{split.seed}, expected {dataset}:{seed}")
    return split


def write_manifests(dataset_path: str | Path, seeds: Iterable[int]) -> list[Path]:
    """Draw and write ``engines/splits/kgbd-seed{seed}.json`` for each seed (atomically); returns the paths."""
    walks = KgbdDataset(dataset_path).walks
    SPLITS_DIR.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in seeds:
        path = split_path(seed)
        atomic.write_bytes(path, draw_kgbd_split(walks, seed).to_json().encode("utf-8"))
        paths.append(path)
    return paths


def cut_windows(joints: np.ndarray, f: int, stride: int, trim: int = TRIM_FRAMES) -> np.ndarray:
    """Windows ``[n, f, J, 3]`` (float32) of a walk ``[T, J, 3]``: ``trim`` frames off each end, then every ``stride``.

    Windows start at 0, stride, 2 * stride, ... of the trimmed walk and only whole
    windows are kept (with stride == f they tile it without overlap); a walk too
    short for one window gives zero windows.
    """
    if f < 1 or stride < 1 or trim < 0:
        raise ValueError(f"need f >= 1, stride >= 1, trim >= 0; got f={f}, stride={stride}, trim={trim}")
    joints = np.asarray(joints, dtype=np.float32)
    core = joints[trim : max(trim, len(joints) - trim)]
    count = window_count(len(joints), f, stride, trim)
    frames = np.arange(count)[:, None] * stride + np.arange(f)[None, :]
    return np.ascontiguousarray(core[frames.reshape(-1)].reshape(count, f, *joints.shape[1:]))


def window_count(frames: int, f: int, stride: int, trim: int = TRIM_FRAMES) -> int:
    """How many windows ``cut_windows`` gives for a walk of ``frames`` frames."""
    usable = frames - 2 * trim
    return (usable - f) // stride + 1 if usable >= f else 0


@dataclass
class ProtocolData:
    """The windows of one split: unlabeled training windows, labeled probe and gallery windows.

    Labels index ``people``; ``*_walk`` index ``walk_names`` ("Person001/3"), one
    index per walk, so windows can be pooled per walk for walk-level evaluation.
    """

    split: Split
    f: int
    people: list[str]
    walk_names: list[str]
    train: np.ndarray  # float32 [N, f, 20, 3], no labels on purpose
    train_walk: np.ndarray  # int64 [N]: the walk (track) of each window, never its person
    probe: np.ndarray
    probe_labels: np.ndarray
    probe_walk: np.ndarray
    gallery: np.ndarray
    gallery_labels: np.ndarray
    gallery_walk: np.ndarray

    def without_validation_probes(self) -> tuple[np.ndarray, np.ndarray]:
        """Training windows and their walks minus the walks that ``validation_split`` makes probes.

        Why: a method that learns from whole walks (TrackCon) has seen each validation walk as one
        unit; scoring it on those walks would flatter it. Trained without them, ``--on validation``
        measures on walks it never saw, as the test does.
        """
        probes = {f"{person}/{number}" for person, number in validation_split(self.split).walks("probe")}
        return self._training_without(lambda name: name in probes)

    def without_validation_people(self) -> tuple[np.ndarray, np.ndarray]:
        """Training windows and their walks minus every walk of ``held_out_people``: for ``--on validation`` on
        people never seen (``people_validation_split``)."""
        people = set(held_out_people(self.split))
        return self._training_without(lambda name: name.split("/")[0] in people)

    def training_tracks(self, held_out: str | None) -> tuple[np.ndarray, np.ndarray]:
        """The windows a model trained with ``held_out`` (its card says) learned from, and their tracks."""
        if held_out == HELD_OUT_WALKS:
            return self.without_validation_probes()
        if held_out == HELD_OUT_PEOPLE:
            return self.without_validation_people()
        return self.train, self.train_walk

    def _training_without(self, held: Callable[[str], bool]) -> tuple[np.ndarray, np.ndarray]:
        out = np.array([held(name) for name in self.walk_names])
        keep = ~out[self.train_walk]
        return self.train[keep], self.train_walk[keep]

    def summary(self) -> dict[str, int]:
        """Walk and window counts per role, for logs and reports."""
        return {
            **self.split.counts(),
            "train_windows": len(self.train),
            "probe_windows": len(self.probe),
            "gallery_windows": len(self.gallery),
        }


def load_protocol(
    data_path: str | Path,
    split: Split,
    f: int = WINDOW_FRAMES,
    train_stride: int = TRAIN_STRIDE,
    progress: bool = True,
) -> ProtocolData:
    """Read the KGBD walks of ``split`` from the dataset (zip or folder) once and cut them into windows.

    Probe and gallery walks are cut into non-overlapping windows of ``f`` frames,
    training walks every ``train_stride`` frames. Raises InputError when a walk
    named in the split is missing from the dataset, or when a probe or gallery
    walk is too short for a single window (it would silently vanish from the score).
    """
    if split.dataset != "kgbd":
        raise InputError(f"split is for dataset {split.dataset!r}; load_protocol reads KGBD")
    dataset = KgbdDataset(data_path)
    entries = _resolve_walks(dataset, split, data_path)
    people = split.people
    person_index = {person: i for i, person in enumerate(people)}
    parts: dict[str, list[tuple[np.ndarray, int, int]]] = {r: [] for r in ROLES}
    walk_names = [key for key, _, _ in entries]
    for index, (key, role, walk) in enumerate(progress_bar(entries, "Reading KGBD walks", len(entries), progress)):
        joints = dataset.read(walk).joints
        windows = cut_windows(joints, f, f if role != "train" else train_stride)
        if role != "train" and len(windows) == 0:
            raise InputError(
                f"{dataset.source_of(walk)}: {role} walk {key} has {len(joints)} frames, "
                f"fewer than the {2 * TRIM_FRAMES + f} needed for one window"
            )
        parts[role].append((windows, person_index[walk.person], index))
    train, _, train_walk = _stack(parts["train"], f)
    probe, probe_labels, probe_walk = _stack(parts["probe"], f)
    gallery, gallery_labels, gallery_walk = _stack(parts["gallery"], f)
    return ProtocolData(
        split=split,
        f=f,
        people=people,
        walk_names=walk_names,
        train=train,
        train_walk=train_walk,
        probe=probe,
        probe_labels=probe_labels,
        probe_walk=probe_walk,
        gallery=gallery,
        gallery_labels=gallery_labels,
        gallery_walk=gallery_walk,
    )


def _resolve_walks(dataset: KgbdDataset, split: Split, data_path: str | Path) -> list[tuple[str, str, KgbdWalk]]:
    """(name, role, walk) for every walk of the split, sorted by person and walk; InputError naming missing ones."""
    available = {(w.person, w.walk): w for w in dataset.walks}
    entries, missing = [], []
    for role in ROLES:
        for person, number in split.walks(role):
            walk = available.get((person, number))
            if walk is None:
                missing.append(f"{person}/{number} ({role})")
            else:
                entries.append((walk.key, role, walk))
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise InputError(f"{data_path}: walks named in split {split.dataset}:{split.seed} are missing: {shown}")
    return sorted(entries, key=lambda e: (e[2].person, e[2].walk))


def _stack(parts: list[tuple[np.ndarray, int, int]], f: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concatenate per-walk windows into (windows, person labels, walk indices)."""
    if not parts:
        return np.empty((0, f, 20, 3), np.float32), np.empty(0, np.int64), np.empty(0, np.int64)
    windows = np.concatenate([w for w, _, _ in parts])
    labels = np.concatenate([np.full(len(w), label, np.int64) for w, label, _ in parts])
    walks = np.concatenate([np.full(len(w), index, np.int64) for w, _, index in parts])
    return windows, labels, walks
