"""Direct chunk reads (``veob_dask.io.direct``): the same values as zarr's own reads for every
layout it takes, zarr's reads for every layout it declines, and damaged files named."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import zarr
from zarr.codecs import BytesCodec, Crc32cCodec, ShardingCodec, ZstdCodec

from veob_dask.errors import StoreFormatError
from veob_dask.io import direct as direct_mod
from veob_dask.io import read_array
from veob_dask.io.direct import ChunkDecodeError, chunk_layout, read_rows


def _store(path: Path, x: np.ndarray, *, chunk_rows: int, shard_rows: int | None = None,
           compressors: object = "auto", **kw: object) -> zarr.Array:
    """A store written by zarr itself (``compressors=None``: plain bytes)."""
    group = zarr.open_group(path, mode="w")
    arr = group.create_array("X", shape=x.shape, dtype=x.dtype,
                             chunks=(chunk_rows, *x.shape[1:]),
                             shards=None if shard_rows is None else (shard_rows, *x.shape[1:]),
                             compressors=compressors, config={"write_empty_chunks": True}, **kw)
    arr[...] = x
    return arr


def _layout(path: Path) -> direct_mod.ChunkLayout | None:
    arr = zarr.open_group(path, mode="r")["X"]
    return chunk_layout(arr, str(path / "X"))


LAYOUTS = [  # (chunk rows, shard rows, compressors)
    (10, None, None), (10, None, "auto"), (10, 40, None), (10, 40, "auto"), (7, 70, None),
    (7, 21, "auto"),
]


@pytest.mark.parametrize(("chunk", "shard", "comp"), LAYOUTS)
@pytest.mark.parametrize("dtype", ["float32", "float64", "int16", "uint8", "bool"])
@pytest.mark.parametrize("direct_io", [False, True])
def test_every_aligned_selection_equals_zarr(tmp_path, chunk, shard, comp, dtype, direct_io):
    rng = np.random.default_rng(1)
    x = (rng.normal(size=(103, 2, 3)) * 50).astype(dtype)  # 103: a partial last chunk
    arr = _store(tmp_path / "s.zarr", x, chunk_rows=chunk, shard_rows=shard, compressors=comp)
    layout = _layout(tmp_path / "s.zarr")
    assert layout is not None and layout.zstd == (comp == "auto")
    for start in range(0, 103, chunk):
        for stop in [*range(start + chunk, 103, 2 * chunk), 103]:
            got = read_rows(layout, start, stop, direct_io=direct_io)
            assert got is not None and got.dtype == np.dtype(dtype)
            np.testing.assert_array_equal(got, arr[start:stop])


def test_unaligned_selections_are_left_to_zarr(tmp_path):
    x = np.arange(200, dtype=np.float32).reshape(100, 2)
    _store(tmp_path / "s.zarr", x, chunk_rows=10, shard_rows=40)
    layout = _layout(tmp_path / "s.zarr")
    assert read_rows(layout, 5, 20) is None and read_rows(layout, 0, 15) is None
    assert read_rows(layout, 0, 0).shape == (0, 2)
    # read_array takes either road and gives the same values
    np.testing.assert_array_equal(read_array(tmp_path / "s.zarr", chunk_rows=15).compute(), x)
    np.testing.assert_array_equal(read_array(tmp_path / "s.zarr")[3:97].compute(), x[3:97])
    np.testing.assert_array_equal(read_array(tmp_path / "s.zarr")[:, 1].compute(), x[:, 1])


@pytest.mark.parametrize("why", ["rows-split", "big-endian", "other-codec", "index-first",
                                 "string"])
def test_layouts_it_does_not_read_go_to_zarr(tmp_path, why):
    x = np.arange(120, dtype=np.float32).reshape(40, 3)
    path = tmp_path / "s.zarr"
    group = zarr.open_group(path, mode="w")
    if why == "rows-split":
        arr = group.create_array("X", shape=x.shape, dtype=x.dtype, chunks=(10, 2))
    elif why == "big-endian":
        arr = group.create_array("X", shape=x.shape, dtype=x.dtype, chunks=(10, 3),
                                 serializer=BytesCodec(endian="big"), compressors=None)
    elif why == "other-codec":
        arr = group.create_array("X", shape=x.shape, dtype=x.dtype, chunks=(10, 3),
                                 compressors=Crc32cCodec())
    elif why == "index-first":
        warnings.filterwarnings("ignore", "Combining a `sharding_indexed`")
        arr = group.create_array("X", shape=x.shape, dtype=x.dtype, chunks=(20, 3),
                                 serializer=ShardingCodec(chunk_shape=(10, 3),
                                                          codecs=[BytesCodec(), ZstdCodec()],
                                                          index_location="start"),
                                 compressors=None)
    else:
        x = np.array([[f"w{i}"] for i in range(40)])
        arr = group.create_array("X", shape=x.shape, dtype=str, chunks=(10, 1))
    arr[...] = x
    layout = _layout(path)
    if why == "index-first":  # supported: the index precedes the chunks
        assert layout is not None and not layout.index_at_end
        np.testing.assert_array_equal(read_rows(layout, 0, 40), x)
    else:
        assert layout is None
    if why != "rows-split":  # read_array refuses chunks that split rows
        np.testing.assert_array_equal(read_array(path).compute(), x)


def test_a_chunk_never_written_reads_as_the_fill_value(tmp_path):
    x = np.ones((40, 2), dtype=np.float32)
    x[10:20] = 7.0
    group = zarr.open_group(tmp_path / "s.zarr", mode="w")
    arr = group.create_array("X", shape=x.shape, dtype=x.dtype, chunks=(10, 2),
                             shards=(40, 2), fill_value=7.0,
                             config={"write_empty_chunks": False})
    arr[...] = x  # rows 10-19 equal the fill value: zarr leaves them out of the shard
    layout = _layout(tmp_path / "s.zarr")
    np.testing.assert_array_equal(read_rows(layout, 0, 40), x)


def _shard(path: Path) -> Path:
    return path / "X" / "c" / "0" / "0"


@pytest.mark.parametrize("comp", [None, "auto"])
def test_a_damaged_index_is_named(tmp_path, comp):
    x = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
    path = tmp_path / "s.zarr"
    _store(path, x, chunk_rows=10, shard_rows=40, compressors=comp)
    raw = bytearray(_shard(path).read_bytes())
    raw[-10] ^= 0xFF  # inside the index: the checksum no longer matches
    _shard(path).write_bytes(bytes(raw))
    with pytest.raises(ChunkDecodeError, match="crc32c"):
        read_rows(_layout(path), 0, 10)
    with pytest.raises(StoreFormatError, match=r"rows 0-10 .* corrupt"):
        read_array(path)[:10].compute()


def test_an_index_pointing_outside_its_file_is_refused(tmp_path):
    import google_crc32c

    x = np.zeros((40, 4), dtype=np.float32)
    path = tmp_path / "s.zarr"
    _store(path, x, chunk_rows=10, shard_rows=40, compressors=None)
    raw = bytearray(_shard(path).read_bytes())
    index = np.frombuffer(bytes(raw[-68:-4]), dtype="<u8").copy().reshape(4, 2)
    index[2, 0] = 2**40  # an offset far past the end, with a valid checksum
    body = index.tobytes()
    raw[-68:] = body + int(google_crc32c.value(body)).to_bytes(4, "little")
    _shard(path).write_bytes(bytes(raw))
    with pytest.raises(ChunkDecodeError, match="outside the file"):
        read_rows(_layout(path), 0, 40)


def test_a_truncated_unsharded_chunk_is_named(tmp_path):
    x = np.ones((30, 4), dtype=np.float32)
    path = tmp_path / "s.zarr"
    _store(path, x, chunk_rows=10, compressors=None)
    chunk = path / "X" / "c" / "1" / "0"
    chunk.write_bytes(chunk.read_bytes()[:100])
    with pytest.raises(ChunkDecodeError, match=r"c/1/0: a chunk of 100 bytes, expected 160"):
        read_rows(_layout(path), 10, 20)


def test_a_garbage_zstd_chunk_is_named(tmp_path):
    x = np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32)
    path = tmp_path / "s.zarr"
    _store(path, x, chunk_rows=10, compressors="auto")
    chunk = path / "X" / "c" / "2" / "0"
    chunk.write_bytes(os.urandom(chunk.stat().st_size))
    with pytest.raises(ChunkDecodeError, match="zstd"):
        read_rows(_layout(path), 20, 30)
    with pytest.raises(StoreFormatError, match="corrupt"):
        read_array(path).compute()
    from numcodecs import zstd  # a valid frame of the wrong size

    chunk.write_bytes(bytes(zstd.compress(b"x" * 100)))
    with pytest.raises(ChunkDecodeError, match="zstd"):
        read_rows(_layout(path), 20, 30)


def test_a_replaced_shard_is_not_read_through_a_stale_index(tmp_path):
    path = tmp_path / "s.zarr"
    x = np.arange(160, dtype=np.float32).reshape(40, 4)
    _store(path, x, chunk_rows=10, shard_rows=40, compressors="auto")
    np.testing.assert_array_equal(read_rows(_layout(path), 0, 40), x)
    _store(path, x * 2, chunk_rows=10, shard_rows=40, compressors="auto")  # new file, new index
    np.testing.assert_array_equal(read_rows(_layout(path), 0, 40), x * 2)


@pytest.mark.parametrize("codec", ["zstd", "none"])
def test_the_writers_codec_is_read_back_directly(tmp_path, codec):
    import dask.array as da

    from veob_dask.io import write_array
    from veob_dask.io.ingest import ingest

    x = np.random.default_rng(0).normal(size=(5000, 6)).astype(np.float32)
    write_array(da.from_array(x, chunks=(100, 6)), tmp_path / "w.zarr", codec=codec,
                shard_above=8)
    np.save(tmp_path / "x.npy", x)
    ingest(tmp_path / "x.npy", tmp_path / "i.zarr", chunk_rows=100, codec=codec,
           labels=np.arange(5000) % 3)
    for name in ("w.zarr", "i.zarr"):
        layout = _layout(tmp_path / name)
        assert layout is not None and layout.zstd == (codec == "zstd")
        np.testing.assert_array_equal(read_array(tmp_path / name).compute(), x)
    assert _layout(tmp_path / "w.zarr").shard_rows == 1600  # 16 chunks of 100 rows


def test_an_unknown_codec_is_refused_before_anything_is_written(tmp_path):
    from veob_dask.errors import InvalidParameterError
    from veob_dask.io import write_array
    from veob_dask.io.ingest import ingest

    x = np.zeros((10, 2), dtype=np.float32)
    with pytest.raises(InvalidParameterError, match="codec must be one of"):
        write_array(x, tmp_path / "w.zarr", codec="lz4")
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(InvalidParameterError, match="codec must be one of"):
        ingest(tmp_path / "x.npy", tmp_path / "i.zarr", codec="gzip")
    assert not any(tmp_path.glob("*.zarr")) and not any(tmp_path.glob(".*"))


@pytest.mark.parametrize("shard", [None, 40])
def test_one_dimensional_arrays_read_directly(tmp_path, shard):
    y = np.arange(95, dtype=np.int64) % 7
    arr = _store(tmp_path / "s.zarr", y, chunk_rows=10, shard_rows=shard)
    layout = _layout(tmp_path / "s.zarr")
    assert layout is not None and layout.row_bytes == 8
    np.testing.assert_array_equal(read_rows(layout, 20, 95), arr[20:95])


def test_direct_io_reads_page_aligned_chunks_straight_into_the_result(tmp_path):
    # 1,024 float32 rows x 4 = 16 KiB chunks: offsets, lengths and the result page-aligned
    x = np.random.default_rng(2).normal(size=(5000, 4)).astype(np.float32)
    for comp in (None, "auto"):
        arr = _store(tmp_path / f"{comp}.zarr", x, chunk_rows=1024, shard_rows=4096,
                     compressors=comp)
        layout = _layout(tmp_path / f"{comp}.zarr")
        got = read_rows(layout, 0, 5000, direct_io=True)
        assert got.ctypes.data % 4096 == 0
        np.testing.assert_array_equal(got, arr[:])
        np.testing.assert_array_equal(read_rows(layout, 4096, 5000, direct_io=True), x[4096:])


def _refuse_direct_io(monkeypatch) -> list[int]:
    """Make ``os.open`` refuse ``O_DIRECT`` as tmpfs does; the flags of every open go to the
    returned list."""
    real_open, calls = os.open, []

    def no_direct(path, flags, *args):
        calls.append(flags)
        if flags & getattr(os, "O_DIRECT", 0):
            raise OSError(22, "Invalid argument")  # what tmpfs answers
        return real_open(path, flags, *args)

    monkeypatch.setattr(direct_mod.os, "open", no_direct)
    return calls


def test_a_file_system_without_direct_io_is_read_through_the_cache(tmp_path, monkeypatch):
    x = np.arange(400, dtype=np.float32).reshape(100, 4)
    _store(tmp_path / "s.zarr", x, chunk_rows=10, shard_rows=40, compressors=None)
    calls = _refuse_direct_io(monkeypatch)
    np.testing.assert_array_equal(read_rows(_layout(tmp_path / "s.zarr"), 0, 100,
                                            direct_io=True), x)
    if hasattr(os, "O_DIRECT"):
        assert any(f & os.O_DIRECT for f in calls)


@pytest.mark.parametrize(("rule", "mode", "memory", "expected"), [
    ("direct_io_for", "auto", 10**6, True), ("direct_io_for", "auto", 10**12, False),
    ("direct_io_for", True, 10**12, True), ("direct_io_for", False, 1, False),
    ("direct_io_for", "off", 1, False), ("direct_io_for", "on", 10**12, True),
    # writes: over an eighth of physical memory
    ("direct_writes_for", "auto", 5 * 10**6, True), ("direct_writes_for", "auto", 10**8, False),
    ("direct_writes_for", True, 10**12, True), ("direct_writes_for", "off", 1, False)])
def test_direct_io_by_default_only_for_large_arrays(tmp_path, monkeypatch, rule, mode, memory,
                                                    expected):
    import dask

    if not hasattr(os, "O_DIRECT"):
        pytest.skip("no O_DIRECT on this platform")
    _store(tmp_path / "s.zarr", np.zeros((1000, 300), dtype=np.float32), chunk_rows=100)
    monkeypatch.setattr(direct_mod, "_physical_memory", lambda: memory)
    with dask.config.set({"veob_dask.direct_io": mode}):  # the array: 1.2 MB
        assert getattr(direct_mod, rule)(_layout(tmp_path / "s.zarr")) is expected


@pytest.mark.parametrize(("io", "writes", "expected"), [
    ("auto", None, False), (True, None, True), (True, False, False), (False, True, True),
    ("auto", "on", True)])
def test_direct_writes_have_their_own_switch(tmp_path, io, writes, expected):
    import dask

    if not hasattr(os, "O_DIRECT"):
        pytest.skip("no O_DIRECT on this platform")
    _store(tmp_path / "s.zarr", np.zeros((10, 3), dtype=np.float32), chunk_rows=5)
    layout = _layout(tmp_path / "s.zarr")
    with dask.config.set({"veob_dask.direct_io": io, "veob_dask.direct_writes": writes}):
        assert direct_mod.direct_writes_for(layout) is expected
        assert direct_mod.direct_io_for(layout) is (io is True)  # reads keep their own


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "zarr.json"}


@pytest.mark.parametrize(("chunk", "shard", "comp"), LAYOUTS)
@pytest.mark.parametrize("dtype", ["float32", "int16", "bool"])
@pytest.mark.parametrize("o_direct", [False, True])
def test_direct_writes_are_the_bytes_zarr_writes(tmp_path, monkeypatch, chunk, shard, comp,
                                                 dtype, o_direct):
    import threading

    import dask

    if o_direct and not hasattr(os, "O_DIRECT"):
        pytest.skip("no O_DIRECT on this platform")
    # a staging buffer of one page: files of many buffers, and a padded last one
    monkeypatch.setattr(direct_mod, "_STAGING_BYTES", 4096)
    monkeypatch.setattr(direct_mod, "_STAGING", threading.local())
    monkeypatch.setitem(dask.config.config, "veob_dask", {"direct_io": o_direct})
    x = (np.random.default_rng(3).normal(size=(103, 20, 3)) * 50).astype(dtype)
    _store(tmp_path / "zarr.zarr", x, chunk_rows=chunk, shard_rows=shard, compressors=comp)
    arr = _store(tmp_path / "ours.zarr", x, chunk_rows=chunk, shard_rows=shard,
                 compressors=comp)
    for f in (tmp_path / "ours.zarr" / "X" / "c").rglob("*"):  # keep the metadata only
        if f.is_file():
            f.unlink()
    layout = chunk_layout(arr, str(tmp_path / "ours.zarr" / "X"))
    per_file = shard or chunk
    assert not direct_mod.write_rows(layout, 1, x[1:per_file + 1])  # not on a file boundary
    for start in range(0, 103, 2 * per_file):
        assert direct_mod.write_rows(layout, start, x[start:start + 2 * per_file])
    assert direct_mod.direct_writes_for(layout) is o_direct
    assert _files(tmp_path / "ours.zarr" / "X") == _files(tmp_path / "zarr.zarr" / "X")
    np.testing.assert_array_equal(zarr.open_array(tmp_path / "ours.zarr" / "X")[:], x)


def test_a_file_system_without_direct_io_is_written_through_the_cache(tmp_path, monkeypatch):
    import dask

    x = np.arange(4000, dtype=np.float32).reshape(1000, 4)
    arr = _store(tmp_path / "s.zarr", np.zeros_like(x), chunk_rows=100, shard_rows=400,
                 compressors=None)
    calls = _refuse_direct_io(monkeypatch)
    with dask.config.set({"veob_dask.direct_io": True}):
        assert direct_mod.write_rows(_layout(tmp_path / "s.zarr"), 0, x)
    np.testing.assert_array_equal(arr[:], x)
    if hasattr(os, "O_DIRECT"):
        assert any(f & os.O_DIRECT for f in calls) and any(
            not f & os.O_DIRECT for f in calls)


@pytest.mark.parametrize("index_crc", [True, False])
@pytest.mark.parametrize("o_direct", [False, True])
@pytest.mark.parametrize(("shape", "dtype"), [((110, 128), "float32"),  # 8 rows: one page
                                              ((110, 2, 512), "int16"),
                                              ((110, 5), "float64")])  # chunks of no page
def test_chunks_written_in_place_in_any_order_are_the_bytes_zarr_writes(
        tmp_path, monkeypatch, index_crc, o_direct, shape, dtype):
    import random
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import dask

    if o_direct and not hasattr(os, "O_DIRECT"):
        pytest.skip("no O_DIRECT on this platform")
    monkeypatch.setattr(direct_mod, "_STAGING_BYTES", 4096)  # many flushes a chunk
    monkeypatch.setattr(direct_mod, "_STAGING", threading.local())
    monkeypatch.setitem(dask.config.config, "veob_dask", {"direct_io": o_direct})
    opened: list[int] = []
    real_open = os.open
    monkeypatch.setattr(direct_mod.os, "open",
                        lambda p, f, *a, **k: opened.append(f) or real_open(p, f, *a, **k))
    x = (np.random.default_rng(4).normal(size=shape) * 50).astype(dtype)
    index = [BytesCodec(), Crc32cCodec()] if index_crc else [BytesCodec()]
    sharding = ShardingCodec(chunk_shape=(8, *shape[1:]), codecs=[BytesCodec()],
                             index_codecs=index)
    kw = {"chunks": (32, *shape[1:]), "serializer": sharding, "compressors": None,
          "config": {"write_empty_chunks": True}}
    for name in ("zarr.zarr", "ours.zarr"):
        arr = zarr.open_group(tmp_path / name, mode="w").create_array(
            "X", shape=shape, dtype=dtype, **kw)
    zarr.open_group(tmp_path / "zarr.zarr", mode="r+")["X"][...] = x
    layout = chunk_layout(arr, str(tmp_path / "ours.zarr" / "X"))
    assert layout is not None and direct_mod.in_place_rows(layout)
    # single chunks and pairs inside a shard (the last one partial), in a shuffled order,
    # from four threads at once; no whole shard (written whole, not in place)
    spans = [(s, min(s + 8, 110)) for s in range(0, 110, 8)]
    spans = [*spans[:2], (16, 32), *spans[4:]]
    random.Random(5).shuffle(spans)
    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(lambda s: direct_mod.write_rows(layout, s[0], x[s[0]:s[1]]), spans))
    assert _files(tmp_path / "ours.zarr" / "X") == _files(tmp_path / "zarr.zarr" / "X")
    np.testing.assert_array_equal(zarr.open_array(tmp_path / "ours.zarr" / "X")[:], x)
    aligned = x[:8].nbytes % 4096 == 0
    assert any(f & getattr(os, "O_DIRECT", 0) for f in opened) is (o_direct and aligned)
    # not on a chunk boundary, or across two shards: left to the caller
    assert not direct_mod.write_rows(layout, 4, x[4:12])
    assert not direct_mod.write_rows(layout, 24, x[24:40])


def test_zstd_chunks_are_not_written_in_place(tmp_path):
    x = np.arange(400, dtype=np.float32).reshape(100, 4)
    arr = _store(tmp_path / "s.zarr", np.zeros_like(x), chunk_rows=10, shard_rows=40)
    layout = chunk_layout(arr, str(tmp_path / "s.zarr" / "X"))
    assert not direct_mod.in_place_rows(layout)
    assert not direct_mod.write_rows(layout, 10, x[10:20])  # its offset depends on the others


def test_reads_direct_names_the_stores_read_past_the_page_cache(tmp_path, monkeypatch):
    import dask

    from veob_dask.io import reads_direct, write_array

    if not hasattr(os, "O_DIRECT"):
        pytest.skip("no O_DIRECT on this platform")
    x = np.arange(4000 * 8, dtype=np.float32).reshape(4000, 8)
    write_array(dask.array.from_array(x, chunks=1000), tmp_path / "s.zarr")
    assert reads_direct(tmp_path / "s.zarr") is False  # 128 kB: the page cache holds it
    monkeypatch.setattr(direct_mod, "_physical_memory", lambda: 10**5)
    assert reads_direct(tmp_path / "s.zarr") is True
    with dask.config.set({"veob_dask.direct_io": False}):
        assert reads_direct(tmp_path / "s.zarr") is False
    with pytest.raises(StoreFormatError):
        reads_direct(tmp_path / "s.zarr", "Y")
