"""An index saved beside its gallery: written aside under fresh names, a pointer replaced last, saves taking turns.

Each index kind has a stem (``hnsw``: the embeddings of ``Gallery.search``; ``tracks``: the track means the
node decides on). A save writes ``<gallery>.<stem>.<token>`` (the HNSW graph, where there is one) and
``<gallery>.<stem>.<token>.<part>.npy`` (its projection, its row ids, and whatever rows the kind keeps), each
under a name no other save uses, then replaces the small JSON pointer ``<gallery>.<stem>.json`` naming them
with their CRC-32s, then deletes the stem's other saved files (by their exact naming, never a file of
the user's that shares the prefix): a crash while saving leaves the previous
(complete) index or the new one. Saves and their clean-ups take turns under ``<gallery>.<stem>.lock``, and
readers hold it shared, because several processes may write one gallery, each saving its own view of it: no
save deletes a file another is writing or reading. A missing, damaged or other model's file reads as nothing
saved (the index is rebuilt from the store).
"""

from __future__ import annotations

import glob
import io
import json
import os
import re
import secrets
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from sensors import atomic
from stream.gallery.filelock import locked
from stream.gallery.projection import Projection

VERSION = 2  # version 1 pointers (graph, projection, ids at the top level) read as nothing saved


def pointer_path(store_path: Path, stem: str) -> Path:
    return store_path.with_name(f"{store_path.name}.{stem}.json")


def lock_path(store_path: Path, stem: str) -> Path:
    return store_path.with_name(f"{store_path.name}.{stem}.lock")


def save(
    store_path: Path,
    stem: str,
    state: dict,
    arrays: dict[str, np.ndarray],
    graph=None,
    projection: Projection | None = None,
) -> None:
    """Write ``arrays`` (and the graph with its projection) aside, point at them with ``state`` added to the
    pointer, then drop every other file of the stem; under the stem's lock."""
    with locked(lock_path(store_path, stem)):
        base = store_path.with_name(f"{store_path.name}.{stem}.{secrets.token_hex(6)}")
        files: dict[str, tuple[Path, int]] = {}
        if graph is not None:
            files["graph"] = _save_graph(graph, base)
            files["projection"] = _save_bytes(_part(base, "projection"), projection.to_bytes())
        for key, array in arrays.items():
            files[key] = _save_array(_part(base, key), array)
        pointer = {
            **state,
            "version": VERSION,
            "files": {key: path.name for key, (path, _) in files.items()},
            "crc32": {path.name: crc for path, crc in files.values()},
        }
        atomic.write_bytes(pointer_path(store_path, stem), json.dumps(pointer).encode(), private=True)
        kept = {path for path, _ in files.values()}
        for old in store_path.parent.glob(f"{glob.escape(store_path.name)}.{stem}.*"):
            if old not in kept and _ours(old.name, store_path.name, stem):
                old.unlink(missing_ok=True)


def _ours(name: str, gallery: str, stem: str) -> bool:
    """Whether a file beside the gallery is one an index save wrote (now or in version 1, whose graphs were
    named by generation): only those are deleted, never a file of the user's that happens to share the prefix."""
    token = r"(?:[0-9a-f]{12}|[0-9]+)"  # this version's random token, version 1's generation
    pattern = rf"{re.escape(gallery)}\.{re.escape(stem)}\.{token}(?:\.[a-z_]+\.npy)?(?:\.partial)?"
    return re.fullmatch(pattern, name) is not None


