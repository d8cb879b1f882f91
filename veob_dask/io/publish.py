"""Output safety: what may be replaced, how a store appears at its path, and cleanup on failure.

The rules, in one place:

* **Only our own stores are replaced, and only when asked.** A path holding a Zarr group whose
  root ``zarr.json`` carries the ``veob_dask`` attribute (or a version-1 key) may be replaced with
  ``overwrite=True``. Anything else — a regular file, a symbolic link, a folder with entries, a
  Zarr store another program wrote — is a :class:`StoreExistsError` naming it, whatever
  ``overwrite`` says. An *empty* folder counts as free (it is removed, then the store renamed in).
  Output paths ending in ``.`` or ``..``, outputs equal to, inside or holding one of the
  ``inputs``, and outputs inside another Zarr store are refused before anything is written.
* **One writer at a time.** The writer holds ``.NAME.lock`` beside the target (created with
  ``O_CREAT | O_EXCL``, holding pid, host and process start time) from before the temporary
  store is made until it is published or removed. A second writer gets a one-line error naming
  the holder; a lock whose process is gone (same host) is stale and is taken over.
* **Atomic publish.** The store is written to a hidden sibling ``.NAME.tmp-<host>-<pid>-<id>``
  (the writer's identity is in the name, so an orphan can be recognised without reading it) and
  renamed into place with ``renameat2(RENAME_NOREPLACE)`` (Linux), which cannot clobber anything
  that appeared meanwhile. Replacing our own store: old moved aside (``.NAME.old-...``), new
  renamed in, old deleted.
* **Cleanup.** On any failure, ``KeyboardInterrupt`` or SIGTERM (see
  :func:`install_termination_handler`), the temporary store is removed once the writing tasks
  have stopped: :meth:`Publication.compute` runs the writes on a thread pool it owns (shut down,
  queued tasks cancelled, before removal) or, on a ``distributed`` client, cancels the futures;
  chunk writers check that the temporary store's root ``zarr.json`` (the sentinel) still exists
  before writing, and the removal runs twice. Orphans (``.tmp-``/``.old-`` entries and locks)
  whose writer process is gone are removed by the next write into the same folder; an orphaned
  ``.old-`` store whose replacement never arrived is renamed back.
* **Space and OS errors.** When the size is known, a local write needs at least the
  *uncompressed* size of its arrays (plus 64 KiB) free on the target's file system — compression
  usually saves a little on float data, so this is a safe bound, not a tight one; ``ENOSPC``,
  ``EROFS``, ``EACCES``/``EPERM`` during writing become one-line :class:`StoreError` naming the
  path (cleanup still runs).

Object stores (any fsspec URL) follow the same API with :class:`ObjectStorePublisher`.
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
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import InvalidParameterError, StoreError, StoreExistsError, Terminated
from .header import header_of
from .location import Location, PathLike, as_location

__all__ = [
    "ObjectStorePublisher",
    "Publication",
    "check_output",
    "compute_writes",
    "install_termination_handler",
    "publishing",
    "remove_store",
    "target_state",
]

HOST_ID = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<what>tmp|old|del)-(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-"
                      r"[0-9a-f]{8}$")
_LOCK_SUFFIX = ".lock"
#: Root metadata files read to recognise a store are at most this big (a tampered one may not be).
_MAX_META_BYTES = 16 << 20
#: Extra bytes a local write needs beyond its arrays (metadata files).
SPACE_MARGIN = 64 << 10


# -- who is writing ---------------------------------------------------------------------------
def _start_time(pid: int) -> float | None:
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return float(proc.create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
        return None


def _alive(pid: int, started: float | None = None) -> bool:
    """True if ``pid`` runs on this host (and, when ``started`` is given, is that process)."""
    now = _start_time(pid)
    if now is None:
        return False
    return started is None or abs(now - float(started)) < 1.0


def _me() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname(), "host_id": HOST_ID,
            "started": _start_time(os.getpid()), "since": time.strftime("%Y-%m-%dT%H:%M:%S")}


def _temp_name(name: str, what: str = "tmp") -> str:
    return f".{name}.{what}-{HOST_ID}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


# -- what is at the target --------------------------------------------------------------------
def _kind_of_metadata(raw: bytes, x_raw: bytes | None) -> str | None:
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


def _read_small(read: Any, where: str) -> bytes | None:
    try:
        data = read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    return data if len(data) <= _MAX_META_BYTES else None


def target_state(loc: Location) -> tuple[str, str]:
    """What is at ``loc``: ``(state, detail)``.

    ``state`` is ``"absent"``, ``"empty"`` (an empty folder), ``"ours"`` (detail: the kind),
    ``"foreign"`` (a Zarr store veob_dask did not write), ``"file"``, ``"link"`` or
    ``"folder"`` (detail: a few of its entries).
    """
    if not loc.is_local:
        return ObjectStorePublisher(loc).state()
    p = loc.path
    if os.path.islink(p):
        return "link", os.readlink(p)
    if not os.path.lexists(p):
        return "absent", ""
    if not p.is_dir():
        return "file", ""
    root = p / "zarr.json"
    if root.is_file():
        raw = _read_small(root.read_bytes, str(root))
        x_raw = _read_small((p / "X" / "zarr.json").read_bytes, "")
        kind = _kind_of_metadata(raw or b"", x_raw)
        return ("ours", kind) if kind else ("foreign", "")
    entries = sorted(os.listdir(p))
    if not entries:
        return "empty", ""
    return "folder", ", ".join(repr(e) for e in entries[:3]) + (
        f" and {len(entries) - 3} more" if len(entries) > 3 else "")


def _refusal(loc: Location, state: str, detail: str, overwrite: bool) -> str | None:
    where = repr(str(loc))
    if state in ("absent", "empty"):
        return None
    if state == "ours":
        if overwrite:
            return None
        return (f"{where} already exists (a veob_dask {detail} store); pass overwrite=True "
                "(CLI: --overwrite) to replace it.")
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


# -- relations between the output and the inputs -------------------------------------------
def _norm(loc: Location) -> str:
    if loc.is_local:
        return os.path.realpath(loc.url)
    return f"{loc.protocol}://{loc.fs_path.strip('/')}"


def _inside(a: str, b: str) -> bool:
    """True if ``a`` is strictly inside ``b``."""
    b = b.rstrip("/")
    return a.startswith(b + "/") and a != b


def _check_inputs(out: Location, inputs: Iterable[PathLike | Location | None]) -> None:
    o = _norm(out)
    for item in inputs:
        if item is None:
            continue
        i = _norm(as_location(item))
        where, src = repr(str(out)), repr(str(item))
        if o == i:
            raise StoreExistsError(f"the output {where} is the input {src}; write the result "
                                   "to another path.")
        if _inside(o, i):
            raise StoreExistsError(f"the output {where} is inside the input {src}; write the "
                                   "result to another path.")
        if _inside(i, o):
            raise StoreExistsError(f"the output {where} holds the input {src}; write the "
                                   "result to another path.")


def _check_not_nested(out: Location) -> None:
    if not out.is_local:
        return
    for anc in out.path.parents:
        if (anc / "zarr.json").is_file():
            raise StoreExistsError(f"the output {str(out)!r} is inside the Zarr store "
                                   f"{str(anc)!r}; write it outside any store.")


def _check_name(path: PathLike | Location) -> None:
    if isinstance(path, Location):
        return
    raw = os.fsdecode(os.fspath(path)).rstrip("/")
    last = raw.rsplit("/", 1)[-1]
    if last in ("", ".", "..") or raw.endswith("://"):
        raise InvalidParameterError(
            f"the output path {os.fsdecode(os.fspath(path))!r} names a folder, not a store; give "
            "a new name such as out.zarr.")


def check_output(path: PathLike | Location, *, overwrite: bool = False,
                 inputs: Iterable[PathLike | Location | None] = (),
                 storage_options: Mapping[str, Any] | None = None) -> Location:
    """Check that a store may be written at ``path``; return its :class:`Location`.

    Call it before expensive work (the CLI does, before fitting) so a taken output fails early.
    Writers call it again when they start.

    Raises
    ------
    InvalidParameterError
        The path ends in ``.``/``..`` (or is a bare URL scheme).
    StoreExistsError
        Something that may not be replaced is there, our store is there without ``overwrite``,
        the output is equal to / inside / holding an input, or inside another Zarr store.
    """
    _check_name(path)
    loc = as_location(path, storage_options)
    if loc.is_local and loc.path == loc.path.parent:
        raise InvalidParameterError("the output path must not be the file system root.")
    _check_inputs(loc, inputs)
    _check_not_nested(loc)
    state, detail = target_state(loc)
    message = _refusal(loc, state, detail, overwrite)
    if message:
        raise StoreExistsError(message)
    return loc


# -- OS errors during writing -------------------------------------------------------------------
_OS_MESSAGES = {
    errno.ENOSPC: "no space left on the device holding {where}; free space or write elsewhere",
    errno.EDQUOT: "disk quota exceeded while writing {where}; free space or write elsewhere",
    errno.EROFS: "{where} is on a read-only file system; write the output elsewhere",
    errno.EACCES: "permission denied writing {where}; check the folder's permissions or write "
                  "elsewhere",
    errno.EPERM: "operation not permitted writing {where}; check the folder's permissions or "
                 "write elsewhere",
}


def _os_cause(err: BaseException) -> OSError | None:
    seen = 0
    cur: BaseException | None = err
    while cur is not None and seen < 20:
        if isinstance(cur, OSError) and cur.errno in _OS_MESSAGES:
            return cur
        cur = cur.__cause__ or cur.__context__
        seen += 1
    return None


def os_error_message(err: BaseException, target: Location) -> str | None:
    """A one-line message for an ENOSPC/EROFS/EACCES/EPERM behind ``err``, else None."""
    cause = _os_cause(err)
    if cause is None:
        return None
    return _OS_MESSAGES[cause.errno].format(where=repr(str(target))) + \
        f" ({os.strerror(cause.errno)})."


# -- termination --------------------------------------------------------------------------------
_TERMINATING = threading.Event()


def _raise_terminated(signum: int, frame: Any) -> None:
    if _TERMINATING.is_set():  # a second signal during cleanup: let the cleanup finish
        return
    _TERMINATING.set()
    raise Terminated(f"terminated by signal {signum}")


def install_termination_handler() -> bool:
    """Turn SIGTERM into :class:`~veob_dask.errors.Terminated` in the main thread.

    Writes then stop and clean up exactly as on ``KeyboardInterrupt``. Returns False (and does
    nothing) outside the main thread. A second SIGTERM during cleanup is ignored.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    _TERMINATING.clear()
    signal.signal(signal.SIGTERM, _raise_terminated)
    return True


