"""``gaitwatch calibrate site``: the matcher's threshold for a site, from its gallery and recordings, without labels.

What it uses (stream.site_impostors): distances between identities enrolled under different names
and between tracks one sensor saw at the same time. Anonymous identities are left out of the
impostor pairs (the node may have made one of an enrolled person) but counted among the identities a
stranger is compared with. A model fine-tuned on the gallery's people (``gaitwatch adapt --gallery``) has
pushed them apart: its card's record of what a stranger scores against them (``engines.adapt_strangers``)
takes the place of their distances to each other. It writes the same threshold file as ``calibrate
threshold``, so the node reads it with ``--threshold FILE --far F``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np

from sensors.errors import InputError
from stream.gallery.location import Location, gallery_location, open_store

DEFAULT_FAR = (0.01, 0.001)


def add_commands(what: argparse._SubParsersAction) -> None:
    """``site`` under the shared ``calibrate`` group."""
    site = what.add_parser(
        "site", help="the matcher's threshold for this site from its gallery and unlabeled recordings"
    )
    site.add_argument("recordings", nargs="*", type=Path, help="recordings or videos of the site (no labels needed)")
    site.add_argument(
        "--gallery", type=gallery_location, required=True, help="the site's gallery, file or URL (read only)"
    )
    site.add_argument("--model", type=Path, help="encoder artifact (default: the shipped model; must be the gallery's)")
    site.add_argument(
        "--far", type=float, nargs="+", default=list(DEFAULT_FAR), help="target open-set false-accept rates"
    )
    site.add_argument("--sensor-id", help="sensor id of the recordings (for --calibration)")
    site.add_argument("--calibration", type=Path, help="sensor calibration file, as the node uses it")
    site.add_argument("--out", type=Path, required=True, help="folder for threshold.json and site.png")
    site.set_defaults(func=run_site)


def run_site(args: argparse.Namespace) -> int:
    from calibration.sensor_file import SensorCalibrations
    from engines.runtime.load import open_encoder
    from sensors import atomic
    from sensors.atomic import private_dir

    for far in args.far:
        if not 0 < far < 1:
            raise InputError(f"--far {far}: expected a rate in (0, 1)")
    encoder = open_encoder(args.model)
    _check_gallery(args.gallery, encoder.card)  # before minutes of reading recordings
    calibrations = SensorCalibrations.load(args.calibration) if args.calibration else None
    seen = seen_tracks(args.recordings, encoder, args.sensor_id, calibrations)
    report, plot_data = site_report(args.gallery, encoder, seen, sorted(args.far))
    for warning in _adaptation_warnings(encoder.card, args.gallery, report["named_identities"]):
        print(f"warning: {warning}", file=sys.stderr)
    report["recordings"] = [str(p) for p in args.recordings]
    private_dir(args.out)
    atomic.write_bytes(args.out / "threshold.json", (json.dumps(report, indent=1) + "\n").encode(), private=True)
    drawn = importlib.util.find_spec("matplotlib") is not None
    if drawn:
        _plot(args.out / "site.png", *plot_data, report["matcher"]["thresholds"])
    pairs = report["impostor_pairs"]
    between = (
        "measured at adaptation (people its stand-in models left out, against those they trained on)"
        if pairs["measured_at_adaptation"]
        else f"between {report['named_identities']} enrolled people"
    )
    print(
        f"{pairs['identities']} impostor distances {between}, {pairs['concurrent_tracks']} between tracks seen "
        f"together in {len(args.recordings)} recordings ({len(seen)} tracks)"
    )
    for row in report["matcher"]["thresholds"]:
        print(
            f"matcher, FAR {row['target_far']:g} with {report['identities']} identities: threshold "
            f"{row['threshold']:.4f} ({row['recording_tracks_named']} of {len(seen)} recording tracks within it)"
        )
        if not row["threshold"] > 0:
            print(_unreachable(row["target_far"]), file=sys.stderr)
    print(
        f"wrote {args.out / 'threshold.json'}"
        + (f" and {args.out / 'site.png'}" if drawn else " (no site.png: matplotlib, the 'train' extra, is missing)")
    )
    return 0


def _unreachable(far: float) -> str:
    """Why a target rate has no positive threshold, and what a user can do about it."""
    return (
        f"warning: FAR {far:g} is out of reach for this gallery: the fit puts strangers closer to someone than any "
        "distance (the enrolled people look too alike to this model, or one person is enrolled under several "
        f"names: see `gaitwatch gallery list`); a node given --far {far:g} refuses this file: ask for a higher "
        "--far, or adapt the encoder to the site"
    )


def _adaptation_warnings(card: dict, gallery: Location, named: int) -> list[str]:
    """Why a threshold for a model fine-tuned on this site's people may name more strangers than --far says."""
    from stream.adaptation_card import gallery_fine_tuned, recordings_fine_tuned, stranger_record

    pushed_apart = (
        "pushed apart, further than a stranger will be: the threshold may name more strangers than --far says"
    )
    out = []
    if recordings_fine_tuned(card):
        out.append(
            f"this model was fine-tuned on recordings, every track its own person; their people were {pushed_apart}"
        )
    record = stranger_record(card)
    if gallery_fine_tuned(card) and not record:
        out.append(
            "this model was fine-tuned on a gallery's people without measuring what a stranger scores (fewer than "
            f"3 people, --from an adapted model, or an older version); they were {pushed_apart} (docs/site.md)"
        )
    if record:
        adapted_on = card["adaptation"].get("gallery")
        if adapted_on and adapted_on != str(gallery):
            out.append(f"the stranger scores in this model's card were measured on {adapted_on}, not {gallery}")
        if named > int(record.get("people", named)):
            out.append(
                f"{named - int(record['people'])} more people are enrolled than the model was adapted on: it has "
                "not learned them, and they were not measured; adapt again (from the model before) to include them"
            )
    return out


