"""Publishing on object stores (any fsspec URL: ``s3://``, ``gs://``, ``memory://``...).

Object stores have no rename, so a store cannot be written aside and moved into place in one
step. What is atomic there is the *put of one object*, and on S3 (and S3-compatible servers) a put
that only succeeds if the key is absent (``If-None-Match: *``, fsspec's ``mode="create"``). The
rules built on that:

* **Lock.** ``.NAME.lock`` beside the target is created with a create-only put, so two writers
  cannot both hold it (where a backend has no create-only put, fsspec checks then writes: still
  safe for writers that do not start in the same instant). It holds the writer's pid, host and
  process start time; a lock whose process is gone (same host) is stale and is taken over after
  the dead writer's leftovers are removed. It is deleted with ``If-Match`` on its ETag (S3), so
  two writers taking over the same stale lock cannot delete each other's fresh one.
* **A new store is written in place.** Every object goes to its final key except the root
  ``zarr.json``: zarr writes it under a held name inside the prefix
  (``NAME/.NAME.tmp-HOST-PID-ID.zarr.json``, see
  :class:`~veob_dask.io.location.HeldRootStore`); publishing copies
  it to ``NAME/zarr.json`` with a create-only put — the commit marker — then deletes the held
  object. Until then readers (veob_dask, zarr, xarray) find no store at ``NAME``; afterwards,
  the whole store. Each chunk is written once and never copied.
* **A replacement goes through a temporary prefix.** Replacing a store of ours
  (``overwrite=True``) writes the new store under ``.NAME.tmp-...`` beside it, so the old store
  stays whole and readable while the new one is computed (and survives if that fails).
  Publishing deletes the old root ``zarr.json`` first (the old store vanishes at once), then its
  objects, copies the new objects server-side and concurrently, the root ``zarr.json`` last,
  and deletes the temporary prefix.
* **Cleanup.** On failure the held root object (or the temporary prefix's root ``zarr.json``) is
  deleted first — it is the sentinel chunk writers check before each write — then every object
  under the prefix; twice when a distributed cluster was writing. A writer killed outright
  leaves its lock; the next writer of the same target (same host) removes what it left.

``benchmarks/bench_object_store.py`` measures the write-in-place and temporary-prefix routes
against a local S3 server (requests by kind, seconds); the README gives the figures.
"""

from __future__ import annotations

import contextlib
import errno
import json
import time
from typing import Any

from ..errors import StoreExistsError
from .location import Location
from .targets import (
    HOST_ID,
    LOCK_SUFFIX,
    alive,
    refusal,
    target_state,
    temp_name,
    writer_info,
)

__all__ = ["ObjectStorePublisher", "create_only", "delete_if_unchanged"]

ROOT = "zarr.json"


# -- objects: create only if absent, delete only if unchanged ------------------------------
def _etag(response: Any) -> str | None:
    if isinstance(response, dict):
        tag = response.get("ETag") or response.get("etag")
        return str(tag) if tag else None
    return None


def create_only(fs: Any, path: str, data: bytes) -> str | None:
    """Put ``data`` at ``path`` only if nothing is there; return the new object's ETag (or None).

    Raises
    ------
    FileExistsError
        Something is at ``path`` already.
    """
    try:
        out = fs.pipe_file(path, data, mode="create")
    except TypeError:  # a backend whose pipe_file has no ``mode``: check, then write
        if fs.exists(path):
            raise FileExistsError(errno.EEXIST, "object exists", path) from None
        out = fs.pipe_file(path, data)
    finally:
        _forget(fs, path)
    return _etag(out)


def _is_s3(fs: Any) -> bool:
    return hasattr(fs, "_call_s3") and hasattr(fs, "split_path")


