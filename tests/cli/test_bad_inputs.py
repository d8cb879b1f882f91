"""A corpus of bad inputs across every ``veob`` command: each ends in one line and exit 2.

Every case copies a small set of fixture files (built once per module), damages one thing, runs
the command line in-process through :func:`veob_dask.cli.main` and checks that

* the exit code is 2,
* stderr holds exactly one error line (progress lines of stages that had started are allowed
  before it) and no ``Traceback``,
* no temporary store (``.NAME.tmp-*``) is left anywhere,
* nothing that existed before changed, and nothing new appeared except the case's outputs.

Test ids read ``<category>(<cases in category>)-<name>``. A few cases run through a real
subprocess to prove the exit code and the absence of a traceback end to end.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import lzma
import os
import re
import shutil
import struct
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import zarr

from veob_dask.cli import main

# ------------------------------------------------------------------------------ fixture files
WORDS = ["frown", "frowns", "frowned", "frog", "frogs", "twig", "twigs", "twilight", "bus",
         "buses", "happiness", "cat", "cats", "dog", "dogs", "good", "film", "bad"]
FILM_WORDS = ["film", "movie", "good", "bad", "great", "plot", "actor", "story", "boring",
              "funny", "scene", "music", "ending", "slow", "love"]


def _write_idx(path: Path, arr: np.ndarray, code: int = 0x08, gz: bool = False) -> None:
    head = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    if gz:
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)


def _reviews(n: int) -> str:
    rng = np.random.default_rng(1)
    rows = []
    for i in range(n):
        text = " ".join("The " + " ".join(rng.choice(FILM_WORDS, size=6)) + "."
                        for _ in range(3))
        split, label = ("train" if i % 2 else "test"), ("pos" if i % 3 else "neg")
        rows.append(f"{split}\t{label}\t{i}\t7\t{text}\n")
    return "split\tlabel\tid\trating\ttext\n" + "".join(rows)


def _dictionary() -> dict:
    return {w.upper(): {"MEANINGS": [], "SYNONYMS": [v for v in WORDS if v[:2] == w[:2] and v != w],
                        "ANTONYMS": ["bad"] if w == "good" else []} for w in WORDS}


def _ok(argv: list[str]) -> None:
    assert main(argv) == 0, argv


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("bad-inputs-base")
    rng = np.random.default_rng(0)
    np.save(d / "x.npy", rng.random((60, 8)).astype(np.float32))
    np.save(d / "y.npy", rng.integers(0, 3, 60))
    np.save(d / "q.npy", rng.random((5, 3)))
    _ok(["ingest", f"{d}/x.npy", "-o", f"{d}/d.zarr", "--labels", f"{d}/y.npy",
         "--chunk-rows", "20"])
    _ok(["fit", f"{d}/d.zarr", "-o", f"{d}/m.zarr", "-k", "3"])
    _ok(["transform", f"{d}/m.zarr", f"{d}/d.zarr", "-o", f"{d}/e.zarr"])
    _ok(["ingest", f"{d}/q.npy", "-o", f"{d}/q.zarr"])
    _ok(["index", "build", f"{d}/e.zarr", "-o", f"{d}/i.zarr", "--min-samples", "10"])
    _ok(["supervised", "fit", f"{d}/d.zarr", "-o", f"{d}/sup.zarr", "-k", "3", "--partitions",
         "1", "--scheduler", "sync"])
    imgs = rng.integers(0, 256, (40, 6, 6)).astype(np.uint8)
    labs = rng.integers(0, 10, 40).astype(np.uint8)
    _write_idx(d / "img-idx3-ubyte", imgs)
    _write_idx(d / "lab-idx1-ubyte", labs)
    _write_idx(d / "img-idx3-ubyte.gz", imgs, gz=True)
    (d / "fm").mkdir()
    for split, n in (("train", 30), ("t10k", 10)):
        _write_idx(d / "fm" / f"{split}-images-idx3-ubyte", imgs[:n])
        _write_idx(d / "fm" / f"{split}-labels-idx1-ubyte", labs[:n])
    m = sp.random(30, 10, density=0.3, format="csr", random_state=0, dtype=np.float64)
    sp.save_npz(d / "s.npz", m)
    sp.save_npz(d / "coo.npz", m.tocoo())
    coo = m.tocoo()
    g = zarr.open_group(d / "coo.zarr", mode="w")
    g.attrs["shape"] = [30, 10]
    for name, values in (("row", coo.row), ("col", coo.col), ("data", coo.data)):
        g.create_array(name, data=np.asarray(values), chunks=(40,))
    (d / "words.txt").write_text("\n".join(WORDS) + "\n")
    _ok(["words", "build", "spelling", f"{d}/words.txt", "--out", f"{d}/w.zarr",
         "--n-components", "4"])
    (d / "dict.json").write_text(json.dumps(_dictionary()))
    (d / "dict.json.xz").write_bytes(lzma.compress((d / "dict.json").read_bytes()))
    (d / "dict.json.gz").write_bytes(gzip.compress((d / "dict.json").read_bytes()))
    (d / "r.tsv").write_text(_reviews(24))
    (d / "r.tsv.xz").write_bytes(lzma.compress((d / "r.tsv").read_bytes()))
    _ok(["sentences", "build", f"{d}/r.tsv", "--out", f"{d}/sent.zarr", "--n-components", "4",
         "--scheduler", "sync"])
    (d / "pairs.txt").write_text("cat\tdog\t7\nfrog\tbus\t1\nfrown\tfrowns\t9\n")
    return d


# ------------------------------------------------------------------------------ damage helpers
def edit_json(rel: str, fn: Callable[[dict], object]) -> Callable[[Path], None]:
    """Load ``rel`` as JSON, let ``fn`` change it in place, write it back."""
    def setup(d: Path) -> None:
        p = d / rel
        meta = json.loads(p.read_text())
        fn(meta)
        _replace(p, json.dumps(meta).encode())
    return _uses(setup, rel)


def put(rel: str, data: bytes | str | Callable[[Path], bytes]) -> Callable[[Path], None]:
    """Write ``data`` (or what ``data(d)`` returns) to ``rel``."""
    def setup(d: Path) -> None:
        value = data(d) if callable(data) else data
        p = d / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        _replace(p, value.encode() if isinstance(value, str) else value)
    return _uses(setup, rel)


def cut(rel: str, keep: float) -> Callable[[Path], None]:
    """Truncate ``rel`` to ``keep`` bytes (an int) or that fraction of its size (a float)."""
    def setup(d: Path) -> None:
        p = d / rel
        data = p.read_bytes()
        n = keep if isinstance(keep, int) else int(len(data) * keep)
        _replace(p, data[:n])
    return _uses(setup, rel)


def append(rel: str, extra: bytes) -> Callable[[Path], None]:
    def setup(d: Path) -> None:
        _replace(d / rel, (d / rel).read_bytes() + extra)
    return _uses(setup, rel)


def remove(rel: str) -> Callable[[Path], None]:
    def setup(d: Path) -> None:
        p = d / rel
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    return _uses(setup, rel)


def npy(rel: str, make: Callable[[], np.ndarray], allow_pickle: bool = False
        ) -> Callable[[Path], None]:
    def setup(d: Path) -> None:
        (d / rel).unlink(missing_ok=True)
        np.save(d / rel, make(), allow_pickle=allow_pickle)
    return _uses(setup, rel)


def idx(rel: str, head: bytes, body: bytes = b"") -> Callable[[Path], None]:
    return put(rel, head + body)


def chain(*fns: Callable[[Path], None]) -> Callable[[Path], None]:
    def setup(d: Path) -> None:
        for fn in fns:
            fn(d)
    paths = [getattr(fn, "paths", None) for fn in fns]
    return _uses(setup, *(p for ps in paths for p in (ps or ["*"])))


def at(rel: str, fn: Callable[[Path], object]) -> Callable[[Path], None]:
    """Damage ``rel`` with ``fn(path)`` (a function that rewrites the file it is given)."""
    def setup(d: Path) -> None:
        _replace(d / rel, (d / rel).read_bytes())  # its own copy, no longer a hard link
        fn(d / rel)
    return _uses(setup, rel)


def fresh(fn: Callable[[Path], object]) -> Callable[[Path], None]:
    """A setup that only creates new files (needs nothing from the fixture files)."""
    def setup(d: Path) -> None:
        fn(d)
    return _uses(setup)


def _uses(setup: Callable[[Path], None], *rels: str) -> Callable[[Path], None]:
    """Record which fixture files a setup touches (``"*"``: it may touch any)."""
    setup.paths = list(rels)  # type: ignore[attr-defined]
    return setup


def _replace(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` as a new file (fixture files are hard links to shared ones)."""
    path.unlink(missing_ok=True)
    path.write_bytes(data)


def _deep_json(depth: int) -> str:
    return "[" * depth + "]" * depth


# ------------------------------------------------------------------------------ the case table
@dataclass
class Case:
    category: str
    name: str
    argv: list[str]
    setup: Callable[[Path], None] | None = None
    outs: Sequence[str] = ()
    expect: str | None = None
    xfail: str | None = None
    #: folder name -> "ro" (a read-only file system) or "full" (a 64 kB one), mounted for the
    #: case (tmpfs; needs root, as CI runs; skipped otherwise)
    mounts: dict[str, str] = field(default_factory=dict)


CASES: list[Case] = []


def case(category: str, name: str, argv: str | list[str], setup: Callable[[Path], None] | None
         = None, *, outs: Sequence[str] = (), expect: str | None = None,
         xfail: str | None = None, mounts: dict[str, str] | None = None) -> None:
    args = argv.split() if isinstance(argv, str) else argv
    CASES.append(Case(category, name, args, setup, outs, expect, xfail, mounts or {}))


# --- truncated or corrupt files --------------------------------------------------------------
T = "truncated"
ING = "ingest {d}/src -o {d}/o.zarr"
case(T, "npy_half", "ingest {d}/x.npy -o {d}/o.zarr", cut("x.npy", 0.5), outs=["o.zarr"],
     expect="x.npy")
case(T, "npy_header_only", "ingest {d}/x.npy -o {d}/o.zarr", cut("x.npy", 128), outs=["o.zarr"],
     expect="x.npy")
