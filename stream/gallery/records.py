"""What both gallery stores (SQLite, PostgreSQL) share: the records they return, the checks on what they read
and write, and the guard that turns a database driver's error into one clear error naming the gallery."""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from sensors.errors import FormatError, InputError
from stream.gallery.rows import Rows

META_TYPES = {
    "schema_version": int,
    "model_sha256": str,
    "model_method": str,
    "model_name": str,
    "dim": int,
    "metric": str,
    "f": int,
    "created": float,
    "generation": int,
}
BINDING_KEYS = ("model_sha256", "model_method", "model_name", "dim", "metric", "f")  # a model binding (model_binding)


@dataclass(frozen=True)
class Identity:
    id: int
    name: str
    attributes: dict
    created: float
    anonymous: bool
    embeddings: int = 0


@dataclass(frozen=True)
class Origin:
    """Where an embedding came from: a file or sensor, a track in it, a time span; optionally its window."""

    source: str
    track: str | None = None
    t_start: float | None = None
    t_end: float | None = None
    window: np.ndarray | None = None  # float32 [f, 20, 3], kept so the gallery can be re-embedded


@dataclass(frozen=True)
class TrackMeans:
    """Per enrolled track (the embeddings sharing identity, source and track), ordered by label.

    The label is the track's newest embedding id: ids are never reused and only grow, so a label names one
    track, and label and count together name what it held (embeddings are added, never taken from a track
    but with its whole identity; a merge moves whole tracks to another identity, so owners are compared too)."""

    labels: np.ndarray  # int64 [T]
    owners: np.ndarray  # int64 [T], the identity
    counts: np.ndarray  # int64 [T], its embeddings
    means: np.ndarray  # float32 [T, D], their mean (summed in float64)


def guarded(method):
    """A decorator for store methods: an error of the store's database driver (``self.driver_errors()``) raised
    inside (a generator's too, while it is iterated) becomes the store's one clear error (``self.failure``);
    ``self.prepare()`` runs first (PostgreSQL: a new connection where the old one broke)."""
    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def generator(self, *args, **kwargs):
            self.prepare()
            try:
                yield from method(self, *args, **kwargs)
            except self.driver_errors() as err:
                raise self.failure(err) from None

        return generator

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        self.prepare()
        try:
            return method(self, *args, **kwargs)
        except self.driver_errors() as err:
            raise self.failure(err) from None

    return wrapper


def model_binding(card: dict) -> dict:
    """What a gallery records of the model that fills it (its meta), from the model's card."""
    return {
        "model_sha256": card["file"]["sha256"],
        "model_method": card["method"],
        "model_name": card["file"]["name"],
        "dim": card["embedding_dim"],
        "metric": card["metric"],
        "f": card["f"],
    }


def check_meta_value(where: str, key: str, value: object, place: str | None = None) -> None:
    """FormatError naming ``key`` (or ``place``) unless ``value`` has the type META_TYPES gives it (a float may be
    an int)."""
    kind = META_TYPES[key]
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (number if kind is float else isinstance(value, kind) and not isinstance(value, bool)):
        raise FormatError(where, place or f"meta {key}", f"{value!r}, expected a {kind.__name__}")


def parse_json(where: str, value, what: str):
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        raise FormatError(where, what, f"{value!r} is not JSON") from None


def check_model(where: str, meta: dict, card: dict) -> None:
    """Refuse embeddings or queries from any model other than the one the gallery at ``where`` was filled with."""
    sha = card["file"]["sha256"]
    if sha != meta["model_sha256"]:
        from engines.runtime.load import shipped_with_sha256  # only on this error path: no model loading

        shipped = shipped_with_sha256(meta["model_sha256"])  # a model gaitwatch shipped: its path, not a bare name
        raise InputError(
            f"{where}: filled by {meta['model_name']} (sha256 {meta['model_sha256'][:12]}...), "
            f"not by {card['file']['name']} (sha256 {sha[:12]}...); name its model with --model "
            f"{shipped or meta['model_name']}, or re-embed the gallery with "
            f"'gaitwatch gallery reembed {where} --model {card['file']['name']}'"
        )


