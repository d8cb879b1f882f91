"""What is at an output path, and the file-system steps of publishing (no rules here).

Who a writer is (pid, host, process start time) and whether it is still alive; what a path holds
(absent, an empty folder, our store of some kind, a foreign store, a file, a link, a folder); a
rename that never replaces; the sweep that removes what dead writers left. The rules that use
these are in :mod:`veob_dask.io.publish`.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import re
import shutil
import socket
import time
import uuid
from pathlib import Path
from typing import Any

from .header import header_of
from .location import Location

__all__ = [
    "HOST_ID",
    "LOCK_SUFFIX",
    "alive",
    "break_lock",
    "fsync_dir",
    "human_size",
    "kind_of_metadata",
    "refusal",
    "remove_tree",
    "rename_noreplace",
    "sweep_orphans",
    "target_state",
    "temp_name",
    "writer_info",
]

HOST_ID = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]
TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<what>tmp|old|del)-(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-"
                      r"[0-9a-f]{8}$")
LOCK_SUFFIX = ".lock"
#: Root metadata files read to recognise a store are at most this big (a tampered one may not be).
MAX_META_BYTES = 16 << 20


# -- who is writing ---------------------------------------------------------------------------
def start_time(pid: int) -> float | None:
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return float(proc.create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
        return None


def alive(pid: int, started: float | None = None) -> bool:
    """True if ``pid`` runs on this host (and, when ``started`` is given, is that process)."""
    now = start_time(pid)
    if now is None:
        return False
    return started is None or abs(now - float(started)) < 1.0


def writer_info() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname(), "host_id": HOST_ID,
            "started": start_time(os.getpid()), "since": time.strftime("%Y-%m-%dT%H:%M:%S")}


def temp_name(name: str, what: str = "tmp") -> str:
    return f".{name}.{what}-{HOST_ID}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


# -- what is at the target --------------------------------------------------------------------
def kind_of_metadata(raw: bytes, x_raw: bytes | None) -> str | None:
    """The artifact kind named by a root ``zarr.json`` (None: not a veob_dask group)."""
    try:
        meta = json.loads(raw)
        x_attrs = json.loads(x_raw).get("attributes") if x_raw else None
    except (ValueError, RecursionError, AttributeError):
        return None
    if not isinstance(meta, dict) or meta.get("node_type") != "group":
        return None
    attrs = meta.get("attributes")
    if not isinstance(attrs, dict):
        return None
    header = header_of(attrs, x_attrs if isinstance(x_attrs, dict) else None)
    return None if header is None else str(header.get("kind"))


def read_small(read: Any, where: str) -> bytes | None:
    try:
        data = read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    return data if len(data) <= MAX_META_BYTES else None


def target_state(loc: Location) -> tuple[str, str]:
    """What is at ``loc``: ``(state, detail)``.

    ``state`` is ``"absent"``, ``"empty"`` (an empty folder), ``"ours"`` (detail: the kind),
    ``"foreign"`` (a Zarr store veob_dask did not write), ``"file"``, ``"link"``,
    ``"folder"`` (detail: a few of its entries) or, on object stores, ``"writing"`` (a store
    being written in place; detail: its held root object).
    """
    if not loc.is_local:
        return _object_state(loc)
    p = loc.path
    if os.path.islink(p):
        return "link", os.readlink(p)
    if not os.path.lexists(p):
        return "absent", ""
    if not p.is_dir():
        return "file", ""
    root = p / "zarr.json"
    if root.is_file():
        raw = read_small(root.read_bytes, str(root))
        x_raw = read_small((p / "X" / "zarr.json").read_bytes, "")
        kind = kind_of_metadata(raw or b"", x_raw)
        return ("ours", kind) if kind else ("foreign", "")
    entries = sorted(os.listdir(p))
    if not entries:
        return "empty", ""
    return "folder", ", ".join(repr(e) for e in entries[:3]) + (
        f" and {len(entries) - 3} more" if len(entries) > 3 else "")


def refusal(loc: Location, state: str, detail: str, overwrite: bool) -> str | None:
    where = repr(str(loc))
    if state in ("absent", "empty"):
        return None
    if state == "ours":
        if overwrite:
            return None
        return (f"{where} already exists (a veob_dask {detail} store); pass overwrite=True "
                "(CLI: --overwrite) to replace it.")
    if state == "writing":
        host, pid = _held_writer(detail) or ("", -1)
        if host == HOST_ID and not alive(pid):
            return None  # a dead writer's partial store: the next writer's lock removes it
        return (f"{where} is being written by process {pid} (host id {host}); wait for it to "
                "finish or write elsewhere.")
    if state == "foreign":
        return (f"{where} holds a Zarr store that veob_dask did not write; it is never "
                "replaced. Choose another output path (or remove it yourself).")
    if state == "file":
        return (f"{where} is a regular file, not a veob_dask store; it is never replaced. "
                "Choose another output path.")
    if state == "link":
        return (f"{where} is a symbolic link (to {detail!r}); give the real path of the output "
                "instead.")
    return (f"{where} is a folder holding files veob_dask did not write ({detail}); it is never "
            "replaced. Choose another output path (an empty or absent one).")


# -- no-replace rename --------------------------------------------------------------------------
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
try:
    _renameat2: Any = ctypes.CDLL(None, use_errno=True).renameat2
except (OSError, AttributeError):  # pragma: no cover - not glibc >= 2.28
    _renameat2 = None


def rename_noreplace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """Rename ``src`` to ``dst``, failing with ``FileExistsError`` if ``dst`` exists.

    Linux ``renameat2(RENAME_NOREPLACE)`` makes the check and the rename one step; where the
    call or the file system lacks it, the check and rename are two steps (safe under our lock).
    """
    if _renameat2 is not None:
        rc = _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst),
                        _RENAME_NOREPLACE)
        if rc == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
            raise OSError(code, os.strerror(code), os.fsdecode(dst))
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fsdecode(dst))
    os.rename(src, dst)


_RENAME_EXCHANGE = 2


def rename_exchange(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Swap ``a`` and ``b`` in one step (Linux ``renameat2(RENAME_EXCHANGE)``): a reader of
    either path never finds it missing. Returns False, changing nothing, where the call or the
    file system lacks it."""
    if _renameat2 is None:
        return False
    rc = _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), os.fsdecode(b))