# -- running the writes ------------------------------------------------------------------------
def _client_of(scheduler: Any) -> Any:
    owner = getattr(scheduler, "__self__", None)
    if owner is not None and "distributed" in sys.modules:
        from distributed import Client

        if isinstance(owner, Client):
            return owner
    return None


def compute_writes(*graphs: Any) -> str:
    """Compute chunk-writing dask graphs so that, on any error, no write is still running.

    The threaded scheduler runs on a pool owned here, shut down (waiting for running tasks,
    cancelling queued ones) before the error propagates; a ``distributed`` client's futures are
    cancelled. Returns the route taken: ``"threads"``, ``"sync"``, ``"distributed"`` or
    ``"other"``.
    """
    from concurrent.futures import ThreadPoolExecutor

    import dask
    from dask.base import get_scheduler
    from dask.local import get_sync

    if not graphs:
        return "sync"
    scheduler = get_scheduler()
    client = _client_of(scheduler)
    if client is not None:
        futures = client.compute(list(graphs))
        try:
            client.gather(futures)
        except BaseException:
            client.cancel(futures, force=True)
            raise
        return "distributed"
    if scheduler is get_sync:
        dask.compute(*graphs, scheduler="sync")
        return "sync"
    if scheduler is not dask.threaded.get:
        dask.compute(*graphs)
        return "other"
    pool_cls = getattr(dask.threaded, "ContextAwareThreadPoolExecutor", ThreadPoolExecutor)
    workers = int(dask.config.get("num_workers", None) or os.cpu_count() or 1)
    pool = pool_cls(max_workers=workers, thread_name_prefix="veob-write")
    try:
        dask.compute(*graphs, scheduler=pool)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return "threads"