case(T, "npy_header_cut", "ingest {d}/x.npy -o {d}/o.zarr", cut("x.npy", 40), outs=["o.zarr"])
case(T, "npy_empty_file", "ingest {d}/x.npy -o {d}/o.zarr", cut("x.npy", 0), outs=["o.zarr"])
case(T, "npy_not_npy", "ingest {d}/x.npy -o {d}/o.zarr", put("x.npy", "hello, world\n" * 20),
     outs=["o.zarr"])
case(T, "npy_trailing_bytes", "ingest {d}/x.npy -o {d}/o.zarr", append("x.npy", b"\0" * 13),
     outs=["o.zarr"], expect="x.npy")
case(T, "labels_npy_half", "ingest {d}/x.npy -o {d}/o.zarr --labels {d}/y.npy",
     cut("y.npy", 0.6), outs=["o.zarr"], expect="y.npy")
case(T, "idx_data_cut", "ingest {d}/img-idx3-ubyte -o {d}/o.zarr", cut("img-idx3-ubyte", 0.5),
     outs=["o.zarr"], expect="img-idx3-ubyte")
case(T, "idx_header_only", "ingest {d}/img-idx3-ubyte -o {d}/o.zarr", cut("img-idx3-ubyte", 16),
     outs=["o.zarr"], expect="img-idx3-ubyte")
case(T, "idx_three_bytes", "ingest {d}/img-idx3-ubyte -o {d}/o.zarr", cut("img-idx3-ubyte", 3),
     outs=["o.zarr"])
case(T, "idx_dims_cut", "ingest {d}/img-idx3-ubyte -o {d}/o.zarr", cut("img-idx3-ubyte", 9),
     outs=["o.zarr"])
case(T, "idx_trailing_bytes", "ingest {d}/img-idx3-ubyte -o {d}/o.zarr",
     append("img-idx3-ubyte", b"\x07" * 36), outs=["o.zarr"], expect="img-idx3-ubyte")
case(T, "idx_bad_magic", "ingest {d}/img-idx3-ubyte -o {d}/o.zarr",
     put("img-idx3-ubyte", b"\x01\x02\x08\x03" + b"\0" * 200), outs=["o.zarr"])
case(T, "idx_gz_cut", "ingest {d}/img-idx3-ubyte.gz -o {d}/o.zarr", cut("img-idx3-ubyte.gz", 0.5),
     outs=["o.zarr"], expect="img-idx3-ubyte.gz")
case(T, "idx_gz_corrupt", "ingest {d}/img-idx3-ubyte.gz -o {d}/o.zarr",
     at("img-idx3-ubyte.gz", lambda p: _flip(p, 30)), outs=["o.zarr"])
case(T, "idx_gz_header_only", "ingest {d}/img-idx3-ubyte.gz -o {d}/o.zarr",
     put("img-idx3-ubyte.gz", b"\x1f\x8b"), outs=["o.zarr"])
case(T, "idx_labels_cut", "ingest {d}/img-idx3-ubyte -o {d}/o.zarr --labels {d}/lab-idx1-ubyte",
     cut("lab-idx1-ubyte", 20), outs=["o.zarr"], expect="lab-idx1-ubyte")
case(T, "npz_not_zip", "ingest {d}/s.npz -o {d}/o.zarr", put("s.npz", b"PK\x03\x04garbage" * 9),
     outs=["o.zarr"], expect="s.npz")
case(T, "npz_cut", "ingest {d}/s.npz -o {d}/o.zarr", cut("s.npz", 0.5), outs=["o.zarr"],
     expect="s.npz")
case(T, "npz_member_cut", "ingest {d}/s.npz -o {d}/o.zarr",
     at("s.npz", lambda p: _npz_cut_member(p, "indices.npy")), outs=["o.zarr"], expect="s.npz")
case(T, "coo_chunk_corrupt", "ingest {d}/coo.zarr -o {d}/o.zarr --coo",
     put("coo.zarr/col/c/0", b"\x28\xb5\x2f\xfdjunk"), outs=["o.zarr"], expect="coo.zarr")
case(T, "dictionary_xz_cut", "words build dictionary {d}/dict.json.xz --out {d}/o.zarr",
     cut("dict.json.xz", 0.6), outs=["o.zarr"], expect="dict.json.xz")
case(T, "dictionary_gz_cut", "words build dictionary {d}/dict.json.gz --out {d}/o.zarr",
     cut("dict.json.gz", 0.6), outs=["o.zarr"], expect="dict.json.gz")
case(T, "dictionary_xz_not_xz", "words build dictionary {d}/dict.json.xz --out {d}/o.zarr",
     put("dict.json.xz", '{"A": {}}'), outs=["o.zarr"], expect="dict.json.xz")
case(T, "dictionary_json_cut", "words build dictionary {d}/dict.json --out {d}/o.zarr",
     cut("dict.json", 0.5), outs=["o.zarr"], expect="dict.json")
case(T, "reviews_xz_cut_sentences", "sentences build {d}/r.tsv.xz --out {d}/o.zarr",
     cut("r.tsv.xz", 0.5), outs=["o.zarr", "o.zarr.corpus.zarr"], expect="r.tsv.xz")
case(T, "reviews_xz_cut_context", "words build context {d}/r.tsv.xz --out {d}/o.zarr",
     cut("r.tsv.xz", 0.7), outs=["o.zarr", "o.zarr.corpus.zarr"], expect="r.tsv.xz")
case(T, "reviews_gz_not_gz", "sentences build {d}/r.tsv.gz --out {d}/o.zarr",
     put("r.tsv.gz", "split\tlabel\n"), outs=["o.zarr", "o.zarr.corpus.zarr"], expect="r.tsv.gz")
case(T, "demo_idx_cut", "demo --dataset fashion-mnist --path {d}/fm --scheduler threads",
     cut("fm/train-images-idx3-ubyte", 0.5), expect="train-images-idx3-ubyte")
case(T, "demo_idx_trailing", "demo --dataset mnist --path {d}/fm --scheduler threads",
     append("fm/t10k-labels-idx1-ubyte", b"\0\0"), expect="t10k-labels-idx1-ubyte")


def _flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    for i in range(at, min(len(data) - 8, at + 16)):
        data[i] ^= 0xA5
    path.write_bytes(bytes(data))


def _npz_cut_member(path: Path, member: str) -> None:
    import zipfile

    with zipfile.ZipFile(path) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    parts[member] = parts[member][: len(parts[member]) // 2]
    with zipfile.ZipFile(path, "w") as z:
        for n, b in parts.items():
            z.writestr(n, b)


# --- absurd headers --------------------------------------------------------------------------
A = "absurd_header"
case(A, "idx_4e9_rows", "ingest {d}/img-idx3-ubyte -o {d}/o.zarr",
     idx("img-idx3-ubyte", bytes([0, 0, 8, 3]) + struct.pack(">3I", 4_000_000_000, 28, 28),
         b"\0" * 4000), outs=["o.zarr"], expect="claims")
case(A, "idx_4e9_rows_gz", "ingest {d}/img-idx3-ubyte.gz -o {d}/o.zarr",
     put("img-idx3-ubyte.gz", gzip.compress(bytes([0, 0, 8, 3]) + struct.pack(
         ">3I", 4_000_000_000, 28, 28) + b"\0" * 4000)), outs=["o.zarr"], expect="claims")
case(A, "idx_huge_row", "ingest {d}/img-idx3-ubyte -o {d}/o.zarr",
     idx("img-idx3-ubyte", bytes([0, 0, 8, 3]) + struct.pack(">3I", 2, 2**31, 2**31),
         b"\0" * 64), outs=["o.zarr"], expect="claims")
case(A, "idx_labels_4e9", "ingest {d}/img-idx3-ubyte -o {d}/o.zarr --labels {d}/lab-idx1-ubyte",
     idx("lab-idx1-ubyte", bytes([0, 0, 8, 1]) + struct.pack(">I", 4_000_000_000), b"\0" * 40),
     outs=["o.zarr"], expect="lab-idx1-ubyte")
case(A, "idx_float64_claim", "ingest {d}/img-idx3-ubyte -o {d}/o.zarr",
     idx("img-idx3-ubyte", bytes([0, 0, 0x0E, 2]) + struct.pack(">2I", 10**9, 1000), b"\0" * 800),
     outs=["o.zarr"], expect="claims")
case(A, "idx_zero_rows", "ingest {d}/img-idx3-ubyte -o {d}/o.zarr",
     idx("img-idx3-ubyte", bytes([0, 0, 8, 3]) + struct.pack(">3I", 0, 6, 6)), outs=["o.zarr"])
case(A, "idx_zero_dims", "ingest {d}/img-idx3-ubyte -o {d}/o.zarr",
     idx("img-idx3-ubyte", bytes([0, 0, 8, 0]), b"\0" * 8), outs=["o.zarr"])
case(A, "npy_claims_1e12_rows", "ingest {d}/x.npy -o {d}/o.zarr",
     at("x.npy", lambda p: _npy_with_header(p, "(1000000000000, 784)")), outs=["o.zarr"],
     expect="claims")
case(A, "npy_negative_shape", "ingest {d}/x.npy -o {d}/o.zarr",
     at("x.npy", lambda p: _npy_with_header(p, "(-5, 8)")), outs=["o.zarr"], expect="x.npy")
case(A, "npy_huge_labels", "ingest {d}/x.npy -o {d}/o.zarr --labels {d}/y.npy",
     at("y.npy", lambda p: _npy_with_header(p, "(4000000000000,)", descr="<i8")), outs=["o.zarr"],
     expect="y.npy")
case(A, "npz_member_claims_1e12", "ingest {d}/s.npz -o {d}/o.zarr",
     at("s.npz", lambda p: _npz_member_header(p, "data.npy", "(1000000000000,)")), outs=["o.zarr"],
     expect="claims")
case(A, "npz_coo_shape_1e12", "ingest {d}/coo.npz -o {d}/o.zarr",
     at("coo.npz", lambda p: _npz_set(p, shape=np.array([10**12, 10**12]))), outs=["o.zarr"],
     expect="coo.npz")
case(A, "npz_csr_shape_1e12", "ingest {d}/s.npz -o {d}/o.zarr",
     at("s.npz", lambda p: _npz_set(p, shape=np.array([10**12, 10]))), outs=["o.zarr"],
     expect="s.npz")
case(A, "coo_shape_attr_1e12", "ingest {d}/coo.zarr -o {d}/o.zarr --coo",
     edit_json("coo.zarr/zarr.json", lambda m: m["attributes"].update(shape=[10**12, 10**12])),
     outs=["o.zarr"], expect="coo.zarr")
case(A, "coo_row_array_1e15", "ingest {d}/coo.zarr -o {d}/o.zarr --coo",
     chain(*(edit_json(f"coo.zarr/{k}/zarr.json", lambda m: m.update(shape=[10**15]))
             for k in ("row", "col", "data"))), outs=["o.zarr"], expect="coo.zarr")


def _npy_with_header(path: Path, shape: str, descr: str = "<f4") -> None:
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"
    header = header + " " * (127 - 10 - len(header)) + "\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode()
                     + b"\0" * 256)


