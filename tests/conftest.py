"""Shared fixtures: the real data in ../shared (skipped with a reason where absent)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgres import PASSWORD, Server, Unavailable, start_server
from tests.shared_data import CMU_DIR, KGBD_ZIP


@pytest.fixture(scope="session")
def kgbd_zip() -> Path:
    if not KGBD_ZIP.is_file():
        pytest.skip(f"KGBD dataset not found at {KGBD_ZIP} (see ../shared/datasets/kgbd/README.md)")
    return KGBD_ZIP


@pytest.fixture(scope="session")
def cmu_dir() -> Path:
    if not CMU_DIR.is_dir():
        pytest.skip(f"CMU mocap trials not found at {CMU_DIR}")
    return CMU_DIR


@pytest.fixture(scope="session")
def postgres() -> Iterator[Server]:
    try:
        server = start_server()
    except Unavailable as why:
        pytest.skip(str(why))
    yield server
    server.remove()


_databases = iter(range(1, 10**6))


@pytest.fixture
def pg_url(postgres: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A new empty database on the test server, reached with the password from the environment."""
    import psycopg

    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    monkeypatch.setenv("GAITWATCH_REPLICA_DIR", str(tmp_path / "replicas"))
    name = f"gallery_{os.getpid()}_{next(_databases)}"
    admin = postgres.url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as db:
        db.execute(f"CREATE DATABASE {name}")
    return postgres.url.rsplit("/", 1)[0] + f"/{name}"


# Tests of training and evaluation need the 'train' extra (torch, matplotlib).
TORCH_TESTS = [
    "test_age.py",
    "test_cluster.py",
    "test_training.py",
    "test_engines_cli.py",
    "test_export.py",
    "test_whiten.py",
    "test_shipped_model.py",
    "test_calibrate_cli.py",
    "test_trackcon.py",
    "test_adapt.py",
]
HAVE_TORCH = importlib.util.find_spec("torch") is not None and importlib.util.find_spec("matplotlib") is not None
collect_ignore = [] if HAVE_TORCH else TORCH_TESTS


def pytest_report_header(config) -> str | None:
    if HAVE_TORCH:
        return None
    return f"torch/matplotlib not installed (the 'train' extra): not collecting {', '.join(TORCH_TESTS)}"


def _hypothesis_writes_outside_the_checkout() -> None:
    """No example database, and Hypothesis's own caches in the temp folder: nothing lands in ``.hypothesis/`` here
    (fuzz seeds are ``@example``s, so no database is needed to replay them)."""
    import tempfile

    from hypothesis import settings
    from hypothesis.configuration import set_hypothesis_home_dir

    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "gaitwatch-hypothesis")
    settings.register_profile("gaitwatch", database=None)
    settings.load_profile("gaitwatch")


_hypothesis_writes_outside_the_checkout()
