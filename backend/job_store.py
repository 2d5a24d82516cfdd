"""The job store: records in SQLite and files in the cache folder, private to their user, and
what a full or read-only disk means in words.

Records live in `<cache>/jobs.sqlite3`, results and previews in `<cache>/jobs/<id>/`, so
finished jobs outlive the process. Everything under the cache is private to the user running
the backend (folders 0700, files 0600). A record the database refuses is kept in memory until
there is room; a stored record that cannot be read back is skipped with a log line, never a
failed listing.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import json
import logging
import os
import shutil
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO, Collection, Optional, Union

log = logging.getLogger(__name__)

MAX_UNSAVED = 1000  # finished records held in memory while the database cannot take them
# Checkpoints kept (a distillation's is ~110 MB): those of older stopped jobs are deleted, their
# records saying so, so a day of cancelled experiments does not fill the disk.
KEEP_CHECKPOINTS = 4
COPY_CHUNK = 1 << 20  # bytes read at a time when an upload is copied from a file


class StorageFull(RuntimeError):
    """The cache folder cannot take a job's files or record. The message names the folder, the
    room free and needed, and the fix (the server answers 507)."""


class StorageReadOnly(StorageFull):
    """The cache folder has turned read-only, or this user may no longer write in it."""


class JobStore:
    """Job records in SQLite plus their files; safe to use from several threads.

    Args:
        cache_dir: The cache folder.

    Raises:
        CacheDirUnusable: the jobs folder or the database cannot be created or opened.
    """

    def __init__(self, cache_dir: str | os.PathLike):
        self.root = Path(cache_dir)
        self._lock = threading.Lock()
        self._unsaved: collections.OrderedDict[str, str] = collections.OrderedDict()  # id -> JSON the database refused
        self._unreadable: set[str] = set()  # ids of stored records skipped (each logged once)
        path, db = self.root / "jobs.sqlite3", None
        try:
            _private_dir(self.root / "jobs")
            # Created 0600 before SQLite opens it: SQLite gives its -wal and -shm files the same mode.
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
            for own in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                _tighten(own, 0o600)
            db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # WAL keeps it consistent; only the last write risks a power loss
            db.execute("CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, created_at REAL, state TEXT, "
                       "record TEXT)")
            db.execute("CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at)")
        except (OSError, sqlite3.Error) as e:
            if db is not None:
                db.close()
            raise CacheDirUnusable(
                f"cannot open the job database {path} ({_reason(e)}): make it writable or move it away, "
                "or start the backend with --cache-dir on another folder (or set DIFFUSION3D_CACHE)") from None
        self._db = db

    def mark_interrupted(self) -> int:
        """Fail the jobs a previous process left queued or running. Returns how many."""
        with self._lock:
            rows = self._db.execute("SELECT id, record FROM jobs WHERE state IN ('queued', 'running')").fetchall()
        for job_id, text in rows:
            record = self._readable(text, job_id)
            if record is None:
                continue
            ran = record["state"] == "running"
            saved = self.current_state_path(record["id"]).is_file()  # a long job's last autosave
            kept = self.checkpoint_path(record["id"]).is_file()  # and what it can go on from
            record.update(
                state="failed", eta_s=None, finished_at=time.time(), message="", has_current_state=saved,
                has_checkpoint=kept,
                error=("the backend stopped while this job ran" + (
                    "; it can be resumed from its last checkpoint" if kept else
                    "; where it stood at its last save can be imported, or continued from" if saved else ""))
                if ran else "the backend stopped before this job ran",
            )
            self.drop_uploads(record["id"])
            try:
                self.save(record)
            except sqlite3.Error:  # a full disk: shown failed all the same, written once there is room
                self.keep_unsaved(record)
        return len(rows)

    def save(self, record: dict[str, Any]) -> None:
        """Insert or replace a record; once one is written, those kept unsaved are written too.

        Raises:
            sqlite3.Error: the database refused it ("database or disk is full", "readonly database").
        """
        text = json.dumps(record)
        with self._lock:
            self._write(record, text)
            self._unsaved.pop(record["id"], None)
            while self._unsaved:  # the disk has room again
                job_id, unsaved = next(iter(self._unsaved.items()))
                try:
                    self._write(json.loads(unsaved), unsaved)
                except sqlite3.Error:
                    break
                del self._unsaved[job_id]

    def _write(self, record: dict[str, Any], text: str) -> None:
        # Caller holds self._lock.
        self._db.execute("INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, ?)",
                         (record["id"], record["created_at"], record["state"], text))

    def keep_unsaved(self, record: dict[str, Any]) -> None:
        """Hold a finished record the database refused in memory (the newest MAX_UNSAVED): get
        and list show it over the stale row, and the next save that succeeds writes it."""
        with self._lock:
            self._unsaved[record["id"]] = json.dumps(record)
            self._unsaved.move_to_end(record["id"])
            while len(self._unsaved) > MAX_UNSAVED:
                self._unsaved.popitem(last=False)

    def get(self, job_id: str) -> Optional[dict[str, Any]]:
        """The record, or None (also for a record that cannot be read back)."""
        with self._lock:
            text = self._unsaved.get(job_id)
            if text is None:
                row = self._db.execute("SELECT record FROM jobs WHERE id = ?", (job_id,)).fetchone()
                text = row[0] if row else None
        return None if text is None else self._readable(text, job_id)

    def prune(self, keep: int) -> int:
        """Delete all but the `keep` newest finished jobs, records and files. Returns how many went.

        Queued and running jobs are never touched; they do not count towards `keep`.
        """
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM jobs WHERE state NOT IN ('queued', 'running') ORDER BY created_at DESC LIMIT -1 OFFSET ?",
                (max(int(keep), 0),)).fetchall()
            self._db.executemany("DELETE FROM jobs WHERE id = ?", rows)
            for (job_id,) in rows:
                self._unsaved.pop(job_id, None)
        for (job_id,) in rows:
            shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
        self._prune_checkpoints()
        return len(rows)

    def _prune_checkpoints(self) -> None:
        """Delete the checkpoints of stopped jobs past the KEEP_CHECKPOINTS newest."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM jobs WHERE state NOT IN ('queued', 'running') ORDER BY created_at DESC").fetchall()
        kept = [job_id for (job_id,) in rows if self.checkpoint_path(job_id).is_file()]
        for job_id in kept[KEEP_CHECKPOINTS:]:
            self.checkpoint_path(job_id).unlink(missing_ok=True)
            record = self.get(job_id)
            if record is not None:
                record["has_checkpoint"] = False
                self.save(record)

    def list(self, limit: int) -> list[dict[str, Any]]:
        """Newest first."""
        with self._lock:
            rows = self._db.execute("SELECT id, record FROM jobs ORDER BY created_at DESC LIMIT ?", (limit,)).fetchall()
            unsaved = list(self._unsaved.items())
        readable = (self._readable(text, job_id) for job_id, text in rows + unsaved)
        records = {r["id"]: r for r in readable if r is not None}  # an unsaved record over its stale row
        return sorted(records.values(), key=lambda r: r["created_at"], reverse=True)[:limit]

    def _readable(self, text: Any, job_id: str) -> Optional[dict[str, Any]]:
        """A stored record as a dict, or None (logged once) when it cannot be read back and sent:
        not JSON, a field missing or of the wrong type, or text that is not valid Unicode (an
        older version stored lone UTF-16 surrogates). One such row must not fail every listing."""
        record = None
        try:
            record = json.loads(text)
            problem = _record_problem(record)
            if problem is None:
                json.dumps(record, ensure_ascii=False).encode("utf-8")
        except (TypeError, ValueError, RecursionError) as e:  # UnicodeEncodeError is a ValueError
            problem = f"{type(e).__name__}: {str(e)[:100]}"
        if problem is None:
            return record
        with self._lock:
            if job_id not in self._unreadable and len(self._unreadable) < MAX_UNSAVED:
                self._unreadable.add(job_id)
                log.warning("skipped the stored record of job %s: it cannot be read back (%s)", ascii(job_id)[:80],
                            problem)
        return None

    def remove_partial_files(self) -> int:
        """Delete the `*.tmp` files a process killed mid-write left in job folders. Returns how many.

        Call it only holding the cache dir's lock: another backend's writes look the same.
        """
        removed = 0
        for tmp in (self.root / "jobs").rglob("*.tmp"):
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed += 1
        return removed

    def storage_problem(self, exc: BaseException, needed: int, what: str) -> Optional[StorageFull]:
        """What a failed write means for the cache folder, in words; None when the disk is not the cause.

        Args:
            exc: What the write raised (OSError or sqlite3.Error).
            needed: Bytes it needed.
            what: Who needed them, e.g. "this upload".

        Returns:
            A StorageFull (disk full) or StorageReadOnly naming the folder and the fix, or None.
        """
        kind = _storage_kind(exc)
        if kind == "full":
            free = 0
            with contextlib.suppress(OSError):
                free = shutil.disk_usage(self.root).free
            return StorageFull(f"the cache folder {self.root} has {_size(free)} free; {what} needs {_size(needed)}: "
                               "free space or start the backend with --cache-dir on a larger disk")
        if kind == "read-only":
            return StorageReadOnly(f"the cache folder {self.root} is not writable ({_reason(exc)}): make it writable "
                                   "or start the backend with --cache-dir on a writable disk")
        return None

    def job_dir(self, job_id: str) -> Path:
        return self.root / "jobs" / job_id

    def result_path(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "result.glb"

    def preview_path(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "preview.png"

    def candidate_path(self, job_id: str, index: int) -> Path:
        """A gallery job's candidate image `index` (PNG)."""
        return self.job_dir(job_id) / f"candidate-{int(index)}.png"

    def current_state_path(self, job_id: str) -> Path:
        """Where a long job's current state goes when asked for, or when it is cancelled."""
        return self.job_dir(job_id) / "current.glb"

    def checkpoint_path(self, job_id: str) -> Path:
        """Where a resumable job's checkpoint goes (backend/distill/checkpoint.py): when due, and when it stops."""
        return self.job_dir(job_id) / "checkpoint.safetensors"

    def save_uploads(self, job_id: str, files: dict[str, bytes], copies: Optional[dict[str, BinaryIO]] = None) -> None:
        """Create a new job's folder and keep its uploads there, on disk, not in memory (forty
        objects sent to texture would otherwise hold forty meshes while they wait). `copies`
        are uploads read from open files a chunk at a time (a resumed job's checkpoint).

        Raises:
            OSError: the disk refused them (the caller removes the folder again).
        """
        _private_dir(self.job_dir(job_id))  # for every job: a read-only disk refuses it now, not once it ran
        if not files and not copies:
            return
        folder = self.job_dir(job_id) / "uploads"
        _private_dir(folder)
        for name, data in files.items():  # names are checked against models.UPLOADS by the caller
            _write_private(folder / name, data)
        for name, source in (copies or {}).items():
            _copy_private(folder / name, source)

    def write_result(self, job_id: str, data: bytes) -> None:
        """Write a job's result GLB whole, or leave nothing.

        Raises:
            StorageFull: the disk is full or read-only, in words.
        """
        self.write_file(self.result_path(job_id), data)

    def write_file(self, path: Path, data: bytes, what: str = "this job's result") -> None:
        """Write one of a job's result files (its GLB, a candidate image) whole, or leave nothing.

        Raises:
            StorageFull: the disk is full or read-only, in words.
        """
        try:
            write_atomic(path, data)
        except OSError as e:
            raise self.storage_problem(e, len(data), what) or e

    def drop_job_files(self, job_id: str) -> None:
        """Delete a job's folder (a refused submit leaves nothing behind)."""
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)

    def read_uploads(self, job_id: str, as_paths: Collection[str] = ()) -> dict[str, Union[bytes, Path]]:
        """A job's uploads by name: their bytes, but those named in `as_paths` as their files' paths
        (a resumed distillation's checkpoint: a hundred megabytes its reader takes from the file)."""
        folder = self.job_dir(job_id) / "uploads"
        if not folder.is_dir():
            return {}
        return {path.name: path if path.name in as_paths else path.read_bytes() for path in folder.iterdir()}

    def drop_uploads(self, job_id: str) -> None:
        folder = self.job_dir(job_id) / "uploads"
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)

    def close(self) -> None:
        with self._lock:
            self._db.close()