def _npz_member_header(path: Path, member: str, shape: str) -> None:
    import zipfile

    with zipfile.ZipFile(path) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    raw = parts[member]
    hlen = struct.unpack("<H", raw[8:10])[0]
    header = raw[10:10 + hlen].decode()
    new = re.sub(r"'shape': \([^)]*\)", f"'shape': {shape}", header).rstrip()
    new = new + " " * (hlen - 1 - len(new)) + "\n"
    parts[member] = raw[:10] + new.encode() + raw[10 + hlen:]
    with zipfile.ZipFile(path, "w") as z:
        for n, b in parts.items():
            z.writestr(n, b)


def _npz_set(path: Path, **changes: np.ndarray) -> None:
    with np.load(path) as z:
        parts = {k: z[k] for k in z.files}
    parts.update(changes)
    np.savez(path, **parts)


# --- tampered zarr.json ----------------------------------------------------------------------
Z = "tampered_zarr_json"
FIT = "fit {d}/d.zarr -o {d}/o.zarr -k 2"
XJ = "d.zarr/X/zarr.json"


def _set(**kv: object) -> Callable[[dict], None]:
    return lambda m: m.update(kv)


def _chunks(shape: list[int]) -> Callable[[dict], None]:
    return lambda m: m["chunk_grid"]["configuration"].update(chunk_shape=shape)


def _codec(name: str) -> Callable[[dict], None]:
    return lambda m: m["codecs"].append({"name": name, "configuration": {}})


for label, fn in [
    ("shape_1e15", _set(shape=[10**15, 8])),
    ("shape_61_rows", _set(shape=[61, 8])),
    ("shape_negative", _set(shape=[-60, 8])),
    ("shape_string", _set(shape="60x8")),
    ("shape_float", _set(shape=[60.5, 8])),
    ("shape_3d_chunks_2d", _set(shape=[60, 8, 1])),
    ("ten_columns_over_chunks_of_20", lambda m: (m.update(shape=[60, 4]))),
    ("dtype_pickle", _set(data_type="pickle")),
    ("dtype_object", _set(data_type="object")),
    ("dtype_string", _set(data_type="string")),
    ("dtype_complex", _set(data_type="complex128")),
    ("dtype_float64_over_float32_chunks", _set(data_type="float64")),
    ("dtype_dict", _set(data_type={"name": "numpy.datetime64", "configuration": {}})),
    ("chunk_zero", _chunks([0, 8])),
    ("chunk_negative", _chunks([-20, 8])),
    ("chunk_1e15", _chunks([10**15, 8])),
    ("chunk_grid_unknown", lambda m: m.update(chunk_grid={"name": "rectilinear"})),
    ("codec_unknown", _codec("evil")),
    ("codec_not_dict", lambda m: m["codecs"].append(42)),
    ("codecs_empty", _set(codecs=[])),
    ("zarr_format_2", _set(zarr_format=2)),
    ("zarr_format_string", _set(zarr_format="3")),
    ("node_type_group", _set(node_type="group")),
    ("fill_value_text", _set(fill_value="not a number")),
    ("key_encoding_unknown", _set(chunk_key_encoding={"name": "nested-evil"})),
    ("storage_transformer", _set(storage_transformers=[{"name": "evil"}])),
    ("dimension_names_wrong_length", _set(dimension_names=["a", "b", "c"])),
]:
    case(Z, f"X_{label}", FIT, edit_json(XJ, fn), outs=["o.zarr"], expect="d.zarr")
case(Z, "ten_columns_over_chunks_of_twenty", "fit {d}/w20.zarr -o {d}/o.zarr -k 2",
     chain(fresh(lambda d: _store_with(d, "w20.zarr", np.ones((10, 20)))),
           edit_json("w20.zarr/X/zarr.json", _set(shape=[10, 10]))), outs=["o.zarr"],
     expect="w20.zarr")
case(Z, "X_cut_json", FIT, cut(XJ, 0.5), outs=["o.zarr"], expect="d.zarr")
case(Z, "X_json_list", FIT, put(XJ, "[1, 2, 3]"), outs=["o.zarr"], expect="d.zarr")
case(Z, "X_json_deep", FIT, put(XJ, _deep_json(100_000)), outs=["o.zarr"], expect="d.zarr")
case(Z, "X_json_binary", FIT, put(XJ, bytes(range(256))), outs=["o.zarr"], expect="d.zarr")
case(Z, "X_json_missing", FIT, remove(XJ), outs=["o.zarr"], expect="d.zarr")
case(Z, "group_cut_json", FIT, cut("d.zarr/zarr.json", 0.5), outs=["o.zarr"], expect="d.zarr")
case(Z, "group_zarr_format_2", FIT, edit_json("d.zarr/zarr.json", _set(zarr_format=2)),
     outs=["o.zarr"], expect="d.zarr")
case(Z, "group_node_type_array", FIT, edit_json("d.zarr/zarr.json", _set(node_type="array")),
     outs=["o.zarr"], expect="d.zarr")
case(Z, "group_deep_json", FIT, put("d.zarr/zarr.json", _deep_json(100_000)), outs=["o.zarr"],
     expect="d.zarr")
case(Z, "group_attrs_not_object", FIT, edit_json("d.zarr/zarr.json", _set(attributes=[1])),
     outs=["o.zarr"], expect="d.zarr")
case(Z, "transform_input_dtype_pickle", "transform {d}/m.zarr {d}/d.zarr -o {d}/o.zarr",
     edit_json(XJ, _set(data_type="pickle")), outs=["o.zarr"], expect="d.zarr")
case(Z, "transform_y_shape_1e15", "transform {d}/m.zarr {d}/d.zarr -o {d}/o.zarr",
     edit_json("d.zarr/y/zarr.json", _set(shape=[10**15])), outs=["o.zarr"], expect="d.zarr")
case(Z, "transform_model_components_pickle", "transform {d}/m.zarr {d}/d.zarr -o {d}/o.zarr",
     edit_json("m.zarr/components_/zarr.json", _set(data_type="pickle")), outs=["o.zarr"],
     expect="m.zarr")
case(Z, "transform_model_components_1e15", "transform {d}/m.zarr {d}/d.zarr -o {d}/o.zarr",
     edit_json("m.zarr/components_/zarr.json", _set(shape=[10**15, 8])), outs=["o.zarr"],
     expect="m.zarr")
case(Z, "transform_model_cut_json", "transform {d}/m.zarr {d}/d.zarr -o {d}/o.zarr",
     cut("m.zarr/zarr.json", 0.7), outs=["o.zarr"], expect="m.zarr")
case(Z, "transform_model_codec_unknown", "transform {d}/m.zarr {d}/d.zarr -o {d}/o.zarr",
     edit_json("m.zarr/singular_values_/zarr.json", _codec("evil")), outs=["o.zarr"],
     expect="m.zarr")
case(Z, "query_embedding_shape_1e15", "query {d}/e.zarr --rows 0:2",
     edit_json("e.zarr/X/zarr.json", _set(shape=[10**15, 3])), expect="e.zarr")
case(Z, "query_queries_chunk_zero", "query {d}/e.zarr --queries {d}/q.zarr",
     edit_json("q.zarr/X/zarr.json", _chunks([0, 3])), expect="q.zarr")
case(Z, "query_index_offsets_pickle", "query {d}/e.zarr --rows 0:2 --index {d}/i.zarr",
     edit_json("i.zarr/offsets/zarr.json", _set(data_type="pickle")), expect="i.zarr")
case(Z, "query_index_zarr_format_2", "query {d}/e.zarr --rows 0:2 --index {d}/i.zarr",
     edit_json("i.zarr/members/zarr.json", _set(zarr_format=2)), expect="i.zarr")
case(Z, "index_build_columns_over_chunks", "index build {d}/e.zarr -o {d}/o.zarr",
     edit_json("e.zarr/X/zarr.json", _set(shape=[60, 2])), outs=["o.zarr"], expect="e.zarr")
case(Z, "coo_row_dtype_pickle", "ingest {d}/coo.zarr -o {d}/o.zarr --coo",
     edit_json("coo.zarr/row/zarr.json", _set(data_type="pickle")), outs=["o.zarr"],
     expect="coo.zarr")
case(Z, "coo_chunk_zero", "ingest {d}/coo.zarr -o {d}/o.zarr --coo",
     edit_json("coo.zarr/col/zarr.json", _chunks([0])), outs=["o.zarr"], expect="coo.zarr")
case(Z, "words_model_vectors_shape_1e15", "words neighbors cat --model {d}/w.zarr",
     edit_json("w.zarr/vectors/zarr.json", _set(shape=[10**15, 4])), expect="w.zarr")
case(Z, "words_model_cut_json", "words neighbors cat --model {d}/w.zarr",
     cut("w.zarr/words_utf8/zarr.json", 0.4), expect="w.zarr")
case(Z, "sentences_model_codec_unknown", ["sentences", "neighbors", "good film", "--model",
                                          "{d}/sent.zarr"],
     edit_json("sent.zarr/embedding/zarr.json", _codec("evil")), expect="sent.zarr")
