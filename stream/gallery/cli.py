"""``gaitwatch gallery create | enroll | list | show | rename | merge | remove | export | import | stats``."""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import logging
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sensors.errors import FormatError, InputError
from stream.gallery.location import Location, gallery_location, open_store
from stream.gallery.store import Origin
from stream.inputs import read_input
from stream.labels import PERSON_KEYS, person_label

if TYPE_CHECKING:
    from calibration.sensor_file import SensorCalibrations
    from sensors.recording import Recording
    from sensors.silhouette_windows import SilhouetteWindows

IDENTITY_HELP = "id:N, name:TEXT, or a name (or an id) when that names one identity only"
log = logging.getLogger("gaitwatch.gallery")
SHIPPED = "\0shipped"  # --silhouette-model given without a model: no path can be this


def add_commands(commands: argparse._SubParsersAction) -> None:
    """``gaitwatch gallery ACTION`` (registered by ``stream.cli``)."""
    gallery = commands.add_parser("gallery", help="the identity gallery: enroll people, list, rename, remove, ...")
    sub = gallery.add_subparsers(dest="action", metavar="ACTION", required=True)

    def add(name: str, help_text: str, func) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument(
            "gallery",
            type=gallery_location,
            help="the gallery: a SQLite file, or postgresql://USER@HOST:PORT/DB (password in PGPASSWORD or ~/.pgpass)",
        )
        p.set_defaults(func=func)
        return p

    create = add("create", "make an empty gallery bound to a model", run_create)
    create.add_argument("--model", type=Path, help="encoder artifact (default: the shipped TrackCon model)")
    enroll = add("enroll", "encode recorded files or a dataset's walks and enroll them by their labels", run_enroll)
    enroll.add_argument("inputs", nargs="+", help="recorded files (.gwrec, .skeleton, ...) or a KGBD zip/folder")
    enroll.add_argument("--name", help="enroll everything as this one identity (instead of by labels)")
    enroll.add_argument("--label", help=f"label naming the person (default: the first of {', '.join(PERSON_KEYS)})")
    enroll.add_argument("--stride", type=int, help="frames between windows (default: the model's f, no overlap)")
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
        "--silhouette-model",
        nargs="?",
        const=SHIPPED,
        metavar="M",
        help="also enroll silhouettes, encoded by M (a selfgait .onnx or run; without M the shipped SelfGait): where a "
        "recording has its .gwsil beside it, each track's silhouette windows go into the silhouette channel of the "
        "identity its skeletons went to (default: skeletons only)",
    )
    enroll.add_argument(
        "--calibration",
        type=Path,
        help="sensor calibration file: calibrated sensors enroll in the world frame, videos placed with their "
        "camera's intrinsics, as the node sees them (default: frames as recorded)",
    )
    enroll.add_argument(
        "--sensor-id",
        help="the sensor every input is taken to come from, so its --calibration entry applies (default: each "
        "recording's own; a video's is its file name)",
    )
    add("list", "identities with their number of embeddings", run_list).add_argument(
        "--json", action="store_true", help="print the list as JSON"
    )
    show = add("show", "one identity: attributes and where its embeddings came from", run_show)
    show.add_argument("identity", help=IDENTITY_HELP)
    rename = add("rename", "give an identity a new name", run_rename)
    rename.add_argument("identity", help=IDENTITY_HELP)
    rename.add_argument("name", help="the new name")
    merge = add("merge", "move every embedding of one identity to another, then delete the first", run_merge)
    merge.add_argument("source", help=f"the identity merged away: {IDENTITY_HELP}")
    merge.add_argument("into", help="the identity that keeps its name and takes the embeddings (same forms)")
    remove = add("remove", "delete an identity and its embeddings", run_remove)
    remove.add_argument("identity", help=IDENTITY_HELP)
    export = add("export", "write identities and embeddings to a portable .npz", run_export)
    export.add_argument("out", type=Path, help="the .npz to write: a new file (never one that exists), private (0600)")
    imp = add("import", "add an export's identities not already here (same model only)", run_import)
    imp.add_argument("source", type=Path, help="an .npz written by gaitwatch gallery export")
    migrate = add("migrate", "copy the whole gallery into a new one: SQLite to PostgreSQL or back", run_migrate)
    migrate.add_argument("target", type=gallery_location, help="the new gallery: a file or a postgresql:// URL")
    add("stats", "sizes, model, index", run_stats).add_argument("--json", action="store_true", help="print as JSON")
    reembed = add("reembed", "re-encode the stored windows with another model and bind the gallery to it", run_reembed)
    reembed.add_argument("--model", type=Path, required=True, help="the new encoder artifact")


