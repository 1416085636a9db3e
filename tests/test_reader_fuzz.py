"""Every reader, fed mutated, truncated and hostile input: a valid recording or one FormatError/InputError.

Seeds are small valid files of each format, written here; the cases reported in issue 13 are
explicit examples. The property holds for what a reader returns as much as for what it refuses:
coordinates finite within the bound (NaN only where the format has lost joints), confidences in
[0, 1], frame times finite and in order, and a summary that prints without NaN or a negative duration.
Path-level hostility (FIFOs, devices, sparse files, zip bombs) is checked for time and memory.
"""

from __future__ import annotations

import io
import json
import os
import socket
import struct
import threading
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from sensors.cli import format_summary
from sensors.errors import FormatError, InputError
from sensors.formats import gwrec as gw
from sensors.formats import iter_recordings, read_file
from sensors.formats.framed_header import PREAMBLE
from sensors.formats.kgbd import FILE_JOINTS, KgbdDataset
from sensors.layouts import CMU_ASF, KINECT_V1, KINECT_V2
from sensors.recording import MAX_ABS_TIME_S, MAX_RATE_HZ, MIN_RATE_HZ, Recording, coordinate_limit
from sensors.summary import recording_summary
from tests.helpers import assert_one_line_error, gaitwatch

FUZZ = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
NASTY = (
    "nan", "NaN", "inf", "-inf", "Infinity", "1e300", "-1e300", "3.5e38", "1e-320", "9" * 5000, "-1", "0", "2",
    "1.5", "0x10", "1_0", "\n", "\r\n", " ", ";", "\t", "\x00", "\xff", "Head", "root", "begin", "end", "(", ")",
    ":DEGREES", "[", "{", '"', "true", "null",
)  # fmt: skip


# --- the property ---------------------------------------------------------------------------------------------


def assert_valid(rec: Recording, lost_joints: bool = False) -> None:
    """What every reader promises of a recording it returns (checked here independently of ``Recording.problem``)."""
    joints, conf, t = rec.joints, rec.confidence, rec.t
    assert joints.dtype == np.float32 and conf.dtype == np.float32 and t.dtype == np.float64
    assert not np.isinf(joints).any()
    assert lost_joints or not np.isnan(joints).any()
    assert (np.abs(joints[np.isfinite(joints)]) <= coordinate_limit(rec.units)).all()
    assert ((conf >= 0) & (conf <= 1)).all()
    assert np.isfinite(t).all() and (np.abs(t) <= MAX_ABS_TIME_S).all() and (np.diff(t) >= 0).all()
    assert rec.rate_hz is None or MIN_RATE_HZ <= rec.rate_hz <= MAX_RATE_HZ
    for track in rec.unique_tracks().tolist():
        assert np.all(np.diff(rec.track(track)[0]) > 0)  # each track once a frame
        assert isinstance(rec.track_labels(track), dict)
    summary = recording_summary(rec)
    json.dumps(summary, allow_nan=False)
    assert summary["duration_s"] >= 0
    assert "nan" not in format_summary(Path("x"), summary)


def read_or_refuse(read: Callable[[Path], object], path: Path, lost_joints: bool = False) -> None:
    try:
        result = read(path)
    except (FormatError, InputError) as err:
        assert str(path.parent) in str(err) and "\n" not in str(err)  # names the file (or the skeleton beside it)
        event(f"refused: {type(err).__name__}")
        return
    event("read")
    for rec in result if isinstance(result, list) else [result]:
        assert_valid(rec, lost_joints)


def mutations(seed: bytes, tokens: tuple[str, ...] = NASTY) -> st.SearchStrategy[bytes]:
    """``seed`` with up to 4 edits: bytes flipped, spans cut, tokens or random bytes inserted, or truncated."""
    edit = st.tuples(
        st.integers(0, max(len(seed) - 1, 0)),
        st.sampled_from(("flip", "cut", "token", "bytes", "truncate")),
        st.integers(1, 255),
        st.sampled_from(tokens),
        st.binary(max_size=8),
    )
    return st.lists(edit, max_size=4).map(lambda edits: _apply(seed, edits))


def _apply(seed: bytes, edits: list[tuple[int, str, int, str, bytes]]) -> bytes:
    data = bytearray(seed)
    for at, kind, n, token, raw in edits:
        at = min(at, len(data))
        if kind == "flip" and at < len(data):
            data[at] ^= n
        elif kind == "cut":
            del data[at : at + n]
        elif kind == "token":
            data[at:at] = token.encode("latin-1")
        elif kind == "bytes":
            data[at:at] = raw
        elif kind == "truncate":
            del data[at:]
    return bytes(data)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# --- gaitwatch's own format -----------------------------------------------------------------------------------