class Publication:
    """What a writer gets from :func:`publishing`: the temporary store and how to fill it."""

    def __init__(self, target: Location, tmp: Location, strategy: Any) -> None:
        self.target = target
        self.tmp = tmp
        self._strategy = strategy
        self.distributed = False

    @property
    def sentinel(self) -> Location:
        """The temporary store's root ``zarr.json``; chunk writers stop once it is gone."""
        return self.tmp.child("zarr.json")

    def require_space(self, nbytes: int) -> None:
        """Raise :class:`StoreError` unless ``nbytes`` (+ a margin) fit where the store goes."""
        self._strategy.require_space(self.target, int(nbytes))

    def compute(self, *graphs: Any) -> None:
        """Run chunk-writing graphs (see :func:`compute_writes`)."""
        try:
            route = compute_writes(*graphs)
        except BaseException:
            self.distributed = self.distributed or _client_of(_current_scheduler()) is not None
            raise
        self.distributed = self.distributed or route == "distributed"


def _current_scheduler() -> Any:
    from dask.base import get_scheduler

    return get_scheduler()


@contextlib.contextmanager
def publishing(path: PathLike | Location, *, overwrite: bool = False,
               inputs: Iterable[PathLike | Location | None] = (),
               storage_options: Mapping[str, Any] | None = None,
               nbytes: int | None = None) -> Iterator[Publication]:
    """Write a store safely: yield a :class:`Publication` whose ``tmp`` the body fills.

    On success the temporary store is published at ``path``; on any exception (including
    ``KeyboardInterrupt`` and :class:`~veob_dask.errors.Terminated`) it is removed and the
    exception propagates (OS errors of a full, read-only or forbidden target as one-line
    :class:`StoreError`). See the module docstring for the rules.
    """
    inputs = list(inputs)
    target = check_output(path, overwrite=overwrite, inputs=inputs,
                          storage_options=storage_options)
    strategy: Any = LocalPublisher(target) if target.is_local else ObjectStorePublisher(target)
    try:
        strategy.prepare()
        strategy.lock()
    except OSError as err:
        _raise_mapped(err, target)
        raise
    pub: Publication | None = None
    try:
        if nbytes is not None:
            strategy.require_space(target, int(nbytes))
        state, detail = strategy.state()  # again, under the lock
        message = _refusal(target, state, detail, overwrite)
        if message:
            raise StoreExistsError(message)
        pub = Publication(target, strategy.make_temp(), strategy)
        yield pub
        strategy.publish(pub.tmp, replace=(state == "ours"), empty=(state == "empty"))
    except BaseException as err:
        if pub is not None:
            strategy.discard(pub.tmp, twice=pub.distributed)
        _raise_mapped(err, target)
        raise
    finally:
        strategy.unlock()