def _store(path: Location, writable: bool):
    """The store alone: what every command but ``stats`` needs (the search index is rebuilt or caught up by
    whoever next searches, so no command here pays for it)."""
    return open_store(path, writable=writable)


def _encoder(model: Path | None):
    from engines.runtime.load import open_encoder

    return open_encoder(model)


def run_create(args: argparse.Namespace) -> int:
    from stream.gallery.gallery import Gallery

    encoder = _encoder(args.model)
    Gallery.create(args.gallery, encoder.card).close()
    print(f"created {args.gallery} for {encoder.card['file']['name']} (D = {encoder.embedding_dim})")
    return 0


@dataclass(frozen=True)
class _Track:
    """One encoded track, ready to enroll."""

    name: str
    source: str
    vectors: np.ndarray
    origins: list  # of Origin, one per vector
    label: dict  # the person label it was named by ({"person": "12"}), kept so a renamed identity is still known
    silhouettes: tuple[np.ndarray, list] | None = None  # its silhouette windows' embeddings and their origins


def run_enroll(args: argparse.Namespace) -> int:
    from calibration.sensor_file import SensorCalibrations
    from stream.gallery.channel import SILHOUETTE

    attributes = _attributes(args.attribute)
    calibrations = SensorCalibrations.load(args.calibration) if args.calibration else None
    encoder = _encoder(args.model)
    silhouettes = _silhouette_encoder(args.silhouette_model) if args.silhouette_model else None
    store = _store(args.gallery, writable=True)
    store.check_model(encoder.card)
    if silhouettes is not None:
        store.check_channel_model(SILHOUETTE, silhouettes.card)  # before encoding anything
    tracks, skipped = _encode_inputs(args, encoder, calibrations, silhouettes)
    with store.transaction():  # all of it or nothing; names looked up under the write lock
        by_name = _identities_named(store, {track.name for track in tracks})
        fresh = len({track.name for track in tracks} - by_name.keys())
        for track in tracks:
            if track.name not in by_name:
                by_name[track.name] = store.add_identity(track.name, {"enrolled_from": track.source, **track.label})
            store.add_embeddings(by_name[track.name], track.vectors, track.origins)
            if track.silhouettes is not None:
                store.add_channel_embeddings(SILHOUETTE, by_name[track.name], *track.silhouettes, silhouettes.card)
        if attributes:
            for name in sorted({track.name for track in tracks}):
                store.update_attributes(by_name[name], attributes)
    store.close()
    with_silhouettes = [t.silhouettes[0] for t in tracks if t.silhouettes is not None]
    print(
        f"enrolled {sum(len(t.vectors) for t in tracks)} windows of {len(tracks)} tracks into {args.gallery} "
        f"({fresh} new identities)"
        + (f"; skipped {skipped} windows with missing joints" if skipped else "")
        + (
            f"; {sum(map(len, with_silhouettes))} silhouette windows of {len(with_silhouettes)} tracks"
            if silhouettes is not None
            else ""
        )
    )
    return 0


def _silhouette_encoder(model: str):
    """The silhouette encoder ``--silhouette-model`` names (given alone: the shipped one)."""
    from engines.runtime.load import open_silhouette_encoder

    return open_silhouette_encoder(None if model == SHIPPED else Path(model))