HEADER = {
    "format": "gaitwatch-recording",
    "layout": KINECT_V1.to_dict(),
    "units": "m",
    "sensor_id": "hall",
    "nominal_rate_hz": 30.0,
    "metadata": {"person": "Ana", "tracks": {"3": {"walk": 1}}},
}


def with_header(text: str | bytes) -> bytes:
    """A preamble with a valid CRC around any header text (so the JSON itself is what is tested)."""
    text = text.encode() if isinstance(text, str) else text
    return PREAMBLE.pack(gw.MAGIC, gw.VERSION, len(text), zlib.crc32(text)) + text


def gwrec_file(
    header: dict | None = None,
    t: tuple[float, ...] = (0.0, 1 / 30, 2 / 30),
    joints: float | None = None,
    confidence: float = 1.0,
    tracks: tuple[int, ...] = (3, 3, 4),
) -> bytes:
    """A header and records with valid check words: frames of 1, 0 and 2 bodies."""
    counts = np.array([1, 0, 2])
    n = int(counts.sum())
    values = np.random.default_rng(0).normal(size=(n, 20, 3)).astype(np.float32)
    if joints is not None:
        values[-1, 5, 1] = joints
    recs = gw._records(
        KINECT_V1,
        np.arange(3),
        np.array(t, np.float64),
        np.concatenate([[0], np.cumsum(counts)]),
        np.array(tracks, np.int64),
        values,
        np.full((n, 20), confidence, np.float32),
    )
    text = json.dumps({**HEADER, **(header or {})}).encode()
    return with_header(text) + recs.tobytes()


GWREC = gwrec_file()


def _read_gwrec_both(path: Path) -> Recording:
    rec = gw.read_gwrec(path)
    assert_valid(read_file(path), lost_joints=True)  # the dispatch reads it alike
    return rec


@FUZZ
@given(content=mutations(GWREC))
@example(content=GWREC)
@example(content=GWREC[:7])
@example(content=GWREC + b"\0" * 1000)
@example(content=GWREC[:12] + struct.pack("<I", 0xFFFFFFFF) + GWREC[16:])
@example(content=gwrec_file(t=(0.0, float("nan"), 1.0)))
@example(content=gwrec_file(t=(1.0, 0.5, 2.0)))
@example(content=gwrec_file(t=(0.0, 1.0, 1e300)))
@example(content=gwrec_file(t=(0.0, 1.0, 5e6)))
@example(content=gwrec_file(confidence=1.5))
@example(content=gwrec_file(confidence=float("nan")))
@example(content=gwrec_file(joints=float("inf")))
@example(content=gwrec_file(joints=3e38))
@example(content=gwrec_file(joints=float("nan")))
@example(content=gwrec_file(tracks=(3, 4, 4)))
def test_gwrec_bytes(workdir: Path, content: bytes):
    path = workdir / "f.gwrec"
    path.write_bytes(content)
    read_or_refuse(_read_gwrec_both, path, lost_joints=True)


HEADER_TEXT = json.dumps(HEADER)
DEEP = "[" * 100_000 + "]" * 100_000
NESTED_40 = json.loads("[" * 40 + "]" * 40)


