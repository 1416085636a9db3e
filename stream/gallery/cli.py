"""``gaitwatch gallery create | enroll | list | show | rename | remove | export | import | stats``."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from sensors.errors import InputError

LABEL_KEYS = ("person", "subject")  # KGBD walks, CMU trials


def register(commands: argparse._SubParsersAction) -> None:
    gallery = commands.add_parser("gallery", help="the identity gallery: enroll people, list, rename, remove, ...")
    sub = gallery.add_subparsers(dest="action", metavar="ACTION", required=True)

    def add(name: str, help_text: str, func) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("gallery", type=Path, help="the gallery file (SQLite)")
        p.set_defaults(func=func)
        return p

    create = add("create", "make an empty gallery bound to a model", run_create)
    create.add_argument("--model", type=Path, help="encoder artifact (default: the shipped SimMC model)")
    enroll = add("enroll", "encode recorded files or a dataset's walks and enroll them by their labels", run_enroll)
    enroll.add_argument("inputs", nargs="+", help="recorded files (.gwrec, .skeleton, ...) or a KGBD zip/folder")
    enroll.add_argument("--name", help="enroll everything as this one identity (instead of by labels)")
    enroll.add_argument("--label", help=f"label naming the person (default: the first of {', '.join(LABEL_KEYS)})")
    enroll.add_argument("--stride", type=int, help="frames between windows (default: f, no overlap)")
    enroll.add_argument("--keep-windows", action="store_true", help="store each window too, for re-embedding")
    enroll.add_argument(
        "--attribute",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a free attribute for every identity this enroll touches (repeatable), e.g. --attribute site=lab",
    )
    enroll.add_argument("--model", type=Path, help="the gallery's encoder artifact (default: the shipped model)")
    enroll.add_argument(
        "--calibration",
        type=Path,
        help="sensor calibration file: calibrated sensors enroll in the world frame",
    )
    add("list", "identities with their number of embeddings", run_list).add_argument("--json", action="store_true")
    show = add("show", "one identity: attributes and where its embeddings came from", run_show)
    show.add_argument("identity", help="id or unique name")
    rename = add("rename", "give an identity a new name", run_rename)
    rename.add_argument("identity")
    rename.add_argument("name")
    remove = add("remove", "delete an identity and its embeddings", run_remove)
    remove.add_argument("identity")
    export = add("export", "write identities and embeddings to a portable .npz", run_export)
    export.add_argument("out", type=Path)
    imp = add("import", "add the identities of an exported .npz (same model only)", run_import)
    imp.add_argument("source", type=Path)
    add("stats", "sizes, model, index", run_stats).add_argument("--json", action="store_true")
    reembed = add("reembed", "re-encode the stored windows with another model and bind the gallery to it", run_reembed)
    reembed.add_argument("--model", type=Path, required=True, help="the new encoder artifact")


def _open(path: Path, model_card: dict | None = None):
    from stream.gallery.gallery import Gallery

    return Gallery.open(path, model_card)


def _encoder(model: Path | None):
    from engines.runtime.load import open_encoder

    return open_encoder(model)


def run_create(args: argparse.Namespace) -> int:
    from stream.gallery.gallery import Gallery

    encoder = _encoder(args.model)
    Gallery.create(args.gallery, encoder.card).close()
    print(f"created {args.gallery} for {encoder.card['file']['name']} (D = {encoder.embedding_dim})")
    return 0


def run_enroll(args: argparse.Namespace) -> int:
    from calibration.sensor_file import SensorCalibrations
    from calibration.sensor_pose import PoseLookup
    from sensors.formats import iter_recordings
    from sensors.progress import progress
    from stream.windows import track_windows

    attributes = _attributes(args.attribute)
    pose_of = PoseLookup(SensorCalibrations.load(args.calibration).poses() if args.calibration else {})
    encoder = _encoder(args.model)
    gallery = _open(args.gallery, encoder.card)
    by_name = {i.name: i.id for i in gallery.identities()}
    touched: set[int] = set()
    enrolled, skipped, tracks = 0, 0, 0
    for recording in progress(iter_recordings(args.inputs), "Enrolling", total=None):
        pose = pose_of(recording.sensor_id)
        for part in track_windows(recording, encoder.f, float(encoder.card["rate_hz"]), args.stride, pose):
            skipped += part.skipped
            if len(part.windows) == 0:
                continue
            source = str(part.labels.get("source", recording.sensor_id))
            name = args.name or _person(part.labels, args.label, source, part.track)
            if name not in by_name:
                by_name[name] = gallery.add_identity(name, {"enrolled_from": source})
            gallery.enroll_track(by_name[name], part, encoder.encode, source, args.keep_windows)
            touched.add(by_name[name])
            enrolled += len(part.windows)
            tracks += 1
    if attributes:
        for identity in sorted(touched):
            gallery.store.update_attributes(identity, attributes)
    gallery.close()
    print(
        f"enrolled {enrolled} windows of {tracks} tracks into {args.gallery}"
        + (f"; skipped {skipped} windows with missing joints" if skipped else "")
    )
    return 0


def _attributes(pairs: list[str]) -> dict[str, str]:
    """``--attribute KEY=VALUE`` options as a dict; InputError naming a malformed one."""
    attributes = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--attribute {pair!r}: expected KEY=VALUE")
        attributes[key.strip()] = value
    return attributes


def _person(labels: dict, key: str | None, source: str, track: int) -> str:
    keys = (key,) if key else LABEL_KEYS
    for k in keys:
        if k in labels:
            return str(labels[k])
    raise InputError(f"{source}, track {track}: no label {' or '.join(keys)} to name the person; use --name")


def run_list(args: argparse.Namespace) -> int:
    gallery = _open(args.gallery)
    rows = gallery.identities()
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "id": i.id,
                        "name": i.name,
                        "embeddings": i.embeddings,
                        "anonymous": i.anonymous,
                        "created": i.created,
                    }
                    for i in rows
                ],
                indent=1,
            )
        )
        return 0
    print(f"{'id':>6}  {'embeddings':>10}  created              name")
    for i in rows:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(i.created))
        print(f"{i.id:>6}  {i.embeddings:>10}  {created}  {i.name}{' (anonymous)' if i.anonymous else ''}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    gallery = _open(args.gallery)
    identity = gallery.store.identity(args.identity)
    sources = gallery.store.db.execute(
        "SELECT source, track, COUNT(*), MIN(t_start), MAX(t_end) FROM embeddings WHERE identity = ? "
        "GROUP BY source, track ORDER BY source, track",
        (identity.id,),
    ).fetchall()
    print(
        json.dumps(
            {
                "id": identity.id,
                "name": identity.name,
                "attributes": identity.attributes,
                "created": identity.created,
                "anonymous": identity.anonymous,
                "embeddings": identity.embeddings,
                "sources": [
                    {"source": s, "track": t, "embeddings": n, "from_s": a, "to_s": b} for s, t, n, a, b in sources
                ],
            },
            indent=1,
        )
    )
    return 0


def run_rename(args: argparse.Namespace) -> int:
    gallery = _open(args.gallery)
    identity = gallery.store.identity(args.identity)
    gallery.rename(identity.id, args.name)
    gallery.close()
    print(f"identity {identity.id}: {identity.name!r} -> {args.name!r}")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    gallery = _open(args.gallery)
    identity = gallery.store.identity(args.identity)
    removed = gallery.remove(identity.id)
    gallery.close()
    print(f"removed identity {identity.id} ({identity.name}) and its {removed} embeddings")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from sensors import atomic

    gallery = _open(args.gallery)
    ids, owners = gallery.store.ids_and_owners()
    vectors = np.concatenate([v for _, _, v in gallery.store.embeddings()]) if len(ids) else np.zeros((0, 0))
    identities = [
        {"id": i.id, "name": i.name, "attributes": i.attributes, "created": i.created, "anonymous": i.anonymous}
        for i in gallery.identities()
    ]
    meta = {
        "model": {k: gallery.store.meta[k] for k in ("model_sha256", "model_name", "dim", "metric", "f")},
        "identities": identities,
    }
    partial = atomic.partial_path(args.out)
    with open(partial, "wb") as stream:
        np.savez(stream, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), owners=owners, vectors=vectors)
    atomic.commit(partial, args.out)
    print(f"exported {len(identities)} identities, {len(ids)} embeddings to {args.out}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from stream.gallery.store import Origin

    gallery = _open(args.gallery)
    try:
        data = np.load(args.source)
        meta = json.loads(data["meta"].tobytes())
        owners, vectors = data["owners"], data["vectors"]
    except (OSError, ValueError, KeyError) as err:
        raise InputError(f"{args.source}: not a gallery export ({err})") from None
    if meta["model"]["model_sha256"] != gallery.store.meta["model_sha256"]:
        raise InputError(
            f"{args.source}: exported from a gallery of {meta['model']['model_name']}, "
            f"not of {gallery.store.meta['model_name']}; re-embed instead"
        )
    for entry in meta["identities"]:
        new = gallery.add_identity(entry["name"], entry["attributes"], entry["anonymous"])
        rows = vectors[owners == entry["id"]]
        if len(rows):
            gallery.enroll(new, rows, [Origin(f"import:{args.source.name}")] * len(rows))
    gallery.close()
    print(f"imported {len(meta['identities'])} identities, {len(vectors)} embeddings into {args.gallery}")
    return 0


def run_stats(args: argparse.Namespace) -> int:
    gallery = _open(args.gallery)
    store = gallery.store
    stats = {
        "gallery": str(args.gallery),
        "identities": len(gallery.identities()),
        "embeddings": store.count(),
        "model": {k: store.meta[k] for k in ("model_name", "model_sha256", "model_method", "dim", "metric", "f")},
        "index": "hnsw" if gallery.index.hnsw is not None else "exact",
        "index_source": gallery.index_source,
        "bytes": sum(p.stat().st_size for p in args.gallery.parent.glob(args.gallery.name + "*") if p.is_file()),
    }
    print(json.dumps(stats, indent=1) if args.json else "\n".join(f"{k}: {v}" for k, v in stats.items()))
    return 0


def run_reembed(args: argparse.Namespace) -> int:
    from stream.gallery.store import GalleryStore

    encoder = _encoder(args.model)
    store = GalleryStore(args.gallery)
    if store.meta["f"] != encoder.f:
        raise InputError(f"{args.gallery}: holds windows of {store.meta['f']} frames; {args.model} takes {encoder.f}")
    count = store.rebind(encoder.card, encoder.encode)
    store.close()
    _open(args.gallery, encoder.card).close()  # rebuild and save the index for the new vectors
    print(f"re-embedded {count} windows of {args.gallery} with {encoder.card['file']['name']}")
    return 0