case(Z, "sentences_model_deep_json", ["sentences", "neighbors", "good film", "--model",
                                      "{d}/sent.zarr"],
     put("sent.zarr/zarr.json", _deep_json(100_000)), expect="sent.zarr")


# --- missing or corrupt chunks ---------------------------------------------------------------
C = "missing_chunk"
case(C, "fit_middle_chunk", FIT, remove("d.zarr/X/c/1/0"), outs=["o.zarr"], expect="d.zarr")
case(C, "fit_last_chunk", FIT, remove("d.zarr/X/c/2"), outs=["o.zarr"], expect="d.zarr")
case(C, "fit_all_chunks", FIT, remove("d.zarr/X/c"), outs=["o.zarr"], expect="d.zarr")
case(C, "fit_chunk_garbage", FIT, put("d.zarr/X/c/1/0", b"\x28\xb5\x2f\xfd" + b"junk" * 9),
     outs=["o.zarr"], expect="d.zarr")
case(C, "fit_chunk_empty_file", FIT, put("d.zarr/X/c/0/0", b""), outs=["o.zarr"],
     expect="d.zarr")
case(C, "fit_chunk_is_folder", FIT, chain(remove("d.zarr/X/c/0/0"),
                                          fresh(lambda d: (d / "d.zarr/X/c/0/0").mkdir())),
     outs=["o.zarr"], expect="d.zarr")
case(C, "transform_y_chunk", "transform {d}/m.zarr {d}/d.zarr -o {d}/o.zarr",
     remove("d.zarr/y/c/2"), outs=["o.zarr"], expect="d.zarr")
case(C, "transform_x_chunk", "transform {d}/m.zarr {d}/d.zarr -o {d}/o.zarr",
     remove("d.zarr/X/c/0/0"), outs=["o.zarr"], expect="d.zarr")
case(C, "transform_model_chunk", "transform {d}/m.zarr {d}/d.zarr -o {d}/o.zarr",
     remove("m.zarr/components_/c"), outs=["o.zarr"], expect="m.zarr")
case(C, "query_embedding_chunk", "query {d}/e.zarr --rows 0:3",
     remove("e.zarr/X/c/0/0"), expect="e.zarr")
case(C, "query_index_chunk", "query {d}/e.zarr --rows 0:2 --index {d}/i.zarr",
     remove("i.zarr/members/c"), expect="i.zarr")
case(C, "index_build_chunk", "index build {d}/e.zarr -o {d}/o.zarr",
     remove("e.zarr/X/c/1/0"), outs=["o.zarr"], expect="e.zarr")
case(C, "words_model_chunk", "words neighbors cat --model {d}/w.zarr",
     remove("w.zarr/vectors/c"), expect="w.zarr")
case(C, "sentences_model_chunk", ["sentences", "neighbors", "good film", "--model",
                                  "{d}/sent.zarr"],
     remove("sent.zarr/embedding/c"), expect="sent.zarr")
case(C, "sentences_corpus_chunk", "sentences build {d}/sent.zarr.corpus.zarr --out {d}/o.zarr",
     remove("sent.zarr.corpus.zarr/tokens/values/c"), outs=["o.zarr"], expect="chunks")
case(C, "sparse_store_chunk", "fit {d}/sp.zarr -o {d}/o.zarr -k 2",
     chain(at("s.npz", lambda p: _ok(["ingest", str(p), "-o", f"{p.parent}/sp.zarr"])),
           remove("sp.zarr/indices/c")),
     outs=["o.zarr"], expect="sp.zarr")


# --- wrong dtype, shape, empty, NaN/inf ------------------------------------------------------
W = "wrong_data"
ING_X = "ingest {d}/x.npy -o {d}/o.zarr"
ING_XY = "ingest {d}/x.npy -o {d}/o.zarr --labels {d}/y.npy"
case(W, "npy_object", ING_X, npy("x.npy", lambda: np.array([[1, "a"], [2, None]], dtype=object),
                                 allow_pickle=True), outs=["o.zarr"], expect="x.npy")
case(W, "npy_complex", ING_X, npy("x.npy", lambda: np.ones((4, 3), complex)), outs=["o.zarr"])
case(W, "npy_strings", ING_X, npy("x.npy", lambda: np.array([["a", "b"], ["c", "d"]])),
     outs=["o.zarr"])
case(W, "npy_structured", ING_X, npy("x.npy", lambda: np.zeros(4, dtype=[("a", "f4"),
                                                                        ("b", "i4")])),
     outs=["o.zarr"])
case(W, "npy_datetime", ING_X, npy("x.npy", lambda: np.zeros((4, 2), dtype="M8[s]")),
     outs=["o.zarr"])
case(W, "npy_zero_rows", ING_X, npy("x.npy", lambda: np.zeros((0, 8), np.float32)),
     outs=["o.zarr"])
case(W, "npy_scalar", ING_X, npy("x.npy", lambda: np.float32(3)), outs=["o.zarr"])
case(W, "npy_nan", ING_X, npy("x.npy", lambda: np.where(np.eye(6, 4) > 0, np.nan, 1.0)),
     outs=["o.zarr"], expect="NaN")
case(W, "npy_inf", ING_X, npy("x.npy", lambda: np.full((6, 4), np.inf)), outs=["o.zarr"],
     expect="inf")
case(W, "npy_nan_with_labels", ING_XY, npy("x.npy", lambda: np.full((60, 2), np.nan)),
     outs=["o.zarr"])
case(W, "labels_shorter", ING_XY, npy("y.npy", lambda: np.arange(59)), outs=["o.zarr"],
     expect="labels")
case(W, "labels_longer", ING_XY, npy("y.npy", lambda: np.arange(61)), outs=["o.zarr"],
     expect="labels")
case(W, "labels_2d", ING_XY, npy("y.npy", lambda: np.zeros((60, 2))), outs=["o.zarr"],
     expect="labels")
case(W, "labels_object", ING_XY, npy("y.npy", lambda: np.array([None] * 60), allow_pickle=True),
     outs=["o.zarr"], expect="y.npy")
case(W, "labels_nan", ING_XY, npy("y.npy", lambda: np.full(60, np.nan)), outs=["o.zarr"])
case(W, "labels_strings", ING_XY, npy("y.npy", lambda: np.array(["a"] * 60)), outs=["o.zarr"])
case(W, "idx_labels_longer", "ingest {d}/img-idx3-ubyte -o {d}/o.zarr --labels {d}/y.npy",
     outs=["o.zarr"], expect="labels")
case(W, "idx_type_code_unknown", "ingest {d}/img-idx3-ubyte -o {d}/o.zarr",
     idx("img-idx3-ubyte", bytes([0, 0, 0x0A, 1]) + struct.pack(">I", 4), b"\0" * 4),
     outs=["o.zarr"])
case(W, "npz_missing_indptr", "ingest {d}/s.npz -o {d}/o.zarr",
     at("s.npz", lambda p: _npz_drop(p, "indptr")), outs=["o.zarr"], expect="indptr")
case(W, "npz_missing_row", "ingest {d}/coo.npz -o {d}/o.zarr",
     at("coo.npz", lambda p: _npz_drop(p, "row")), outs=["o.zarr"], expect="row")
case(W, "npz_missing_format", "ingest {d}/s.npz -o {d}/o.zarr",
     at("s.npz", lambda p: _npz_drop(p, "format")), outs=["o.zarr"])
case(W, "npz_fractional_indices", "ingest {d}/s.npz -o {d}/o.zarr",
     at("s.npz", lambda p: _npz_map(p, "indices", lambda a: a + 0.5)), outs=["o.zarr"],
     expect="indices")
case(W, "npz_fractional_coo_col", "ingest {d}/coo.npz -o {d}/o.zarr",
     at("coo.npz", lambda p: _npz_map(p, "col", lambda a: a * 0.5)), outs=["o.zarr"],
     expect="col")
case(W, "npz_fractional_shape", "ingest {d}/s.npz -o {d}/o.zarr",
     at("s.npz", lambda p: _npz_set(p, shape=np.array([30.5, 10.0]))), outs=["o.zarr"],
     expect="shape")
case(W, "npz_index_out_of_range", "ingest {d}/s.npz -o {d}/o.zarr",
     at("s.npz", lambda p: _npz_map(p, "indices", lambda a: a + 10)), outs=["o.zarr"])
case(W, "npz_negative_index", "ingest {d}/coo.npz -o {d}/o.zarr",
     at("coo.npz", lambda p: _npz_map(p, "row", lambda a: a - 5)), outs=["o.zarr"])
case(W, "npz_indptr_decreasing", "ingest {d}/s.npz -o {d}/o.zarr",
     at("s.npz", lambda p: _npz_map(p, "indptr", lambda a: a[::-1].copy())), outs=["o.zarr"])
case(W, "npz_data_nan", "ingest {d}/s.npz -o {d}/o.zarr",
     at("s.npz", lambda p: _npz_map(p, "data", lambda a: a * np.nan)), outs=["o.zarr"])
case(W, "npz_data_strings", "ingest {d}/s.npz -o {d}/o.zarr",
     at("s.npz", lambda p: _npz_map(p, "data", lambda a: a.astype(str))), outs=["o.zarr"])
case(W, "npz_shape_3d", "ingest {d}/s.npz -o {d}/o.zarr",
     at("s.npz", lambda p: _npz_set(p, shape=np.array([30, 10, 1]))), outs=["o.zarr"])
case(W, "npz_format_dia", "ingest {d}/s.npz -o {d}/o.zarr",
     at("s.npz", lambda p: _npz_set(p, format=np.array("dia"))), outs=["o.zarr"])
case(W, "npz_with_labels", "ingest {d}/s.npz -o {d}/o.zarr --labels {d}/y.npy", outs=["o.zarr"])
case(W, "coo_missing_data_array", "ingest {d}/coo.zarr -o {d}/o.zarr --coo",
     remove("coo.zarr/data"), outs=["o.zarr"], expect="data")
case(W, "coo_shape_attr_text", "ingest {d}/coo.zarr -o {d}/o.zarr --coo",
     edit_json("coo.zarr/zarr.json", lambda m: m["attributes"].update(shape="30x10")),
     outs=["o.zarr"], expect="shape")
