"""Damaged and read-only galleries: every command gives a correct answer or one clear error naming the gallery,
never a traceback; reading a read-only gallery (file or folder) works, writing it says it is read-only."""

from __future__ import annotations

import os
import pwd
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from sensors.errors import FormatError, GaitwatchError
from stream.cli import main
from stream.gallery.gallery import Gallery
from stream.gallery.store import GalleryStore, Origin
from tests.helpers import DIM, card, people

F = card()["f"]


def _pristine(path: Path, who: str = "person") -> Path:
    """Eight people, six embeddings each with their windows (so that a rebind reads them too)."""
    gallery = Gallery.create(path, card())
    vectors, labels = people(8, 6)
    windows = np.random.default_rng(0).normal(size=(len(vectors), F, 20, 3)).astype(np.float32)
    for label in range(8):
        identity = gallery.add_identity(f"{who} {label}", {"site": "lab"})
        rows = np.flatnonzero(labels == label)
        origins = [Origin("walk.gwrec", str(label), 0.0, 0.2, windows[i]) for i in rows]
        gallery.enroll(identity, vectors[rows], origins)
    gallery.close()
    return path


def _every_command(path: Path, export: Path, capsys) -> Iterator[tuple[str, str | None]]:
    """Run each command on ``path`` (reading ones first; a rebind while every embedding has its window): yields
    (command, None) when it answered, or (command, its error line)."""
    for step in (
        ["list", "--json"],
        ["stats", "--json"],
        ["show", "name:person 3"],
        ["export", str(path.with_suffix(".npz"))],
        _search,
        _rebind,
        ["rename", "name:person 1", "Ana"],
        ["remove", "name:person 2"],
        _enroll,
        ["import", str(export)],
    ):
        if isinstance(step, list):
            if step[0] == "export":
                path.with_suffix(".npz").unlink(missing_ok=True)  # export never overwrites: one per run
            rc = main(["gallery", step[0], str(path), *step[1:]])
            err = capsys.readouterr().err.strip()
            yield step[0], None if rc == 0 else err
            continue
        try:
            step(path)
            yield step.__name__, None
        except GaitwatchError as error:
            yield step.__name__, str(error)


def _enroll(path: Path) -> None:
    gallery = Gallery.open(path, card())
    gallery.enroll(gallery.add_identity("new"), np.ones((2, DIM), np.float32), [Origin("x")] * 2)
    gallery.close()


def _search(path: Path) -> None:
    gallery = Gallery.open(path, card())
    assert len(gallery.search(np.zeros((1, DIM), np.float32), k=3)[0]) <= 3
    gallery.search_tracks(np.zeros(DIM, np.float32), k=3)
    gallery.close()


def _rebind(path: Path) -> None:
    store = GalleryStore(path, writable=True)
    store.rebind(card(), lambda w: w.reshape(len(w), -1)[:, :DIM])  # the same model again: new vectors
    store.close()


def test_a_damaged_gallery_is_one_clear_error_for_every_command(tmp_path: Path, capsys):
    """Bytes overwritten at random offsets of a real gallery (a seeded loop; 1 byte to a page, log-uniform): each
    command answers, or fails with one line naming the gallery; no other exception escapes."""
    pristine = _pristine(tmp_path / "pristine.db")
    export = _export_of_another(tmp_path, capsys)
    data = pristine.read_bytes()
    rng = np.random.default_rng(12)
    damaged_runs = 0
    for run in range(24):
        path = tmp_path / f"run{run}" / "g.db"
        path.parent.mkdir()
        damaged = bytearray(data)
        at, size = int(rng.integers(len(data))), int(2 ** rng.uniform(0, 12))
        damaged[at : at + size] = rng.bytes(len(damaged[at : at + size]))
        path.write_bytes(bytes(damaged))
        errors = [(command, error) for command, error in _every_command(path, export, capsys) if error is not None]
        for command, error in errors:
            assert len(error.splitlines()) == 1 and str(path) in error and "Traceback" not in error, (run, command)
        damaged_runs += bool(errors)
    assert 5 <= damaged_runs <= 19  # both outcomes were met: damage noticed, and damage no command reads


@pytest.mark.parametrize(
    ("statement", "where"),
    [
        ("UPDATE meta SET value = '\"sixteen\"' WHERE key = 'dim'", "meta dim"),
        ("UPDATE meta SET value = '{' WHERE key = 'generation'", "meta generation"),
        ("DELETE FROM meta WHERE key = 'model_sha256'", "meta model_sha256"),
        ("UPDATE embeddings SET vector = x'0000' WHERE id = 5", "embedding 5"),
        ("UPDATE embeddings SET vector = 7 WHERE id = 6", "embedding 6"),
        (f"UPDATE embeddings SET vector = x'0000c07f{'00' * 60}' WHERE id = 7", "embedding 7"),  # a NaN
        ("UPDATE identities SET attributes = '[1' WHERE id = 2", "identity 2 attributes"),
        ("UPDATE identities SET attributes = '[]' WHERE id = 3", "identity 3 attributes"),
        ("UPDATE identities SET name = x'ff' WHERE id = 4", "identity 4 name"),
    ],
)
def test_a_bad_stored_value_names_the_gallery_and_the_place(tmp_path: Path, capsys, statement: str, where: str):
    path = _pristine(tmp_path / "g.db")
    db = sqlite3.connect(path)
    db.execute(statement)
    db.commit()
    db.close()
    if not where.startswith("embedding"):  # opening reads every identity (embeddings: on the first search)
        with pytest.raises(FormatError, match=where):
            Gallery.open(path, card())
    export = _export_of_another(tmp_path, capsys)
    failed = {command: error for command, error in _every_command(path, export, capsys) if error is not None}
    assert failed, "the damage went unnoticed"
    for command, error in failed.items():
        assert str(path) in error and len(error.splitlines()) == 1, (command, error)
    assert any(where in error for error in failed.values()), failed