@FUZZ
@given(text=mutations(HEADER_TEXT.encode()))
@example(text=HEADER_TEXT.replace('"parents": [-1', '"parents": [Infinity').encode())
@example(text=HEADER_TEXT.replace('"parents": [-1', '"parents": [1.5').encode())
@example(text=HEADER_TEXT.replace('"parents": [-1', '"parents": [true').encode())
@example(text=HEADER_TEXT.replace('"parents": [-1', '"parents": [1').encode())  # a cycle
@example(text=json.dumps({**HEADER, "layout": {**HEADER["layout"], "dims": float("inf")}}).encode())
@example(text=json.dumps({**HEADER, "layout": {**HEADER["layout"], "joints": []}}).encode())
@example(text=json.dumps({**HEADER, "metadata": None}).replace("null", DEEP).encode())
@example(text=json.dumps({**HEADER, "metadata": [["Ana"]]}).encode())
@example(text=json.dumps({**HEADER, "metadata": "Ana"}).encode())
@example(text=json.dumps({**HEADER, "metadata": {"deep": NESTED_40}}).encode())
@example(text=json.dumps({**HEADER, "metadata": {"tracks": 7}}).encode())
@example(text=json.dumps({**HEADER, "metadata": {"tracks": {"3": 7}}}).encode())
@example(text=json.dumps({**HEADER, "nominal_rate_hz": "fast"}).encode())
@example(text=json.dumps({**HEADER, "nominal_rate_hz": float("nan")}).encode())
@example(text=json.dumps({**HEADER, "nominal_rate_hz": 1e-320}).encode())
@example(text=json.dumps({**HEADER, "nominal_rate_hz": True}).encode())
@example(text=json.dumps({**HEADER, "sensor_id": {"a": 1}}).encode())
@example(text=json.dumps({**HEADER, "units": 5}).encode())
@example(text=json.dumps({**HEADER, "created": "9" * 5000}).replace('"9', "9").replace('9"', "9").encode())
@example(text=b"[1, 2]")
@example(text=b"\xff\xfe\x00")
def test_gwrec_header_json(workdir: Path, text: bytes):
    path = workdir / "h.gwrec"
    path.write_bytes(with_header(text) + GWREC[len(with_header(HEADER_TEXT)) :])
    read_or_refuse(gw.read_gwrec, path, lost_joints=True)


FLOATS = st.sampled_from((float("nan"), float("inf"), -float("inf"), 1e300, -3e38, 1e10, 2.0, -1.0, 0.0, 0.5))


@FUZZ
@given(
    record=st.integers(0, 3),
    field=st.sampled_from(("t", "seq", "track_id", "joints", "confidence", "n_bodies", "body_index")),
    value=FLOATS,
)
def test_gwrec_record_values_with_valid_check_words(workdir: Path, record: int, field: str, value: float):
    recs = np.frombuffer(GWREC, gw.record_dtype(20), offset=len(with_header(HEADER_TEXT))).copy()
    column = recs[field]
    if column.dtype.kind in "iu":  # the nearest integer the field can hold
        lo, hi = max(np.iinfo(column.dtype).min, -(2**62)), min(np.iinfo(column.dtype).max, 2**62)
        value = int(min(max(np.nan_to_num(value, posinf=hi, neginf=lo), lo), hi))
    with np.errstate(over="ignore"):
        if column.ndim > 1:
            column[record].flat[7 % column[record].size] = value
        else:
            column[record] = value
    recs["check"] = gw._checksums(recs)
    path = workdir / "v.gwrec"
    path.write_bytes(with_header(HEADER_TEXT) + recs.tobytes())
    read_or_refuse(gw.read_gwrec, path, lost_joints=True)


# --- KGBD: one walk, and the dataset zip ---------------------------------------------------------------------


def walk_text(frames: int = 2, value: str | None = None) -> bytes:
    lines = [f"{name};0.{i}1;-0.{i}2;2.{i}3" for _ in range(frames) for i, name in enumerate(FILE_JOINTS)]
    if value is not None:
        lines[5] = f"{FILE_JOINTS[5]};0.1;{value};2"
    return "\r\n".join(lines).encode()


WALK = walk_text()


@FUZZ
@given(content=mutations(WALK))
@example(content=WALK)
@example(content=walk_text(value="1e300"))
@example(content=walk_text(value="1e39"))
@example(content=walk_text(value="-2e4"))
@example(content=walk_text(value="nan"))
@example(content=walk_text(value="9" * 5000))
@example(content=b"")
def test_kgbd_walk(workdir: Path, content: bytes):
    path = workdir / "Person001" / "1.txt"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(content)
    read_or_refuse(read_file, path)


def zip_of(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


KGBD_ZIP = zip_of({"Data/Person001/1.txt": WALK, "Data/Person002/1.txt": WALK[:-1]}, zipfile.ZIP_STORED)
# passes zipfile.is_zipfile (an end record) but its directory points before the file: it does not open
BROKEN_ZIP = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 1, 1, 46, 0, 0)


def _read_all(path: Path) -> list[Recording]:
    """Every recording of a file or dataset, as ``convert`` and ``gallery enroll`` read them."""
    return list(iter_recordings([path]))


