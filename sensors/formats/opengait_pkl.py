"""OpenGait's silhouette pickles: ``subject/type/view/VIEW.pkl``, a uint8 array [T, 64, 44] or [T, 64, 64].

Why a restricted unpickler: a pickle can run any code when loaded, and these files come from other people;
only what NumPy needs to rebuild an array is let through, anything else is refused naming the file.
OpenGait stores 64 x 64 (the person centred) and its models cut 10 columns off each side: read here as 64 x 44.
gaitwatch writes its own silhouettes in this layout too (``gaitwatch silhouettes extract``), 64 x 44, 0600.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from sensors import atomic
from sensors.errors import FormatError, InputError
from sensors.formats._io import read_bytes
from sensors.silhouette import HEIGHT, OPENGAIT_WIDTH, WIDTH, cut_opengait

MAX_PKL_BYTES = 256 * 2**20  # a 64 x 64 sequence of 10,000 frames is 41 MB
_NUMPY = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _Refused(pickle.UnpicklingError):
    """The pickle asks for something other than NumPy's array rebuilding."""


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _NUMPY:
            raise _Refused(f"refusing {module}.{name}: only NumPy arrays are read from a pickle")
        return super().find_class(module, name)


def read_pkl_sequence(folder: Path) -> np.ndarray:
    """The one silhouette pickle of a sequence folder, as uint8 [T, 64, 44]."""
    pickles = sorted(p for p in folder.iterdir() if p.suffix == ".pkl" and not p.name.startswith("."))
    if len(pickles) != 1:
        found = "none" if not pickles else ", ".join(p.name for p in pickles)
        raise FormatError(folder, "", f"expected one silhouette .pkl in a sequence folder, found {found}")
    return read_pkl(pickles[0])


def read_pkl(path: Path) -> np.ndarray:
    """A silhouette pickle as uint8 [T, 64, 44] (64 x 64 cut to the middle 44 columns)."""
    data = read_bytes(path, MAX_PKL_BYTES)  # regular files only, bounded
    try:
        array = _ArraysOnly(io.BytesIO(data)).load()
    except _Refused as err:
        raise FormatError(path, "", f"not a silhouette pickle ({err})") from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        MemoryError,
    ) as err:
        raise FormatError(path, "", f"truncated or corrupt pickle ({type(err).__name__}: {err})") from None
    if not isinstance(array, np.ndarray):
        raise FormatError(path, "", f"holds a {type(array).__name__}; expected a uint8 array [frames, 64, 44 or 64]")
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[1:] not in ((HEIGHT, WIDTH), (HEIGHT, OPENGAIT_WIDTH)):
        raise FormatError(
            path, "", f"a {array.dtype} array of shape {list(array.shape)}; expected uint8 [frames, 64, 44 or 64]"
        )
    return cut_opengait(array) if array.shape[2] == OPENGAIT_WIDTH else np.ascontiguousarray(array)


def write_pkl(path: Path, frames: np.ndarray) -> None:
    """A sequence's aligned silhouettes as an OpenGait pickle: written aside and renamed, private, never over a file."""
    if frames.dtype != np.uint8 or frames.ndim != 3 or frames.shape[1:] != (HEIGHT, WIDTH):
        raise InputError(f"{path}: silhouettes {frames.dtype} {list(frames.shape)}, expected uint8 [frames, 64, 44]")
    if path.exists():
        raise InputError(f"{path}: already exists; refusing to overwrite silhouettes")
    for folder in [*reversed(path.parent.parents), path.parent]:  # every folder this makes is 0700, not just the last
        if not folder.exists():
            atomic.private_dir(folder)
    atomic.write_bytes(path, pickle.dumps(np.ascontiguousarray(frames), protocol=4), private=True)
