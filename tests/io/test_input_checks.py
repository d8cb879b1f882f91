"""Checks of untrusted input files and Zarr metadata, at the library level (the CLI corpus is
``tests/cli/test_bad_inputs.py``)."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from veob_dask import save
from veob_dask.errors import DataError, StoreFormatError, StoreNotFoundError
from veob_dask.io import read_array, write_array
from veob_dask.io.files import format_bytes, open_npy
from veob_dask.io.idx import idx_header, iter_idx_blocks, read_idx
from veob_dask.io.ingest import ingest
from veob_dask.io.metadata import check_row_array, check_store_metadata
from veob_dask.io.sparse import ingest_npz, write_sparse
from veob_dask.svd import SVDEmbedding
from veob_dask.text.tokenize import decode_text_file, guess_encoding


def _idx(path: Path, arr: np.ndarray, gz: bool = False, extra: bytes = b"") -> Path:
    data = bytes([0, 0, 8, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data += arr.astype(np.uint8).tobytes() + extra
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def test_metadata_of_every_store_the_library_writes_passes(tmp_path: Path) -> None:
    """No false alarms: dataset, sparse, model and 3-D stores pass the checks."""
    rng = np.random.default_rng(0)
    write_array(rng.random((50, 4)), tmp_path / "d.zarr", extra={"y": np.arange(50)},
                chunk_rows=16)
    write_array(rng.random((10, 3, 2)).astype(np.float32), tmp_path / "img.zarr")
    write_sparse(sp.random(20, 7, density=0.3, format="csr", random_state=0),
                 tmp_path / "s.zarr", chunk_rows=6)
    save(SVDEmbedding(n_components=2).fit(rng.random((30, 5))), tmp_path / "m.zarr")
    for name, arrays in (("d.zarr", {"X", "y"}), ("img.zarr", {"X"}),
                         ("s.zarr", {"indptr", "indices", "data"}), ("m.zarr",
                                                                     {"components_"})):
        nodes = check_store_metadata(tmp_path / name)
        assert nodes[""]["node_type"] == "group" and arrays <= nodes.keys(), name
    for name, array in (("d.zarr", "X"), ("d.zarr", "y"), ("img.zarr", "X"),
                        ("s.zarr", "indptr"), ("s.zarr", "data")):
        assert check_row_array(tmp_path / name, array)["node_type"] == "array"


def _edit(path: Path, **changes: object) -> None:
    meta = json.loads(path.read_text())
    meta.update(changes)
    path.write_text(json.dumps(meta))


def test_row_array_claims_are_checked_against_chunks(tmp_path: Path) -> None:
    write_array(np.ones((40, 6)), tmp_path / "d.zarr", chunk_rows=10)
    meta = tmp_path / "d.zarr" / "X" / "zarr.json"
    _edit(meta, shape=[40, 3])  # the chunks still hold 6 columns
    with pytest.raises(StoreFormatError, match=r"chunks of \[10, 6\]"):
        read_array(tmp_path / "d.zarr")
    _edit(meta, shape=[41, 6])  # a fifth row chunk that was never written
    with pytest.raises(StoreFormatError, match=r"claims 41 rows .* chunk c/4/0 .* missing"):
        read_array(tmp_path / "d.zarr")
    _edit(meta, shape=[10**15, 6])
    with pytest.raises(StoreFormatError, match="PiB"):
        read_array(tmp_path / "d.zarr")
    _edit(meta, shape=[40, 6])  # the true shape again: it reads
    np.testing.assert_array_equal(read_array(tmp_path / "d.zarr").compute(), np.ones((40, 6)))


def test_npy_header_is_compared_with_the_file_size(tmp_path: Path) -> None:
    np.save(tmp_path / "f.npy", np.asfortranarray(np.arange(12.0).reshape(4, 3)))
    np.testing.assert_array_equal(open_npy(tmp_path / "f.npy"), np.arange(12.0).reshape(4, 3))
    raw = (tmp_path / "f.npy").read_bytes()
    (tmp_path / "f.npy").write_bytes(raw[:-8])
    with pytest.raises(DataError, match=r"truncated .* 96 bytes .* holds 216 bytes"):
        open_npy(tmp_path / "f.npy")


def test_idx_sizes_are_checked_before_reading(tmp_path: Path) -> None:
    imgs = np.arange(5 * 4, dtype=np.uint8).reshape(5, 2, 2)
    assert idx_header(_idx(tmp_path / "a-idx3-ubyte", imgs))[0] == (5, 2, 2)
    with pytest.raises(DataError, match="4 bytes after its last sample"):
        idx_header(_idx(tmp_path / "b-idx3-ubyte", imgs, extra=b"\0" * 4))
    head = bytes([0, 0, 8, 3]) + struct.pack(">3I", 4_000_000_000, 28, 28)
    (tmp_path / "c-idx3-ubyte.gz").write_bytes(gzip.compress(head + b"\0" * 100))
    with pytest.raises(DataError, match=r"claims 4,000,000,000 samples × 28×28 uint8 = 3\.14 TB"):
        idx_header(tmp_path / "c-idx3-ubyte.gz")
    gz = _idx(tmp_path / "d-idx3-ubyte.gz", imgs, gz=True, extra=b"\0")
    with pytest.raises(DataError, match="bytes after its last sample"):
        list(iter_idx_blocks(gz, 2))
    np.testing.assert_array_equal(read_idx(_idx(tmp_path / "e-idx3-ubyte.gz", imgs, gz=True)),
                                  imgs)


def test_ingest_refuses_labels_of_wrong_shape_or_kind(tmp_path: Path) -> None:
    x = np.ones((6, 2))
    for labels, words in ((np.zeros((6, 2)), "1-D"), (np.array(list("abcdef")), "numbers")):
        with pytest.raises(DataError, match=words):
            ingest(x, tmp_path / "o.zarr", labels=labels)
    assert not (tmp_path / "o.zarr").exists()


def test_npz_zip_directory_that_lies_is_refused(tmp_path: Path) -> None:
    sp.save_npz(tmp_path / "s.npz", sp.random(5, 4, density=0.5, format="csr", random_state=1),
                compressed=False)
    raw = bytearray((tmp_path / "s.npz").read_bytes())
    at = raw.find(b"PK\x01\x02")  # central directory records: name length at +28, name at +46
    while raw[at + 46:at + 46 + struct.unpack("<H", raw[at + 28:at + 30])[0]] != b"data.npy":
        at = raw.find(b"PK\x01\x02", at + 4)
    raw[at + 24:at + 28] = struct.pack("<I", 10**9)  # its uncompressed size: 1 GB
    (tmp_path / "s.npz").write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"zip directory claims 1 GB .* damaged"):
        ingest_npz(tmp_path / "s.npz", tmp_path / "o.zarr")


def test_text_decoding_tolerates_a_few_bad_bytes_and_names_other_encodings() -> None:
    text, bad = decode_text_file("naïve cat\n".encode() + b"dog \xff\n", "f")
    assert bad == 1 and text.startswith("naïve")
    with pytest.raises(DataError, match=r"Latin-1 .*iconv -f latin1"):
        decode_text_file("café thé crème brûlée".encode("latin-1"), "f")
    with pytest.raises(DataError, match="UTF-16"):
        decode_text_file("cat\ndog\n".encode("utf-16"), "f")
    assert guess_encoding("“quoted” café".encode("cp1252")) == "Windows-1252"
    assert guess_encoding("cat".encode("utf-16-le")).startswith("UTF-16 without")
    assert "binary" in guess_encoding(b"\x00\x01\x02\x03\x00\x00\x00\x05")
    assert format_bytes(3.14e12) == "3.14 TB" and format_bytes(999) == "999 bytes"


def test_missing_domains_file_is_named(tmp_path):
    np.save(tmp_path / "x.npy", np.ones((10, 3)))
    with pytest.raises(StoreNotFoundError, match=r"nokeys\.txt"):
        ingest(tmp_path / "x.npy", tmp_path / "o.zarr", domains=tmp_path / "nokeys.txt")
    assert not (tmp_path / "o.zarr").exists()
