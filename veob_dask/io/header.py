"""The root header of an artifact: make it, read it (mapping version 1), check kind and version."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any

from ..errors import StoreFormatError
from . import layout

__all__ = ["check_header", "header_of", "make_header", "writer_tag"]


def writer_tag() -> str:
    """``"veob_dask X.Y.Z"``: the release that wrote a store."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"veob_dask {version('veob_dask')}"
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "veob_dask"


def make_header(kind: str, **fields: Any) -> dict[str, Any]:
    """The root ``veob_dask`` attribute of a new artifact of ``kind`` (plus kind fields)."""
    if kind not in layout.KINDS:
        raise ValueError(f"unknown artifact kind {kind!r}; expected one of {layout.KINDS}.")
    return {"format_version": layout.FORMAT_VERSION, "kind": kind,
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "writer": writer_tag(), **fields}


def header_of(attrs: Mapping[str, Any], x_attrs: Mapping[str, Any] | None = None
              ) -> dict[str, Any] | None:
    """The header of a group from its root attributes; None when veob_dask did not write it.

    Version-1 stores (previous release) are mapped: their own attribute key becomes ``kind``
    and the old fields are kept under ``"legacy"``. ``x_attrs`` (the attributes of array ``X``)
    identify a version-1 dataset store that carried its provenance on the array only.
    """
    head = attrs.get(layout.ATTR_KEY)
    if isinstance(head, Mapping):
        out = dict(head)
        if out.get("format_version") == 1 and "kind" in out:  # a version-1 model
            out = {"format_version": 1, "kind": "model", "legacy": dict(head)}
        return out
    for key, kind in layout.LEGACY_KEYS.items():
        value = attrs.get(key)
        if isinstance(value, Mapping):
            return {"format_version": 1, "kind": kind, "legacy": dict(value)}
    if attrs.get("kind") == layout.LEGACY_CORPUS_KIND:
        return {"format_version": 1, "kind": "corpus", "legacy": dict(attrs)}
    if x_attrs is not None and x_attrs.get("writer") == "veob_dask":
        return {"format_version": 1, "kind": "dataset", "legacy": {}}
    return None


def check_header(header: Mapping[str, Any] | None, where: str, kind: str | tuple[str, ...]
                 ) -> dict[str, Any]:
    """Return ``header`` if it is of ``kind`` and a readable version; raise a one-line error.

    Raises
    ------
    StoreFormatError
        Not a veob_dask artifact, another kind, or a format version this release cannot read.
    """
    kinds = (kind,) if isinstance(kind, str) else tuple(kind)
    want = " or ".join(layout.KIND_NAMES.get(k, k) for k in kinds)
    if header is None:
        raise StoreFormatError(f"{where} is not a {want} (its root attributes have no "
                               f"{layout.ATTR_KEY!r} entry).")
    version = header.get("format_version")
    if isinstance(version, bool) or version not in layout.READABLE_VERSIONS:
        newer = isinstance(version, int) and not isinstance(version, bool) \
            and version > layout.FORMAT_VERSION
        hint = ("it was written by a newer veob_dask; upgrade veob_dask to read it" if newer
                else "it is damaged or not a veob_dask store")
        raise StoreFormatError(
            f"{where} has format_version {version!r}, but this veob_dask reads versions "
            f"{', '.join(map(str, layout.READABLE_VERSIONS))}; {hint}.")
    got = header.get("kind")
    if got not in kinds:
        raise StoreFormatError(f"{where} is a veob_dask {got!r} store, not a {want}.")
    return dict(header)