def remove_store(path: PathLike | Location, *, kind: str | None = None,
                 storage_options: Mapping[str, Any] | None = None) -> bool:
    """Delete the veob_dask store at ``path`` (of ``kind``, when given); False if none is there.

    Anything that is not our store (of that kind) is left alone and reported.

    Raises
    ------
    StoreExistsError
        ``path`` holds something veob_dask did not write, or a store of another kind, or
        another process is writing it.
    """
    target = as_location(path, storage_options)
    strategy: Any = LocalPublisher(target) if target.is_local else ObjectStorePublisher(target)
    state, detail = strategy.state()
    if state in ("absent", "empty"):
        return False
    if state != "ours" or (kind is not None and detail != kind):
        what = f"a veob_dask {detail} store" if state == "ours" else f"a {state}"
        raise StoreExistsError(f"{str(target)!r} is {what}, not a {kind or 'veob_dask'} store; "
                               "it is left alone.")
    strategy.lock()
    try:
        strategy.remove()
    finally:
        strategy.unlock()
    return True


def _raise_mapped(err: BaseException, target: Location) -> None:
    if isinstance(err, StoreError):
        return
    message = os_error_message(err, target)
    if message:
        raise StoreError(message) from err


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


def _remove_tree(p: Path) -> None:
    """Remove a temporary store: its root ``zarr.json`` (the sentinel) first, then the rest."""
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        os.remove(p / "zarr.json")
    shutil.rmtree(p, ignore_errors=True)