def _encode_inputs(
    args: argparse.Namespace, encoder, calibrations: SensorCalibrations | None, silhouettes=None
) -> tuple[list[_Track], int]:
    """Every track of every input, encoded (and its silhouette windows, with a ``silhouettes`` encoder); nothing
    is written yet. InputError naming an input that gives no whole window (no person in it, or none seen long
    enough): enrolling nothing is never a success."""
    from calibration.sensor_pose import PoseLookup
    from sensors.progress import progress
    from stream.gallery.gallery import track_origins
    from stream.windows import track_windows

    tracks: list[_Track] = []
    found = dict.fromkeys(map(str, args.inputs), 0)
    skipped = dict.fromkeys(found, 0)
    rate = float(encoder.card["rate_hz"])
    pose_of = PoseLookup(calibrations.poses() if calibrations is not None else {})

    def recordings() -> Iterator[tuple[str, Recording]]:
        for path in found:
            for recording in read_input(Path(path), args.sensor_id, calibrations):
                yield path, recording
            if not found[path]:  # raised inside the progress: no "done" line before the error
                why = f"; {skipped[path]} windows had missing joints" if skipped[path] else ""
                raise InputError(
                    f"{path}: nothing to enroll: no person in it is seen for a whole window "
                    f"({encoder.f} frames at {rate:g} Hz){why}; nothing was written"
                )

    for path, recording in progress(recordings(), "Enrolling", total=None):
        pose = pose_of(args.sensor_id or recording.sensor_id)
        by_track = _silhouette_windows(Path(path), recording, silhouettes) if silhouettes is not None else {}
        for part in track_windows(recording, encoder.f, rate, args.stride, pose):
            skipped[path] += part.skipped
            if len(part.windows) == 0:
                continue
            source = str(part.labels.get("source", recording.sensor_id))
            name, label = (args.name, {}) if args.name else _person(part.labels, args.label, source, part.track)
            origins = track_origins(part, source, args.keep_windows)
            extra = _encoded_silhouettes(by_track.get(part.track), silhouettes, source)
            tracks.append(_Track(name, source, encoder.encode(part.windows), origins, label, extra))
            found[path] += 1
    return tracks, sum(skipped.values())


def _silhouette_windows(path: Path, recording: Recording, encoder) -> dict[int, SilhouetteWindows]:
    """Per track of ``recording``, its silhouette windows from the ``.gwsil`` beside ``path`` (``encoder.f``
    silhouettes every f // 2, as captured); none, said in one line, where there is no such file."""
    from sensors.formats.gwsil import companion, read_gwsil
    from sensors.silhouette_windows import track_silhouettes

    beside = companion(path)
    if not beside.is_file():
        log.warning("%s: no silhouettes (no %s beside it): its skeletons are enrolled alone", path, beside.name)
        return {}
    records = read_gwsil(beside)
    if records.truncation is not None:
        log.warning("%s: %s", beside, records.truncation.reason)
    return {cut.track: cut for cut in track_silhouettes(records, recording, encoder.f, max(1, encoder.f // 2))}


def _encoded_silhouettes(cut: SilhouetteWindows | None, encoder, source: str) -> tuple[np.ndarray, list] | None:
    """One track's silhouette windows encoded, with their origins (as its skeleton windows'); None without any."""
    if cut is None or not len(cut.windows):
        return None
    spans = zip(cut.t_start.tolist(), cut.t_end.tolist(), strict=True)
    return encoder.encode(cut.windows), [Origin(source, str(cut.track), a, b) for a, b in spans]


def _identities_named(store, names: set[str]) -> dict[str, int]:
    """The identity of each name already in the gallery; InputError where several share one (which to add to?)."""
    found: dict[str, list[int]] = {}
    for identity in store.identities():
        if identity.name in names:
            found.setdefault(identity.name, []).append(identity.id)
    for name, ids in found.items():
        if len(ids) > 1:
            listed = ", ".join(f"id:{i}" for i in ids)
            raise InputError(
                f"{store.path}: {len(ids)} identities are named {name!r} ({listed}); rename them apart "
                "(gaitwatch gallery rename) before enrolling more of them; nothing was written"
            )
    return {name: ids[0] for name, ids in found.items()}


def _attributes(pairs: list[str]) -> dict[str, str]:
    """``--attribute KEY=VALUE`` options as a dict; InputError naming a malformed one."""
    attributes = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--attribute {pair!r}: expected KEY=VALUE")
        attributes[key.strip()] = value
    return attributes


def _person(labels: dict, key: str | None, source: str, track: int) -> tuple[str, dict]:
    """(the person a track's labels name, that label, kept so a renamed identity is still known as them)."""
    found = person_label(labels, key)
    if found is not None:
        return found[1], dict([found])
    keys = (key,) if key else PERSON_KEYS
    raise InputError(f"{source}, track {track}: no label {' or '.join(keys)} to name the person; use --name")


def _channel_counts(store) -> dict[str, dict[int, int]]:
    """Per bound channel (silhouettes), its embeddings per identity: what list, show and stats add."""
    return {channel: store.channel_counts(channel) for channel in store.channels()}


def run_list(args: argparse.Namespace) -> int:
    store = _store(args.gallery, writable=False)
    rows, channels = store.identities(), _channel_counts(store)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "id": i.id,
                        "name": i.name,
                        "embeddings": i.embeddings,
                        **{f"{channel}_embeddings": counts.get(i.id, 0) for channel, counts in channels.items()},
                        "anonymous": i.anonymous,
                        "created": i.created,
                    }
                    for i in rows
                ],
                indent=1,
            )
        )
        return 0
    print(f"{'id':>6}  {'embeddings':>10}  " + "".join(f"{c:>11}  " for c in channels) + "created              name")
    for i in rows:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(i.created))
        extra = "".join(f"{counts.get(i.id, 0):>11}  " for counts in channels.values())
        print(f"{i.id:>6}  {i.embeddings:>10}  {extra}{created}  {i.name}{' (anonymous)' if i.anonymous else ''}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    store = _store(args.gallery, writable=False)
    identity = store.identity(args.identity)
    sources = store.sources(identity.id)
    channels = {
        channel: {"embeddings": store.channel_counts(channel).get(identity.id, 0), **_model_of(binding)}
        for channel, binding in store.channels().items()
    }
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
                **({"channels": channels} if channels else {}),
            },
            indent=1,
        )
    )
    return 0