def delete_if_unchanged(fs: Any, path: str, etag: str | None, raw: bytes) -> bool:
    """Delete ``path`` if it still is what was read (ETag ``etag``, bytes ``raw``).

    On S3 the check and the delete are one request (``If-Match``); elsewhere the bytes are read
    again and compared first. Returns False when the object changed meanwhile.
    """
    try:
        if etag and _is_s3(fs):
            from fsspec.asyn import sync

            bucket, key, _ = fs.split_path(path)
            try:
                sync(fs.loop, fs._call_s3, "delete_object", Bucket=bucket, Key=key,
                     IfMatch=etag)
                return True
            except FileNotFoundError:
                return True
            except OSError as err:
                if err.errno == errno.EINVAL and "condition" in str(err).lower():
                    return False  # PreconditionFailed: someone else's object now
                # a server without conditional deletes: compare, then delete
        try:
            now = fs.cat_file(path)
        except FileNotFoundError:
            return True
        if now != raw:
            return False
        with contextlib.suppress(FileNotFoundError):
            fs.rm_file(path)
        return True
    finally:
        _forget(fs, path)


def _forget(fs: Any, path: str) -> None:
    """Drop fsspec's cached listings of ``path`` (other processes write to the same prefix)."""
    with contextlib.suppress(Exception):
        fs.invalidate_cache(path)


def _remove_prefix(fs: Any, root: str, first: str) -> None:
    """Delete object ``root/first`` (a sentinel), then everything under ``root``."""
    _forget(fs, root)
    with contextlib.suppress(FileNotFoundError):
        fs.rm_file(f"{root}/{first}")
    with contextlib.suppress(FileNotFoundError):
        fs.rm(root, recursive=True)
    _forget(fs, root)


