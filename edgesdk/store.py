"""The results store: every compression and measurement, keyed so that a repeat can be answered.

SQLite in the user's data directory by default; any SQLAlchemy URL with ``--store`` or
``EDGESDK_STORE``. Each write is one transaction, so an interrupted run never leaves half a record.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import platformdirs
from sqlalchemy import Column, DateTime, Integer, LargeBinary, MetaData, String, Table, Text, create_engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, SQLAlchemyError

from .errors import StoreError
from .fileio import dumps

metadata = MetaData()
compressions = Table(
    "compressions", metadata,
    Column("id", Integer, primary_key=True),
    Column("config_hash", String(64), index=True, nullable=False),
    Column("source_sha256", String(64), index=True, nullable=False),
    Column("recipe", String(200), nullable=False),
    Column("profile", String(100), nullable=False),
    Column("artifact_sha256", String(64), index=True, nullable=False),
    Column("output", Text, nullable=False),
    Column("record", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
measurements = Table(
    "measurements", metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(64), index=True, nullable=False),
    Column("model_sha256", String(64), index=True, nullable=False),
    Column("device_fingerprint", String(64), nullable=False),
    Column("runtime", String(100), nullable=False),
    Column("settings", Text, nullable=False),
    Column("transport", String(200), nullable=False),
    Column("document", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
suite_runs = Table(
    "suite_runs", metadata,
    Column("run_id", String(200), primary_key=True),
    Column("suite", String(100), index=True, nullable=False),
    Column("suite_sha256", String(64), nullable=False),
    Column("tag", String(200)),
    Column("document", Text, nullable=False),       # the validated suite
    Column("created_at", DateTime(timezone=True), nullable=False),
)
suite_cells = Table(
    "suite_cells", metadata,
    Column("run_id", String(200), primary_key=True),
    Column("cell", String(400), primary_key=True),  # model|recipe|device
    Column("model", String(100), nullable=False),
    Column("recipe", String(200), nullable=False),
    Column("device", String(100), nullable=False),
    Column("status", String(20), nullable=False),   # pending, running, passed, failed, skipped
    Column("worker", String(200)),                  # host:pid of the process that has (had) it
    Column("claims", Integer, nullable=False, default=0),
    Column("claimed_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("result", Text),                         # JSON: artifact, quality, measurement or reason
)
artifacts = Table(  # model files a suite measured, by content: a later run re-measures its baseline's model
    "artifacts", metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
devices = Table(
    "devices", metadata,
    Column("name", String(100), primary_key=True),
    Column("url", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


def default_url() -> str:
    """``EDGESDK_STORE`` if set, else an SQLite file in the user's data directory."""
    env = os.environ.get("EDGESDK_STORE")
    if env:
        return env
    directory = Path(platformdirs.user_data_dir("edgesdk"))
    return f"sqlite:///{directory / 'results.sqlite'}"