case(W, "zarr_source_without_coo", "ingest {d}/d.zarr -o {d}/o.zarr", outs=["o.zarr"])
case(W, "unknown_source_suffix", "ingest {d}/words.txt -o {d}/o.zarr", outs=["o.zarr"])
case(W, "source_missing", "ingest {d}/nothing.npy -o {d}/o.zarr", outs=["o.zarr"])
case(W, "source_is_folder", "ingest {d}/fm -o {d}/o.zarr", outs=["o.zarr"])
case(W, "store_with_nan_fit", "fit {d}/nan.zarr -o {d}/o.zarr -k 2",
     fresh(lambda d: _store_with(d, "nan.zarr", np.full((10, 3), np.nan))), outs=["o.zarr"],
     expect="NaN")
case(W, "store_with_inf_transform", "transform {d}/m.zarr {d}/inf.zarr -o {d}/o.zarr",
     fresh(lambda d: _store_with(d, "inf.zarr", np.full((10, 8), np.inf))), outs=["o.zarr"],
     expect="inf")
case(W, "store_1d_fit", "fit {d}/one.zarr -o {d}/o.zarr -k 1",
     fresh(lambda d: _store_with(d, "one.zarr", np.arange(10.0))), outs=["o.zarr"])
case(W, "store_bool_transform_wrong_width", "transform {d}/m.zarr {d}/b.zarr -o {d}/o.zarr",
     fresh(lambda d: _store_with(d, "b.zarr", np.ones((10, 5), bool))), outs=["o.zarr"])
case(W, "transform_wrong_width", "transform {d}/m.zarr {d}/e.zarr -o {d}/o.zarr", outs=["o.zarr"],
     expect="features")
case(W, "transform_labels_shorter", "transform {d}/m.zarr {d}/sy.zarr -o {d}/o.zarr",
     fresh(lambda d: _store_with(d, "sy.zarr", np.ones((10, 8)), y=np.arange(7))), outs=["o.zarr"],
     expect="y")
case(W, "transform_labels_longer", "transform {d}/m.zarr {d}/ly.zarr -o {d}/o.zarr",
     fresh(lambda d: _store_with(d, "ly.zarr", np.ones((10, 8)), y=np.arange(12))), outs=["o.zarr"],
     expect="y")
case(W, "fit_k_above_features", "fit {d}/d.zarr -o {d}/o.zarr -k 9", outs=["o.zarr"])
case(W, "fit_spectral_on_2d", "fit {d}/d.zarr -o {d}/o.zarr -k 2 --spectral dct2", outs=["o.zarr"])
case(W, "query_wrong_width", "query {d}/e.zarr --queries {d}/d.zarr", expect="features")
case(W, "query_rows_beyond", "query {d}/e.zarr --rows 50:70")
case(W, "index_build_1d", "index build {d}/one.zarr -o {d}/o.zarr",
     fresh(lambda d: _store_with(d, "one.zarr", np.arange(10.0))), outs=["o.zarr"])
case(W, "index_build_nan", "index build {d}/nan.zarr -o {d}/o.zarr",
     fresh(lambda d: _store_with(d, "nan.zarr", np.full((30, 3), np.nan))), outs=["o.zarr"])
case(W, "evaluate_no_pairs", "words evaluate {d}/words.txt --model {d}/w.zarr",
     expect="words.txt")
case(W, "evaluate_missing_file", "words evaluate {d}/nothing.txt --model {d}/w.zarr")
case(W, "dictionary_top_level_list", "words build dictionary {d}/dict.json --out {d}/o.zarr",
     put("dict.json", "[1, 2, 3]"), outs=["o.zarr"])
case(W, "dictionary_no_entries", "words build dictionary {d}/dict.json --out {d}/o.zarr",
     put("dict.json", '{"A": 1, "B": "x"}'), outs=["o.zarr"])
case(W, "reviews_bad_header", "sentences build {d}/r.tsv --out {d}/o.zarr",
     put("r.tsv", "a\tb\n1\t2\n"), outs=["o.zarr", "o.zarr.corpus.zarr"], expect="r.tsv")
case(W, "reviews_bad_rating", "sentences build {d}/r.tsv --out {d}/o.zarr",
     put("r.tsv", "split\tlabel\tid\trating\ttext\ntrain\tpos\t1\tten\tGood film.\n"),
     outs=["o.zarr", "o.zarr.corpus.zarr"], expect="r.tsv")
case(W, "words_build_missing_source", "words build spelling {d}/nothing.txt --out {d}/o.zarr",
     outs=["o.zarr"])
case(W, "sentences_words_not_a_model",
     "sentences build {d}/sent.zarr.corpus.zarr --out {d}/o.zarr --words {d}/d.zarr",
     outs=["o.zarr"])


def _npz_drop(path: Path, key: str) -> None:
    with np.load(path) as z:
        parts = {k: z[k] for k in z.files if k != key}
    np.savez(path, **parts)


def _npz_map(path: Path, key: str, fn: Callable[[np.ndarray], np.ndarray]) -> None:
    with np.load(path) as z:
        parts = {k: z[k] for k in z.files}
    parts[key] = fn(parts[key])
    np.savez(path, **parts)


def _store_with(d: Path, name: str, x: np.ndarray, y: np.ndarray | None = None) -> None:
    """A dataset store written with plain zarr (lengths and values unchecked)."""
    g = zarr.open_group(d / name, mode="w")
    g.create_array("X", data=x, chunks=(5, *x.shape[1:]), config={"write_empty_chunks": True})
    if y is not None:
        g.create_array("y", data=y, chunks=(5,), config={"write_empty_chunks": True})