def _model_of(binding: dict) -> dict:
    """How show and stats name the model a gallery (or a channel) is bound to."""
    return {"model": {k: binding[k] for k in ("model_name", "model_sha256", "model_method", "dim", "metric", "f")}}


def run_rename(args: argparse.Namespace) -> int:
    store = _store(args.gallery, writable=True)
    identity = store.identity(args.identity)
    store.rename(identity.id, args.name)
    store.close()
    print(f"identity {identity.id}: {identity.name!r} -> {args.name!r}")
    return 0


def run_merge(args: argparse.Namespace) -> int:
    store = _store(args.gallery, writable=True)
    source, into = store.identity(args.source), store.identity(args.into)
    moved = store.merge(source.id, into.id)
    store.close()
    print(f"merged identity {source.id} ({source.name}) into {into.id} ({into.name}): {moved} embeddings moved")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    store = _store(args.gallery, writable=True)
    identity = store.identity(args.identity)
    removed = store.remove_identity(identity.id)
    store.close()
    print(f"removed identity {identity.id} ({identity.name}) and its {removed} embeddings")
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Identities (each with its origin, so that importing it twice anywhere is noticed) and embeddings, 0600."""
    from sensors import atomic

    if args.out.exists():
        raise InputError(f"{args.out}: already exists; export to a new file (nothing was written)")
    store = _store(args.gallery, writable=False)
    for channel, counts in _channel_counts(store).items():
        if counts:  # the format has no version an older import could refuse by: it would drop them unseen
            raise InputError(
                f"{store.where}: holds {sum(counts.values())} {channel} embeddings, which an export cannot carry; "
                f"copy the whole gallery with 'gaitwatch gallery migrate {store.where} NEW' (nothing was written)"
            )
    _, owners = store.ids_and_owners()
    chunks = [v for _, _, v in store.embeddings()]
    vectors = np.concatenate(chunks) if chunks else np.zeros((0, store.dim), np.float32)
    origins = store.origins()
    identities = [
        {
            "id": i.id,
            "name": i.name,
            "attributes": i.attributes,
            "created": i.created,
            "anonymous": i.anonymous,
            "origin": origins[i.id],
        }
        for i in store.identities()
    ]
    meta = {
        "model": {k: store.meta[k] for k in ("model_sha256", "model_name", "dim", "metric", "f")},
        "gallery": store.key(),
        "identities": identities,
    }
    partial = atomic.partial_path(args.out)
    with atomic.create_private(partial) as stream:
        np.savez(stream, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), owners=owners, vectors=vectors)
    atomic.commit(partial, args.out)
    print(f"exported {len(identities)} identities, {len(vectors)} embeddings to {args.out}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    """Add an export's identities, except those already here (imported before, or exported from here)."""
    store = _store(args.gallery, writable=True)
    meta, owners, vectors = _read_export(args.source)
    if meta["model"]["model_sha256"] != store.meta["model_sha256"] or vectors.shape[1] != store.dim:
        raise InputError(
            f"{args.source}: exported from a gallery of {meta['model']['model_name']}, "
            f"not of {store.meta['model_name']}; re-embed instead"
        )
    fallback = hashlib.sha256(args.source.read_bytes()).hexdigest()[:16]  # an export made before origins
    added, embeddings, skipped = 0, 0, []
    with store.transaction():  # all of it or nothing; who is here looked up under the write lock
        here = set(store.origins().values())
        for entry in meta["identities"]:
            origin = entry.get("origin") or f"{fallback}/{entry['id']}"
            if origin in here:
                skipped.append(entry["name"])
                continue
            here.add(origin)
            new = store.add_identity(entry["name"], entry["attributes"], entry["anonymous"], origin)
            rows = vectors[owners == entry["id"]]
            if len(rows):
                store.add_embeddings(new, rows, [Origin(f"import:{args.source.name}")] * len(rows))
            added, embeddings = added + 1, embeddings + len(rows)
    store.close()
    print(
        f"imported {added} identities, {embeddings} embeddings into {args.gallery}"
        + (f"; skipped {len(skipped)} already here ({_few(skipped)})" if skipped else "")
    )
    return 0