def group_track_means(chunks: Iterable[tuple[np.ndarray, np.ndarray, list, np.ndarray]], dim: int) -> TrackMeans:
    """``TrackMeans`` of embeddings read in id order, in chunks of (ids, identities, their track keys
    (identity, source, track), vectors [n, dim]): summed per track in float64, the label its newest id."""
    keys: dict[tuple, int] = {}
    sums, counts, labels, owners = Rows(np.float64, dim), Rows(np.int64), Rows(np.int64), Rows(np.int64)
    for ids, who, track_keys, vectors in chunks:
        rows = np.fromiter((keys.setdefault(key, len(keys)) for key in track_keys), np.int64, len(track_keys))
        for held in (sums, counts, labels, owners):
            held.grow(len(keys))
        order = np.argsort(rows, kind="stable")  # each track's embeddings together, in id order
        rows, ids, who = rows[order], ids[order], who[order]
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        ends = np.r_[starts[1:], len(rows)]
        tracks = rows[starts]
        sums.view()[tracks] += np.add.reduceat(vectors[order].astype(np.float64), starts, axis=0)
        counts.view()[tracks] += ends - starts
        labels.view()[tracks] = ids[ends - 1]
        owners.view()[tracks] = who[starts]
    total = sums.view()
    total /= np.maximum(counts.view(), 1)[:, None]
    order = np.argsort(labels.view())
    means = np.empty(total.shape, np.float32)
    for start in range(0, len(order), 65536):  # block by block: no float64 copy of every mean at once
        means[start : start + 65536] = total[order[start : start + 65536]]
    return TrackMeans(labels.view()[order], owners.view()[order], counts.view()[order], means)


def find_identity(where: str, ref: int | str, by_id, by_name) -> Identity:
    """The one identity ``ref`` names; InputError when none, or when it could name two.

    An int or ``id:N`` is an id, ``name:TEXT`` a name. Other text is a name, and also an id where it is
    written as one ("5", not "05"): where it names one identity and is the id of another, it is refused
    with how to say which, so a person named "02" (a CMU subject) is never taken for identity 2.
    ``by_id(n)`` and ``by_name(text)``: the store's identities with that id, that name."""
    text = str(ref)
    if isinstance(ref, int) or text.startswith("id:"):
        number = text.removeprefix("id:")
        if not _is_id(number):
            raise InputError(f"{where}: {text!r} is not an identity id (id:N, N a whole number)")
        return _one(where, by_id(int(number)), text)
    name = text.removeprefix("name:")
    named = by_name(name)
    if len(named) > 1:
        ids = ", ".join(f"id:{i.id}" for i in named)
        raise InputError(f"{where}: {len(named)} identities are named {name!r} ({ids}); pick one by its id")
    numbered = by_id(int(text)) if _is_id(text) else []
    if named and numbered and named[0].id != numbered[0].id:
        raise InputError(
            f"{where}: {text!r} is the name of identity {named[0].id} and the id of identity "
            f"{numbered[0].id} ({numbered[0].name!r}); say name:{text} or id:{text}"
        )
    return _one(where, named or numbered, text)


def _one(where: str, rows: list[Identity], ref: str) -> Identity:
    if not rows:
        raise InputError(f"{where}: no identity {ref!r}")
    return rows[0]


def new_vectors(where: object, vectors: np.ndarray, origins: list, dim: int) -> np.ndarray:
    """Embeddings about to be enrolled as float32 [n, dim], one origin each, every value finite; else one clear
    error naming the gallery: what both stores check before a write."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[1] != dim:
        raise InputError(f"{where}: embeddings of shape {list(vectors.shape)}, expected [n, {dim}]")
    if len(origins) != len(vectors):
        raise InputError(f"{len(vectors)} embeddings but {len(origins)} origins")
    if not np.isfinite(vectors).all():
        raise InputError(f"{where}: refusing embeddings with NaN or infinite values")
    return vectors


def stored_vectors(where: str, ids: np.ndarray, blobs: list, dim: int, what: str = "embedding") -> np.ndarray:
    """Stored vectors as [n, D] float32; FormatError naming the first of the wrong length or not finite (``what``
    names the row: "embedding", "silhouette embedding")."""
    size = 4 * dim
    for number, blob in zip(ids.tolist(), blobs, strict=True):
        if not isinstance(blob, bytes) or len(blob) != size:
            got = f"{len(blob)} bytes" if isinstance(blob, (bytes, str)) else type(blob).__name__
            raise FormatError(where, f"{what} {number}", f"vector of {got}, expected {size} bytes")
    vectors = np.frombuffer(b"".join(blobs), np.float32).reshape(len(blobs), dim)
    finite = np.isfinite(vectors).all(axis=1)
    if not finite.all():
        raise FormatError(where, f"{what} {ids[~finite][0]}", "vector holds NaN or infinite values")
    return vectors


def _is_id(text: str) -> bool:
    """Written as an id: digits without a leading zero, within SQLite's integers (checked before any conversion:
    Python refuses to convert over 4,300 digits, SQLite to bind over 2**63 - 1)."""
    return text.isascii() and text.isdigit() and len(text) <= 19 and text == str(int(text)) and int(text) < 2**63


def stored_integers(where: str, values: list, what: str) -> np.ndarray:
    """Stored integers (ids, identities, counts) as int64; FormatError naming ``what`` where one is not an integer
    (SQLite keeps whatever a damaged row holds)."""
    if not all(isinstance(v, int) for v in values):
        raise FormatError(where, what, "a value that is not an integer")
    return np.asarray(values, np.int64).reshape(len(values))