# --- bad options -----------------------------------------------------------------------------
O = "bad_option"
for label, argv, expect in [
    ("no_command", "", "command"),
    ("unknown_command", "frobnicate", "frobnicate"),
    ("unknown_option", "fit {d}/d.zarr -o {d}/o.zarr --frobnicate", "frobnicate"),
    ("ingest_missing_out", "ingest {d}/x.npy", "out"),
    ("ingest_chunk_rows_negative", "ingest {d}/x.npy -o {d}/o.zarr --chunk-rows -5", "-5"),
    ("ingest_chunk_rows_zero", "ingest {d}/x.npy -o {d}/o.zarr --chunk-rows 0", "chunk-rows"),
    ("ingest_chunk_rows_text", "ingest {d}/x.npy -o {d}/o.zarr --chunk-rows abc", "abc"),
    ("ingest_chunk_rows_float", "ingest {d}/x.npy -o {d}/o.zarr --chunk-rows 2.5", "2.5"),
    ("ingest_chunk_rows_huge", "ingest {d}/x.npy -o {d}/o.zarr --chunk-rows 1e30", "1e30"),
    ("ingest_coo_chunk_rows_negative", "ingest {d}/coo.zarr -o {d}/o.zarr --coo --chunk-rows -1",
     "-1"),
    ("ingest_coo_on_npy", "ingest {d}/x.npy -o {d}/o.zarr --coo", "x.npy"),
    ("fit_k_zero", "fit {d}/d.zarr -o {d}/o.zarr -k 0", "got 0"),
    ("fit_k_negative", "fit {d}/d.zarr -o {d}/o.zarr -k -3", "-3"),
    ("fit_k_text", "fit {d}/d.zarr -o {d}/o.zarr -k abc", "abc"),
    ("fit_k_nan", "fit {d}/d.zarr -o {d}/o.zarr -k nan", "nan"),
    ("fit_k_inf", "fit {d}/d.zarr -o {d}/o.zarr -k inf", "inf"),
    ("fit_k_fraction_above_one", "fit {d}/d.zarr -o {d}/o.zarr -k 1.5", "1.5"),
    ("fit_k_zero_point_zero", "fit {d}/d.zarr -o {d}/o.zarr -k 0.0", "0.0"),
    ("fit_solver_unknown", "fit {d}/d.zarr -o {d}/o.zarr --solver magic", "magic"),
    ("fit_spectral_unknown", "fit {d}/d.zarr -o {d}/o.zarr --spectral fft", "fft"),
    ("fit_n_iter_negative", "fit {d}/d.zarr -o {d}/o.zarr --n-iter -1", "-1"),
    ("fit_n_iter_text", "fit {d}/d.zarr -o {d}/o.zarr --n-iter two", "two"),
    ("fit_n_oversamples_negative", "fit {d}/d.zarr -o {d}/o.zarr --n-oversamples -4", "-4"),
    ("fit_seed_negative", "fit {d}/d.zarr -o {d}/o.zarr --seed -1", "-1"),
    ("fit_seed_text", "fit {d}/d.zarr -o {d}/o.zarr --seed x", "x"),
    ("fit_checkpoint_every_zero", ("fit {d}/d.zarr -o {d}/o.zarr --solver incremental "
     "--checkpoint-every 0"), "checkpoint-every"),
    ("transform_missing_out", "transform {d}/m.zarr {d}/d.zarr", "out"),
    ("supervised_cells_zero", "supervised fit {d}/d.zarr -o {d}/o.zarr --cells 0", "got '0'"),
    ("supervised_cells_text", "supervised fit {d}/d.zarr -o {d}/o.zarr --cells many", "many"),
    ("supervised_depth_negative", "supervised fit {d}/d.zarr -o {d}/o.zarr --depth -1", "-1"),
    ("supervised_depth_huge", "supervised fit {d}/d.zarr -o {d}/o.zarr -k 2 --depth 99", "99"),
    ("supervised_partitions_zero", "supervised fit {d}/d.zarr -o {d}/o.zarr --partitions 0",
     "partitions"),
    ("supervised_alpha_negative", "supervised fit {d}/d.zarr -o {d}/o.zarr --alpha -2", "-2"),
    ("supervised_alpha_nan", "supervised fit {d}/d.zarr -o {d}/o.zarr --alpha nan", "nan"),
    ("supervised_routing_unknown", "supervised fit {d}/d.zarr -o {d}/o.zarr --routing magic",
     "magic"),
    ("supervised_target_missing", "supervised fit {d}/d.zarr -o {d}/o.zarr --target labels",
     "labels"),
    ("supervised_y_components_for_labels",
     "supervised fit {d}/d.zarr -o {d}/o.zarr --n-components-y 2", "regression only"),
    ("supervised_k_above_features", "supervised fit {d}/d.zarr -o {d}/o.zarr -k 50", "50"),
    ("supervised_predict_missing_out", "supervised predict {d}/sup.zarr {d}/d.zarr", "out"),
    ("supervised_predict_wrong_width", "supervised predict {d}/sup.zarr {d}/q.zarr -o {d}/o.zarr",
     "feature"),
    ("query_neighbors_zero", "query {d}/e.zarr --rows 0:2 -n 0", "neighbors"),
    ("query_neighbors_negative", "query {d}/e.zarr --rows 0:2 -n -3", "-3"),
    ("query_neighbors_text", "query {d}/e.zarr --rows 0:2 -n ten", "ten"),
    ("query_neighbors_above_rows", "query {d}/e.zarr --rows 0:2 -n 1000", "1000"),
    ("query_rows_no_colon", "query {d}/e.zarr --rows 5", "START:STOP"),
    ("query_rows_text", "query {d}/e.zarr --rows a:b", "a:b"),
    ("query_rows_reversed", "query {d}/e.zarr --rows 10:5", "10:5"),
    ("query_rows_negative", "query {d}/e.zarr --rows -3:2", "--rows"),
    ("query_no_source", "query {d}/e.zarr", "--queries"),
    ("query_both_sources", "query {d}/e.zarr --rows 0:2 --queries {d}/q.zarr", "--queries"),
    ("query_n_probe_zero", "query {d}/e.zarr --rows 0:2 --index {d}/i.zarr --n-probe 0",
     "n-probe"),
    ("query_n_probe_negative", "query {d}/e.zarr --rows 0:2 --index {d}/i.zarr --n-probe -2",
     "-2"),
    ("query_n_probe_text", "query {d}/e.zarr --rows 0:2 --index {d}/i.zarr --n-probe many",
     "many"),
    ("query_show_negative", "query {d}/e.zarr --rows 0:2 --show -1", "-1"),
    ("index_no_action", "index", "ACTION"),
    ("index_max_samples_text", "index build {d}/e.zarr -o {d}/o.zarr --max-samples abc", "abc"),
    ("index_max_samples_zero", "index build {d}/e.zarr -o {d}/o.zarr --max-samples 0",
     "max-samples"),
    ("index_max_samples_negative", "index build {d}/e.zarr -o {d}/o.zarr --max-samples -5", "-5"),
    ("index_n_probe_zero", "index build {d}/e.zarr -o {d}/o.zarr --n-probe 0", "n-probe"),
    ("index_n_probe_negative", "index build {d}/e.zarr -o {d}/o.zarr --n-probe -1", "-1"),
    ("index_max_depth_negative", "index build {d}/e.zarr -o {d}/o.zarr --max-depth -1", "-1"),
    ("index_min_samples_zero", "index build {d}/e.zarr -o {d}/o.zarr --min-samples 0",
     "min-samples"),
    ("index_n_clusters_zero", ("index build {d}/e.zarr -o {d}/o.zarr --method kmeans "
     "--n-clusters 0"), "n-clusters"),
    ("index_n_clusters_text", ("index build {d}/e.zarr -o {d}/o.zarr --method kmeans "
     "--n-clusters lots"), "lots"),
    ("index_method_unknown", "index build {d}/e.zarr -o {d}/o.zarr --method hnsw", "hnsw"),
    ("words_no_action", "words", "ACTION"),
    ("words_build_no_kind", "words build", "KIND"),
    ("words_neighbors_n_zero", "words neighbors cat --model {d}/w.zarr -n 0", "neighbors"),
    ("words_neighbors_metric", "words neighbors cat --model {d}/w.zarr --metric l1", "l1"),
    ("words_neighbors_no_model", "words neighbors cat", "--model"),
    ("words_neighbors_cells_cosine", ("words neighbors cat --model {d}/w.zarr --cells "
     "--metric cosine"), "cosine"),
    ("words_spelling_k_zero", ("words build spelling {d}/words.txt --out {d}/o.zarr "
     "--n-components 0"), "n-components"),
    ("words_spelling_limit_zero", ("words build spelling {d}/words.txt --out {d}/o.zarr "
     "--limit 0"), "limit"),
    ("words_spelling_limit_negative", ("words build spelling {d}/words.txt --out {d}/o.zarr "
     "--limit -2"), "-2"),
    ("words_spelling_layout", ("words build spelling {d}/words.txt --out {d}/o.zarr "
     "--layout diagonal"), "diagonal"),
    ("words_dictionary_k_negative", ("words build dictionary {d}/dict.json --out {d}/o.zarr "
     "--n-components -1"), "-1"),
    ("words_dictionary_n_iter_negative", ("words build dictionary {d}/dict.json --out "
     "{d}/o.zarr --n-iter -1"), "-1"),
    ("words_context_min_count_negative", ("words build context {d}/r.tsv --out {d}/o.zarr "
     "--min-count -1"), "-1"),
    ("words_context_limit_zero", "words build context {d}/r.tsv --out {d}/o.zarr --limit 0",
     "limit"),
    ("words_evaluate_no_files", "words evaluate --model {d}/w.zarr", "files"),
    ("sentences_no_action", "sentences", "ACTION"),
    ("sentences_basis_length_zero", ("sentences build {d}/r.tsv -o {d}/o.zarr --basis-length 0 "
     "-k 4"), "basis-length"),
    ("sentences_harmonics_zero", "sentences build {d}/r.tsv -o {d}/o.zarr --harmonics 0 -k 4",
     "harmonics"),
    ("sentences_harmonics_above_basis_length", ("sentences build {d}/r.tsv -o {d}/o.zarr "
     "--harmonics 20 -k 4"), "20"),
    ("sentences_max_words_zero", ("sentences build {d}/r.tsv --out {d}/o.zarr --max-words 0 "
     "--n-components 4"), "max-words"),
    ("sentences_k_zero", "sentences build {d}/r.tsv --out {d}/o.zarr --n-components 0",
     "n-components"),
    ("sentences_limit_negative", ("sentences build {d}/r.tsv --out {d}/o.zarr --limit -4 "
     "--n-components 4"), "-4"),
    ("sentences_neighbors_k_zero", ["sentences", "neighbors", "good film", "--model",
                                    "{d}/sent.zarr", "-n", "0"], "neighbors"),
    ("demo_k_zero", "demo --scheduler threads -k 0", "-k"),
    ("demo_k_text", "demo --scheduler threads -k many", "many"),
    ("demo_n_probe_zero", "demo --scheduler threads --search cells --n-probe 0", "n-probe"),
    ("demo_train_eval_negative", "demo --scheduler threads --train-eval-size -1", "-1"),
    ("demo_dataset_unknown", "demo --dataset cifar", "cifar"),
    ("demo_mnist_without_path", "demo --dataset mnist --scheduler threads", "--path"),
    ("demo_path_missing", "demo --dataset fashion-mnist --path {d}/nowhere --scheduler threads",
     "nowhere"),
]:
    outs = ["o.zarr"] if "{d}/o.zarr" in (argv if isinstance(argv, str) else " ".join(argv)) \
        else []
    case(O, label, argv, outs=outs, expect=expect)


# --- bad addresses ---------------------------------------------------------------------------
B = "bad_address"
for label, address, expect in [
    ("tcp_no_host", "tcp://", "tcp://"),
    ("unknown_scheme", "notascheme://foo", "notascheme"),
    ("port_not_a_number", "host:notaport", "notaport"),
    ("tcp_port_not_a_number", "tcp://127.0.0.1:http", "http"),
    ("port_out_of_range", "tcp://127.0.0.1:99999", "99999"),
    ("port_zero", "tcp://127.0.0.1:0", "port"),
    ("no_host_port_only", "tcp://:8786", "host"),
    ("tls_without_certificates", "tls://127.0.0.1:8786", "tls"),
    ("closed_port", "tcp://127.0.0.1:1", "127.0.0.1:1"),
    ("empty", "", "scheduler"),
    ("spaces", "tcp://local host:8786", "local host"),
    ("ipv6_unclosed", "tcp://[::1:8786", "[::1"),
    ("inproc_foreign", "inproc://10.0.0.1/1234/1", "inproc"),
    ("path_not_address", "/tmp/scheduler.json", "scheduler.json"),
]:
    case(B, f"fit_{label}", ["fit", "{d}/d.zarr", "-o", "{d}/o.zarr", "-k", "2", "--scheduler",
                             address], outs=["o.zarr"], expect=expect)
for cmd, argv in [
    ("transform", "transform {d}/m.zarr {d}/d.zarr -o {d}/o.zarr"),
    ("query", "query {d}/e.zarr --rows 0:2"),
    ("index_build", "index build {d}/e.zarr -o {d}/o.zarr"),
    ("sentences_build", "sentences build {d}/sent.zarr.corpus.zarr --out {d}/o.zarr"),
    ("demo", "demo"),
]:
    for label, address in (("unknown_scheme", "notascheme://foo"), ("closed_port",
                                                                    "tcp://127.0.0.1:1")):
        case(B, f"{cmd}_{label}", [*argv.split(), "--scheduler", address],
             outs=["o.zarr"] if "o.zarr" in argv else [], expect=address.split("//")[1])


# --- text encodings --------------------------------------------------------------------------
E = "text_encoding"
LATIN1_WORDS = "café naïve façade señor über crème déjà rôle garçon fiancée".replace(
    " ", "\n").encode("latin-1")
SPELL = "words build spelling {d}/words.txt --out {d}/o.zarr"
case(E, "word_list_latin1", SPELL, put("words.txt", LATIN1_WORDS), outs=["o.zarr"],
     expect="Latin-1")
case(E, "word_list_cp1252", SPELL, put("words.txt", "“quoted”\ncafé\nnaïve".encode("cp1252")),
     outs=["o.zarr"], expect="1252")
case(E, "word_list_utf16", SPELL, put("words.txt", "\n".join(WORDS).encode("utf-16")),
     outs=["o.zarr"], expect="UTF-16")
