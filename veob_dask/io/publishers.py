"""How a store is published: on a local file system, or on an object store (fsspec URL).

Both classes have the same methods (``state``, ``prepare``, ``require_space``, ``lock``,
``unlock``, ``make_temp``, ``publish``, ``discard``, ``remove``); :mod:`veob_dask.io.publish`
chooses one per target and applies the rules.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import time
from collections.abc import Mapping
from typing import Any

from ..errors import StoreError, StoreExistsError
from .location import Location
from .targets import (
    HOST_ID,
    LOCK_SUFFIX,
    alive,
    break_lock,
    fsync_dir,
    human_size,
    remove_tree,
    rename_noreplace,
    sweep_orphans,
    target_state,
    temp_name,
    writer_info,
)

__all__ = ["SPACE_MARGIN", "LocalPublisher", "ObjectStorePublisher"]

#: Extra bytes a local write needs beyond its arrays (metadata files).
SPACE_MARGIN = 64 << 10


class LocalPublisher:
    """Publishing on a local (or mounted) file system: lock file, temp sibling, renameat2."""

    def __init__(self, target: Location) -> None:
        self.target = target
        self.path = target.path
        self.parent = self.path.parent
        self.lock_path = self.parent / f".{self.path.name}{LOCK_SUFFIX}"
        self._locked = False
        self._temp = ""

    def state(self) -> tuple[str, str]:
        return target_state(self.target)

    def prepare(self) -> None:
        self.parent.mkdir(parents=True, exist_ok=True)
        sweep_orphans(self.parent)

    def require_space(self, target: Location, nbytes: int) -> None:
        free = shutil.disk_usage(self.parent).free
        need = nbytes + SPACE_MARGIN
        if free < need:
            raise StoreError(
                f"not enough free space for {str(target)!r}: it needs about {human_size(need)} (the "
                f"uncompressed size of its arrays) and {str(self.parent)!r} has {human_size(free)} "
                "free. Free some space or write elsewhere.")

    # -- lock ---------------------------------------------------------------------------------
    def lock(self) -> None:
        self._temp = temp_name(self.path.name)
        info = {**writer_info(), "temp": self._temp}
        for _ in range(50):
            try:
                fd = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if self._take_over_if_stale():
                    continue
                time.sleep(0.02)
                continue
            with os.fdopen(fd, "w") as fh:
                json.dump(info, fh)
                fh.flush()
                os.fsync(fh.fileno())
            self._locked = True
            return
        raise StoreExistsError(self._busy_message())  # pragma: no cover - a lock kept vanishing

    def _holder(self) -> tuple[dict[str, Any] | None, bytes]:
        try:
            raw = self.lock_path.read_bytes()[:65536]
        except FileNotFoundError:
            return None, b""
        try:
            info = json.loads(raw)
        except ValueError:
            return None, raw
        return (info if isinstance(info, dict) else None), raw

    def _take_over_if_stale(self) -> bool:
        """Remove a stale lock (holder gone, same host) and return True; raise if it is live."""
        info, raw = self._holder()
        if info is None:
            try:
                age = time.time() - self.lock_path.stat().st_mtime
            except FileNotFoundError:
                return True
            if age < 5.0:  # being written by its creator right now
                return False
        elif info.get("host_id") != HOST_ID or alive(int(info.get("pid", -1)),
                                                       info.get("started")):
            raise StoreExistsError(self._busy_message(info))
        return break_lock(self.lock_path, raw)

    def _busy_message(self, info: Mapping[str, Any] | None = None) -> str:
        who = (f"process {info.get('pid')} on {info.get('host')} (since {info.get('since')})"
               if info else "another process")
        return (f"{str(self.target)!r} is being written by {who}; wait for it to finish or "
                f"write elsewhere (lock file {str(self.lock_path)!r}).")

    def unlock(self) -> None:
        if not self._locked:
            return
        info, _ = self._holder()
        if info is not None and info.get("pid") == os.getpid() and \
                info.get("temp") == self._temp:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.lock_path)
        self._locked = False

    # -- temp, publish, discard ---------------------------------------------------------------
    def make_temp(self) -> Location:
        tmp = self.parent / self._temp
        tmp.mkdir()
        return Location(str(tmp), self.target.options)

    def publish(self, tmp: Location, *, replace: bool, empty: bool) -> None:
        if replace:
            old = self.parent / temp_name(self.path.name, "old")
            rename_noreplace(self.path, old)
            try:
                rename_noreplace(tmp.path, self.path)
            except BaseException:
                rename_noreplace(old, self.path)
                raise
            remove_tree(old)
        else:
            try:
                if empty:
                    with contextlib.suppress(FileNotFoundError):
                        os.rmdir(self.path)  # fails (ENOTEMPTY) if something arrived meanwhile
                rename_noreplace(tmp.path, self.path)
            except (FileExistsError, IsADirectoryError, NotADirectoryError) as err:
                raise StoreExistsError(f"{str(self.target)!r} appeared while the output was "
                                       "being written; nothing was replaced.") from err
            except OSError as err:
                if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                raise StoreExistsError(f"{str(self.target)!r} appeared while the output was "
                                       "being written; nothing was replaced.") from err
        fsync_dir(self.parent)

    def remove(self) -> None:
        """Remove our store at the target (moved aside first, so it vanishes at once)."""
        old = self.parent / temp_name(self.path.name, "del")
        rename_noreplace(self.path, old)
        remove_tree(old)
        fsync_dir(self.parent)

    def discard(self, tmp: Location, *, twice: bool) -> None:
        remove_tree(tmp.path)
        if twice:  # a distributed task past its sentinel check may still have been writing
            time.sleep(0.5)
            remove_tree(tmp.path)




class ObjectStorePublisher:
    """Publishing on an object store (any fsspec URL): temp prefix, copy, root metadata last.

    Object stores have no rename and (through plain fsspec) no create-if-absent, so: the store
    is written under a temporary prefix beside the target; publishing deletes a replaced store's
    root ``zarr.json`` first (readers then see no store rather than a mix), removes its objects,
    copies the new objects into place with the root ``zarr.json`` last (the commit marker), and
    deletes the temporary prefix. The lock object ``.NAME.lock`` is checked, then written: it
    keeps cooperating writers apart but is not atomic (a later version can use conditional puts).
    This class is the one place to change for a given object store.
    """

    def __init__(self, target: Location) -> None:
        self.target = target
        self.fs, root = target.filesystem()
        self.root = root.rstrip("/")
        self.parent = self.root.rsplit("/", 1)[0] if "/" in self.root else ""
        self.lock_path = f"{self.parent}/.{target.name}{LOCK_SUFFIX}"
        self._locked = False
        self._temp = ""

    def state(self) -> tuple[str, str]:
        return target_state(self.target)

    def prepare(self) -> None:
        return None

    def require_space(self, target: Location, nbytes: int) -> None:
        return None  # object stores have no fixed capacity to check

    def lock(self) -> None:
        fs = self.fs
        self._temp = temp_name(self.target.name)
        if fs.exists(self.lock_path):
            try:
                info = json.loads(fs.cat_file(self.lock_path))
            except (ValueError, OSError):
                info = {}
            stale = info.get("host_id") == HOST_ID and not alive(int(info.get("pid", -1)),
                                                                  info.get("started"))
            if not stale:
                raise StoreExistsError(
                    f"{str(self.target)!r} is being written by process {info.get('pid')} on "
                    f"{info.get('host')}; wait for it to finish or write elsewhere (lock "
                    f"{self.lock_path!r}).")
        fs.pipe_file(self.lock_path, json.dumps({**writer_info(), "temp": self._temp}).encode())
        self._locked = True

    def unlock(self) -> None:
        if self._locked:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(self.lock_path)
            self._locked = False

    def make_temp(self) -> Location:
        parent = self.target.parent
        return parent.child(self._temp)

    def publish(self, tmp: Location, *, replace: bool, empty: bool) -> None:
        fs, root = self.fs, self.root
        src = tmp.filesystem()[1].rstrip("/")
        files = sorted(fs.find(src))
        if replace:
            with contextlib.suppress(FileNotFoundError):
                fs.rm_file(f"{root}/zarr.json")
            with contextlib.suppress(FileNotFoundError):
                fs.rm(root, recursive=True)
        marker = f"{src}/zarr.json"
        for f in [f for f in files if f != marker] + [marker]:
            fs.cp_file(f, root + f[len(src):])
        with contextlib.suppress(FileNotFoundError):
            fs.rm(src, recursive=True)

    def remove(self) -> None:
        """Remove our store at the target, its root ``zarr.json`` first."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(f"{self.root}/zarr.json")
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self.root, recursive=True)

    def discard(self, tmp: Location, *, twice: bool) -> None:
        fs, src = self.fs, tmp.filesystem()[1].rstrip("/")
        for i in range(2 if twice else 1):
            if i:
                time.sleep(0.5)
            with contextlib.suppress(FileNotFoundError):
                fs.rm_file(f"{src}/zarr.json")
            with contextlib.suppress(FileNotFoundError):
                fs.rm(src, recursive=True)