def _check_gallery(gallery: Location, card: dict) -> None:
    store = open_store(gallery, writable=False)
    try:
        store.check_model(card)
    finally:
        store.close()


def site_report(gallery: Location, encoder, seen: list, fars: list[float]) -> tuple[dict, tuple]:
    """The threshold file's content for ``gallery`` and the site's ``seen`` tracks; and what the plot shows."""
    from engines.impostors import ImpostorFit
    from engines.track_distance import TrackDistance
    from stream.adaptation_card import recorded_strangers
    from stream.site_impostors import EnrolledTracks, concurrent_pairs, site_threshold
    from stream.threshold import FORMAT, VERSION

    store = open_store(gallery, writable=False)
    try:
        store.check_model(encoder.card)
        identities = store.identities(counted=False)
        enrolled = store.track_means()
    finally:
        store.close()
    named = {i.id for i in identities if not i.anonymous}
    distance = TrackDistance.fit(encoder.card["metric"], enrolled.means, enrolled.owners)  # as the node's index does
    recorded = recorded_strangers(encoder.card)
    if recorded is None:
        tracks = EnrolledTracks.of(enrolled.owners, enrolled.means, named, distance)
        from_identities, strangers = tracks.identity_pairs(), tracks.leave_one_out_nearest()
    else:  # measured at adaptation, by people each stand-in model left out (engines.adapt_strangers)
        from_identities, strangers = recorded
    from_recordings = concurrent_pairs(seen, distance)
    impostors = np.concatenate([from_identities, from_recordings])
    fit = ImpostorFit.of(impostors, prior=encoder.card.get("impostor_shape"))
    nearest = _nearest_enrolled([t.mean for t in seen], enrolled.means, distance)
    rows = []
    for far in fars:
        threshold, source = site_threshold(fit, strangers, far, len(identities))
        rows.append(
            {
                "target_far": far,
                "threshold": threshold,
                "set_by": source,
                "far": far,
                "enrolled_as_strangers_accepted": _share(strangers, threshold, len(named) - 1, fit),
                "recording_tracks_named": int((nearest <= threshold).sum()),
            }
        )
    report = {
        "format": FORMAT,
        "version": VERSION,
        "model": encoder.card["file"]["name"],
        "model_sha256": encoder.card["file"]["sha256"],
        "source": "site (label-free): gaitwatch calibrate site",
        "gallery": str(gallery),
        "identities": len(identities),
        "named_identities": len(named),
        "score": f"distance ({encoder.card['metric']}, engines/track_distance.py) of a track's mean embedding to the "
        "identity's nearest enrolled track mean",
        "impostor_pairs": {
            "identities": len(from_identities),
            "concurrent_tracks": len(from_recordings),
            "measured_at_adaptation": recorded is not None,
        },
        "impostor_fit": fit.to_dict(),
        "matcher": {
            "note": "the node's threshold (--threshold FILE --far F): per target open-set FAR, predicted from the "
            "site's impostor pairs for a gallery of this many identities (calibrate again when it grows a lot), "
            "or the enrolled people's own leave-one-out scores where there are enough and they are stricter "
            "(set_by); "
            "far is the target, not a measurement (no labels); enrolled_as_strangers_accepted: each enrolled "
            "track scored against the other named identities (the fit's check; for a model fine-tuned on the "
            "gallery, measured_at_adaptation: the tracks each stand-in model left out, scored against the people "
            "it trained on); recording_tracks_named: tracks "
            "of the recordings within the threshold",
            "thresholds": rows,
        },
        "verification": {
            "note": "one probe against one claimed identity: the per-comparison impostor rate; not the node's",
            "thresholds": [{"target_far": far, "threshold": fit.threshold(far, 1)} for far in fars],
        },
    }
    return report, (impostors, fit, nearest)


