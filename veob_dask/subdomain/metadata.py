"""Metadata per subdomain and filters over it (equality, ``in``, numeric and text ranges).

A *metadata table* holds one JSON object per subdomain key (``{"lang": "en", "year": 2012}``).
Two attributes are always there and cannot be overridden: ``key`` (the subdomain key) and
``n_samples`` (its rows in training).

A filter is a list of conditions that must all hold. Conditions are written as text, the same
on the command line (``--where 'lang=en' --where 'year>=2010'``) and in Python::

    lang=en            equality (``==`` works too); ``lang!=en`` the opposite
    year>=2010         also >, <, <=: numbers compare as numbers, text as text
    lang in en,fr      membership; brackets and quotes around the values are optional

or as a mapping ``{"lang": "en", "year": (">=", 2010), "band": ["1-2", "3-4"]}`` (a list means
``in``). A subdomain without the attribute never matches a condition on it. Values written as
text are read as JSON numbers or booleans when they parse as such and compared as text otherwise,
so ``year=2010`` matches both ``2010`` and ``"2010"``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InvalidParameterError

__all__ = ["OPERATORS", "RESERVED", "Condition", "build_table", "match", "parse_value",
           "parse_where"]

OPERATORS = ("=", "!=", ">=", "<=", ">", "<", "in")

#: Attributes every table row has (and metadata may not set).
RESERVED = ("key", "n_samples")

_COMPARE = re.compile(r"^\s*([^\s=!<>]+)\s*(==|!=|>=|<=|=|>|<)\s*(.*?)\s*$")
_IN = re.compile(r"^\s*([^\s=!<>]+)\s+in\s+(.+?)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Condition:
    """One condition ``attr op value`` (``value`` is a tuple for ``in``)."""

    attr: str
    op: str
    value: Any

    def __str__(self) -> str:
        if self.op == "in":
            return f"{self.attr} in {','.join(str(v) for v in self.value)}"
        return f"{self.attr}{self.op}{self.value}"


def parse_value(text: str) -> Any:
    """A value written as text: a JSON number/boolean if it parses as one, else the text.

    Examples
    --------
    >>> parse_value("2010"), parse_value("0.5"), parse_value("true"), parse_value("en")
    (2010, 0.5, True, 'en')
    """
    t = text.strip()
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "'\"":
        return t[1:-1]
    try:
        v = json.loads(t)
    except ValueError:
        return t
    return v if isinstance(v, (int, float, bool)) else t


def _parse_text(text: str) -> Condition:
    m = _IN.match(text)
    if m:
        body = m.group(2).strip()
        if body[:1] in "([{" and body[-1:] in ")]}":
            body = body[1:-1]
        values = tuple(parse_value(v) for v in body.split(",") if v.strip())
        if not values:
            raise InvalidParameterError(f"'in' needs at least one value; got {text!r}.")
        return Condition(m.group(1), "in", values)
    m = _COMPARE.match(text)
    if not m or not m.group(3):
        raise InvalidParameterError(
            f"a filter condition looks like 'attr=value', 'attr!=value', 'attr>=number' (also >, "
            f"<, <=) or 'attr in a,b,c'; got {text!r}.")
    op = "=" if m.group(2) == "==" else m.group(2)
    return Condition(m.group(1), op, parse_value(m.group(3)))


def _from_mapping(where: Mapping[str, Any]) -> list[Condition]:
    out = []
    for attr, spec in where.items():
        if isinstance(spec, tuple) and len(spec) == 2 and spec[0] in OPERATORS:
            op, value = spec
            out.append(Condition(str(attr), op, tuple(value) if op == "in" else value))
        elif isinstance(spec, (list, set, frozenset)):
            out.append(Condition(str(attr), "in", tuple(spec)))
        else:
            out.append(Condition(str(attr), "=", spec))
    return out


def parse_where(where: Any) -> tuple[Condition, ...]:
    """Normalise a filter: None, a condition string, a mapping, a Condition, or a list of them.

    Examples
    --------
    >>> [str(c) for c in parse_where(["lang=en", "year>=2010", "band in 1,2"])]
    ['lang=en', 'year>=2010', 'band in 1,2']
    """
    if where is None:
        return ()
    if isinstance(where, Condition):
        return (where,)
    if isinstance(where, str):
        return (_parse_text(where),)
    if isinstance(where, Mapping):
        return tuple(_from_mapping(where))
    if isinstance(where, Iterable):
        return tuple(c for part in where for c in parse_where(part))
    raise InvalidParameterError(
        f"where must be a condition string, a mapping or a list of them; got "
        f"{type(where).__name__}.")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _equal(v: Any, c: Any) -> bool:
    if _number(v) and _number(c):
        return float(v) == float(c)
    if isinstance(v, bool) or isinstance(c, bool):
        return v is c or str(v).lower() == str(c).lower()
    return v == c or str(v) == str(c)


def _holds(row: Mapping[str, Any], cond: Condition) -> bool:
    if cond.attr not in row:
        return False
    v = row[cond.attr]
    if cond.op == "=":
        return _equal(v, cond.value)
    if cond.op == "!=":
        return not _equal(v, cond.value)
    if cond.op == "in":
        return any(_equal(v, c) for c in cond.value)
    c = cond.value
    if _number(v) and _number(c):
        a, b = float(v), float(c)
    elif isinstance(v, str) and isinstance(c, str):
        a, b = v, c  # type: ignore[assignment]
    else:
        return False
    return {">=": a >= b, "<=": a <= b, ">": a > b, "<": a < b}[cond.op]


def match(table: Sequence[Mapping[str, Any]], where: Any) -> np.ndarray:
    """Boolean mask over the table's rows: True where every condition of ``where`` holds."""
    conds = parse_where(where)
    return np.array([all(_holds(row, c) for c in conds) for row in table], dtype=bool)


def _key_text(key: Any) -> str:
    return str(key.item() if isinstance(key, np.generic) else key)


def build_table(domains: np.ndarray, n_samples: np.ndarray,
                metadata: Mapping[Any, Any] | None) -> list[dict[str, Any]]:
    """One JSON-able row per subdomain: ``key``, ``n_samples`` and its metadata attributes.

    ``metadata`` maps keys (or their text, as JSON object keys are) to attribute objects;
    keys without an entry get no attributes, entries for keys not in ``domains`` are ignored.

    Raises
    ------
    InvalidParameterError
        If an entry is not a JSON object, uses a reserved name, or is not JSON-serialisable.
    """
    given: dict[str, Any] = {}
    for k, attrs in (metadata or {}).items():
        if not isinstance(attrs, Mapping):
            raise InvalidParameterError(
                f"metadata[{k!r}] must be a mapping of attribute names to JSON values; got "
                f"{type(attrs).__name__}.")
        bad = [a for a in attrs if a in RESERVED]
        if bad:
            raise InvalidParameterError(
                f"metadata[{k!r}] sets reserved attribute(s) {bad}; {list(RESERVED)} are "
                "filled in from the data. Rename them.")
        try:
            json.dumps(dict(attrs))
        except (TypeError, ValueError) as err:
            raise InvalidParameterError(
                f"metadata[{k!r}] is not JSON-serialisable ({err}); use numbers, text, "
                "booleans, lists and objects.") from err
        given[_key_text(k)] = dict(attrs)
    table = []
    for key, n in zip(domains.tolist(), np.asarray(n_samples).tolist(), strict=True):
        table.append({"key": key, "n_samples": int(n), **given.get(_key_text(key), {})})
    return table
