"""``gaitwatch adapt``: adapt the encoder to a site's unlabeled recordings and export it with its card.

The recordings are cut into windows per track exactly as enrollment and the node cut them
(``stream.windows``), so the encoder adapts to what it will see; the adaptation itself is
``engines.adapt``. With ``--gallery`` it also learns from the people enrolled there: every named identity is
one person (the user named them; two names are two people), its windows the ones kept at enrollment; and it
measures what a stranger scores against them (``engines.adapt_strangers``), for ``calibrate site``. Anonymous
identities (the node's) are left out: one may be an enrolled person. ``--background`` adds tracks of people
who will never be at the site to that fine-tune, each a class of its own (``engines.adapt``). Move a gallery
onto the result with ``gaitwatch gallery reembed``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from sensors.cli_helpers import require_extra
from sensors.errors import InputError
from stream.gallery.location import Location, gallery_location, open_store

DEFAULT_STEPS = 0  # statistics only: why the fine-tune is opt-in is in engines/adapt.py (torch: not imported here)
STRIDE = 2  # windows start every 2 frames: a site gives few tracks, so each gives as many windows as is useful
MAX_IDENTITIES = 4096  # enrolled people read from a gallery (drawn with the seed): bounded memory on any gallery
MAX_WINDOWS_PER_IDENTITY = 64  # of each (evenly spaced over what was enrolled): a fine-tune step draws 20
MAX_BACKGROUND_TRACKS = 4096  # read from --background (the first, in the order given): bounded memory, as above


def add_commands(commands: argparse._SubParsersAction) -> None:
    adapt = commands.add_parser(
        "adapt", help="adapt the encoder to a site's unlabeled recordings (statistics, optional fine-tune)"
    )
    adapt.add_argument("recordings", nargs="*", type=Path, help="recordings or videos of the site (no labels needed)")
    adapt.add_argument(
        "--gallery",
        type=gallery_location,
        help="also learn from the people enrolled in this gallery (file or URL, read only; enrolled with "
        "--keep-windows): each named identity one person. With --steps, up to 4 more fine-tunes, each leaving a "
        "fold of them out, measure what a stranger scores, for calibrate site (docs/site.md)",
    )
    adapt.add_argument(
        "--background",
        action="append",
        type=Path,
        default=[],
        metavar="PATH",
        help="with --gallery and --steps, once per recording or dataset: people who will never be at this site, "
        "recorded with the same kind of sensor (another sensor's walks made it worse, measured), each track a class "
        "of its own in the fine-tune beside the enrolled people; never the site's own recordings (docs/site.md)",
    )
    adapt.add_argument(
        "--from",
        dest="source",
        type=Path,
        help="a trackcon checkpoint (.pt or run folder; default: the shipped trackcon-kgbd.pt)",
    )
    adapt.add_argument("--out", type=Path, required=True, help="new folder: model.pt, model.onnx and its card")
    adapt.add_argument(
        "--steps",
        type=int,
        default=DEFAULT_STEPS,
        help="fine-tuning steps after the statistics (0: statistics only; 300 was measured: on recordings alone it "
        "hurt a site of few people with many walks each, see benchmarks/cross_site.md; with --gallery it helped)",
    )
    adapt.add_argument("--seed", type=int, default=0, help="seed of the fine-tune's sampling and augmentation")
    adapt.add_argument("--sensor-id", help="sensor id of the recordings (for --calibration)")
    adapt.add_argument("--calibration", type=Path, help="sensor calibration file, as the node uses it")
    adapt.set_defaults(func=run_adapt)


def run_adapt(args: argparse.Namespace) -> int:
    require_extra("train", ("torch", "onnxscript"), "adaptation")
    from calibration.sensor_file import SensorCalibrations
    from engines.adapt import adapt_checkpoint
    from engines.checkpoint import atomic_save, load
    from engines.export.artifact import export_onnx_artifact
    from engines.runtime.load import resolve_artifact, shipped_checkpoint
    from sensors.atomic import private_dir

    if args.out.exists():
        raise InputError(f"--out {args.out}: already exists; adaptation writes a new folder")
    source = Path(resolve_artifact(args.source)) if args.source else shipped_checkpoint()
    if source.suffix != ".pt":
        raise InputError(f"--from {source}: adaptation starts from a torch checkpoint (.pt or a run folder)")
    if not args.recordings and args.gallery is None:
        raise InputError("adapt needs recordings of the site, a --gallery of its enrolled people, or both")
    if args.background and (args.gallery is None or not args.steps):
        raise InputError("--background is for the fine-tune on a gallery's people: give --gallery and --steps too")
    refuse_site_recordings_in_background(args.recordings, args.background)
    checkpoint = load(source)
    background = None
    if args.background:
        background = background_windows(args.background, checkpoint["f"], float(checkpoint.get("rate_hz", 30.0)))
        print(f"background: {len(np.unique(background[1]))} tracks, {len(background[0])} windows")
    parts = []
    if args.gallery is not None:
        windows, people, enrolled_tracks = gallery_windows(args.gallery, checkpoint["f"], args.seed)
        parts.append((windows, people, enrolled_tracks))
        print(f"{args.gallery}: {len(np.unique(people))} enrolled people, {len(windows)} kept windows")
    if args.recordings:
        calibrations = SensorCalibrations.load(args.calibration) if args.calibration else None
        windows, tracks = site_windows(args.recordings, checkpoint["f"], float(checkpoint.get("rate_hz", 30.0)),
                                       args.sensor_id, calibrations)  # fmt: skip
        after_people = sum(len(np.unique(part[1])) for part in parts)
        parts.append((windows, tracks + after_people))
    windows, classes = (np.concatenate([part[i] for part in parts]) for i in range(2))
    adapted = adapt_checkpoint(checkpoint, windows, classes, steps=args.steps, seed=args.seed, background=background)
    if args.gallery is not None and args.steps:
        if checkpoint.get("body_shape"):
            print(
                "warning: --from carries the body shape; fine-tuned on a gallery's people it did not help on KGBD "
                "and calibrate site named more strangers than --far said (docs/site.md): adapt the model without it",
                file=sys.stderr,
            )
        adapted["adaptation"]["strangers"] = measure_strangers(checkpoint, parts[0], args.steps, args.seed, background)
    adapted["adaptation"]["recordings"] = [str(p) for p in args.recordings]
    adapted["adaptation"]["background"] = [str(p) for p in args.background]
    adapted["adaptation"]["gallery"] = None if args.gallery is None else str(args.gallery)
    adapted["adaptation"]["from_file"] = str(source)
    private_dir(args.out)
    atomic_save(adapted, args.out / "model.pt")
    card = export_onnx_artifact(args.out / "model.pt", args.out / "model.onnx", checkpoint["f"])
    for written in args.out.iterdir():  # learned from the site's people: private, as their gallery is
        written.chmod(0o600)
    info = adapted["adaptation"]
    print(
        f"adapted on {info['windows']} windows of {info['tracks']} people and tracks in {info['seconds']:.0f} s "
        f"({info['steps']} steps); wrote {args.out / 'model.pt'} and {args.out / 'model.onnx'} "
        f"(sha256 {card['file']['sha256'][:12]}...)"
    )
    if info.get("strangers"):
        measured = info["strangers"]
        print(
            f"a stranger's scores: {measured['pair_count']} distances from {measured['folds']} stand-in fine-tunes "
            f"in {measured['seconds']:.0f} s, recorded in the card for calibrate site"
        )
    model = args.out / "model.onnx"
    print(f"move a gallery onto it: gaitwatch gallery reembed GALLERY --model {model}")
    print(f"then its threshold: gaitwatch calibrate site [RECORDINGS] --gallery GALLERY --model {model} --out DIR")
    return 0


def gallery_windows(location: Location, f: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The windows kept at enrollment in a gallery, the identity (numbered 0..) and the enrolled track (numbered
    0..) of each: named identities only, at most ``MAX_IDENTITIES`` of them (a seeded draw) and
    ``MAX_WINDOWS_PER_IDENTITY`` windows of each."""
    store = open_store(location, writable=False)
    try:
        if int(store.meta["f"]) != f:
            raise InputError(f"{location}: windows of {store.meta['f']} frames; the encoder takes {f}")
        identities = [i.id for i in store.identities(counted=False) if not i.anonymous]
        if len(identities) > MAX_IDENTITIES:
            identities = sorted(np.random.default_rng(seed).choice(identities, MAX_IDENTITIES, replace=False).tolist())
        windows, people, tracks, without = [], [], [], 0
        for person in identities:
            _, origins = store.enrolled_rows(person)
            kept = [o for o in origins if o.window is not None]
            without += len(origins) - len(kept)
            if kept:
                chosen = evenly_spaced(len(kept))
                windows += [kept[i].window for i in chosen]
                people += [person] * len(chosen)
                tracks += [(person, kept[i].source, kept[i].track) for i in chosen]
    finally:
        store.close()
    if not identities:
        raise InputError(f"{location}: no named identity to learn from (the node's anonymous ones are left out)")
    if not windows:
        raise InputError(
            f"{location}: no enrolled window was kept ({without} embeddings without one); enroll with --keep-windows "
            "to adapt on the gallery's people"
        )
    numbered = np.unique(np.asarray(people), return_inverse=True)[1]
    track_numbers = {key: number for number, key in enumerate(dict.fromkeys(tracks))}
    enrolled_tracks = np.array([track_numbers[key] for key in tracks], np.int64)
    return np.stack(windows).astype(np.float32), numbered.astype(np.int64), enrolled_tracks