def _few(names: list[str], shown: int = 5) -> str:
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _read_export(path: Path) -> tuple[dict, np.ndarray, np.ndarray]:
    """An export's meta, owners [n] and vectors [n, D]; FormatError naming what is wrong in it."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(data["meta"].tobytes())
            owners, vectors = data["owners"], data["vectors"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise FormatError(path, "", f"not a gallery export ({err})") from None
    model = meta.get("model") if isinstance(meta, dict) else None
    if not isinstance(model, dict) or not all(isinstance(model.get(k), str) for k in ("model_sha256", "model_name")):
        raise FormatError(path, "meta", "not a gallery export (no model named)")
    entries = meta.get("identities")
    if not isinstance(entries, list) or not all(_is_entry(e) for e in entries):
        raise FormatError(path, "meta identities", "expected a list of {id, name, attributes, anonymous}")
    if owners.ndim != 1 or owners.dtype.kind not in "iu" or vectors.ndim != 2 or len(vectors) != len(owners):
        raise FormatError(path, "owners, vectors", f"shapes {owners.shape} and {vectors.shape}, expected [n], [n, D]")
    if vectors.dtype != np.float32 or not np.isfinite(vectors).all():
        raise FormatError(path, "vectors", "expected finite float32 values")
    return meta, owners, vectors


def _is_entry(entry) -> bool:
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("id"), int)
        and isinstance(entry.get("name"), str)
        and isinstance(entry.get("attributes"), dict)
        and isinstance(entry.get("anonymous"), bool)
        and isinstance(entry.get("origin", ""), str)
    )


def run_migrate(args: argparse.Namespace) -> int:
    from stream.gallery.migrate import migrate

    identities, embeddings = migrate(args.gallery, args.target)
    target = _store(args.target, writable=False)
    extra = "".join(f", {sum(c.values())} {channel} embeddings" for channel, c in _channel_counts(target).items())
    target.close()
    print(f"copied {identities} identities, {embeddings} embeddings{extra} from {args.gallery} into {args.target}")
    return 0


def run_stats(args: argparse.Namespace) -> int:
    from stream.gallery.gallery import Gallery

    gallery = Gallery.open(args.gallery, writable=False)
    store = gallery.store
    local = store.path  # the file (a PostgreSQL gallery's: this machine's saved index files of it)
    siblings = local.parent.glob(glob.escape(local.name) + "*")  # the store, its log, its indexes
    stats = {
        "gallery": str(args.gallery),
        "identities": len(gallery.identities()),
        "embeddings": store.count(),
        **_model_of(store.meta),
        "tracks": len(gallery.tracks),  # the track index: what the node's decisions search
        "track_index": "hnsw" if gallery.tracks.index.hnsw is not None else "exact",
        "track_index_source": gallery.tracks.source,
        "bytes": sum(p.stat().st_size for p in siblings if p.is_file()),  # on this machine
    }
    channels = {}
    for channel, binding in store.channels().items():
        counts = store.channel_counts(channel)
        channels[channel] = {
            "identities": len(counts),
            "embeddings": sum(counts.values()),
            "tracks": gallery.channel_tracks(channel),
            **_model_of(binding),
        }
    if channels:
        stats["channels"] = channels
    print(json.dumps(stats, indent=1) if args.json else "\n".join(f"{k}: {v}" for k, v in stats.items()))
    return 0


def run_reembed(args: argparse.Namespace) -> int:
    from stream.gallery.gallery import Gallery

    encoder = _encoder(args.model)
    store = _store(args.gallery, writable=True)
    if store.meta["f"] != encoder.f:
        raise InputError(f"{store.where}: holds windows of {store.meta['f']} frames; {args.model} takes {encoder.f}")
    count = store.rebind(encoder.card, encoder.encode)
    store.close()
    Gallery.open(args.gallery, encoder.card, writable=True).close()  # rebuild and save the index for the new vectors
    print(f"re-embedded {count} windows of {args.gallery} with {encoder.card['file']['name']}")
    return 0
