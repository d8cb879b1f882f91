"""Every option that more than one ``veob`` command takes, spelled once.

The grammar, for every command:

- ``-k/--n-components`` is the number of components (an int, or where the command allows it an
  energy fraction in (0, 1]);
- ``-n/--neighbors`` is the number of neighbours a search returns;
- ``-o/--out`` names what the command writes (a store, a model, an index, a report) and
  ``--overwrite`` lets it replace a store this library wrote before;
- ``--json`` prints one JSON document on stdout and nothing else (human text goes to stderr);
- ``--scheduler`` chooses where Dask computes (with ``--scheduler-file`` and the TLS files
  ``--tls-ca-file/--tls-cert/--tls-key``; with none of them, ``DASK_SCHEDULER_ADDRESS`` or dask's
  ``scheduler-address`` setting is used when set);
- ``--storage-option KEY=VALUE`` (every command) passes fsspec options to every URL it names.

Old spellings keep working for one release and print one deprecation line on stderr: an output
given as the last positional argument (``veob fit STORE MODEL``) and ``-k`` for neighbours
(``veob query EMB --rows 0:5 -k 3``).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..errors import InvalidParameterError
from ._common import parse_n_components

__all__ = [
    "add_deprecated_alias",
    "add_json",
    "add_n_components",
    "add_neighbors",
    "add_output",
    "add_overwrite",
    "add_scheduler",
    "add_seed",
    "add_storage_option",
    "deprecated",
    "int_or",
    "nonnegative_int",
    "output_path",
    "positive_int",
    "scheduler_address",
    "storage_options",
]

_LEGACY_OUT = "_legacy_out"


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1; got {text!r}")
    return value


def nonnegative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0; got {text!r}")
    return value


def int_or(*words: str) -> Any:
    """argparse type: an integer >= 1, or one of ``words`` (e.g. ``"auto"``)."""
    def parse(text: str) -> int | str:
        if text in words:
            return text
        try:
            return positive_int(text)
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(
                f"must be an integer >= 1 or {' or '.join(repr(w) for w in words)}; got "
                f"{text!r}") from None
    parse.__name__ = "int_or_" + "_".join(words)
    return parse


def scheduler_address(text: str) -> str:
    """argparse type for ``--scheduler``: a keyword, or a well-formed scheduler address
    (checked without connecting, see :func:`veob_dask.runtime.check_address`; a ``tls://``
    address's certificates are checked when connecting, since ``--tls-*`` may give them)."""
    from ..errors import SchedulerError
    from ..runtime import SCHEDULER_KEYWORDS, check_address

    if text in SCHEDULER_KEYWORDS:
        return text
    try:
        check_address(text, certificates=False)
    except SchedulerError as err:
        raise argparse.ArgumentTypeError(str(err)) from err
    return text


def deprecated(prog: str, old: str, new: str) -> None:
    """Print the one deprecation line of an old spelling on stderr."""
    print(f"{prog}: warning: {old} is deprecated and goes in the next release; write {new}",
          file=sys.stderr, flush=True)


def add_n_components(parser: argparse.ArgumentParser, default: float, *,
                     fraction: bool = True, what: str = "components to keep") -> None:
    """``-k/--n-components``: an int, or (``fraction=True``) an energy fraction in (0, 1]."""
    more = " (int), or the fraction of energy to keep in (0, 1]" if fraction else ""
    parser.add_argument("-k", "--n-components", type=parse_n_components if fraction
                        else positive_int, default=default, metavar="K",
                        help=f"{what}{more} (default {default})")


class _DeprecatedAlias(argparse.Action):
    """An old spelling of an option: stores the value and prints one deprecation line."""

    def __init__(self, *args: Any, instead: str, meaning: str = "", **kwargs: Any) -> None:
        self.instead, self.meaning = instead, meaning
        super().__init__(*args, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        deprecated(parser.prog, f"{option_string}{self.meaning}", self.instead)
        setattr(namespace, self.dest, values)


def add_deprecated_alias(parser: argparse.ArgumentParser, *names: str, dest: str,
                         instead: str, meaning: str = "", type: Any = None) -> None:
    """Accept ``names`` (hidden from ``--help``) for ``dest``, with a deprecation line."""
    parser.add_argument(*names, dest=dest, type=type, action=_DeprecatedAlias,
                        instead=instead, meaning=meaning, help=argparse.SUPPRESS)


def add_neighbors(parser: argparse.ArgumentParser, default: int, *, what: str = "neighbours",
                  legacy_k: bool = False) -> None:
    """``-n/--neighbors``; ``legacy_k`` also accepts the deprecated ``-k``/``--k``."""
    parser.add_argument("-n", "--neighbors", type=positive_int, default=default, metavar="N",
                        help=f"{what} per query (default {default})")
    if legacy_k:
        add_deprecated_alias(parser, "-k", "--k", dest="neighbors", type=positive_int,
                             meaning=" for neighbours",
                             instead="-n/--neighbors (-k means components in every command)")


def add_output(parser: argparse.ArgumentParser, what: str, *, metavar: str = "OUT",
               required: bool = True, legacy_positional: bool = False) -> None:
    """``-o/--out``; read it with :func:`output_path`.

    Call it after the command's other positional arguments: ``legacy_positional`` also accepts the output as a last positional argument (the old
    spelling; deprecated). ``required`` is then checked by :func:`output_path`, since argparse
    cannot know which of the two spellings was used.
    """
    parser.add_argument("-o", "--out", metavar=metavar,
                        required=required and not legacy_positional,
                        help=f"{what}{' (required)' if required else ''}")
    parser.set_defaults(_out_required=required, _prog=parser.prog, _out_metavar=metavar)
    if legacy_positional:
        parser.add_argument(_LEGACY_OUT, nargs="?", default=None, help=argparse.SUPPRESS)


def output_path(args: argparse.Namespace) -> str | None:
    """The output the command line names (``-o/--out``, or the deprecated positional).

    Raises
    ------
    InvalidParameterError
        Both spellings given, or neither when an output is required.
    """
    out, legacy = getattr(args, "out", None), getattr(args, _LEGACY_OUT, None)
    prog, metavar = getattr(args, "_prog", "veob"), getattr(args, "_out_metavar", "OUT")
    if legacy is not None:
        if out is not None:
            raise InvalidParameterError(
                f"{prog}: the output is named twice ({legacy!r} as the last argument and "
                f"{out!r} with -o/--out); give only -o/--out {metavar}.")
        deprecated(prog, f"the output as a positional argument ({legacy!r})",
                   f"-o/--out {metavar}")
        out = legacy
        args.out = out
    if out is None and getattr(args, "_out_required", False):
        raise InvalidParameterError(f"{prog} needs an output: add -o/--out {metavar}.")
    return out


def add_overwrite(parser: argparse.ArgumentParser, what: str = "the output") -> None:
    """``--overwrite``: replace a store this library wrote before (never anything else)."""
    parser.add_argument("--overwrite", action="store_true",
                        help=f"replace {what} if a previous veob run wrote it")


def add_json(parser: argparse.ArgumentParser) -> None:
    """``--json``: one JSON document on stdout; every human line goes to stderr."""
    parser.add_argument("--json", action="store_true",
                        help="print one JSON document on stdout and nothing else (human text "
                        "goes to stderr)")


def add_scheduler(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    """``--scheduler``, ``--scheduler-file`` and the TLS files: where Dask computes (the command
    enters :func:`veob_dask.cli._common.computing` with them)."""
    parser.add_argument(
        "--scheduler", default=None, metavar="ADDRESS", type=scheduler_address,
        help="where to compute: 'threads' (dask's threaded scheduler), 'sync', 'local' (a "
        "LocalCluster of worker processes on 127.0.0.1) or the address of a running scheduler, "
        "e.g. tcp://10.0.0.5:8786 or tls://... (default: --scheduler-file, else "
        f"$DASK_SCHEDULER_ADDRESS or dask's scheduler-address setting, else {default or 'threads'})")
    parser.add_argument(
        "--scheduler-file", metavar="FILE",
        help="JSON file holding the scheduler's address, as `dask scheduler --scheduler-file` "
        "and the cluster/ recipes write it")
    parser.add_argument("--tls-ca-file", metavar="PEM",
                        help="TLS: the CA certificate that signed the cluster's certificates "
                        "(default: dask config distributed.comm.tls.ca-file)")
    parser.add_argument("--tls-cert", metavar="PEM",
                        help="TLS: this client's certificate (default: dask config "
                        "distributed.comm.tls.client.cert)")
    parser.add_argument("--tls-key", metavar="PEM",
                        help="TLS: this client's private key, unless appended to --tls-cert")
    parser.set_defaults(_scheduler_default=default)


def add_storage_option(parser: argparse.ArgumentParser) -> None:
    """``--storage-option KEY=VALUE`` (repeatable): fsspec options for every URL the command
    names; read them with :func:`storage_options`."""
    parser.add_argument(
        "--storage-option", action="append", default=[], metavar="KEY=VALUE",
        help="fsspec option for every URL (s3://, gs://...) the command reads or writes, e.g. "
        "endpoint_url=http://10.0.0.9:9000, anon=true, client_kwargs.region_name=eu-west-1; "
        "repeatable; a VALUE that parses as JSON is taken as JSON")


def storage_options(args: argparse.Namespace) -> dict[str, Any] | None:
    """The ``--storage-option`` pairs as a (nested, for dotted keys) dict, or None.

    Raises
    ------
    InvalidParameterError
        An item is not ``KEY=VALUE``, or a key is both a value and a group.
    """
    items = getattr(args, "storage_option", None) or []
    if not items:
        return None
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip() or any(not k for k in key.strip().split(".")):
            raise InvalidParameterError(
                f"--storage-option {item!r} is not KEY=VALUE; write e.g. "
                "--storage-option endpoint_url=http://10.0.0.9:9000")
        try:
            value: Any = json.loads(text)
        except ValueError:
            value = text
        *groups, last = key.strip().split(".")
        node = out
        for g in groups:
            node = node.setdefault(g, {})
            if not isinstance(node, dict):
                raise InvalidParameterError(f"--storage-option {item!r}: {g!r} already has a "
                                            "value; it cannot also hold keys.")
        node[last] = value
    return out


def add_seed(parser: argparse.ArgumentParser, default: int = 0) -> None:
    """``--seed``: the random seed."""
    parser.add_argument("--seed", type=int, default=default,
                        help=f"random seed (default {default})")
