"""``gaitwatch export --body-shape``: a TrackCon checkpoint whose embeddings end with each window's bone lengths.

The checkpoint is copied with ``body_shape`` set (``engines.checkpoint.encoder_from`` then appends the bone
lengths, ``engines.track_distance`` says how galleries compare them) and written beside the artifact, so that
``gaitwatch adapt --from`` keeps it. Its ``impostor_shape`` (the prior of ``calibrate site``: the relative spread
of distances between different training tracks) is measured again with the fused distance, on the training
tracks of the checkpoint's own split: the fused distances spread more than the embedding's alone (0.120 against
0.094 of the centre for the shipped kgbd:0 model). Where that data cannot be read the prior is dropped, with a
warning: ``calibrate site`` then rests on the site's own pairs.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sensors.errors import InputError


def with_body_shape(spec: str, out: Path, data: Path | None = None) -> Path:
    """The trackcon checkpoint ``spec`` with the body shape on, saved as ``out`` with the permissions of ``spec``
    (an adapted model learned from a site's people); ``data``: KGBD, where the checkpoint's own path is not."""
    from engines.checkpoint import atomic_save, load
    from engines.models.trackcon import WithBodyShape
    from engines.runtime.load import resolve_artifact

    source = resolve_artifact(spec)
    if source == "raw" or Path(source).suffix != ".pt":
        raise InputError(f"--body-shape: starts from a trackcon checkpoint (.pt or run folder), not {spec}")
    checkpoint = load(source)
    if checkpoint["method"] != WithBodyShape.method:
        raise InputError(f"--body-shape: {source} is a {checkpoint['method']} model; only trackcon carries it")
    if Path(source).resolve() == out.resolve():
        raise InputError(f"--body-shape: {out} would overwrite the checkpoint it starts from; name another --out")
    shaped = {**checkpoint, "body_shape": True}
    if "impostor_shape" in checkpoint:
        prior = _fused_prior(shaped, Path(source), data)
        if prior is None:
            del shaped["impostor_shape"]
        else:
            shaped["impostor_shape"] = prior
    atomic_save(shaped, out)
    out.chmod(Path(source).stat().st_mode & 0o777)
    return out


def _fused_prior(checkpoint: dict, source: Path, data: Path | None) -> dict | None:
    """``impostor_shape`` of the body-shape encoder on the checkpoint's training tracks; None where unreadable."""
    from engines.checkpoint import encoder_from
    from engines.impostors import track_shape
    from engines.models import embed_in_batches
    from engines.protocol import load_protocol, load_split
    from engines.track_distance import BODY_SHAPE

    named = data or checkpoint.get("data")
    path = Path(named) if named else None
    if not checkpoint.get("split") or path is None or not path.exists():
        print(
            f"warning: {source}: its training data ({path}) is not here, so calibrate site's prior is dropped "
            "(name KGBD with --data to measure it)",
            file=sys.stderr,
        )
        return None
    import torch

    protocol = load_protocol(path, load_split(checkpoint["split"]), progress=False, f=checkpoint["f"])
    windows, tracks = protocol.training_tracks(checkpoint.get("held_out"))
    embedded = embed_in_batches(encoder_from(checkpoint, source), torch.from_numpy(windows)).numpy()
    return {**track_shape(embedded, tracks, metric=BODY_SHAPE), "metric": BODY_SHAPE}
