"""``gaitwatch replay``, ``gaitwatch listen`` and ``gaitwatch launch``: running a node and watching its events."""

from __future__ import annotations

import argparse
import contextlib
import math
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sensors.cli_helpers import command_line, parse_speed
from sensors.errors import InputError
from sensors.silhouette_options import add_silhouette_options, background_model
from stream.gallery.location import gallery_location
from stream.node.launch import file_or_number, model_spec

if TYPE_CHECKING:
    from stream.events import Publisher

DEFAULT_PUB = "tcp://127.0.0.1:5557"
ANY_PORT = "tcp://127.0.0.1:0"


def add_commands(commands: argparse._SubParsersAction, bench: argparse._SubParsersAction) -> None:
    """``replay``, ``camera``, ``kinect``, ``listen``, ``launch``, and ``pipeline`` under the shared ``bench`` group
    (registered by ``stream.cli``)."""
    replay = commands.add_parser(
        "replay", help="run the node on recorded files: identities published over ZeroMQ (default: the demo)"
    )
    replay.add_argument("paths", type=Path, nargs="*", help="recordings or datasets (default: the bundled demo)")
    replay.add_argument(
        "--gallery", type=gallery_location, help="gallery to match against, file or URL (required with files)"
    )
    replay.add_argument("--model", type=model_spec, help="encoder artifact, or raw (default: the shipped TrackCon)")
    replay.add_argument("--speed", default="1", help="pace factor, or 'max' for as fast as possible")
    replay.add_argument("--loop", action="store_true", help="start over at the end, until interrupted")
    replay.add_argument(
        "--skeleton-only",
        action="store_true",
        help="ignore the recordings' silhouettes (default: a recording with its .gwsil is matched on both channels "
        "where the gallery holds silhouettes)",
    )
    add_channel_options(replay)
    add_node_options(replay)
    replay.set_defaults(func=run_replay)

    camera = commands.add_parser(
        "camera", help="run the node on an RGB camera, video file or stream through MediaPipe pose"
    )
    camera.add_argument("--source", required=True, help="device index (0), video file or stream URL")
    camera.add_argument("--gallery", type=gallery_location, required=True, help="gallery to match, file or URL")
    camera.add_argument("--model", type=model_spec, help="encoder artifact, or raw (default: the shipped TrackCon)")
    camera.add_argument("--pose-model", type=Path, help="MediaPipe pose landmarker .task (default: the shipped full)")
    camera.add_argument("--people", type=int, default=1, help="most people estimated per image")
    camera.add_argument(
        "--intrinsics", type=Path, help="JSON with fx, fy, cx, cy in pixels (default: the --calibration file's)"
    )
    camera.add_argument("--fov", type=float, help="horizontal field of view in degrees, when there is no --intrinsics")
    camera.add_argument("--preview", type=Path, help="write the video with skeletons, tracks and identities (.mp4)")
    add_silhouette_options(
        camera,
        "also make each person's silhouette: a second identity channel where the gallery holds silhouettes, "
        "kept by --record (.gwsil beside it), shown by --preview",
    )
    add_channel_options(camera)
    camera.add_argument("--sensor-id", default="camera", help="the camera's sensor id in events and calibration")
    add_node_options(camera)
    camera.set_defaults(func=run_camera)

    kinect = commands.add_parser("kinect", help="run the node on a Kinect v2 (Windows, pykinect2)")
    kinect.add_argument("--gallery", type=gallery_location, required=True, help="gallery to match, file or URL")
    kinect.add_argument("--model", type=model_spec, help="encoder artifact, or raw (default: the shipped TrackCon)")
    kinect.add_argument("--sensor-id", default="kinect", help="the Kinect's sensor id in events and calibration")
    add_node_options(kinect)
    kinect.set_defaults(func=run_kinect)

    listen = commands.add_parser("listen", help="show a node's identity events live")
    listen.add_argument("endpoint", nargs="?", default=DEFAULT_PUB, help="the node's --pub, or a hub's --out")
    add_curve_options(listen, "nothing (listen connects)")
    listen.add_argument("--topics", nargs="+", help="topic prefixes (default: every gaitwatch topic)")
    listen.add_argument("--plain", action="store_true", help="one line per event instead of the live table")
    listen.add_argument(
        "--timeout", type=float, help="stop after this many seconds without an event (default: wait until ^C)"
    )
    listen.add_argument("--until-finished", action="store_true", help="stop when the node says its source ended")
    listen.set_defaults(func=run_listen)

    pipeline = bench.add_parser(
        "pipeline", help="the whole node: body-frames/s at max speed, frame-to-event latency at 30 Hz"
    )
    pipeline.add_argument("--sensors", type=int, default=16, help="simulated sensors replayed at once")
    pipeline.add_argument("--bodies", type=int, default=6, help="people seen at once by each sensor")
    pipeline.add_argument("--seconds", type=float, default=20.0, help="length of the real-time (latency) run")
    pipeline.add_argument("--max-speed-seconds", type=float, default=60.0, help="recording length, throughput run")
    pipeline.add_argument("--out", type=Path, help="JSON report (default: print the table only)")
    pipeline.add_argument("--table", type=Path, help="markdown table (default: beside --out, .md)")
    pipeline.set_defaults(func=run_bench_pipeline)

    launch = commands.add_parser("launch", help="run a node described by a launch file (TOML, see launch/)")
    launch.add_argument(
        "file",
        type=Path,
        help="the launch file: one [replay], [camera], [kinect], [listen], [hub] or [dashboard] "
        "table, and optionally a [dashboard] beside it",
    )
    launch.set_defaults(func=run_launch)