_NUMBER, _NONE = (int, float), type(None)
# What a job record holds (api_schema.JobRecord is the same as sent): checked when one is read back.
RECORD_TYPES: dict[str, Any] = {
    "id": str, "task": str, "model": str, "params": dict, "state": str, "phase": str, "step": int, "total": int,
    "progress": _NUMBER, "eta_s": (*_NUMBER, _NONE), "message": str, "error": (str, _NONE), "has_preview": bool,
    "has_result": bool, "result_metadata": (dict, _NONE), "created_at": _NUMBER, "started_at": (*_NUMBER, _NONE),
    "finished_at": (*_NUMBER, _NONE),
}


def _record_problem(record: Any) -> Optional[str]:
    """What makes `record` no job record, or None."""
    if not isinstance(record, dict):
        return "not a JSON object"
    for key, kind in RECORD_TYPES.items():
        if key not in record:
            return f"no {key}"
        if not isinstance(record[key], kind) or (kind is int and isinstance(record[key], bool)):
            return f"{key} is {type(record[key]).__name__}"
    return None


def lock_cache_dir(root: Path):
    """Make the cache dir ready and hold an exclusive lock on it for this process's lifetime.

    A second backend on the same cache dir would mark this one's running jobs as
    interrupted; it is refused instead.

    Raises:
        CacheDirUnusable: the folder cannot be created or written.
        CacheDirInUse: another backend holds it.
    """
    _check_cache_dir(root)
    lock = root / "backend.lock"
    try:
        handle = os.fdopen(os.open(lock, os.O_RDWR | os.O_CREAT, 0o600), "a+")
    except OSError as e:  # e.g. another user's backend made it
        raise CacheDirUnusable(f"cannot open {lock} ({_reason(e)}): start the backend with --cache-dir on a folder "
                               "of this user's own (or set DIFFUSION3D_CACHE)") from None
    _tighten(lock, 0o600)
    try:
        if os.name == "nt":
            import msvcrt

            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise CacheDirInUse(
            f"another backend is already using the cache directory {root}; "
            "stop it, or give this one its own --cache-dir"
        ) from None
    return handle


