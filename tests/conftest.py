"""Shared fixtures: stores on SQLite (a temp file) and PostgreSQL (a fresh database)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from swarmlearn.store import SqlStore

PG_ADMIN_URL = os.environ.get("SWARMLEARN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_admin() -> object | None:
    try:
        import psycopg
    except ImportError:
        return None
    try:
        conninfo = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
        return psycopg.connect(conninfo, autocommit=True, connect_timeout=3)
    except Exception:
        return None


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run (skipped without a server)."""
    admin = _pg_admin()
    if admin is None:
        pytest.skip(f"no PostgreSQL server at {PG_ADMIN_URL} (set SWARMLEARN_TEST_PG to one)")
    name = f"swarmlearn_test_{uuid.uuid4().hex[:10]}"
    admin.execute(f"CREATE DATABASE {name}")  # type: ignore[attr-defined]
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        admin.execute(  # type: ignore[attr-defined]
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        admin.execute(f"DROP DATABASE IF EXISTS {name}")  # type: ignore[attr-defined]
        admin.close()  # type: ignore[attr-defined]


def _reset_pg(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.db"
    url: str = request.getfixturevalue("pg_server_url")
    _reset_pg(url)
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    st = SqlStore(store_url)
    try:
        yield st
    finally:
        st.close()


@pytest.fixture
def sqlite_url(tmp_path: object) -> str:
    return f"sqlite:///{tmp_path}/store.db"