@FUZZ
@given(content=mutations(KGBD_ZIP) | mutations(zip_of({"Data/Person001/1.txt": WALK})))
@example(content=KGBD_ZIP)
@example(content=BROKEN_ZIP)
@example(content=zip_of({"Data/Person001/1.txt": walk_text(value="1e300")}))
@example(content=zip_of({f"Data/Person001/{'9' * 5000}.txt": WALK}))
@example(content=zip_of({"Data/Person001/1.txt": b"\0" * 3 * 2**20}))
def test_kgbd_zip(workdir: Path, content: bytes):
    path = workdir / "kgbd.zip"
    path.write_bytes(content)
    read_or_refuse(_read_all, path)
    read_or_refuse(lambda p: list(KgbdDataset(p)), path)


# --- NTU RGB+D .skeleton --------------------------------------------------------------------------------------


def ntu_text(frames: tuple[int, ...] = (1, 0), frame_count: str | None = None, x: str = "0.1") -> bytes:
    lines = [frame_count or str(len(frames))]
    for bodies in frames:
        lines.append(str(bodies))
        for b in range(bodies):
            lines += [f"{72057594037931101 + b} 0 1 1 1 1 0 0.1 -0.2 2", "25"]
            lines += [f"{x} {0.01 * j:.2f} 3.1 200 180 900 500 0.9 0 0.1 0 2" for j in range(25)]
    return "\n".join(lines).encode()


NTU = ntu_text()


@FUZZ
@given(content=mutations(NTU) | mutations(ntu_text((2,))))
@example(content=NTU)
@example(content=ntu_text(frame_count="9" * 5000))
@example(content=NTU.replace(b"72057594037931101", b"7" * 5000))
@example(content=ntu_text(x="1e300"))
@example(content=ntu_text(x="2e4"))
@example(content=ntu_text(x="nan"))
@example(content=ntu_text((2,)).replace(b"72057594037931102", b"72057594037931101"))
def test_ntu_skeleton(workdir: Path, content: bytes):
    path = workdir / "S001C002P003R002A013.skeleton"
    path.write_bytes(content)
    read_or_refuse(read_file, path)


# --- CMU ASF/AMC ----------------------------------------------------------------------------------------------


def cmu_asf(length_unit: str = "0.45") -> bytes:
    """A skeleton with the CMU layout's bones, each one unit long along y, every bone turning about all axes."""
    lines = [":version 1.10", ":name synthetic", ":units", "  mass 1.0", f"  length {length_unit}", "  angle deg"]
    lines += [":documentation", "  made by the tests", ":root", "  order TX TY TZ RX RY RZ", "  axis XYZ"]
    lines += ["  position 0 0 0", "  orientation 0 0 0", ":bonedata"]
    for k, name in enumerate(CMU_ASF.joints[1:], start=1):
        lines += ["  begin", f"    id {k}", f"    name {name}", "    direction 0 1 0", "    length 1"]
        lines += ["    axis 0 0 0 XYZ", "    dof rx ry rz", "  end"]
    lines += [":hierarchy", "  begin"]
    for p, parent in enumerate(CMU_ASF.joints):
        children = [CMU_ASF.joints[c] for c, q in enumerate(CMU_ASF.parents) if q == p]
        if children:
            lines.append(f"    {parent} {' '.join(children)}")
    lines += ["  end"]
    return "\n".join(lines).encode()


def cmu_amc(frames: int = 2, root: str = "1 2 3 0 0 0") -> bytes:
    lines = [":FULLY-SPECIFIED", ":DEGREES"]
    for f in range(1, frames + 1):
        lines += [str(f), f"root {root}"] + [f"{name} {f} 0 -{f}" for name in CMU_ASF.joints[1:]]
    return "\n".join(lines).encode()


ASF, AMC = cmu_asf(), cmu_amc()


@FUZZ
@given(content=mutations(AMC))
@example(content=AMC)
@example(content=cmu_amc(root="1e300 0 0 0 0 0"))
@example(content=cmu_amc(root="2e4 0 0 0 0 0"))
@example(content=cmu_amc(root="0 0 0 1e300 0 0"))
@example(content=cmu_amc(root="nan 0 0 0 0 0"))
def test_cmu_amc(workdir: Path, content: bytes):
    (workdir / "01.asf").write_bytes(ASF)
    path = workdir / "01_01.amc"
    path.write_bytes(content)
    read_or_refuse(read_file, path)