def remove_tree(p: Path) -> None:
    """Remove a temporary store: its root ``zarr.json`` (the sentinel) first, then the rest."""
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        os.remove(p / "zarr.json")
    shutil.rmtree(p, ignore_errors=True)


def break_lock(lock: Path, raw: bytes) -> bool:
    """Remove ``lock`` if it still holds ``raw``; a lock taken meanwhile is put back."""
    tomb = lock.with_name(f"{lock.name}.stale-{uuid.uuid4().hex[:8]}")
    try:
        os.rename(lock, tomb)
    except FileNotFoundError:
        return True
    try:
        if tomb.read_bytes()[:65536] != raw:  # someone else's fresh lock: give it back
            with contextlib.suppress(OSError):
                rename_noreplace(tomb, lock)
            return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tomb)
    return True


def fsync_dir(p: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def sweep_orphans(folder: Path) -> list[str]:
    """Remove temporaries, moved-aside stores and locks of dead writers in ``folder``.

    Only entries named by this module's patterns and written on this host are touched; a
    moved-aside (``.old-``) store whose replacement never arrived is renamed back. Returns the
    names removed or restored.
    """
    done: list[str] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return done
    for name in names:
        m = TEMP_RE.match(name)
        if m and m["host"] == HOST_ID and not alive(int(m["pid"])):
            entry = folder / name
            target = folder / m["name"]
            if m["what"] == "old" and not os.path.lexists(target):
                with contextlib.suppress(OSError):
                    rename_noreplace(entry, target)
                    done.append(name)
                    continue
            if entry.is_dir() and not entry.is_symlink():
                remove_tree(entry)
                done.append(name)
        elif name.startswith(".") and name.endswith(LOCK_SUFFIX):
            done.extend(_sweep_lock(folder / name))
    return done


def _sweep_lock(lock: Path) -> list[str]:
    try:
        raw = lock.read_bytes()[:65536]
        info = json.loads(raw)
    except (OSError, ValueError):
        return []
    if not isinstance(info, dict) or info.get("host_id") != HOST_ID:
        return []
    if alive(int(info.get("pid", -1)), info.get("started")):
        return []
    return [lock.name] if break_lock(lock, raw) else []




def _object_state(loc: Location) -> tuple[str, str]:
    """:func:`target_state` of an object-store location."""
    fs, root = loc.filesystem()
    root = root.rstrip("/")
    if fs.isfile(root):
        return "file", ""
    meta = f"{root}/zarr.json"
    if fs.exists(meta):
        raw = read_small(lambda: fs.cat_file(meta), meta)
        x_raw = read_small(lambda: fs.cat_file(f"{root}/X/zarr.json"), "")
        kind = kind_of_metadata(raw or b"", x_raw)
        return ("ours", kind) if kind else ("foreign", "")
    try:
        entries = fs.ls(root, detail=False)
    except FileNotFoundError:
        entries = []
    if not entries:
        return "absent", ""
    names = sorted(str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries)
    held = [n for n in names if _held_writer(n) is not None]
    if held:  # a store being written in place (see veob_dask.io.objectstore)
        return "writing", held[0]
    return "folder", ", ".join(repr(e) for e in names[:3])


def _held_writer(name: str) -> tuple[str, int] | None:
    """``(host_id, pid)`` of the writer whose held root object is ``name``, else None."""
    if not name.endswith(".zarr.json"):
        return None
    m = TEMP_RE.match(name[: -len(".zarr.json")])
    return (m["host"], int(m["pid"])) if m and m["what"] == "tmp" else None
