"""How a store is published: on a local file system, or on an object store (fsspec URL).

Both classes have the same methods (``state``, ``prepare``, ``require_space``, ``lock``,
``unlock``, ``make_temp``, ``publish``, ``discard``, ``remove``); :mod:`veob_dask.io.publish`
chooses one per target and applies the rules. The object-store one is in
:mod:`veob_dask.io.objectstore`.
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
from .objectstore import ObjectStorePublisher
from .targets import (
    HOST_ID,
    LOCK_SUFFIX,
    alive,
    break_lock,
    fsync_dir,
    human_size,
    remove_tree,
    rename_exchange,
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
    def make_temp(self, *, replace: bool = False) -> Location:
        """A hidden sibling folder (whether or not a store is replaced)."""
        tmp = self.parent / self._temp
        tmp.mkdir()
        return Location(str(tmp), self.target.options)

    def publish(self, tmp: Location, *, replace: bool, empty: bool) -> None:
        if replace and rename_exchange(tmp.path, self.path):
            remove_tree(tmp.path)  # the old store, now under the temporary name
        elif replace:
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