@FUZZ
@given(content=mutations(ASF))
@example(content=ASF)
@example(content=cmu_asf(length_unit="1e-320"))
@example(content=cmu_asf(length_unit="1e-9"))
@example(content=ASF.replace(b"length 1\n", b"length 1e300\n", 1))
def test_cmu_asf(workdir: Path, content: bytes):
    (workdir / "02_01.amc").write_bytes(AMC)
    path = workdir / "02.asf"
    path.write_bytes(content)
    read_or_refuse(read_file, workdir / "02_01.amc")


# --- Kinect v2 CSV exports, and their mapping file -----------------------------------------------------------


def kinect_csv(
    frames: int = 2, extra: tuple[str, ...] = ("time",), value: str | None = None, delimiter: str = ","
) -> bytes:
    """A header (the ``extra`` columns, then x, y, z of each Kinect v2 joint) and a row per frame (two bodies a
    frame when a body column is there); ``value`` replaces the first joint's y in the second row."""
    header = [*extra, *(f"{joint}_{axis}" for joint in KINECT_V2.joints for axis in "XYZ")]
    bodies = 2 if "body" in extra else 1
    rows = []
    for k in range(frames * bodies):
        fields = {"time": f"{k // bodies / 30:.4f}", "frame": str(k // bodies), "body": str(k % bodies)}
        coordinates = [f"{0.01 * j + k:.3f}" for j in range(75)]
        rows.append([fields[name] for name in extra] + coordinates)
    if value is not None:
        rows[1][len(extra) + 1] = value
    return "\n".join(delimiter.join(row) for row in [header, *rows]).encode()


CSV = kinect_csv()
CSV_BODIES = kinect_csv(extra=("frame", "body"), delimiter=";")
MAPPING = json.dumps({"joints": {"HandTipLeft": None}, "time": "time", "units": "mm", "rate_hz": 30}).encode()


@FUZZ
@given(content=mutations(CSV) | mutations(CSV_BODIES) | mutations(kinect_csv(extra=())))
@example(content=CSV)
@example(content=CSV_BODIES)
@example(content=kinect_csv(value="1e300"))
@example(content=kinect_csv(value="nan"))
@example(content=kinect_csv(value=""))
@example(content=kinect_csv(value="9" * 5000))
@example(content=CSV.replace(b"0.0333", b"0.0000"))
@example(content=CSV_BODIES.replace(b";1;", b";0;", 1))
@example(content=CSV_BODIES.replace(b"\n1;", b"\n" + b"9" * 30 + b";", 1))
@example(content=b"\xff\xfe" + CSV.decode().encode("utf-16-le"))
@example(content=b"")
def test_kinect_csv(workdir: Path, content: bytes):
    path = workdir / "walk.csv"
    path.write_bytes(content)
    read_or_refuse(read_file, path, lost_joints=True)


@FUZZ
@given(text=mutations(MAPPING))
@example(text=MAPPING)
@example(text=json.dumps({"joints": {"Head": ["Head_X", "Head_Y", 7]}}).encode())
@example(text=json.dumps({"units": ["mm"], "time_units": {"a": 1}, "sensor_id": ""}).encode())
@example(text=json.dumps({"rate_hz": float("inf")}).encode())
@example(text=b"[" * 100_000)
@example(text=b'{"rate_hz": ' + b"9" * 5000 + b"}")  # JSON allows it; Python's int() refuses over 4,300 digits
def test_kinect_csv_mapping(workdir: Path, text: bytes):
    path = workdir / "mapped.csv"
    path.write_bytes(CSV)
    (workdir / "mapped.columns.json").write_bytes(text)
    read_or_refuse(read_file, path, lost_joints=True)


# --- what is not a regular file, and what would take unbounded memory ---------------------------------------

SUFFIXES = (".gwrec", ".txt", ".skeleton", ".amc", ".zip", ".csv")


def read_promptly(path: Path, timeout_s: float = 20.0, most_bytes: int = 2**27) -> list[Recording] | BaseException:
    """What reading ``path`` gives (recordings or the exception), checked to come within ``timeout_s`` and
    ``most_bytes`` of Python and NumPy memory at peak."""
    outcome: list[list[Recording] | BaseException] = []
    peaks: list[int] = []

    def read() -> None:
        tracemalloc.start()
        try:
            outcome.append(_read_all(path))
        except BaseException as err:  # handed to the test's thread to judge
            outcome.append(err)
        finally:
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout_s)
    assert not reader.is_alive(), f"reading {path} did not return within {timeout_s} s"
    assert peaks[0] < most_bytes, f"{path.name}: {peaks[0]:,} bytes at peak"
    return outcome[0]


def refused_promptly(path: Path, timeout_s: float = 20.0, most_bytes: int = 2**27) -> str:
    """The one-line error reading ``path`` gives, promptly and in bounded memory."""
    outcome = read_promptly(path, timeout_s, most_bytes)
    assert isinstance(outcome, (FormatError, InputError)), outcome
    assert str(path) in str(outcome) and "\n" not in str(outcome)
    return str(outcome)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_fifo_is_refused_without_waiting(tmp_path: Path, suffix: str):
    path = tmp_path / f"pipe{suffix}"
    os.mkfifo(path)
    assert "FIFO" in refused_promptly(path)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_devices_and_sockets_are_refused(tmp_path: Path, suffix: str):
    zero = tmp_path / f"zero{suffix}"
    zero.symlink_to("/dev/zero")
    assert "character device" in refused_promptly(zero)
    sock_path = tmp_path / f"s{suffix}"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        assert "socket" in refused_promptly(sock_path)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_sparse_3_gib_file_is_read_in_bounded_memory(tmp_path: Path, suffix: str):
    (tmp_path / "sparse.asf").write_bytes(ASF)
    path = tmp_path / f"sparse_01{suffix}"
    path.write_bytes(GWREC if suffix == ".gwrec" else b"")
    os.truncate(path, 3 * 2**30)
    if suffix != ".gwrec":
        refused_promptly(path)  # text is refused by its size, a zip of zeros as no zip
        return
    (rec,) = read_promptly(path, timeout_s=60)  # the frames before the zeros, the zeros reported as a torn tail
    assert rec.num_frames == 3 and "torn or unwritten records at the end" in rec.truncation.reason


def _zip_bomb(tmp_path: Path, unpacked: int, declared: int | None = None) -> Path:
    """A KGBD-looking zip whose one walk unpacks to ``unpacked`` zero bytes; ``declared`` lies about the size."""
    data = bytearray(zip_of({"Data/Person001/1.txt": bytes(unpacked)}))
    if declared is not None:
        with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
            local, central = archive.infolist()[0].header_offset, archive.start_dir
        struct.pack_into("<I", data, local + 22, declared)
        struct.pack_into("<I", data, central + 24, declared)
    path = tmp_path / "bomb.zip"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("unpacked", "declared", "message"),
    [
        (200 * 2**20, None, "unpacks to 209,715,200 bytes"),
        (3 * 2**20, None, "(a zip bomb?)"),
        (200 * 2**20, 1000, "cannot read from the zip"),
    ],
)
def test_zip_bombs_are_refused_in_bounded_memory(tmp_path: Path, unpacked: int, declared: int | None, message: str):
    path = _zip_bomb(tmp_path, unpacked, declared)
    assert path.stat().st_size < 2**20
    assert message in refused_promptly(path, most_bytes=2**24)