class Saved:
    """The files a pointer names; each read checks its CRC-32 and gives None when missing or damaged."""

    def __init__(self, store_path: Path, state: dict) -> None:
        self.store_path, self.state = store_path, state

    @property
    def generation(self) -> int | None:
        return self.state.get("generation")

    def has(self, key: str) -> bool:
        return key in self.state["files"]

    def array(self, key: str) -> np.ndarray | None:
        path = self._path(key)
        if path is None:
            return None
        try:
            with open(path, "rb") as stream:
                array = np.empty(*_npy_header(stream))  # a damaged header is caught by the CRC-32 just after
        except (OSError, ValueError, MemoryError):
            return None
        return array if self.read_into(key, array) else None

    def read_into(self, key: str, array: np.ndarray) -> bool:
        """Read a saved array into ``array`` (C-contiguous, of its shape and type) in the one pass that checks its
        CRC-32; False when it is missing, of another shape, or damaged."""
        path = self._path(key)
        if path is None or not array.flags.c_contiguous:
            return False
        data = memoryview(array.reshape(-1).view(np.uint8))
        try:
            with open(path, "rb") as stream:
                if _npy_header(stream) != (array.shape, array.dtype):
                    return False
                header = stream.tell()
                stream.seek(0)
                crc = zlib.crc32(stream.read(header))
                for start in range(0, len(data), 1 << 24):
                    chunk = data[start : start + (1 << 24)]
                    if stream.readinto(chunk) != len(chunk):
                        return False
                    crc = zlib.crc32(chunk, crc)
                if stream.read(1):
                    return False
        except (OSError, ValueError):
            return False
        return self.state["crc32"].get(path.name) == crc

    def graph(self):
        """(the hnswlib graph, its projection), or None."""
        import hnswlib

        graph_path, projection_path = self._checked("graph"), self._checked("projection")
        if graph_path is None or projection_path is None:
            return None
        try:
            projection = Projection.from_bytes(projection_path.read_bytes(), self.state["dim"])
            graph = hnswlib.Index(space="l2", dim=projection.dim)
            graph.load_index(str(graph_path), allow_replace_deleted=False)
        except (OSError, ValueError, TypeError, AttributeError, RuntimeError, EOFError):
            return None
        return graph, projection

    def _path(self, key: str) -> Path | None:
        name = self.state["files"].get(key)
        return self.store_path.with_name(name) if isinstance(name, str) and "/" not in name else None

    def _checked(self, key: str) -> Path | None:
        path = self._path(key)
        try:
            crc = _crc32(path) if path is not None else None
        except OSError:
            return None
        return path if crc is not None and self.state["crc32"].get(path.name) == crc else None


@contextmanager
def reading(store_path: Path, stem: str, model_sha256: str, dim: int, gallery: str) -> Iterator[Saved | None]:
    """The index saved under ``stem`` for this gallery (``GalleryStore.key``: a gallery deleted and made again
    under the same name is another) and this model; None when there is none; kept from deletion meanwhile."""
    with locked(lock_path(store_path, stem), shared=True):
        try:
            state = json.loads(pointer_path(store_path, stem).read_text())
        except (OSError, ValueError):
            state = None
        valid = (
            isinstance(state, dict)
            and state.get("version") == VERSION
            and state.get("model_sha256") == model_sha256
            and state.get("gallery") == gallery
            and state.get("dim") == dim
            and isinstance(state.get("files"), dict)
            and isinstance(state.get("crc32"), dict)
        )
        yield Saved(store_path, state) if valid else None


def _npy_header(stream) -> tuple[tuple, np.dtype]:
    """(shape, dtype) of the .npy file ``stream`` is at the start of, leaving it at its data."""
    version = np.lib.format.read_magic(stream)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read(stream)
    if fortran or dtype.hasobject:
        raise ValueError("not a C-ordered array of numbers")
    return shape, dtype


def _part(base: Path, key: str) -> Path:
    return base.with_name(f"{base.name}.{key}.npy")


def _save_graph(hnsw, path: Path) -> tuple[Path, int]:
    """hnswlib writes the graph into a private partial file (it keeps an existing file's mode), then it is
    committed; returns its path and CRC-32."""
    partial = atomic.partial_path(path)
    os.close(atomic.open_private(partial))
    hnsw.save_index(str(partial))
    crc = _crc32(partial)
    atomic.commit(partial, path)
    return path, crc


def _save_bytes(path: Path, data: bytes) -> tuple[Path, int]:
    atomic.write_bytes(path, data, private=True)
    return path, zlib.crc32(data)


def _save_array(path: Path, array: np.ndarray) -> tuple[Path, int]:
    """Streamed to disk (a million track means are a gigabyte: no copy of them is made in memory)."""
    partial = atomic.partial_path(path)
    with atomic.create_private(partial) as stream:
        checked = _Checksummed(stream)
        np.save(checked, np.ascontiguousarray(array), allow_pickle=False)
    atomic.commit(partial, path)
    return path, checked.crc


class _Checksummed(io.RawIOBase):
    """A write-only stream that passes bytes on and keeps their CRC-32 (numpy writes it in chunks)."""

    def __init__(self, stream) -> None:
        self.stream, self.crc = stream, 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.crc = zlib.crc32(data, self.crc)
        return self.stream.write(data)


def _crc32(path: Path) -> int:
    crc = 0
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 24):
            crc = zlib.crc32(chunk, crc)
    return crc