case(E, "word_list_utf16_no_bom", SPELL, put("words.txt", "\n".join(WORDS).encode("utf-16-le")),
     outs=["o.zarr"], expect="UTF-16")
case(E, "word_list_binary", SPELL, put("words.txt", bytes(range(128, 256)) * 8), outs=["o.zarr"],
     expect="words.txt")
case(E, "word_list_nul_bytes", SPELL, put("words.txt", b"\0" * 64), outs=["o.zarr"],
     expect="words.txt")
case(E, "word_list_empty", SPELL, put("words.txt", b""), outs=["o.zarr"], expect="words.txt")
case(E, "word_list_only_blank_lines", SPELL, put("words.txt", b"\n \n\t\n"), outs=["o.zarr"],
     expect="words.txt")
case(E, "pairs_latin1", "words evaluate {d}/pairs.txt --model {d}/w.zarr",
     put("pairs.txt", "café\tthé\t5\nnaïve\tbébé\t3\n".encode("latin-1")), expect="Latin-1")
case(E, "pairs_utf16", "words evaluate {d}/pairs.txt --model {d}/w.zarr",
     put("pairs.txt", "cat\tdog\t7\nfrog\tbus\t1\n".encode("utf-16")), expect="UTF-16")
case(E, "dictionary_latin1", "words build dictionary {d}/dict.json --out {d}/o.zarr",
     put("dict.json", json.dumps({w.upper(): {"SYNONYMS": ["thé", "crème"], "ANTONYMS": []}
                                  for w in LATIN1_WORDS.decode("latin-1").split()},
                                 ensure_ascii=False).encode("latin-1")), outs=["o.zarr"],
     expect="Latin-1")
case(E, "dictionary_utf16", "words build dictionary {d}/dict.json --out {d}/o.zarr",
     put("dict.json", json.dumps(_dictionary()).encode("utf-16")),
     outs=["o.zarr"], expect="UTF-16")
case(E, "dictionary_deep_json", "words build dictionary {d}/dict.json --out {d}/o.zarr",
     put("dict.json", '{"A": ' + _deep_json(100_000) + "}"), outs=["o.zarr"], expect="deep")
case(E, "dictionary_deep_json_xz", "words build dictionary {d}/dict.json.xz --out {d}/o.zarr",
     put("dict.json.xz", lzma.compress(_deep_json(100_000).encode())), outs=["o.zarr"],
     expect="deep")
case(E, "reviews_utf16", "sentences build {d}/r.tsv --out {d}/o.zarr",
     put("r.tsv", _reviews(4).encode("utf-16")),
     outs=["o.zarr", "o.zarr.corpus.zarr"], expect="UTF-16")
case(E, "reviews_binary", "words build context {d}/r.tsv --out {d}/o.zarr",
     put("r.tsv", bytes(range(256)) * 4), outs=["o.zarr", "o.zarr.corpus.zarr"], expect="r.tsv")
case(E, "neighbors_word_not_utf8", ["words", "neighbors", "caf\udce9", "--model", "{d}/w.zarr"],
     expect="UTF-8")
case(E, "sentence_query_not_utf8", ["sentences", "neighbors", "good \udce9 film", "--model",
                                    "{d}/sent.zarr"], expect="UTF-8")
case(E, "path_not_utf8", ["fit", "{d}/d\udce9.zarr", "-o", "{d}/o.zarr"], outs=["o.zarr"])


# --- tampered models and indexes -------------------------------------------------------------
M = "tampered_model"
TR = "transform {d}/m.zarr {d}/d.zarr -o {d}/o.zarr"


def _model_attrs(fn: Callable[[dict], object]) -> Callable[[Path], None]:
    return edit_json("m.zarr/zarr.json", lambda m: fn(m["attributes"]["veob_dask"]))


def _array(rel: str, values: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path], None]:
    """Rewrite array ``rel`` of a store with ``values(old)`` (same zarr.json otherwise)."""
    def setup(d: Path) -> None:
        arr = zarr.open_array(d / rel, mode="r")
        old = np.asarray(arr[...])
        new = values(old)
        g = zarr.open_group(d / rel.rsplit("/", 1)[0], mode="a")
        attrs = dict(arr.attrs)
        name = rel.rsplit("/", 1)[1]
        del g[name]
        a = g.create_array(name, data=new)
        a.attrs.update(attrs)
    return _uses(setup, rel)


case(M, "model_is_dataset", "transform {d}/d.zarr {d}/d.zarr -o {d}/o.zarr", outs=["o.zarr"],
     expect="d.zarr")
case(M, "model_missing", "transform {d}/nothing.zarr {d}/d.zarr -o {d}/o.zarr", outs=["o.zarr"],
     expect="nothing.zarr")
case(M, "model_is_a_file", "transform {d}/x.npy {d}/d.zarr -o {d}/o.zarr", outs=["o.zarr"],
     expect="x.npy")
case(M, "model_format_version_99", TR, _model_attrs(lambda a: a.update(format_version=99)),
     outs=["o.zarr"], expect="m.zarr")
case(M, "model_params_not_object", TR, _model_attrs(lambda a: a.update(params=[1, 2])),
     outs=["o.zarr"], expect="m.zarr")
case(M, "model_unknown_param", TR, _model_attrs(lambda a: a["params"].update(evil=1)),
     outs=["o.zarr"], expect="m.zarr")
case(M, "model_kind_write_array", TR,
     _model_attrs(lambda a: a.update(kind="veob_dask.io.store:write_array")), outs=["o.zarr"],
     expect="m.zarr")
case(M, "model_kind_cli_main", TR, _model_attrs(lambda a: a.update(kind="veob_dask.cli:main")),
     outs=["o.zarr"], expect="m.zarr")
case(M, "model_kind_prefix_module", TR,
     _model_attrs(lambda a: a.update(kind="veob_dask_evil.mod:Cls")), outs=["o.zarr"],
     expect="veob_dask_evil")
case(M, "model_kind_os_system", TR, _model_attrs(lambda a: a.update(kind="os:system")),
     outs=["o.zarr"], expect="os:system")
case(M, "model_kind_runtime_connect", TR,
     _model_attrs(lambda a: a.update(kind="veob_dask.runtime:connect",
                                     params={"address": "tcp://127.0.0.1:1"})),
     outs=["o.zarr"], expect="m.zarr")
case(M, "model_components_nan", TR, _array("m.zarr/components_", lambda a: a * np.nan),
     outs=["o.zarr"], expect="m.zarr")
case(M, "model_components_int8", TR, _array("m.zarr/components_", lambda a: a.astype(np.int8)),
     outs=["o.zarr"], expect="m.zarr")
case(M, "model_components_bool", TR, _array("m.zarr/components_", lambda a: a > 0),
     outs=["o.zarr"], expect="m.zarr")
case(M, "model_components_wrong_shape", TR, _array("m.zarr/components_", lambda a: a[:, :5]),
     outs=["o.zarr"], expect="m.zarr")
case(M, "model_state_not_dict", TR, _model_attrs(lambda a: a.update(state="x")),
     outs=["o.zarr"], expect="m.zarr")
case(M, "index_offsets_tampered", "query {d}/e.zarr --rows 0:2 --index {d}/i.zarr",
     _array("i.zarr/offsets", lambda a: a[::-1].copy()), expect="i.zarr")
case(M, "index_members_out_of_range", "query {d}/e.zarr --rows 0:2 --index {d}/i.zarr",
     _array("i.zarr/members", lambda a: a * 0 + 1_000_000_000), expect="i.zarr")
case(M, "index_members_negative", "query {d}/e.zarr --rows 0:2 --index {d}/i.zarr",
     _array("i.zarr/members", lambda a: a * 0 - 7), expect="i.zarr")
case(M, "index_n_probe_zero", "query {d}/e.zarr --rows 0:2 --index {d}/i.zarr",
     edit_json("i.zarr/zarr.json", lambda m: _set_nested(m["attributes"], "n_probe", 0)),
     expect="i.zarr")
case(M, "index_foreign_embedding", "query {d}/q.zarr --rows 0:2 --index {d}/i.zarr",
     expect="i.zarr")
case(M, "index_is_model", "query {d}/e.zarr --rows 0:2 --index {d}/m.zarr", expect="m.zarr")
SP = "supervised predict {d}/sup.zarr {d}/d.zarr -o {d}/o.zarr"
case(M, "supervised_model_is_svd", "supervised predict {d}/m.zarr {d}/d.zarr -o {d}/o.zarr",
     outs=["o.zarr"], expect="m.zarr")
case(M, "supervised_model_is_dataset", "supervised predict {d}/d.zarr {d}/d.zarr -o {d}/o.zarr",
     outs=["o.zarr"], expect="d.zarr")
case(M, "supervised_tree_parent_out_of_range", SP,
     _array("sup.zarr/node_parent_", lambda a: a * 0 + 10**6), outs=["o.zarr"], expect="sup.zarr")
case(M, "supervised_tree_children_cycle", SP,
     _array("sup.zarr/node_first_child_", lambda a: a * 0), outs=["o.zarr"], expect="sup.zarr")
case(M, "supervised_maps_nan", SP, _array("sup.zarr/node_maps_", lambda a: a * np.nan),
     outs=["o.zarr"], expect="sup.zarr")
case(M, "supervised_maps_wrong_shape", SP, _array("sup.zarr/node_maps_", lambda a: a[:, :2]),
     outs=["o.zarr"], expect="sup.zarr")
case(M, "supervised_classes_dropped", SP, _array("sup.zarr/classes_", lambda a: a[:1]),
     outs=["o.zarr"], expect="sup.zarr")
case(M, "word_model_is_dataset", "words neighbors cat --model {d}/d.zarr", expect="d.zarr")
case(M, "word_model_offsets_tampered", "words neighbors cat --model {d}/w.zarr",
     _array("w.zarr/words_offsets", lambda a: a[::-1].copy()), expect="w.zarr")
case(M, "sentence_model_is_word_model", ["sentences", "neighbors", "good film", "--model",
                                         "{d}/w.zarr"], expect="w.zarr")