# -- the publisher ---------------------------------------------------------------------------
class ObjectStorePublisher:
    """Publishing on an object store (see the module docstring for the rules).

    Same methods as :class:`~veob_dask.io.publishers.LocalPublisher`; chosen by
    :func:`~veob_dask.io.publish.publishing` for every fsspec URL.
    """

    #: How a store that replaces nothing is written: ``"in-place"`` (held root metadata, the
    #: default) or ``"copy"`` (temporary prefix, then server-side copies; the replacement
    #: route). Benchmarks set it to compare the two.
    new_store_route = "in-place"

    def __init__(self, target: Location) -> None:
        self.target = target
        self.fs, root = target.filesystem()
        self.root = root.rstrip("/")
        self.parent = self.root.rsplit("/", 1)[0] if "/" in self.root else ""
        self.lock_path = f"{self.parent}/.{target.name}{LOCK_SUFFIX}"
        self._locked = False
        self._lock_raw = b""
        self._lock_etag: str | None = None
        self._temp = ""
        self._route = ""
        self._conflict = False

    def state(self) -> tuple[str, str]:
        _forget(self.fs, self.root)
        return target_state(self.target)

    def prepare(self) -> None:
        return None

    def require_space(self, target: Location, nbytes: int) -> None:
        return None  # object stores have no fixed capacity to check

    # -- lock ---------------------------------------------------------------------------------
    def lock(self) -> None:
        self._temp = temp_name(self.target.name)
        raw = json.dumps({**writer_info(), "temp": self._temp}).encode()
        for _ in range(5):
            try:
                self._lock_etag = create_only(self.fs, self.lock_path, raw)
            except FileExistsError:
                holder = self._holder()
                if holder is None:
                    continue  # it vanished: try again
                info, etag, old = holder
                if not _stale(info):
                    raise StoreExistsError(self._busy_message(info)) from None
                self._clean_after(info)
                delete_if_unchanged(self.fs, self.lock_path, etag, old)
                continue
            self._lock_raw = raw
            self._locked = True
            self._clean_orphan()
            return
        raise StoreExistsError(self._busy_message(None))

    def _holder(self) -> tuple[dict[str, Any] | None, str | None, bytes] | None:
        try:
            etag = self.fs.info(self.lock_path).get("ETag")
            raw = self.fs.cat_file(self.lock_path)
        except FileNotFoundError:
            return None
        try:
            info = json.loads(raw)
        except ValueError:
            info = None
        return (info if isinstance(info, dict) else None), etag, raw

    def _busy_message(self, info: dict[str, Any] | None) -> str:
        who = (f"process {info.get('pid')} on {info.get('host')} (since {info.get('since')})"
               if info else "another writer")
        return (f"{str(self.target)!r} is being written by {who}; wait for it to finish or "
                f"write elsewhere (if that writer is gone, delete the lock object "
                f"{self.lock_path!r}).")

    def _clean_after(self, info: dict[str, Any] | None) -> None:
        """Remove what a dead writer (lock ``info``) left: its temporary prefix, or its
        unpublished in-place store (recognised by its held root object)."""
        temp = str((info or {}).get("temp") or "")
        if not temp.startswith("."):
            return
        fs = self.fs
        _remove_prefix(fs, f"{self.parent}/{temp}", ROOT)
        held = f"{temp}.{ROOT}"
        _forget(fs, self.root)
        if fs.exists(f"{self.root}/{held}"):
            if fs.exists(f"{self.root}/{ROOT}"):  # it died after publishing
                with contextlib.suppress(FileNotFoundError):
                    fs.rm_file(f"{self.root}/{held}")
            else:
                _remove_prefix(fs, self.root, held)

    def _clean_orphan(self) -> None:
        """Under the lock: remove a partial in-place store whose writer (this host) is gone."""
        state, held = self.state()
        if state == "writing" and refusal(self.target, state, held, False) is None:
            _remove_prefix(self.fs, self.root, held)

    def unlock(self) -> None:
        if self._locked:
            delete_if_unchanged(self.fs, self.lock_path, self._lock_etag, self._lock_raw)
            self._locked = False

    # -- temp, publish, discard ---------------------------------------------------------------
    def make_temp(self, *, replace: bool = False) -> Location:
        """Where the body writes: the target itself with its root metadata held back (a new
        store), or a temporary prefix beside it (a replacement)."""
        if replace or self.new_store_route == "copy":
            self._route = "copy"
            return self.target.parent.child(self._temp)
        self._route = "in-place"
        return Location(self.target.url, self.target.options, held_root=f"{self._temp}.{ROOT}")

    def publish(self, tmp: Location, *, replace: bool, empty: bool) -> None:
        if self._route == "in-place":
            self._commit(tmp)
            return
        fs, root = self.fs, self.root
        src = tmp.filesystem()[1].rstrip("/")
        _forget(fs, src)
        files = sorted(fs.find(src))
        if replace:
            with contextlib.suppress(FileNotFoundError):
                fs.rm_file(f"{root}/{ROOT}")
            with contextlib.suppress(FileNotFoundError):
                fs.rm(root, recursive=True)
        marker = f"{src}/{ROOT}"
        rest = [f for f in files if f != marker]
        try:
            if rest:
                fs.copy(rest, [root + f[len(src):] for f in rest])
            self._commit_from(marker)
        except BaseException:
            if not self._conflict:  # copies that landed without their root: remove them
                _remove_prefix(fs, root, ROOT)
            raise
        _remove_prefix(fs, src, ROOT)

    def _commit(self, tmp: Location) -> None:
        held = f"{self.root}/{tmp.held_root}"
        self._commit_from(held)
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(held)
        _forget(self.fs, self.root)

    def _commit_from(self, source: str) -> None:
        """Put the root ``zarr.json`` (read from ``source``) at the target, only if absent."""
        raw = self.fs.cat_file(source)
        try:
            create_only(self.fs, f"{self.root}/{ROOT}", raw)
        except FileExistsError as err:
            self._conflict = True
            raise StoreExistsError(
                f"{str(self.target)!r} appeared while the output was being written (a writer "
                "that ignored the lock); nothing of it was replaced.") from err

    def remove(self) -> None:
        """Remove our store at the target, its root ``zarr.json`` first."""
        _remove_prefix(self.fs, self.root, ROOT)

    def discard(self, tmp: Location, *, twice: bool) -> None:
        fs = self.fs
        for i in range(2 if twice else 1):
            if i:
                time.sleep(0.5)
            if self._route == "in-place":
                held = tmp.held_root
                if self._conflict:  # someone else's store is there now: remove only ours
                    with contextlib.suppress(FileNotFoundError):
                        fs.rm_file(f"{self.root}/{held}")
                else:
                    _remove_prefix(fs, self.root, held)
            else:
                _remove_prefix(fs, tmp.filesystem()[1].rstrip("/"), ROOT)


def _stale(info: dict[str, Any] | None) -> bool:
    """True for the lock of a writer on this host whose process is gone."""
    if not info or info.get("host_id") != HOST_ID:
        return False
    try:
        pid = int(info.get("pid", -1))
    except (TypeError, ValueError):
        return False
    return not alive(pid, info.get("started"))