def add_node_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--pub", default=DEFAULT_PUB, help=f"ZeroMQ PUB endpoint to bind; {ANY_PORT} takes any free port"
    )
    parser.add_argument(
        "--hub", help="publish into a site hub's --in endpoint instead of binding --pub (see `gaitwatch hub`)"
    )
    add_curve_options(parser, "--pub (the subscribers it accepts)")
    parser.add_argument(
        "--insecure", action="store_true", help="allow --pub or --hub beyond loopback without --keys (with a warning)"
    )
    parser.add_argument("--node-id", default="gaitwatch", help="publisher id in every event")
    parser.add_argument(
        "--threshold",
        type=file_or_number,
        help="distance up to which the nearest identity is named: a number, or a threshold.json from "
        "`gaitwatch calibrate site` or `calibrate threshold` (default: no threshold, the nearest identity is "
        "always named)",
    )
    parser.add_argument("--far", type=float, default=0.01, help="with a threshold.json: the target FAR")
    parser.add_argument("--stride", type=int, help="frames between a track's windows (default: the model's f)")
    parser.add_argument("--min-windows", type=int, default=3, help="windows pooled before the first decision")
    parser.add_argument(
        "--enroll-after", type=int, help="enroll unknown tracks as anonymous after N windows (default: never)"
    )
    parser.add_argument("--max-batch", type=int, default=64, help="most windows encoded in one call")
    parser.add_argument(
        "--max-wait-ms", type=float, default=0.0, help="a batch waits at most this long (default 0: what is queued)"
    )
    parser.add_argument(
        "--record", type=Path, help="also record every frame as it arrives (.gwrec, crash-safe; default: no recording)"
    )
    parser.add_argument(
        "--calibration",
        type=Path,
        help="sensor calibration file (`gaitwatch calibrate floor|place`): each calibrated sensor's frames are "
        "turned into the shared world frame before tracking and encoding (default: frames as sensed)",
    )
    parser.add_argument("--quiet", action="store_true", help="print only the summary")


def add_channel_options(parser: argparse.ArgumentParser) -> None:
    """The silhouette channel's model and its weight in the fused distance (``stream.fusion``)."""
    from stream.fusion import FUSION_WEIGHT

    parser.add_argument(
        "--silhouette-model",
        type=Path,
        help="silhouette encoder (a selfgait .onnx or run; default: the shipped SelfGait)",
    )
    parser.add_argument(
        "--fusion-weight",
        type=file_or_number,
        help="the skeleton channel's weight in the fused distance: a number 0..1, or the file `gaitwatch calibrate "
        f"fusion` wrote for this site (default {FUSION_WEIGHT}: equal, not tuned; docs/silhouettes.md)",
    )