def _set_nested(attrs: dict, key: str, value: object) -> None:
    """Set ``key`` wherever it occurs in a nested attribute dict."""
    for v in attrs.values():
        if isinstance(v, dict):
            if key in v:
                v[key] = value
            _set_nested(v, key, value)


# --- outputs ---------------------------------------------------------------------------------
U = "output"
for cmd, argv in [
    ("ingest", "ingest {d}/x.npy -o {d}/OUT"),
    ("fit", "fit {d}/d.zarr -o {d}/OUT -k 2"),
    ("transform", "transform {d}/m.zarr {d}/d.zarr -o {d}/OUT"),
    ("index_build", "index build {d}/e.zarr -o {d}/OUT"),
    ("query", "query {d}/e.zarr --rows 0:2 --out {d}/OUT"),
    ("words_build", "words build spelling {d}/words.txt --out {d}/OUT"),
    ("supervised_fit", "supervised fit {d}/d.zarr -o {d}/OUT -k 2"),
    ("supervised_predict", "supervised predict {d}/sup.zarr {d}/d.zarr -o {d}/OUT"),
]:
    case(U, f"{cmd}_existing_store", argv.replace("OUT", "q.zarr"), expect="q.zarr")
    case(U, f"{cmd}_folder_with_file", argv.replace("OUT", "fm"), expect="fm")
    case(U, f"{cmd}_regular_file", argv.replace("OUT", "pairs.txt"), expect="pairs.txt")
case(U, "transform_into_input", "transform {d}/m.zarr {d}/d.zarr -o {d}/d.zarr/X/out.zarr",
     expect="d.zarr")
case(U, "transform_dot", "transform {d}/m.zarr {d}/d.zarr -o .")
case(U, "transform_dotdot", "transform {d}/m.zarr {d}/d.zarr -o ..")
case(U, "transform_holding_input", "transform {d}/m.zarr {d}/d.zarr -o {d} --overwrite")
case(U, "ingest_same_as_input_overwrite", "ingest {d}/coo.zarr -o {d}/coo.zarr --coo --overwrite",
     expect="coo.zarr")
case(U, "transform_foreign_store_overwrite", "transform {d}/m.zarr {d}/d.zarr -o {d}/coo.zarr "
     "--overwrite", expect="coo.zarr")
case(U, "supervised_predict_into_input",
     "supervised predict {d}/sup.zarr {d}/d.zarr -o {d}/sup.zarr --overwrite", expect="sup.zarr")
case(U, "fit_parent_is_file", "fit {d}/d.zarr -o {d}/x.npy/o.zarr -k 2", expect="is a file")
case(U, "ingest_parent_is_file", "ingest {d}/x.npy -o {d}/pairs.txt/sub/o.zarr", expect="pairs.txt")
case(U, "sentences_corpus_is_file", "sentences build {d}/r.tsv --out {d}/o.zarr --corpus "
     "{d}/pairs.txt --n-components 4", outs=["o.zarr"], expect="pairs.txt")


case(U, "ingest_disk_full", "ingest {d}/big.npy -o {d}/full/o.zarr",
     fresh(lambda d: np.save(d / "big.npy", np.random.default_rng(0).random((400, 256)))),
     mounts={"full": "full"}, expect="space")
case(U, "transform_disk_full", "transform {d}/m.zarr {d}/big.zarr -o {d}/full/o.zarr",
     fresh(lambda d: _store_with(d, "big.zarr", np.random.default_rng(0).random((4000, 8)))),
     mounts={"full": "full"}, expect="space")
case(U, "fit_read_only_target", "fit {d}/d.zarr -o {d}/ro/o.zarr -k 2", mounts={"ro": "ro"},
     expect="read-only")
case(U, "words_build_read_only_target", "words build spelling {d}/words.txt --out {d}/ro/o.zarr",
     mounts={"ro": "ro"}, expect="read-only")


# ------------------------------------------------------------------------------ the test
COUNTS = Counter(c.category for c in CASES)
#: Progress lines that a command prints to stderr as its stages start (see cli/_common.Stages).
PROGRESS = re.compile(r"^(\[[\w-]+\] |input .*: shape |Dask cluster: )")
#: How veob_dask.cli.describe_error marks exceptions it did not expect to name.
GENERIC = re.compile(r"\((ValueError|[A-Za-z]+Error)\)\.?$|this is a bug")


def _tree(root: Path, skip: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """Relative path -> (inode, size, mtime) of each file under ``root`` but ``skip``."""
    out: dict[str, tuple[int, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for name in [*dirnames, *filenames]:
            key = os.path.normpath(os.path.join(rel, name))
            if any(key == s or key.startswith(s + os.sep) for s in skip):
                continue
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            # a folder's entries are compared one by one; its own times change when a
            # temporary sibling comes and goes
            out[key] = (0,) if os.path.isdir(p) else (st.st_ino, st.st_size, st.st_mtime_ns)
    return out


def _needs(c: Case) -> set[str] | None:
    """Top-level fixture entries a case uses (None: all of them)."""
    names = set(re.findall(r"\{d\}/([^/\s]+)", " ".join(c.argv)))
    paths = getattr(c.setup, "paths", None) if c.setup is not None else []
    if paths is None or "*" in paths:
        return None
    return names | {p.split("/")[0] for p in paths}


def _prepare(base: Path, d: Path, c: Case) -> None:
    """Hard-link the fixture entries the case uses into ``d`` (setups replace, never edit,
    the files they damage), then damage them."""
    needs = _needs(c)
    d.mkdir()
    for entry in base.iterdir():
        if needs is None or entry.name in needs:
            if entry.is_dir():
                shutil.copytree(entry, d / entry.name, copy_function=os.link)
            else:
                os.link(entry, d / entry.name)
    if c.setup is not None:
        c.setup(d)


@contextlib.contextmanager
def _mounted(d: Path, mounts: dict[str, str]) -> Iterator[None]:
    """Mount a small tmpfs at ``d/NAME`` for each entry: "ro" read-only, "full" 64 kB."""
    done: list[Path] = []
    try:
        for name, kind in mounts.items():
            target = d / name
            target.mkdir()
            options = "size=64k" + (",ro" if kind == "ro" else "")
            run = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
                                 capture_output=True, text=True, check=False)
            if run.returncode != 0:
                pytest.skip(f"needs root to mount a tmpfs ({run.stderr.strip()})")
            done.append(target)
        yield
    finally:
        for target in reversed(done):
            subprocess.run(["umount", str(target)], check=False)


def _params() -> list[object]:
    seen: set[str] = set()
    params = []
    for c in CASES:
        cid = f"{c.category}({COUNTS[c.category]})-{c.name}"
        assert cid not in seen, cid
        seen.add(cid)
        marks = [pytest.mark.xfail(strict=True, reason=c.xfail)] if c.xfail else []
        params.append(pytest.param(c, id=cid, marks=marks))
    return params


def _check_one_line(code: int, err: str, c: Case) -> str:
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    errors = [ln for ln in lines if not PROGRESS.match(ln)]
    assert code == 2, (code, err)
    assert len(errors) == 1 and lines[-1] == errors[0], lines
    line = errors[0]
    assert line.startswith("veob"), line
    # an error the library did not name itself reaches the generic mapping of cli.main
    assert not GENERIC.search(line), f"unwrapped error: {line}"
    if c.expect is not None:
        assert c.expect.lower() in line.lower(), (c.expect, line)
    return line


@pytest.mark.parametrize("c", _params())
def test_bad_input(c: Case, base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                   monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "w"
    _prepare(base, d, c)
    monkeypatch.chdir(d)
    argv = [a.replace("{d}", str(d)) for a in c.argv]
    outs = [os.path.join("w", o) for o in c.outs]
    with _mounted(d, c.mounts):
        before = _tree(tmp_path, outs)
        capsys.readouterr()
        code = main(argv)
        _, err = capsys.readouterr()
        after = _tree(tmp_path, outs)
        leftovers = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob(".*.tmp-*"))
    _check_one_line(code, err, c)
    assert not leftovers, leftovers
    if outs:
        assert not (tmp_path / outs[0]).exists(), f"{outs[0]} was written"
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, changed


def test_corpus_size() -> None:
    """The corpus keeps at least 150 cases, in every category."""
    assert len(CASES) >= 150, len(CASES)
    assert set(COUNTS) == {T, A, Z, C, W, O, B, E, M, U}, COUNTS


# ------------------------------------------------------------------------------ subprocesses
SUBPROCESS_CASES = [
    ("npy_header_only", ["ingest", "{d}/x.npy", "-o", "{d}/o.zarr"], cut("x.npy", 128)),
    ("zarr_json_shape_1e15", FIT.split(), edit_json(XJ, _set(shape=[10**15, 8]))),
    ("chunk_rows_negative", ["ingest", "{d}/x.npy", "-o", "{d}/o.zarr", "--chunk-rows", "-5"],
     None),
    ("unknown_scheme", ["fit", "{d}/d.zarr", "-o", "{d}/o.zarr", "--scheduler",
                        "notascheme://foo"],
     None),
    ("dictionary_xz_cut", ["words", "build", "dictionary", "{d}/dict.json.xz", "--out",
                           "{d}/o.zarr"], cut("dict.json.xz", 0.6)),
]


def test_subprocess_exit_code_and_no_traceback(base: Path, tmp_path: Path) -> None:
    """A handful of cases through ``python -m veob_dask``, run side by side."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")])}
    env.pop("VEOB_DEBUG", None)
    procs = []
    for name, argv, setup in SUBPROCESS_CASES:
        d = tmp_path / name
        _prepare(base, d, Case("subprocess", name, argv, setup))
        args = [a.replace("{d}", str(d)) for a in argv]
        procs.append((name, subprocess.Popen([sys.executable, "-m", "veob_dask", *args],
                                             cwd=d, env=env, stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE, text=True)))
    for name, proc in procs:
        _, err = proc.communicate(timeout=120)
        assert "Traceback" not in err, (name, err)
        lines = [ln for ln in err.splitlines() if ln.strip() and not PROGRESS.match(ln)]
        assert proc.returncode == 2 and len(lines) == 1, (name, proc.returncode, err)
        assert not list((tmp_path / name).rglob(".*.tmp-*")), name