def _export_of_another(tmp_path: Path, capsys) -> Path:
    """An export of another gallery (a copy's own identities would be skipped as already there)."""
    export = tmp_path / "other.npz"
    assert main(["gallery", "export", str(_pristine(tmp_path / "other.db", "other")), str(export)]) == 0
    capsys.readouterr()
    return export


# --- read-only galleries ----------------------------------------------------------------------------------------


def _other_user() -> list[str]:
    """The command prefix that runs as a user whose permissions are enforced: nobody, where we are root."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root, where file permissions are not enforced, and no setpriv to drop them")
    nobody = pwd.getpwnam("nobody")
    prefix = [setpriv, f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"]
    probe = subprocess.run([*prefix, sys.executable, "-c", "import stream.gallery.store"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"running as root, and user nobody cannot run this checkout: {probe.stderr.decode()[-200:]}")
    return prefix


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder outside pytest's private tmp folders, so that another user can reach it."""
    folder = Path(tempfile.mkdtemp(prefix="gaitwatch-ro-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        for path in [folder, *folder.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        shutil.rmtree(folder)


LEAVE_A_LOG = """
import os, sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("INSERT INTO identities (name, created) VALUES ('in the log', 0)")
os._exit(0)  # no close: the write stays in the write-ahead log, beside the gallery
"""


@pytest.mark.parametrize("read_only", ["file", "folder", "folder with a log"])
def test_a_read_only_gallery_can_be_read_and_says_so_when_written(shared_folder: Path, read_only: str):
    """Read-only file: opened ``immutable``; read-only folder: the same, or ``mode=ro`` where a write-ahead log
    holds writes not yet folded in (a writer that died), which are read too."""
    from sensors.demo import demo_recording_path

    prefix = _other_user()
    home = shared_folder / "home"  # somewhere the other user may write (exports, onnxruntime's own files)
    folder = shared_folder / "gallery"
    home.mkdir(mode=0o777)
    folder.mkdir()
    path = folder / "people.db"
    gaitwatch = str(Path(sys.executable).with_name("gaitwatch"))
    subprocess.run([gaitwatch, "gallery", "create", path], check=True, capture_output=True)
    subprocess.run([gaitwatch, "gallery", "enroll", path, demo_recording_path()], check=True, capture_output=True)
    if read_only == "folder with a log":
        subprocess.run([sys.executable, "-c", LEAVE_A_LOG, path], check=True)
    if prefix:
        for item in (home, folder, *folder.iterdir()):
            os.chown(item, pwd.getpwnam("nobody").pw_uid, -1)
    (path if read_only == "file" else folder).chmod(0o444 if read_only == "file" else 0o555)
    before = _contents(folder)

    def run(*args) -> subprocess.CompletedProcess:
        env = {**os.environ, "HOME": str(home)}
        return subprocess.run([*prefix, gaitwatch, *map(str, args)], capture_output=True, text=True, env=env)

    for args in (
        ("gallery", "list", path),
        ("gallery", "show", path, "05"),
        ("gallery", "stats", path),
        ("gallery", "export", path, home / "people.npz"),
        ("replay", demo_recording_path(), "--gallery", path, "--speed", "max", "--pub", "tcp://127.0.0.1:*", "--quiet"),
    ):
        proc = run(*args)
        assert proc.returncode == 0, (args, proc.stderr)
    assert len(run("gallery", "list", path).stdout.splitlines()) == 1 + 8 + (read_only == "folder with a log")
    for args in (
        ("gallery", "rename", path, "05", "Ana"),
        ("gallery", "remove", path, "05"),
        ("gallery", "import", path, home / "people.npz"),
        ("gallery", "enroll", path, demo_recording_path()),
    ):
        proc = run(*args)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, (args, proc.stderr)
        assert f"{path}: the gallery is read-only here" in proc.stderr.strip().splitlines()[-1]
    assert _contents(folder) == before  # nothing changed, no file made


def _contents(folder: Path) -> dict[str, bytes]:
    """Every file's bytes; the -shm only by name (readers of a log keep their shared index of it there)."""
    return {p.name: b"" if p.name.endswith("-shm") else p.read_bytes() for p in folder.iterdir()}