def seen_tracks(paths: list[Path], encoder, sensor_id: str | None, calibrations) -> list:
    """Every track of every recording with a whole window: its time span and mean embedding."""
    from stream.inputs import site_tracks
    from stream.site_impostors import SeenTrack

    rate = float(encoder.card["rate_hz"])
    return [
        SeenTrack(
            number,
            recording.sensor_id,
            float(part.t_start[0]),
            float(part.t_end[-1]),
            encoder.encode(part.windows).astype(np.float64).mean(axis=0),
        )
        for number, recording, part in site_tracks(paths, encoder.f, rate, sensor_id, calibrations)
    ]


def _nearest_enrolled(means: list[np.ndarray], enrolled: np.ndarray, distance) -> np.ndarray:
    if not means or len(enrolled) == 0:
        return np.zeros(0)
    return distance(np.asarray(means), enrolled).min(axis=1)


def _share(strangers: np.ndarray, threshold: float, others: int, fit) -> dict | None:
    """Measured share of enrolled tracks within ``threshold`` of another identity, beside the fit's prediction."""
    if len(strangers) == 0:
        return None
    return {
        "measured": float(np.mean(strangers <= threshold)),
        "predicted": fit.open_set_rate(threshold, others),
        "tracks": len(strangers),
    }


def _plot(path: Path, impostors: np.ndarray, fit, nearest: np.ndarray, rows: list[dict]) -> None:
    """Impostor distances (histogram and the fitted normal), the recordings' nearest distances, the thresholds."""
    from statistics import NormalDist

    from engines.plotting import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    top = max(float(impostors.max()), float(nearest.max()) if len(nearest) else 0.0)
    bins = np.linspace(0, top * 1.05, 40)
    ax.hist(impostors, bins=bins, density=True, alpha=0.5, label=f"different people ({len(impostors)} pairs)")
    if len(nearest):
        label = f"recording tracks: nearest identity ({len(nearest)})"
        ax.hist(nearest, bins=bins, density=True, alpha=0.5, label=label)
    grid = np.linspace(0, top * 1.05, 200)
    normal = NormalDist(fit.centre, fit.spread)
    ax.plot(grid, [normal.pdf(x) for x in grid], color="black", lw=1, label="fitted impostor normal")
    for number, row in enumerate(rows):
        ax.axvline(row["threshold"], ls="--", color="red", lw=1)
        height = ax.get_ylim()[1] * (0.9 - 0.08 * number)
        ax.text(row["threshold"], height, f" FAR {row['target_far']:g}", color="red", fontsize=8)
    ax.set_xlabel("distance (track mean to nearest enrolled track)")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
