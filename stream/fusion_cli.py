"""``gaitwatch calibrate fusion``: the silhouette fusion weight for a site, from labelled walks of its people.

Why a command and not a constant: how much the silhouette channel should count depends on the site's silhouette
model, camera and people, and only walks of enrolled people recorded on other days than their enrollment (other
clothes, other light) can tell. The node reads the file it writes (``--fusion-weight FILE``); without one it weighs
the two channels equally (``stream.fusion.FUSION_WEIGHT``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from sensors.errors import InputError
from stream.gallery.location import gallery_location

NEEDS = "walks recorded with --silhouettes (gaitwatch record --silhouettes ...: a .gwrec with its .gwsil)"


def add_commands(what: argparse._SubParsersAction) -> None:
    """``fusion`` under the shared ``calibrate`` group."""
    fusion = what.add_parser(
        "fusion", help="the silhouette channel's fusion weight from labelled walks of enrolled people (other days)"
    )
    fusion.add_argument(
        "walks", nargs="*", metavar="NAME=WALK", help=f"an enrolled person's name and one of their {NEEDS}"
    )
    fusion.add_argument(
        "--stranger",
        type=Path,
        action="append",
        default=[],
        help="a walk of someone not enrolled (repeatable; default: none)",
    )
    fusion.add_argument("--gallery", type=gallery_location, required=True, help="the site's gallery (read only)")
    fusion.add_argument("--model", type=Path, help="skeleton encoder (default: the shipped model; the gallery's)")
    fusion.add_argument("--silhouette-model", type=Path, help="silhouette encoder (default: the shipped SelfGait)")
    fusion.add_argument("--sensor-id", help="sensor id of the walks (for --calibration; default: each walk's own)")
    fusion.add_argument("--calibration", type=Path, help="sensor calibration file, as the node uses it (default: none)")
    fusion.add_argument("--out", type=Path, required=True, help="the weight file to write (read by --fusion-weight)")
    fusion.set_defaults(func=run_fusion)


def run_fusion(args: argparse.Namespace) -> int:
    from calibration.sensor_file import SensorCalibrations
    from engines.runtime.load import open_encoder, open_silhouette_encoder
    from sensors import atomic
    from stream.fusion_weight import FORMAT, VERSION, best, weigh
    from stream.gallery.channel import SILHOUETTE
    from stream.gallery.gallery import Gallery

    labelled = [_named_walk(text) for text in args.walks]
    if not labelled:
        raise InputError(f"calibrate fusion: give NAME=WALK for enrolled people ({NEEDS})")
    if args.out.exists():
        raise InputError(f"{args.out}: already exists; refusing to overwrite it")
    encoder, silhouettes = open_encoder(args.model), open_silhouette_encoder(args.silhouette_model)
    calibrations = SensorCalibrations.load(args.calibration) if args.calibration else None
    place = (args.sensor_id, calibrations)
    gallery = Gallery.open(args.gallery, encoder.card, writable=False)
    try:
        gallery.check_channel_model(SILHOUETTE, silhouettes.card)
        scales = gallery.tracks.impostor_scale(), gallery.channel_scale(SILHOUETTE)
        if scales[0] is None or scales[1] is None:
            raise InputError(f"{gallery.store.where}: needs at least two people enrolled with silhouettes")
        walks = [(gallery.store.identity(f"name:{name}").id, path) for name, path in labelled]
        walks += [(None, path) for path in args.stranger]
        scores = [_walk_scores(identity, path, gallery, encoder, silhouettes, place) for identity, path in walks]
        models = {"skeleton": encoder.card["file"]["sha256"], "silhouette": silhouettes.card["file"]["sha256"]}
    finally:
        gallery.close()
    rows = weigh(scores, scales)
    weight = best(rows)
    report = {"format": FORMAT, "version": VERSION, "weight": weight, "models": models, "scales": list(scales),
              "walks": [str(path) for _, path in walks], "rows": rows}  # fmt: skip
    atomic.write_bytes(args.out, (json.dumps(report, indent=1) + "\n").encode(), private=True)
    for row in rows:
        mark = "  <- chosen" if row["weight"] == weight else ""
        print(
            f"skeleton weight {row['weight']:.1f}: pairs in order {row['auc']:.3f}, gap {row['gap']:+.3f}, "
            f"nearest right {row['nearest_right']} of {row['walks']}{mark}"
        )
    print(f"fusion weight {weight:.1f} -> {args.out} (use it with --fusion-weight {args.out})")
    return 0


def _named_walk(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise InputError(f"{text}: expected NAME=WALK (an enrolled person's name, one of their walks)")
    return name, Path(path)


def _walk_scores(identity: int | None, path: Path, gallery, encoder, silhouettes, place: tuple):
    """The walk's longest track (its person; others in view are passers-by): its distance to every identity in
    each channel, from the mean of its window embeddings, as the node decides (placed by ``place``: the sensor id and
    calibration, as ``calibrate site``)."""
    from sensors.formats.gwsil import companion, read_gwsil
    from sensors.silhouette_windows import track_silhouettes
    from stream.fusion_weight import WalkScores
    from stream.gallery.channel import SILHOUETTE
    from stream.inputs import site_tracks

    if not companion(path).is_file():
        raise InputError(f"{path}: no {companion(path).name} beside it; calibrate fusion needs {NEEDS}")
    records = read_gwsil(companion(path))
    tracks, shapes = [], {}
    for _, recording, part in site_tracks([path], encoder.f, float(encoder.card["rate_hz"]), *place):
        if not shapes:
            cut = track_silhouettes(records, recording, silhouettes.f, max(1, silhouettes.f // 2))
            shapes = {windows.track: windows for windows in cut}
        if part.track in shapes and len(shapes[part.track].windows):
            tracks.append(part)
    if not tracks:
        raise InputError(f"{path}: no track with whole windows of both skeletons and silhouettes")
    part = max(tracks, key=lambda p: len(p.windows))
    skeleton = encoder.encode(part.windows).mean(axis=0, keepdims=True)
    shape = silhouettes.encode(shapes[part.track].windows).mean(axis=0, keepdims=True)
    (found,) = gallery.search_tracks_many(np.asarray(skeleton, np.float32), max(1, len(gallery.tracks)))
    channel = gallery.channel_identities(SILHOUETTE)
    (shaped,) = gallery.search_channel_many(SILHOUETTE, np.asarray(shape, np.float32), max(1, len(channel)))
    return WalkScores(identity, {m.identity: m.distance for m in found}, {m.identity: m.distance for m in shaped})