class CacheDirInUse(ValueError):
    """Another backend holds the cache directory (`python -m backend serve` exits with 75)."""


class CacheDirUnusable(ValueError):
    """The cache directory cannot be created or written, or its database opened, at start-up
    (`python -m backend serve` prints the message and exits with 2)."""


def _check_cache_dir(root: Path) -> None:
    """Create the cache folder private to this user, and prove it writable.

    Raises:
        CacheDirUnusable: naming the folder and the fix.
    """
    fix = "start the backend with --cache-dir on a writable disk (or set DIFFUSION3D_CACHE)"
    existed = root.is_dir()
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as e:
        raise CacheDirUnusable(f"cannot create the cache folder {root} ({_reason(e)}): {fix}") from None
    probe = root / f".write-probe-{os.getpid()}"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
        probe.unlink()
    except OSError as e:
        raise CacheDirUnusable(f"cannot write in the cache folder {root} ({_reason(e)}): {fix}") from None
    mode = root.stat().st_mode & 0o777
    if existed and os.name != "nt" and mode & 0o077:  # not ours to change: its owner chose it
        log.warning("the cache folder %s is open to other users (mode %03o); the jobs and database in it "
                    "are private to this user", root, mode)


def _storage_kind(exc: BaseException) -> str:
    """"full", "read-only" or "" (something else) for what a failed write says of its disk."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return "full"
    if isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EACCES):
        return "read-only"
    if isinstance(exc, sqlite3.Error):
        name, text = getattr(exc, "sqlite_errorname", ""), str(exc).lower()  # (the name: Python 3.11+)
        if name == "SQLITE_FULL" or "disk is full" in text:
            return "full"
        if name.startswith("SQLITE_READONLY") or "readonly database" in text:
            return "read-only"
    return ""


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc)  # "Read-only file system", not "[Errno 30] ... '/x/y'"


def _size(n: float) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 / 10 else f"{n / 1024:.0f} KB"


def write_atomic(path: Path, data: bytes) -> None:
    """Write `path` whole or not at all (readers of result.glb / preview.png never see half a
    file); its `.tmp` goes on any failure (a full disk would otherwise keep what fitted)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        _private_dir(path.parent)
        _write_private(tmp, data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _write_private(path: Path, data: bytes) -> None:
    """Write a file readable by this user only, whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o600)
    with open(fd, "wb") as handle:
        handle.write(data)


def _copy_private(path: Path, source: BinaryIO) -> None:
    """Copy an open file to one readable by this user only, a chunk at a time."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o600)
    with open(fd, "wb") as handle:
        shutil.copyfileobj(source, handle, COPY_CHUNK)


def _private_dir(path: Path) -> None:
    """Create a folder of the cache's own, for this user only."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    _tighten(path, 0o700)


def _tighten(path: Path, mode: int) -> None:
    # What an older version made with the umask's mode (0755, 0644) becomes private too; best
    # effort: only the owner may chmod, and another user's file is no reason to refuse a start.
    with contextlib.suppress(OSError):
        if os.name != "nt" and path.stat().st_mode & 0o077:
            os.chmod(path, mode)