def measurement_key(model_sha256: str, device_fingerprint: str, runtime: dict[str, str],
                    settings: dict[str, Any]) -> str:
    """The identity of a measurement: same model, device, runtime and settings -> same key."""
    text = json.dumps([model_sha256, device_fingerprint, runtime.get("name"), runtime.get("version"), settings],
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


DRIVERS = ("sqlite", "postgresql", "postgresql+psycopg")


def shown_url(url: str) -> str:
    """A storage URL as printed: without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return url


def check_url(url: str) -> None:
    """A storage URL edgesdk can open: ``sqlite:///path`` or ``postgresql://user@host/db``.

    Raises:
        StoreError: another scheme, or not a URL.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise StoreError(f"{url!r} is not a database URL; expected sqlite:///path/file.sqlite3 or "
                         "postgresql://user@host/db") from exc
    if parsed.drivername not in DRIVERS:
        raise StoreError(f"{shown_url(url)!r}: {parsed.drivername} is not supported; expected "
                         "sqlite:///path/file.sqlite3 or postgresql://user@host/db")


def db_reason(exc: BaseException) -> str:
    """What the database said, in one line, with a hint for the usual causes."""
    cause = getattr(exc, "orig", None) or exc.__cause__ or exc
    text = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    text = re.sub(r"^\([\w.]+\) ", "", text)   # SQLAlchemy's "(sqlite3.OperationalError) " prefix
    if "file is not a database" in text:
        text += " (the file is something else: choose another path)"
    elif "readonly database" in text or "unable to open database file" in text:
        text += " (the folder or the file is read-only or missing: choose another path)"
    elif "disk is full" in text or "database or disk is full" in text:
        text += " (free space or write elsewhere)"
    elif "Connection refused" in text or "could not translate host name" in text or "timeout expired" in text:
        text += " (is the database server running and reachable?)"
    return text


class Store:
    """Results database. Cheap to create; tables are made on first use."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or default_url()
        try:
            check_url(self.url)
        except StoreError as exc:
            raise StoreError(f"results store {exc}") from exc
        try:
            if self.url.startswith("sqlite:///"):
                Path(self.url.removeprefix("sqlite:///")).expanduser().parent.mkdir(parents=True, exist_ok=True)
            self.engine = create_engine(self.url)
            try:
                metadata.create_all(self.engine)
            except IntegrityError:  # another process created the tables at the same moment (PostgreSQL
                time.sleep(0.5)     # reports it as a unique violation in its catalog): theirs are there now
                metadata.create_all(self.engine)
        except (SQLAlchemyError, OSError, ValueError) as exc:
            raise StoreError(f"cannot open results store {shown_url(self.url)}: {db_reason(exc)}") from exc

    @contextmanager
    def db(self, doing: str) -> Iterator[None]:
        """A database failure in the block as a :class:`StoreError`: ``cannot DOING results store URL:
        reason``, the URL's password hidden (every method of the store reads and writes through it)."""
        try:
            yield
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot {doing} results store {shown_url(self.url)}: {db_reason(exc)}") from exc

    def _write(self, table: Table, row: dict[str, Any]) -> None:
        with self.db("write to"), self.engine.begin() as conn:
            conn.execute(table.insert().values(**row, created_at=datetime.now(UTC)))

    def add_compression(self, record: dict[str, Any]) -> None:
        self._write(compressions, {
            "config_hash": record["config_hash"], "source_sha256": record["source_sha256"],
            "recipe": record["recipe"], "profile": record["profile"], "artifact_sha256": record["sha256"],
            "output": record["output"], "record": dumps(record, default=str)})

    def add_measurement(self, key: str, document: dict[str, Any], transport: str) -> None:
        self._write(measurements, {
            "key": key, "model_sha256": document["model_sha256"],
            "device_fingerprint": document["device"]["fingerprint"],
            "runtime": f"{document['runtime']['name']} {document['runtime']['version']}",
            "settings": json.dumps(document.get("settings", {}), sort_keys=True), "transport": transport,
            "document": dumps(document)})

    def find_measurement(self, key: str) -> dict[str, Any] | None:
        """The newest measurement stored under ``key``, or None."""
        query = select(measurements.c.document).where(measurements.c.key == key).order_by(measurements.c.id.desc())
        with self.db("read"), self.engine.connect() as conn:
            row = conn.execute(query).first()
        return json.loads(row[0]) if row else None

    def add_artifact(self, sha256: str, data: bytes) -> bool:
        """Keep a model file by its content (once per sha256). True when it was new."""
        with self.db("write to"):
            try:
                with self.engine.begin() as conn:
                    if conn.execute(select(artifacts.c.sha256).where(artifacts.c.sha256 == sha256)).first():
                        return False
                    conn.execute(artifacts.insert().values(sha256=sha256, size=len(data), data=data,
                                                           created_at=datetime.now(UTC)))
                return True
            except IntegrityError:  # another process stored the same file at the same moment
                return False

    def get_artifact(self, sha256: str) -> bytes | None:
        """The model file kept under ``sha256``, or None."""
        with self.db("read"), self.engine.connect() as conn:
            row = conn.execute(select(artifacts.c.data).where(artifacts.c.sha256 == sha256)).first()
        return bytes(row[0]) if row else None

    def list_compressions(self, source_sha256: str | None = None) -> list[dict[str, Any]]:
        query = select(compressions.c.record).order_by(compressions.c.id)
        if source_sha256:
            query = query.where(compressions.c.source_sha256 == source_sha256)
        with self.db("read"), self.engine.connect() as conn:
            return [json.loads(r[0]) for r in conn.execute(query)]

    def add_device(self, name: str, url: str, *, replace: bool = False) -> None:
        """Record a named device; refuses to overwrite one unless ``replace``."""
        with self.db("write to"), self.engine.begin() as conn:
            exists = conn.execute(select(devices.c.name).where(devices.c.name == name)).first()
            if exists and not replace:
                raise StoreError(f"a device named {name!r} exists already; remove it first or pass --replace")
            if exists:
                conn.execute(devices.delete().where(devices.c.name == name))
            conn.execute(devices.insert().values(name=name, url=url, created_at=datetime.now(UTC)))

    def remove_device(self, name: str) -> bool:
        with self.db("write to"), self.engine.begin() as conn:
            return conn.execute(devices.delete().where(devices.c.name == name)).rowcount > 0

    def devices(self) -> dict[str, str]:
        """Named devices, name -> URL."""
        with self.db("read"), self.engine.connect() as conn:
            return {r.name: r.url for r in conn.execute(select(devices.c.name, devices.c.url).order_by(devices.c.name))}

    def count_measurements(self) -> int:
        with self.db("read"), self.engine.connect() as conn:
            return len(conn.execute(select(measurements.c.id)).all())
