"""Where a store lives: one parser for local paths, ``file://`` and fsspec URLs.

A :class:`Location` is made once, at the edge (``as_location(path, storage_options)``), and
carried everywhere a store is named: local paths are made absolute when parsed, so no relative
path ever reaches a remote worker; URLs keep their ``storage_options`` (credentials, endpoint...)
beside them. It pickles as plain data, so Dask workers reopen the store themselves.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import os
import posixpath
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zarr.storage import WrapperStore

from ..errors import InvalidParameterError

__all__ = ["HeldRootStore", "Location", "PathLike", "as_location", "storage_defaults"]

PathLike = str | os.PathLike  # what public io functions accept beside a Location


def _freeze(options: Mapping[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((str(k), v) for k, v in dict(options or {}).items()))


@dataclass(frozen=True)
class Location:
    """A store's place: ``url`` (an absolute local path, or ``protocol://...``) + options.

    Parameters
    ----------
    url : str
        Absolute local path (no ``file://``), or an fsspec URL such as ``s3://bucket/x.zarr``.
    options : tuple of (str, value)
        ``storage_options`` as sorted pairs (hashable); see :attr:`storage_options`.
    held_root : str
        Set only while a store is written in place on an object store: the name of the object
        that stands in for the root ``zarr.json``, which is written last as the commit marker
        (see :mod:`veob_dask.io.objectstore`). Relatives (``child``, ``parent``) do not keep it.
    """

    url: str
    options: tuple[tuple[str, Any], ...] = field(default=())
    held_root: str = field(default="")

    # -- what it is ---------------------------------------------------------------------------
    @property
    def is_local(self) -> bool:
        """True for a path on a local (or mounted) file system."""
        return "://" not in self.url

    @property
    def protocol(self) -> str:
        """``"file"`` for local paths, else the URL scheme (``"s3"``, ``"memory"``...)."""
        return "file" if self.is_local else self.url.split("://", 1)[0]

    @property
    def storage_options(self) -> dict[str, Any]:
        """The fsspec ``storage_options`` (empty for local paths)."""
        return dict(self.options)

    @property
    def path(self) -> Path:
        """The local path (only for local locations)."""
        if not self.is_local:
            raise InvalidParameterError(f"{self.url!r} is not a local path.")
        return Path(self.url)

    @property
    def root_meta(self) -> str:
        """Name of the object that holds the root metadata now (``zarr.json`` unless held)."""
        return self.held_root or "zarr.json"

    @property
    def fs_path(self) -> str:
        """The path inside its file system (the URL without ``protocol://``)."""
        return self.url if self.is_local else self.url.split("://", 1)[1]

    def filesystem(self) -> tuple[Any, str]:
        """``(fs, path)``: the fsspec file system and this location's path in it."""
        import fsspec

        if self.is_local:
            return fsspec.filesystem("file"), self.url
        fs, path = fsspec.core.url_to_fs(self.url, **self.storage_options)
        return fs, str(path)

    # -- relatives ----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """Last component of the path."""
        return posixpath.basename(self.fs_path.rstrip("/")) if not self.is_local \
            else self.path.name

    @property
    def parent(self) -> Location:
        """The folder (or prefix) holding this location."""
        if self.is_local:
            return Location(str(self.path.parent), self.options)
        head = posixpath.dirname(self.fs_path.rstrip("/"))
        return Location(f"{self.protocol}://{head}", self.options)

    def child(self, *parts: str) -> Location:
        """A location inside this one (``child("words")``, ``child("X", "zarr.json")``)."""
        for p in parts:
            if not p.strip("/") or {".", ".."} & set(p.strip("/").split("/")):
                raise InvalidParameterError(f"invalid path component {p!r}.")
        if self.is_local:
            return Location(str(self.path.joinpath(*parts)), self.options)
        return Location("/".join([self.url.rstrip("/"), *(p.strip("/") for p in parts)]),
                        self.options)

    def sibling(self, name: str) -> Location:
        """A location beside this one, named ``name``."""
        return self.parent.child(name)

    # -- zarr ---------------------------------------------------------------------------------
    def zarr_store(self, *, read_only: bool) -> Any:
        """The zarr store object for this location (``LocalStore`` or ``FsspecStore``)."""
        from zarr.storage import FsspecStore, LocalStore

        if self.is_local:
            return LocalStore(self.url, read_only=read_only)
        store = FsspecStore.from_url(self.url, storage_options=self.storage_options or None,
                                     read_only=read_only)
        if self.held_root:
            return HeldRootStore(store, self.held_root)
        return store

    def __str__(self) -> str:
        return self.url

    def __fspath__(self) -> str:
        if not self.is_local:
            raise TypeError(f"{self.url!r} is a URL, not a local path.")
        return self.url


_ROOT = "zarr.json"


class HeldRootStore(WrapperStore[Any]):
    """A zarr store that keeps its root ``zarr.json`` under another key (``held``).

    Everything else passes through unchanged; listing shows the held object as ``zarr.json``.
    Used while a store is written in place on an object store, so that its real root
    ``zarr.json`` — the commit marker — appears only when the store is complete.
    """

    def __init__(self, store: Any, held: str) -> None:
        super().__init__(store)
        self._held = held

    def _with_store(self, store: Any) -> HeldRootStore:
        return type(self)(store, self._held)

    def _key(self, key: str) -> str:
        return self._held if key == _ROOT else key

    def _name(self, key: str) -> str:
        return _ROOT if key == self._held else key

    def __eq__(self, value: object) -> bool:
        return isinstance(value, HeldRootStore) and value._held == self._held and \
            super().__eq__(value)

    __hash__ = None  # type: ignore[assignment]

    async def get(self, key: str, prototype: Any, byte_range: Any = None) -> Any:
        return await self._store.get(self._key(key), prototype, byte_range)

    async def get_partial_values(self, prototype: Any,
                                 key_ranges: Iterable[tuple[str, Any]]) -> list[Any]:
        return await self._store.get_partial_values(
            prototype, [(self._key(k), r) for k, r in key_ranges])

    async def exists(self, key: str) -> bool:
        return await self._store.exists(self._key(key))

    async def set(self, key: str, value: Any) -> None:
        await self._store.set(self._key(key), value)

    async def set_if_not_exists(self, key: str, value: Any) -> None:
        await self._store.set_if_not_exists(self._key(key), value)

    async def _set_many(self, values: Iterable[tuple[str, Any]]) -> None:
        await self._store._set_many([(self._key(k), v) for k, v in values])

    async def delete(self, key: str) -> None:
        await self._store.delete(self._key(key))

    async def _get_many(self, requests: Iterable[tuple[str, Any, Any]]
                        ) -> AsyncGenerator[tuple[str, Any], None]:
        async for key, value in self._store._get_many(
                [(self._key(k), p, r) for k, p, r in requests]):
            yield self._name(key), value

    async def _renamed(self, keys: AsyncIterator[str]) -> AsyncGenerator[str, None]:
        async for key in keys:
            yield self._name(key)

    def list(self) -> AsyncIterator[str]:
        return self._renamed(self._store.list())

    def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        return self._renamed(self._store.list_prefix(prefix))

    def list_dir(self, prefix: str) -> AsyncIterator[str]:
        return self._renamed(self._store.list_dir(prefix))


_DEFAULT_OPTIONS: contextvars.ContextVar[tuple[tuple[str, Any], ...]] = contextvars.ContextVar(
    "veob_storage_defaults", default=())


@contextlib.contextmanager
def storage_defaults(options: Mapping[str, Any] | None) -> Iterator[None]:
    """Within the block, URLs parsed without ``storage_options`` get ``options``.

    The command line's ``--storage-option KEY=VALUE`` works this way: every URL a command
    names (inputs, outputs, checkpoints) is opened with the same options, which the
    :class:`Location` then carries to the Dask workers. Local paths are not affected.
    """
    token = _DEFAULT_OPTIONS.set(_freeze(options))
    try:
        yield
    finally:
        _DEFAULT_OPTIONS.reset(token)


def as_location(path: PathLike | Location, storage_options: Mapping[str, Any] | None = None
                ) -> Location:
    """Parse ``path`` (a local path, ``file://...``, an fsspec URL or a Location).

    Local paths become absolute (against the current directory, at parse time). A Location
    passed with ``storage_options`` gets those options merged over its own. A URL parsed
    without ``storage_options`` gets those of an enclosing :func:`storage_defaults`.

    Raises
    ------
    InvalidParameterError
        For an empty path, a URL without a path, or options that are not a mapping.
    """
    if storage_options is not None and not isinstance(storage_options, Mapping):
        raise InvalidParameterError(
            f"storage_options must be a dict; got {type(storage_options).__name__}.")
    if isinstance(path, Location):
        if not storage_options:
            return path
        return dataclasses.replace(
            path, options=_freeze({**path.storage_options, **storage_options}))
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidParameterError(
            f"a store path must be a str or path-like; got {type(path).__name__}.")
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if not text:
        raise InvalidParameterError("a store path must not be empty.")
    text = text.removeprefix("file://")
    if "://" in text:
        protocol, _, rest = text.partition("://")
        if not protocol or not rest.strip("/"):
            raise InvalidParameterError(
                f"{text!r} is not a usable URL (expected protocol://bucket/path).")
        options = _freeze(storage_options) if storage_options is not None \
            else _DEFAULT_OPTIONS.get()
        return Location(text.rstrip("/") if rest.rstrip("/") else text, options)
    if storage_options:
        raise InvalidParameterError(
            f"storage_options apply to URLs (s3://..., gs://...); {text!r} is a local path.")
    return Location(os.path.abspath(text))