INFO_CASES = {
    "parents.gwrec": (with_header(HEADER_TEXT.replace('"parents": [-1', '"parents": [Infinity')), "layout parents"),
    "deep.gwrec": (with_header(json.dumps({**HEADER, "metadata": None}).replace("null", DEEP)), "nested too deeply"),
    "time.gwrec": (gwrec_file(t=(0.0, float("nan"), 1.0)), "frame 1 (seq 1): time nan s"),
    "rate.gwrec": (gwrec_file(header={"nominal_rate_hz": "fast"}), "nominal rate 'fast'"),
    "S001C002P003R002A013.skeleton": (ntu_text(frame_count="9" * 5000), "line 1: the frame count: a 5000-digit"),
    "kgbd.zip": (BROKEN_ZIP, "not a readable zip"),
    "walk.csv": (kinect_csv(value="1e300"), "walk.csv, line 3, column 3 ('SpineBase_Y')"),
    "pipe.gwrec": (None, "a FIFO (named pipe), not a regular file"),
    "zero.gwrec": (Path("/dev/zero"), "a character device, not a regular file"),
}


@pytest.mark.parametrize("name", INFO_CASES)
def test_info_says_what_is_wrong_in_one_line(tmp_path: Path, name: str):
    content, needle = INFO_CASES[name]
    path = tmp_path / name
    if content is None:
        os.mkfifo(path)
    elif isinstance(content, Path):
        path.symlink_to(content)
    else:
        path.write_bytes(content)
    assert_one_line_error(gaitwatch("info", path, ok=False), str(path), needle)
