"""Publishing on a real S3 protocol (moto's server on 127.0.0.1): commit marker, lock, cleanup."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import dask.array as da
import numpy as np
import pytest
import zarr

from veob_dask.errors import StoreExistsError, StoreNotFoundError
from veob_dask.io import create_artifact, open_group, read_array, store_exists, write_array
from veob_dask.io.location import HeldRootStore
from veob_dask.io.objectstore import create_only, delete_if_unchanged
from veob_dask.io.targets import HOST_ID


def _objects(fs, bucket: str) -> list[str]:
    fs.invalidate_cache()
    return sorted(p[len(bucket) + 1:] for p in fs.find(bucket))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_new_store_appears_only_when_complete(s3_bucket) -> None:
    fs, bucket, opts = s3_bucket
    url = f"s3://{bucket}/x.zarr"
    seen: dict[str, object] = {}
    with create_artifact(url, "dataset", storage_options=opts, arrays=["X"]) as w:
        w.store("X", np.arange(12.0).reshape(6, 2), dims=("sample", "feature"), chunk_rows=2)
        w.flush()
        # chunks are at their final keys, but there is no root zarr.json: no store yet
        seen["chunks"] = fs.exists(f"{bucket}/x.zarr/X/c/0/0")
        seen["exists"] = store_exists(url, storage_options=opts)
        with pytest.raises(StoreNotFoundError):
            open_group(url, storage_options=opts)
    assert seen == {"chunks": True, "exists": False}
    assert _objects(fs, bucket) == ["x.zarr/X/c/0/0", "x.zarr/X/c/1/0", "x.zarr/X/c/2/0",
                                    "x.zarr/X/zarr.json", "x.zarr/zarr.json"]
    np.testing.assert_array_equal(read_array(url, storage_options=opts).compute(),
                                  np.arange(12.0).reshape(6, 2))
    # a plain zarr reader sees an ordinary store
    assert zarr.open_group(f"s3://{bucket}/x.zarr", mode="r", storage_options=opts)["X"].shape \
        == (6, 2)


def test_a_replacement_keeps_the_old_store_until_published(s3_bucket) -> None:
    fs, bucket, opts = s3_bucket
    url = f"s3://{bucket}/x.zarr"
    write_array(np.ones((6, 2)), url, chunk_rows=2, storage_options=opts)
    with create_artifact(url, "dataset", overwrite=True, storage_options=opts,
                         arrays=["X"]) as w:
        w.store("X", np.zeros((3, 2)), dims=("sample", "feature"))
        w.flush()
        np.testing.assert_array_equal(read_array(url, storage_options=opts).compute(),
                                      np.ones((6, 2)))
    np.testing.assert_array_equal(read_array(url, storage_options=opts).compute(),
                                  np.zeros((3, 2)))
    assert _objects(fs, bucket) == ["x.zarr/X/c/0/0", "x.zarr/X/zarr.json", "x.zarr/zarr.json"]


def _failing(n: int) -> da.Array:
    def boom(block: np.ndarray, block_id=None) -> np.ndarray:
        if block_id[0] == 2:
            raise ZeroDivisionError("simulated")
        return block

    return da.from_array(np.ones((n, 2)), chunks=2).map_blocks(boom, dtype=float)


@pytest.mark.parametrize("scheduler", ["sync", "threads"])
def test_a_failed_write_leaves_nothing(s3_bucket, scheduler) -> None:
    import dask

    fs, bucket, opts = s3_bucket
    with dask.config.set(scheduler=scheduler), pytest.raises(ZeroDivisionError):
        write_array(_failing(12), f"s3://{bucket}/x.zarr", storage_options=opts)
    assert _objects(fs, bucket) == []
    write_array(np.ones((4, 2)), f"s3://{bucket}/y.zarr", storage_options=opts)
    with dask.config.set(scheduler=scheduler), pytest.raises(ZeroDivisionError):
        write_array(_failing(12), f"s3://{bucket}/y.zarr", overwrite=True, storage_options=opts)
    assert _objects(fs, bucket) == ["y.zarr/X/c/0/0", "y.zarr/X/zarr.json", "y.zarr/zarr.json"]
    np.testing.assert_array_equal(read_array(f"s3://{bucket}/y.zarr", storage_options=opts)
                                  .compute(), np.ones((4, 2)))


def test_create_only_lets_exactly_one_writer_win(s3_bucket) -> None:
    fs, bucket, _ = s3_bucket
    wins: list[int] = []
    barrier = threading.Barrier(8)

    def race(i: int) -> None:
        barrier.wait()
        try:
            create_only(fs, f"{bucket}/.x.zarr.lock", str(i).encode())
            wins.append(i)
        except FileExistsError:
            pass

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    assert fs.cat_file(f"{bucket}/.x.zarr.lock") == str(wins[0]).encode()


def test_a_lock_is_deleted_only_while_unchanged(s3_bucket) -> None:
    fs, bucket, _ = s3_bucket
    path = f"{bucket}/.x.zarr.lock"
    etag = create_only(fs, path, b"first")
    fs.pipe_file(path, b"second")  # taken over meanwhile
    assert not delete_if_unchanged(fs, path, etag, b"first")
    assert fs.cat_file(path) == b"second"
    assert delete_if_unchanged(fs, path, fs.info(path)["ETag"], b"second")
    assert not fs.exists(path)


def test_a_live_writer_keeps_others_out(s3_bucket) -> None:
    fs, bucket, opts = s3_bucket
    fs.pipe_file(f"{bucket}/.x.zarr.lock", json.dumps(
        {"pid": os.getpid(), "host_id": HOST_ID, "host": "here", "started": None}).encode())
    with pytest.raises(StoreExistsError, match=r"being written by process .* delete the lock"):
        write_array(np.ones((2, 2)), f"s3://{bucket}/x.zarr", storage_options=opts)
    assert _objects(fs, bucket) == [".x.zarr.lock"]


def test_a_dead_writers_leftovers_are_removed(s3_bucket) -> None:
    """A writer killed mid-write left its lock and a partial in-place store (held root)."""
    fs, bucket, opts = s3_bucket
    temp = f".x.zarr.tmp-{HOST_ID}-{_dead_pid()}-0123abcd"
    fs.pipe_file(f"{bucket}/.x.zarr.lock", json.dumps(
        {"pid": int(temp.split("-")[2]), "host_id": HOST_ID, "host": "here", "started": None,
         "temp": temp}).encode())
    fs.pipe_file(f"{bucket}/x.zarr/{temp}.zarr.json", b"{}")
    fs.pipe_file(f"{bucket}/x.zarr/X/c/0/0", b"partial")
    fs.pipe_file(f"{bucket}/{temp}/zarr.json", b"{}")  # and a temporary prefix
    write_array(np.ones((2, 2)), f"s3://{bucket}/x.zarr", storage_options=opts)
    assert _objects(fs, bucket) == ["x.zarr/X/c/0/0", "x.zarr/X/zarr.json", "x.zarr/zarr.json"]
    np.testing.assert_array_equal(read_array(f"s3://{bucket}/x.zarr", storage_options=opts)
                                  .compute(), np.ones((2, 2)))


def test_objects_that_are_not_ours_are_never_replaced(s3_bucket) -> None:
    fs, bucket, opts = s3_bucket
    fs.pipe_file(f"{bucket}/x.zarr/notes.txt", b"mine")
    with pytest.raises(StoreExistsError, match="did not write"):
        write_array(np.ones((2, 2)), f"s3://{bucket}/x.zarr", overwrite=True,
                    storage_options=opts)
    assert _objects(fs, bucket) == ["x.zarr/notes.txt"]


def test_held_root_store_renames_only_the_root_metadata() -> None:
    from zarr.storage import MemoryStore

    base = MemoryStore()
    store = HeldRootStore(base, ".held.json")
    group = zarr.open_group(store=store, mode="w-")
    group.create_array("X", shape=(2,), dtype="f8")
    assert sorted(base._store_dict) == [".held.json", "X/zarr.json"]
    assert zarr.open_group(store=store, mode="r")["X"].shape == (2,)

    async def listing() -> list[str]:
        return sorted([k async for k in store.list()])

    import asyncio

    assert asyncio.run(listing()) == ["X/zarr.json", "zarr.json"]


def test_a_partial_store_without_its_lock_is_removed_too(s3_bucket) -> None:
    fs, bucket, opts = s3_bucket
    temp = f".x.zarr.tmp-{HOST_ID}-{_dead_pid()}-0123abcd"
    fs.pipe_file(f"{bucket}/x.zarr/{temp}.zarr.json", b"{}")
    fs.pipe_file(f"{bucket}/x.zarr/X/c/9/0", b"partial")
    write_array(np.ones((2, 2)), f"s3://{bucket}/x.zarr", storage_options=opts)
    assert _objects(fs, bucket) == ["x.zarr/X/c/0/0", "x.zarr/X/zarr.json", "x.zarr/zarr.json"]


def test_a_live_in_place_writer_is_named(s3_bucket) -> None:
    fs, bucket, opts = s3_bucket
    fs.pipe_file(f"{bucket}/x.zarr/.x.zarr.tmp-{HOST_ID}-{os.getpid()}-0123abcd.zarr.json", b"{}")
    with pytest.raises(StoreExistsError, match=f"being written by process {os.getpid()}"):
        write_array(np.ones((2, 2)), f"s3://{bucket}/x.zarr", storage_options=opts)


def _fail_on_block_2(block: np.ndarray, block_id=None) -> np.ndarray:
    if block_id[0] == 2:
        raise ZeroDivisionError("simulated failure on a worker")
    return block


@pytest.mark.cluster
def test_a_process_cluster_writes_in_place_and_cleans_up(process_client, s3_bucket) -> None:
    import dask

    fs, bucket, opts = s3_bucket
    x = np.arange(400.0).reshape(200, 2)
    with dask.config.set(scheduler=process_client):
        write_array(da.from_array(x, chunks=20), f"s3://{bucket}/ok.zarr", storage_options=opts)
        np.testing.assert_array_equal(
            read_array(f"s3://{bucket}/ok.zarr", storage_options=opts).compute(), x)
        bad = da.from_array(np.ones((200, 2)), chunks=5).map_blocks(_fail_on_block_2,
                                                                  dtype=float)
        for overwrite in (False, True):
            with pytest.raises(ZeroDivisionError):
                write_array(bad, f"s3://{bucket}/{'ok' if overwrite else 'bad'}.zarr",
                            overwrite=overwrite, storage_options=opts)
    time.sleep(1.0)  # a worker task still running would have written by now
    assert [o for o in _objects(fs, bucket) if not o.startswith("ok.zarr/X/c/")] == [
        "ok.zarr/X/zarr.json", "ok.zarr/zarr.json"]
    np.testing.assert_array_equal(
        read_array(f"s3://{bucket}/ok.zarr", storage_options=opts).compute(), x)