def measure_strangers(
    checkpoint: dict, gallery: tuple, steps: int, seed: int, background: tuple[np.ndarray, np.ndarray] | None
) -> dict | None:
    """What a stranger scores against the gallery's people after the fine-tune (``engines.adapt_strangers``),
    for the card; None, with a warning, where it cannot be measured honestly."""
    from engines.adapt_strangers import MIN_PEOPLE, cross_fitted_strangers
    from stream.adaptation_card import gallery_fine_tuned

    windows, people, tracks = gallery
    if gallery_fine_tuned(checkpoint):
        why = (
            "--from is a model already fine-tuned on a gallery's people: stand-ins started from it would know "
            "the people they leave out; adapt from the model before that (by default the shipped one)"
        )
    elif len(np.unique(people)) < MIN_PEOPLE:
        why = f"fewer than {MIN_PEOPLE} enrolled people: no one can be left out to measure by"
    else:
        print("measuring what a stranger scores: the fine-tune again with a fold of the people left out each time")
        return cross_fitted_strangers(
            checkpoint, windows, people, tracks, steps=steps, seed=seed, background=background
        )
    print(
        f"warning: {why}; calibrate site will then measure strangers by the distances between the people this "
        "fine-tune pushed apart, which names more strangers than --far says",
        file=sys.stderr,
    )
    return None


