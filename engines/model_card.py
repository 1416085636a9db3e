"""The JSON model card beside every encoder artifact: what the file is, what it was trained on, how good it is.

Why a card: the live node, the gallery and a person reading the repository all need to know a
model's window length, frame rate, layout, embedding size and distance metric without running it,
and the sha256 ties the card to exactly one file (a card that does not match its file is refused).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from engines.track_distance import EUCLIDEAN, check_metric, metric_of
from sensors import atomic
from sensors.errors import FormatError, InputError

CARD_VERSION = 1
CARD_SUFFIX = ".card.json"
TRACK_METHODS = ("trackcon",)  # methods whose training reads whole tracks (``Method.uses_tracks``; a test keeps both)


def learned_from_tracks(card: dict) -> bool:
    """Whether the model was trained on whole walks as units, so walks it trained on flatter its scores."""
    return card["method"] in TRACK_METHODS


REQUIRED = ("card_version", "method", "f", "rate_hz", "layout", "embedding_dim", "metric", "file")


def card_path(artifact: str | Path) -> Path:
    """``model.onnx`` -> ``model.onnx.card.json`` (an ONNX file and its TensorRT engine never share a card)."""
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + CARD_SUFFIX)


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_entry(artifact: Path) -> dict:
    return {"name": artifact.name, "bytes": artifact.stat().st_size, "sha256": sha256_of(artifact)}


def gaitwatch_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gaitwatch")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def write_card(artifact: str | Path, card: dict) -> Path:
    """Write the card beside ``artifact`` (atomically), with the file's name, size and sha256 filled in."""
    artifact = Path(artifact)
    full = {
        "card_version": CARD_VERSION,
        **card,
        "gaitwatch_version": gaitwatch_version(),
        "file": file_entry(artifact),
    }
    missing = [key for key in REQUIRED if key not in full]
    if missing:
        raise ValueError(f"model card for {artifact} lacks {missing}")
    path = card_path(artifact)
    atomic.write_bytes(path, (json.dumps(full, indent=1) + "\n").encode("utf-8"))
    return path


def read_card(artifact: str | Path, verify: bool = True) -> dict:
    """The card of ``artifact``; InputError when it is missing, FormatError when malformed or not this file's."""
    artifact = Path(artifact)
    path = card_path(artifact)
    if not path.is_file():
        raise InputError(f"{artifact}: no model card beside it (expected {path.name}); re-export the model")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise FormatError(path, f"line {err.lineno}", f"not valid JSON ({err.msg})") from None
    except ValueError as err:  # not UTF-8, or an integer of thousands of digits (JSON allows it, Python refuses)
        raise FormatError(path, "text", f"not readable JSON ({str(err)[:80]})") from None
    if not isinstance(card, dict):
        raise FormatError(path, "top level", "expected a JSON object")
    missing = [key for key in REQUIRED if key not in card]
    if missing:
        raise FormatError(path, "keys", f"missing {', '.join(missing)}")
    if card["card_version"] != CARD_VERSION:
        raise FormatError(path, "card_version", f"version {card['card_version']}, this gaitwatch reads {CARD_VERSION}")
    check_metric(path, card["metric"])
    if verify:
        actual = sha256_of(artifact)
        if card["file"].get("sha256") != actual:
            raise FormatError(path, "file.sha256", f"does not match {artifact.name} (sha256 {actual[:12]}...)")
    return card


def card_from_checkpoint(info: dict | None, f: int, embedding_dim: int) -> dict:
    """Card fields (all but ``file``) from a checkpoint's description; ``None`` describes the raw baseline."""
    if info is None:
        return {
            "method": "raw",
            "f": f,
            "rate_hz": 30.0,
            "layout": "kinect_v1",
            "embedding_dim": embedding_dim,
            "metric": EUCLIDEAN,
            "input": _input(f),
            "training": None,
        }
    training_keys = (
        "dataset",
        "data",
        "split",
        "seed",
        "epoch",
        "train_windows",
        "train_seconds",
        "torch_threads",  # training repeats exactly only with the same CPU thread count (engines.train.loop)
        "torch_cpu",  # and the same instruction set of torch's CPU kernels
        "config",
        "held_out",
    )
    return {
        "method": info["method"],
        "f": f,
        "rate_hz": float(info.get("rate_hz", 30.0)),
        "layout": info.get("layout", "kinect_v1"),
        "embedding_dim": embedding_dim,
        "metric": metric_of(info),
        "input": _input(f),
        "training": {key: info[key] for key in training_keys if key in info},
        **{key: info[key] for key in ("adaptation", "impostor_shape") if key in info},
    }


def _input(f: int) -> dict:
    return {
        "name": "windows",
        "shape": ["N", f, 20, 3],
        "dtype": "float32",
        "units": "metres, canonical skeleton (Kinect v1 joint order), y up",
        "normalisation": "inside the model",
    }