class LocalPublisher:
    """Publishing on a local (or mounted) file system: lock file, temp sibling, renameat2."""

    def __init__(self, target: Location) -> None:
        self.target = target
        self.path = target.path
        self.parent = self.path.parent
        self.lock_path = self.parent / f".{self.path.name}{_LOCK_SUFFIX}"
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
                f"not enough free space for {str(target)!r}: it needs about {_size(need)} (the "
                f"uncompressed size of its arrays) and {str(self.parent)!r} has {_size(free)} "
                "free. Free some space or write elsewhere.")

    # -- lock ---------------------------------------------------------------------------------
    def lock(self) -> None:
        self._temp = _temp_name(self.path.name)
        info = {**_me(), "temp": self._temp}
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
        elif info.get("host_id") != HOST_ID or _alive(int(info.get("pid", -1)),
                                                       info.get("started")):
            raise StoreExistsError(self._busy_message(info))
        return _break_lock(self.lock_path, raw)

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
            old = self.parent / _temp_name(self.path.name, "old")
            rename_noreplace(self.path, old)
            try:
                rename_noreplace(tmp.path, self.path)
            except BaseException:
                rename_noreplace(old, self.path)
                raise
            _remove_tree(old)
        else:
            if empty:
                with contextlib.suppress(FileNotFoundError):
                    os.rmdir(self.path)  # fails (ENOTEMPTY) if something arrived meanwhile
            try:
                rename_noreplace(tmp.path, self.path)
            except FileExistsError as err:
                raise StoreExistsError(f"{str(self.target)!r} appeared while the output was "
                                       "being written; nothing was replaced.") from err
        _fsync_dir(self.parent)

    def remove(self) -> None:
        """Remove our store at the target (moved aside first, so it vanishes at once)."""
        old = self.parent / _temp_name(self.path.name, "del")
        rename_noreplace(self.path, old)
        _remove_tree(old)
        _fsync_dir(self.parent)

    def discard(self, tmp: Location, *, twice: bool) -> None:
        _remove_tree(tmp.path)
        if twice:  # a distributed task past its sentinel check may still have been writing
            time.sleep(0.5)
            _remove_tree(tmp.path)


def _break_lock(lock: Path, raw: bytes) -> bool:
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


def _fsync_dir(p: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _size(n: float) -> str:
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
        m = _TEMP_RE.match(name)
        if m and m["host"] == HOST_ID and not _alive(int(m["pid"])):
            entry = folder / name
            target = folder / m["name"]
            if m["what"] == "old" and not os.path.lexists(target):
                with contextlib.suppress(OSError):
                    rename_noreplace(entry, target)
                    done.append(name)
                    continue
            if entry.is_dir() and not entry.is_symlink():
                _remove_tree(entry)
                done.append(name)
        elif name.startswith(".") and name.endswith(_LOCK_SUFFIX):
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
    if _alive(int(info.get("pid", -1)), info.get("started")):
        return []
    return [lock.name] if _break_lock(lock, raw) else []


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
        self.lock_path = f"{self.parent}/.{target.name}{_LOCK_SUFFIX}"
        self._locked = False
        self._temp = ""

    def state(self) -> tuple[str, str]:
        fs, root = self.fs, self.root
        if fs.isfile(root):
            return "file", ""
        meta = f"{root}/zarr.json"
        if fs.exists(meta):
            raw = _read_small(lambda: fs.cat_file(meta), meta)
            x_raw = _read_small(lambda: fs.cat_file(f"{root}/X/zarr.json"), "")
            kind = _kind_of_metadata(raw or b"", x_raw)
            return ("ours", kind) if kind else ("foreign", "")
        try:
            entries = fs.ls(root, detail=False)
        except FileNotFoundError:
            entries = []
        if not entries:
            return "absent", ""
        names = sorted(posix_name(e) for e in entries)
        return "folder", ", ".join(repr(e) for e in names[:3])

    def prepare(self) -> None:
        return None

    def require_space(self, target: Location, nbytes: int) -> None:
        return None  # object stores have no fixed capacity to check

    def lock(self) -> None:
        fs = self.fs
        self._temp = _temp_name(self.target.name)
        if fs.exists(self.lock_path):
            try:
                info = json.loads(fs.cat_file(self.lock_path))
            except (ValueError, OSError):
                info = {}
            stale = info.get("host_id") == HOST_ID and not _alive(int(info.get("pid", -1)),
                                                                  info.get("started"))
            if not stale:
                raise StoreExistsError(
                    f"{str(self.target)!r} is being written by process {info.get('pid')} on "
                    f"{info.get('host')}; wait for it to finish or write elsewhere (lock "
                    f"{self.lock_path!r}).")
        fs.pipe_file(self.lock_path, json.dumps({**_me(), "temp": self._temp}).encode())
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


def posix_name(path: str) -> str:
    """Last component of an object path."""
    return path.rstrip("/").rsplit("/", 1)[-1]