def site_windows(
    paths: list[Path], f: int, rate_hz: float, sensor_id: str | None, calibrations
) -> tuple[np.ndarray, np.ndarray]:
    """Every whole window of every track of ``paths`` and the track (numbered over all inputs) of each."""
    from stream.inputs import site_tracks

    parts = [part.windows for _, _, part in site_tracks(paths, f, rate_hz, sensor_id, calibrations, STRIDE)]
    if not parts:
        raise InputError(f"{', '.join(map(str, paths))}: no person is seen for a whole window; nothing to adapt on")
    tracks = [np.full(len(windows), number, np.int64) for number, windows in enumerate(parts)]
    return np.concatenate(parts), np.concatenate(tracks)


def refuse_site_recordings_in_background(recordings: list[Path], background: list[Path]) -> None:
    """A site's recording in the background would teach the encoder to push the site's people away from themselves.
    One ``--background`` takes one path, so a shell pattern after it leaves all but its first file among the site's
    recordings: a recording beside a background file, in one folder, is refused for that reason."""
    resolved = [(path, path.resolve(), path.is_dir()) for path in background]
    for recording in recordings:
        where = recording.resolve()
        for path, place, is_folder in resolved:
            if where == place or place in where.parents:
                raise InputError(f"{recording}: given as the site's recording and in --background {path}")
            if not is_folder and where.parent == place.parent:
                raise InputError(
                    f"{recording}: a site recording in the folder of --background {path}; one --background takes "
                    "one path (a shell pattern after it leaves the rest among the site's recordings): give each "
                    "background recording its own --background, and keep the site's recordings in another folder"
                )


def background_windows(paths: list[Path], f: int, rate_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``MAX_WINDOWS_PER_IDENTITY`` windows (evenly spaced) of each of the first ``MAX_BACKGROUND_TRACKS``
    tracks of ``paths``, each placed by its own sensor's floor as recorded, and the track (numbered 0..) of each."""
    from stream.inputs import site_tracks

    windows, tracks = [], []
    for _, _, part in site_tracks(paths, f, rate_hz, None, None, STRIDE):
        if len(tracks) == MAX_BACKGROUND_TRACKS:
            print(f"background: the first {MAX_BACKGROUND_TRACKS} tracks kept, the rest left out", file=sys.stderr)
            break
        chosen = evenly_spaced(len(part.windows))
        windows.append(part.windows[chosen])
        tracks.append(np.full(len(chosen), len(tracks), np.int64))
    if not windows:
        raise InputError(f"--background {', '.join(map(str, paths))}: no person is seen for a whole window")
    return np.concatenate(windows).astype(np.float32), np.concatenate(tracks)


def evenly_spaced(count: int, most: int = MAX_WINDOWS_PER_IDENTITY) -> np.ndarray:
    """At most ``most`` indices into ``count`` items, evenly spaced over them (all of them where there are fewer)."""
    return np.unique(np.linspace(0, count - 1, most).round().astype(int))
