"""RGB camera, video file or stream through MediaPipe pose: skeleton frames from ordinary video.

Capture runs on its own thread and pose estimation off it. A live source (a device index or a
URL) keeps only the newest captured image waiting: when estimation falls behind, older images
are dropped and counted, so latency never grows. A file waits instead: nothing of it is dropped.
Files run the PoseLandmarker in VIDEO mode (timestamps from the file position), live sources in
LIVE_STREAM mode (timestamps from the capture clock).

What a frame holds: MediaPipe's *world* landmarks (33 joints, metres, x right, y down, z away,
centred on the hips in every frame) with per-joint visibility as confidence, and no track ids
(-1: the node's tracker associates bodies). MediaPipe drops the body's position; ``place`` (from
``calibration.placement``, with the camera's intrinsics) puts it back from the image landmarks. The
encoders centre every frame on the hips anyway, so they receive the same windows either way; the
position serves the tracker (several people) and the walking path.

A source that ends is checked: one that gave no image at all is an error, and a file whose decoding stopped
well before the frame count its container declares (a truncated or damaged file) is warned about, naming
the image where it stopped; the count may be an estimate, so a shortfall of 1% (and one image) is let pass.
What OpenCV, FFmpeg and MediaPipe log from native code is kept off stderr (``sensors.native_logs``); from a live
source MediaPipe's one warning at the first person found may still show (its own thread logs it, later).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np

from sensors.errors import InputError
from sensors.frame import Frame
from sensors.layouts import MEDIAPIPE_POSE
from sensors.native_logs import dropped, quiet_environment
from sensors.silhouette_sources import (
    BACKGROUND,
    MEDIAPIPE,
    METHODS,
    BackgroundModel,
    Silhouettes,
    background_masks,
    mediapipe_masks,
    silhouettes_of,
)

POSE_MODEL = "pose_landmarker_full.task"
_END = object()
log = logging.getLogger("gaitwatch.sensors")

# (world [B, 33, 3], image [B, 33, 2] in pixels, visibility [B, 33], (width, height)) -> joints [B, 33, 3]
Placer = Callable[[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]], np.ndarray]


def shipped_pose_model() -> Path:
    return Path(str(files("sensors") / "data" / POSE_MODEL))


@dataclass
class RgbStats:
    captured: int = 0
    dropped: int = 0  # live sources only: images replaced by a newer one before estimation
    estimated: int = 0
    with_bodies: int = 0
    capture_s: float = 0.0  # time spent reading and decoding images (capture thread)
    pose_s: float = 0.0  # time spent in MediaPipe (VIDEO mode: per image; LIVE_STREAM: submitting)
    convert_s: float = 0.0  # time turning MediaPipe's landmarks into a frame (and placing the bodies)
    silhouette_s: float = 0.0  # time making silhouettes (masks, background subtraction, alignment); 0 without


@dataclass
class Estimate:
    """One estimated image: the frame handed downstream, and what a preview draws."""

    frame: Frame
    image: np.ndarray  # BGR, as captured
    image_landmarks: np.ndarray  # [B, 33, 2] pixels
    silhouettes: Silhouettes | None = None  # a row per body of ``frame``, when the source was asked for them


def parse_source(text: str) -> int | str:
    """A device index ("0"), or a file path / stream URL as given."""
    return int(text) if text.isdigit() else text


def is_live(source: int | str) -> bool:
    return isinstance(source, int) or "://" in str(source)


class RgbPoseSource:
    def __init__(
        self,
        source: int | str,
        pose_model: str | Path | None = None,
        num_poses: int = 1,
        sensor_id: str = "camera",
        place: Placer | None = None,
        live: bool | None = None,
        silhouettes: str | None = None,
        background: BackgroundModel | None = None,
        keep_masks: bool = False,
    ) -> None:
        """``silhouettes``: None (the default: none made, the pose call as before), ``"mediapipe"`` (the pose
        call's segmentation masks) or ``"background"`` (``background``, or a model learned from this still camera's
        own images); ``keep_masks`` keeps each image's full mask on its estimate (for a preview)."""
        if silhouettes not in (None, *METHODS):
            raise InputError(f"silhouettes {silhouettes!r}: expected one of {', '.join(METHODS)}")
        if background is not None and silhouettes != BACKGROUND:
            raise InputError("a background model is for background silhouettes (--silhouettes background)")
        self.silhouettes = silhouettes
        self.background = background
        self.keep_masks = keep_masks
        self.source = source
        self.live = is_live(source) if live is None else live
        self.pose_model = Path(pose_model) if pose_model else shipped_pose_model()
        if not self.pose_model.exists():
            raise InputError(f"{self.pose_model}: no such pose model (a MediaPipe pose landmarker .task file)")
        if not isinstance(source, int) and not self.live and not Path(source).exists():
            raise InputError(f"{source}: no such video file")
        self.num_poses = num_poses
        self.sensor_id = sensor_id
        self.place = place
        self.stats = RgbStats()
        self.size: tuple[int, int] | None = None  # (width, height) once opened
        self.fps: float | None = None

    # --- the frames ----------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Frame]:
        for estimate in self.estimates():
            yield estimate.frame

    def estimates(self) -> Iterator[Estimate]:
        """Every estimated image with its frame (bodies may be none)."""
        quiet_environment()
        import cv2

        capture = cv2.VideoCapture(self.source)
        if not capture.isOpened():
            raise InputError(f"{self.source}: OpenCV cannot open this camera, file or stream")
        self.size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        self.fps = capture.get(cv2.CAP_PROP_FPS) or None
        declared = 0 if self.live else max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
        images: queue.Queue = queue.Queue(maxsize=1 if self.live else 8)
        stop = threading.Event()
        reader = threading.Thread(target=self._capture, args=(capture, images, stop), daemon=True)
        reader.start()
        try:
            yield from (self._live if self.live else self._video)(images)
        finally:
            stop.set()
            reader.join(timeout=2.0)
            capture.release()
        self._check_ending(declared)

    def _check_ending(self, declared: int) -> None:
        """Said, never silent: a source that gave no image, and a file that ended well before its declared end."""
        captured = self.stats.captured
        if captured == 0:
            what = "the camera or stream gave no image" if self.live else "no image could be decoded (a damaged video?)"
            raise InputError(f"{self.source}: {what}")
        if declared - captured > 1 + declared // 100:
            log.warning(
                "%s: decoding stopped after image %d of the %d the file declares (truncated or damaged?); "
                "only those are used",
                self.source,
                captured,
                declared,
            )

    def _capture(self, capture, images: queue.Queue, stop: threading.Event) -> None:
        import cv2

        try:
            while not stop.is_set():
                began = time.perf_counter()
                ok, image = capture.read()
                self.stats.capture_s += time.perf_counter() - began
                if not ok:
                    break
                t = time.monotonic() if self.live else capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                self.stats.captured += 1
                if not self.live:
                    images.put((t, image))
                    continue
                while True:  # the newest image wins
                    try:
                        images.put_nowait((t, image))
                        break
                    except queue.Full:
                        try:
                            images.get_nowait()
                            self.stats.dropped += 1
                        except queue.Empty:
                            pass
        finally:  # also when OpenCV raises: the estimating side must not wait forever
            images.put(_END)

    def _landmarker(self, mode: str, callback=None):
        try:
            from mediapipe.tasks.python import BaseOptions, vision
        except ImportError:
            raise InputError("mediapipe is not installed: pip install -c constraints.txt 'gaitwatch[rgb]'") from None
        options = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(self.pose_model)),
            running_mode=getattr(vision.RunningMode, mode),
            num_poses=self.num_poses,
            output_segmentation_masks=self.silhouettes == MEDIAPIPE,
            **({"result_callback": callback} if callback else {}),
        )
        try:
            with dropped():
                return vision.PoseLandmarker.create_from_options(options)
        except (RuntimeError, ValueError) as err:
            raise InputError(f"{self.pose_model}: MediaPipe cannot load this pose model ({err})") from None

    def _video(self, images: queue.Queue) -> Iterator[Estimate]:
        landmarker = self._landmarker("VIDEO")
        last_ms = -1
        try:
            while (item := images.get()) is not _END:
                t, image = item
                ms = max(round(t * 1000), last_ms + 1)  # VIDEO mode wants strictly increasing times
                last_ms = ms
                began = time.perf_counter()
                with dropped() if not self.stats.with_bodies else nullcontext():  # it logs at the first person
                    result = landmarker.detect_for_video(_mp_image(image), ms)
                self.stats.pose_s += time.perf_counter() - began
                yield self._estimate(result, t, image)
        finally:
            landmarker.close()

    def _live(self, images: queue.Queue) -> Iterator[Estimate]:
        results: queue.Queue = queue.Queue()
        pending: dict[int, tuple[float, np.ndarray]] = {}
        landmarker = self._landmarker("LIVE_STREAM", lambda result, _, ms: results.put((result, ms)))
        last_ms = -1
        try:
            while (item := images.get()) is not _END:
                t, image = item
                ms = max(int(t * 1000), last_ms + 1)
                last_ms = ms
                pending[ms] = (t, image)
                landmarker.detect_async(_mp_image(image), ms)
                while not results.empty():
                    result, done = results.get()
                    t_done, image_done = pending.pop(done, (t, image))
                    yield self._estimate(result, t_done, image_done)
        finally:
            landmarker.close()

    def _estimate(self, result, t: float, image: np.ndarray) -> Estimate:
        began = time.perf_counter()
        estimate = self._frame_of(result, t, image)
        self.stats.convert_s += time.perf_counter() - began
        return estimate

    def _frame_of(self, result, t: float, image: np.ndarray) -> Estimate:
        self.stats.estimated += 1
        height, width = image.shape[:2]
        bodies = len(result.pose_world_landmarks)
        world = np.array([[(p.x, p.y, p.z) for p in body] for body in result.pose_world_landmarks], np.float32)
        pixels = np.array([[(p.x * width, p.y * height) for p in body] for body in result.pose_landmarks], np.float32)
        visibility = np.array([[p.visibility or 0.0 for p in body] for body in result.pose_landmarks], np.float32)
        if bodies:
            self.stats.with_bodies += 1
            if self.place is not None:
                world = self.place(world, pixels, visibility, (width, height))
        else:
            world = np.zeros((0, 33, 3), np.float32)
            pixels, visibility = np.zeros((0, 33, 2), np.float32), np.zeros((0, 33), np.float32)
        frame = Frame(
            self.sensor_id,
            self.stats.estimated - 1,
            t,
            MEDIAPIPE_POSE,
            np.full(bodies, -1, np.int64),
            world.astype(np.float32),
            np.clip(visibility, 0.0, 1.0),
        )
        silhouettes = None
        if self.silhouettes is not None:
            began = time.perf_counter()
            silhouettes = self._silhouettes(result, image, pixels)
            self.stats.silhouette_s += time.perf_counter() - began
        return Estimate(frame, image, pixels, silhouettes)

    def _silhouettes(self, result, image: np.ndarray, pixels: np.ndarray) -> Silhouettes:
        """Per body a mask by the chosen method, aligned; a still camera's model learns from every image."""
        if self.silhouettes == MEDIAPIPE:
            masks = mediapipe_masks(result.segmentation_masks or [], len(pixels))
        else:
            if self.background is None:
                self.background = BackgroundModel(learn=True)
            learning = self.background.learning_rate != 0.0
            masks = background_masks(self.background, image, pixels) if len(pixels) or learning else []
        return silhouettes_of(masks, self.keep_masks)


def _mp_image(bgr: np.ndarray):
    import cv2
    import mediapipe as mp

    return mp.Image(image_format=mp.ImageFormat.SRGB, data=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
