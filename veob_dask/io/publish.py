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
  that appeared meanwhile. Replacing our own store: new and old swapped in one step
  (``renameat2(RENAME_EXCHANGE)``, so the path never lacks a complete store, even for a reader or
  a process killed meanwhile), then the old one deleted; where the file system lacks the swap,
  old moved aside (``.NAME.old-...``), new renamed in, old deleted.
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

Object stores (any fsspec URL) follow the same API with
:class:`~veob_dask.io.objectstore.ObjectStorePublisher`: a lock object created only if absent, a
new store written in place with its root ``zarr.json`` written last as the commit marker, a
replacement written under a temporary prefix and copied (see :mod:`veob_dask.io.objectstore`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .._parallelism import single_blas_thread
from ..errors import InvalidParameterError, StoreError, StoreExistsError, Terminated
from .location import Location, PathLike, as_location
from .publishers import LocalPublisher, ObjectStorePublisher
from .targets import refusal, target_state
from .writebehind import writing_behind

__all__ = [
    "Publication",
    "check_output",
    "compute_writes",
    "install_termination_handler",
    "os_error_message",
    "publishing",
    "remove_store",
    "termination_as_exception",
]


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
    message = refusal(loc, state, detail, overwrite)
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
    """A one-line message for an ENOSPC/EROFS/EACCES/EPERM behind ``err`` that concerns the
    output (not, say, an unreadable input), else None."""
    cause = _os_cause(err)
    if cause is None:
        return None
    name = cause.filename
    if target.is_local and isinstance(name, str) and os.path.isabs(name):
        name = os.path.abspath(name)
        folders = {str(p) for p in target.path.parents}  # mkdir of the output's folders
        if name not in folders and not _inside(name, str(target.path.parent)):
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


def install_termination_handler() -> Any:
    """Turn SIGTERM into :class:`~veob_dask.errors.Terminated` in the main thread.

    Writes then stop and clean up exactly as on ``KeyboardInterrupt``. A second SIGTERM during
    cleanup is ignored. Returns the previous handler (to restore with ``signal.signal``), or
    None (doing nothing) outside the main thread. See also :func:`termination_as_exception`.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    _TERMINATING.clear()
    return signal.signal(signal.SIGTERM, _raise_terminated)


@contextlib.contextmanager
def termination_as_exception() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`~veob_dask.errors.Terminated` (main thread
    only); the previous handler comes back afterwards."""
    previous = install_termination_handler()
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


# -- running the writes ------------------------------------------------------------------------
def _client_of(scheduler: Any) -> Any:
    owner = getattr(scheduler, "__self__", None)
    if owner is not None and "distributed" in sys.modules:
        from distributed import Client

        if isinstance(owner, Client):
            return owner
    return None


def compute_writes(*graphs: Any, behind: str | None = None) -> str:
    """Compute chunk-writing dask graphs so that, on any error, no write is still running.

    The threaded scheduler runs on a pool owned here, shut down (waiting for running tasks,
    cancelling queued ones) before the error propagates; a ``distributed`` client's futures are
    cancelled. On the threaded and synchronous schedulers, file writes under the local
    directory ``behind`` may be done by a background thread while tasks go on
    (:mod:`~veob_dask.io.writebehind`); all are done when this returns. Returns the route
    taken: ``"threads"``, ``"sync"``, ``"distributed"`` or ``"other"``.
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
    behind_ctx = (writing_behind(behind) if behind is not None
                  else contextlib.nullcontext())
    if scheduler is get_sync:
        with behind_ctx:
            dask.compute(*graphs, scheduler="sync")
        return "sync"
    if scheduler is not dask.threaded.get:
        dask.compute(*graphs)
        return "other"
    pool_cls = getattr(dask.threaded, "ContextAwareThreadPoolExecutor", ThreadPoolExecutor)
    from dask.system import CPU_COUNT

    workers = int(dask.config.get("num_workers", None) or CPU_COUNT or 1)
    pool = pool_cls(max_workers=workers, thread_name_prefix="veob-write")
    try:
        with single_blas_thread(), behind_ctx:  # a multithreaded BLAS would spin
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
        """The temporary store's root metadata object; chunk writers stop once it is gone."""
        return self.tmp.child(self.tmp.root_meta)

    def require_space(self, nbytes: int) -> None:
        """Raise :class:`StoreError` unless ``nbytes`` (+ a margin) fit where the store goes."""
        self._strategy.require_space(self.target, int(nbytes))

    def compute(self, *graphs: Any) -> None:
        """Run chunk-writing graphs (see :func:`compute_writes`)."""
        try:
            route = compute_writes(*graphs,
                                   behind=self.tmp.url if self.tmp.is_local else None)
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
        message = refusal(target, state, detail, overwrite)
        if message:
            raise StoreExistsError(message)
        pub = Publication(target, strategy.make_temp(replace=(state == "ours")), strategy)
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