def add_curve_options(parser: argparse.ArgumentParser, binding: str) -> None:
    """``--keys``, ``--allow``, ``--server-key``: CURVE for a process's event socket (``stream.curve``)."""
    parser.add_argument("--keys", type=Path, help="this process's .key_secret file (`gaitwatch keys create`): CURVE")
    parser.add_argument("--allow", type=Path, help=f"with --keys, for {binding}: folder of allowed public .key files")
    parser.add_argument(
        "--server-key", type=Path, help="with --keys, when connecting: the public .key of the hub or node connected to"
    )


def threshold_of(text: str | None, far: float, model_sha256: str | None = None) -> float:
    """A threshold given as a number, or the matcher threshold for ``far`` in a threshold file (``calibrate site``
    or ``calibrate threshold``)."""
    from stream.threshold import matcher_threshold

    if text is None:
        return math.inf
    try:
        value = float(text)
    except ValueError:
        return matcher_threshold(Path(text), far, model_sha256)
    if not value > 0:  # NaN too
        raise InputError(f"--threshold {text}: a distance threshold must be a positive number")
    return value


def node_config(args: argparse.Namespace, model_card: dict | None = None):
    from calibration.sensor_file import SensorCalibrations
    from stream.node.node import NodeConfig

    for name in ("stride", "min_windows", "enroll_after", "max_batch"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise InputError(f"--{name.replace('_', '-')}: must be at least 1, got {value}")
    if args.enroll_after is not None and args.enroll_after < args.min_windows:
        raise InputError("--enroll-after must be at least --min-windows")
    poses = SensorCalibrations.load(args.calibration).poses() if args.calibration else {}
    return NodeConfig(
        node_id=args.node_id,
        stride=args.stride,
        threshold=threshold_of(args.threshold, args.far, (model_card or {}).get("file", {}).get("sha256")),
        min_windows=args.min_windows,
        enroll_after=args.enroll_after,
        max_batch=args.max_batch,
        max_wait_s=args.max_wait_ms / 1000,
        sensor_poses=poses,
    )


def run_replay(args: argparse.Namespace) -> int:
    from engines.runtime.load import open_encoder
    from sensors.formats import iter_recordings
    from sensors.replay import Replay
    from stream.gallery.gallery import Gallery
    from stream.node.silhouette_inputs import ReplaySilhouettes

    if not args.paths and args.gallery is not None:
        raise InputError(
            f"no files to replay against {args.gallery}: give recordings or datasets "
            f"(gaitwatch replay FILE... --gallery {args.gallery}); without --gallery, replay runs the demo "
            "in a temporary gallery of its own"
        )
    if args.paths and args.gallery is None:
        raise InputError("--gallery is required when replaying files (without files: the demo)")
    for path in args.paths:
        if not path.exists():
            raise InputError(f"{path}: no such file or folder")
    speed = parse_speed(args.speed)
    with _bound(args) as publisher:  # a port in use is said before any model loads or gallery is built
        encoder = open_encoder(args.model)
        config = node_config(args, encoder.card)
        if not args.paths:
            return _run_demo(args, publisher, encoder, config, speed)
        silhouettes = None if args.skeleton_only else ReplaySilhouettes(args.paths)
        recordings = silhouettes.recordings if silhouettes is not None else lambda: iter_recordings(args.paths)
        replay = Replay(recordings, speed=speed, loop=args.loop, sensor_id=None)
        gallery = Gallery.open(args.gallery, encoder.card, background=True)
        if silhouettes is not None:
            silhouettes.replay = replay
            if not silhouettes.files:
                silhouettes = None
            else:
                config.silhouette_method = "replayed"
        _play(replay, gallery, encoder, publisher, config, args, silhouettes)
    return 0


def _run_demo(args: argparse.Namespace, publisher: Publisher, encoder, config, speed: float | None) -> int:
    """The demo: its own gallery in a fresh temporary folder (removed at the end, also on ^C or SIGTERM)."""
    from sensors.replay import Replay
    from stream.node.demo import build_demo_gallery, demo_split

    enroll, walks = demo_split()
    with tempfile.TemporaryDirectory(prefix="gaitwatch-demo-") as workdir:
        path = Path(workdir) / "demo.db"
        print(
            f"demo: {len(enroll)} CMU subjects enrolled from their first walk into a temporary gallery; "
            f"replaying their other {len(walks)} walks"
        )
        replay = Replay.of(walks, speed=speed, loop=args.loop, sensor_id="cmu-demo")
        _play(replay, build_demo_gallery(path, encoder, enroll), encoder, publisher, config, args)
    return 0


def _play(replay, gallery, encoder, publisher: Publisher, config, args: argparse.Namespace, silhouettes=None) -> None:
    """Run the node on ``replay`` against ``gallery`` and print its summary; the gallery is closed whatever happens.
    ``silhouettes``: the replayed recordings' silhouettes (``ReplaySilhouettes``), where they have some."""
    from stream.node.node import Source

    try:
        if silhouettes is not None:
            refuse_existing_companion(args.record)
        source = Source(replay, track_labels=replay.track_labels, silhouettes=silhouettes)
        channel = _silhouette_channel(args, gallery, silhouettes is not None, encoder.card)
        print(_run_node([source], encoder, gallery, publisher, config, args, channel=channel))
    finally:
        gallery.close()


def refuse_existing_companion(record: Path | None) -> None:
    """With silhouettes, ``--record`` also writes the recording's ``.gwsil``: one that exists is said at once, not
    at the first silhouette."""
    from sensors.formats.gwsil import companion

    if record is not None and companion(record).exists():
        raise InputError(f"{companion(record)}: already exists; refusing to overwrite silhouettes")


def _silhouette_channel(args: argparse.Namespace, gallery, have_silhouettes: bool, skeleton_card: dict):
    """(silhouette encoder, SilhouetteChannel) where this node matches silhouettes, else (None, None).

    On where there are silhouettes and either the gallery holds some (bound to the encoder's model, refused
    otherwise) or ``--enroll-after`` may enroll them; silhouettes without that are only recorded or previewed."""
    from engines.runtime.load import open_silhouette_encoder
    from stream.fusion import FUSION_WEIGHT
    from stream.fusion_weight import read_weight
    from stream.gallery.channel import SILHOUETTE
    from stream.gallery.store import check_model
    from stream.matcher import SilhouetteChannel

    text = args.fusion_weight
    if text is not None and not Path(text).is_file():
        read_weight(text)  # a bad number is said at once, silhouettes or not
    if not have_silhouettes:
        return None, None
    bound = gallery.channel_model(SILHOUETTE)
    if not gallery.channel_identities(SILHOUETTE) and args.enroll_after is None:
        print(
            f"silhouette channel: off ({gallery.store.where} holds no silhouettes; enroll some with "
            "`gaitwatch gallery enroll ... --silhouette-model`)",
            flush=True,
        )
        return None, None
    encoder = open_silhouette_encoder(args.silhouette_model)
    if bound is not None:
        check_model(f"{gallery.store.where} (silhouette channel)", bound, encoder.card)
    shas = skeleton_card["file"]["sha256"], encoder.card["file"]["sha256"]
    weight = FUSION_WEIGHT if text is None else read_weight(text, *shas)
    print(f"silhouette channel: on ({encoder.card['file']['name']}, skeleton weight {weight})", flush=True)
    return encoder, SilhouetteChannel(encoder.card, weight)


def _curve(args: argparse.Namespace):
    from stream.curve import Curve

    return Curve.of(args.keys, args.allow, args.server_key)


@contextmanager
def _bound(args: argparse.Namespace) -> Iterator[Publisher]:
    """The node's publisher, bound to --pub, closed on the way out. Bound first, so a port in use is one line
    with a way out, said at once rather than after the model has loaded and the demo built its gallery."""
    import zmq

    from stream.events import Publisher

    try:
        publisher = Publisher(
            args.hub or args.pub, args.node_id, curve=_curve(args), to_hub=args.hub is not None, insecure=args.insecure
        )
    except InputError as err:
        if getattr(err.__context__, "errno", None) != zmq.EADDRINUSE:  # ZeroMQ's own error, kept as the context
            raise
        raise InputError(
            f"--pub {args.pub}: that port is in use (another node?); give another --pub, or --pub {ANY_PORT} "
            "for any free port"
        ) from None
    try:
        yield publisher
    finally:
        publisher.close()


def _run_node(
    sources: list,
    encoder,
    gallery,
    publisher: Publisher,
    config,
    args: argparse.Namespace,
    on_event=None,
    on_frame=None,
    on_interrupt=None,
    channel: tuple = (None, None),
) -> str:
    """Run a node on ``sources``: events published on ``publisher`` and printed, frames recorded with --record.

    Returns the summary line. On ^C the node stops; with ``on_interrupt`` (live sources, where ^C is how
    a run ends) that is called and the run summarised, otherwise the interrupt goes on up. ``channel``: the
    silhouette encoder and ``SilhouetteChannel`` (``_silhouette_channel``), or (None, None)."""
    from stream.labels import person_of_identity
    from stream.node.node import Node
    from stream.node.printer import EventPrinter

    if config.enroll_after is not None and gallery.store.readonly:
        raise InputError(f"{gallery.store.where}: read-only here, so --enroll-after could not enroll anyone")
    printer = EventPrinter(
        quiet=args.quiet, people=lambda: {i.id: person_of_identity(i.name, i.attributes) for i in gallery.identities()}
    )

    def events(topic: str, payload: dict) -> None:
        printer(topic, payload)
        if on_event is not None:
            on_event(topic, payload)

    stops = "; ^C stops" if on_interrupt is not None else ""
    node = Node(sources, encoder, gallery, publisher, config, events, on_frame, args.record, *channel)
    follower = _follow(gallery)
    try:
        where = (
            f"publishing into the hub at {publisher.endpoint} (listen on the hub's --out)"
            if publisher.to_hub
            else f"publishing on {publisher.endpoint} (listen with: gaitwatch listen {publisher.endpoint})"
        )
        print(where + stops, flush=True)
        counters = node.run()
    except KeyboardInterrupt:
        node.stop()
        if on_interrupt is None:
            print(printer.summary(node.counters, publisher), flush=True)  # what was done until the interrupt
            raise
        on_interrupt()
        counters = node.counters
    finally:
        if follower is not None:
            follower.stop()
    return printer.summary(counters, publisher)


def _follow(gallery):
    """For a shared (PostgreSQL) gallery, the replica follower, started and caught up before the first frame; for
    a file, the poller that takes other processes' writes (a rename in a shell or on the dashboard)."""
    from stream.gallery.postgres import PostgresStore
    from stream.gallery.store import GalleryStore

    if isinstance(gallery.store, GalleryStore):
        from stream.gallery.poll import Poller

        return Poller(gallery).start()
    if not isinstance(gallery.store, PostgresStore):
        return None
    from stream.gallery.follow import Follower

    follower = Follower(gallery).start()
    if not follower.wait_connected(30):
        print(f"warning: {gallery.store.where}: not following its changes yet; retrying meanwhile", flush=True)
    else:
        print(f"gallery: {gallery.store.where}, {len(gallery.tracks)} tracks in this node's replica", flush=True)
    return follower


def run_bench_pipeline(args: argparse.Namespace) -> int:
    from stream.node.bench import run_benchmark, write

    if min(args.sensors, args.bodies) < 1 or min(args.seconds, args.max_speed_seconds) <= 0:
        raise InputError("--sensors and --bodies must be at least 1, --seconds and --max-speed-seconds positive")
    report = run_benchmark(args.sensors, args.bodies, args.seconds, args.max_speed_seconds)
    print(write(report, args.out, args.table, command_line(args)))
    return 0


def run_camera(args: argparse.Namespace) -> int:
    if args.people < 1:
        raise InputError(f"--people: must be at least 1, got {args.people}")
    if args.silhouettes:
        refuse_existing_companion(args.record)
    if args.preview is not None:
        from stream.node.preview import refuse_existing

        refuse_existing(args.preview)  # at once, not after the model and the camera have started
    with _bound(args) as publisher:
        return _run_camera(args, publisher)


def _run_camera(args: argparse.Namespace, publisher: Publisher) -> int:
    from calibration.placement import placer_for
    from calibration.sensor_file import SensorCalibrations
    from engines.runtime.load import open_encoder
    from sensors.rgb import RgbPoseSource, parse_source
    from stream.gallery.gallery import Gallery
    from stream.node.node import Source
    from stream.node.preview import PreviewWriter
    from stream.node.silhouette_inputs import CameraSilhouettes

    encoder = open_encoder(args.model)
    config = node_config(args, encoder.card)
    config.silhouette_method = args.silhouettes
    gallery = Gallery.open(args.gallery, encoder.card, background=True)
    try:
        channel = _silhouette_channel(args, gallery, args.silhouettes is not None, encoder.card)
    except BaseException:
        gallery.close()
        raise
    stored = SensorCalibrations.load(args.calibration).sensors.get(args.sensor_id) if args.calibration else None
    source = RgbPoseSource(
        parse_source(args.source),
        args.pose_model,
        args.people,
        args.sensor_id,
        silhouettes=args.silhouettes,
        background=background_model(args),
        keep_masks=args.preview is not None,
    )
    source.place = placer_for(args.intrinsics, args.fov, stored.intrinsics if stored is not None else None)
    preview: PreviewWriter | None = None
    silhouettes = CameraSilhouettes() if args.silhouettes else None

    def frames():
        nonlocal preview
        for estimate in source.estimates():
            if silhouettes is not None:
                silhouettes.keep(estimate.frame.seq, estimate.silhouettes)
            if args.preview is not None:
                if preview is None:
                    preview = PreviewWriter(args.preview, source.fps or 25.0, source.size)
                preview.keep(estimate.frame.seq, estimate.image, estimate.image_landmarks, estimate.silhouettes)
            yield estimate.frame

    def on_event(topic: str, payload: dict) -> None:
        if preview is not None:
            preview.on_event(topic, payload)

    def on_frame(frame, keys) -> None:
        if preview is not None:
            preview.on_frame(frame, keys)

    try:
        sources = [Source(frames(), live=source.live, silhouettes=silhouettes)]
        summary = _run_node(sources, encoder, gallery, publisher, config, args, on_event, on_frame, channel=channel)
    finally:
        gallery.close()
        if preview is not None:
            preview.close()
    stats = source.stats
    print(
        f"camera: {stats.captured} images captured, {stats.dropped} dropped (newest wins), "
        f"{stats.estimated} estimated, a person found in {stats.with_bodies}"
        + (f"; preview: {preview.written} frames in {args.preview}" if preview is not None else "")
    )
    print(summary)
    return 0


def run_kinect(args: argparse.Namespace) -> int:
    from engines.runtime.load import open_encoder
    from sensors.kinect import KinectV2Source
    from stream.gallery.gallery import Gallery
    from stream.node.node import Source

    with _bound(args) as publisher:
        encoder = open_encoder(args.model)
        config = node_config(args, encoder.card)
        gallery = Gallery.open(args.gallery, encoder.card, background=True)
        source = KinectV2Source(args.sensor_id)
        try:
            sources = [Source(source, live=True)]
            summary = _run_node(sources, encoder, gallery, publisher, config, args, on_interrupt=source.stop)
        finally:
            gallery.close()
    print(f"kinect: {source.frames_read} body frames read")
    print(summary)
    return 0


def run_listen(args: argparse.Namespace) -> int:
    from stream.node.live_table import listen

    if args.timeout is not None and not args.timeout > 0:
        raise InputError(f"--timeout: a number of seconds above 0, got {args.timeout}")
    if args.allow is not None:
        raise InputError("--allow: listen connects, it accepts nobody; give --keys and --server-key")
    return listen(args.endpoint, args.topics, args.plain, args.timeout, args.until_finished, _curve(args))


def run_launch(args: argparse.Namespace) -> int:
    from stream.cli import build_parser, parse
    from stream.node.launch import launch_plan

    plan = launch_plan(args.file, build_parser())
    launched = parse(plan[0])
    for argv in plan[1:]:
        parse(argv)  # checked before anything starts
    with _started_beside(plan[1:]) if len(plan) > 1 else contextlib.nullcontext():
        return launched.func(launched)


@contextmanager
def _started_beside(argvs: list[list[str]]) -> Iterator[None]:
    """The launch file's dashboard, a process of its own (the node's threads keep their CPU), stopped at the end."""
    import subprocess
    import sys

    processes = [subprocess.Popen([sys.executable, "-m", "stream", *argv]) for argv in argvs]
    try:
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
