"""Output safety: what may be replaced, one writer at a time, orphans, object stores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import dask.array as da
import fsspec
import numpy as np
import pytest
import zarr

from veob_dask.errors import InvalidParameterError, StoreExistsError
from veob_dask.io import check_output, read_array, write_array
from veob_dask.io.targets import HOST_ID, sweep_orphans, target_state


def _listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


@pytest.fixture
def ours(tmp_path: Path) -> Path:
    path = tmp_path / "ours.zarr"
    write_array(np.ones((6, 2)), path)
    return path


def test_new_store_appears_only_when_complete(tmp_path: Path) -> None:
    write_array(np.arange(12.0).reshape(6, 2), tmp_path / "a.zarr", chunk_rows=2)
    assert _listing(tmp_path) == ["a.zarr"]  # no lock, no temporary left
    np.testing.assert_array_equal(read_array(tmp_path / "a.zarr").compute(),
                                  np.arange(12.0).reshape(6, 2))


def test_our_store_needs_overwrite(ours: Path) -> None:
    with pytest.raises(StoreExistsError, match=r"already exists .* pass overwrite=True"):
        write_array(np.zeros((6, 2)), ours)
    write_array(np.zeros((3, 2)), ours, overwrite=True)
    assert read_array(ours).shape == (3, 2)
    assert _listing(ours.parent) == ["ours.zarr"]


def test_a_folder_with_files_is_never_replaced(tmp_path: Path) -> None:
    folder = tmp_path / "v"
    folder.mkdir()
    (folder / "thesis.txt").write_text("years of work")
    for overwrite in (False, True):
        with pytest.raises(StoreExistsError, match=r"folder holding files .*'thesis.txt'"):
            write_array(np.ones((4, 2)), folder, overwrite=overwrite)
    assert (folder / "thesis.txt").read_text() == "years of work"
    assert _listing(tmp_path) == ["v"]


def test_a_regular_file_is_never_replaced_or_renamed(tmp_path: Path) -> None:
    f = tmp_path / "out.zarr"
    f.write_text("not a store")
    with pytest.raises(StoreExistsError, match="regular file"):
        write_array(np.ones((4, 2)), f, overwrite=True)
    assert f.read_text() == "not a store" and _listing(tmp_path) == ["out.zarr"]


def test_a_foreign_zarr_store_is_never_replaced(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.zarr"
    zarr.open_group(foreign, mode="w").create_array("X", data=np.arange(3.0))
    with pytest.raises(StoreExistsError, match="did not write"):
        write_array(np.ones((4, 2)), foreign, overwrite=True)
    np.testing.assert_array_equal(zarr.open_group(foreign, mode="r")["X"][:], np.arange(3.0))


def test_an_empty_folder_counts_as_free(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    write_array(np.ones((4, 2)), tmp_path / "empty")
    assert read_array(tmp_path / "empty").shape == (4, 2)


def test_a_symbolic_link_is_refused(tmp_path: Path, ours: Path) -> None:
    (tmp_path / "link.zarr").symlink_to(ours)
    with pytest.raises(StoreExistsError, match="symbolic link"):
        write_array(np.ones((4, 2)), tmp_path / "link.zarr", overwrite=True)


@pytest.mark.parametrize("name", [".", "..", "sub/.", "sub/..", "./"])
def test_dot_outputs_are_refused(tmp_path: Path, name: str, monkeypatch) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "keep.txt").write_text("x")
    monkeypatch.chdir(tmp_path / "sub")
    with pytest.raises(InvalidParameterError, match="names a folder"):
        write_array(np.ones((4, 2)), name, overwrite=True)
    assert _listing(tmp_path) == ["keep.txt", "sub"]


def test_outputs_related_to_inputs_are_refused(tmp_path: Path, ours: Path, monkeypatch) -> None:
    inside = ours / "emb.zarr"
    for out, what in ((ours, "is the input"), (inside, "inside the input"),
                      (tmp_path, "holds the input")):
        with pytest.raises(StoreExistsError, match=what):
            check_output(out, overwrite=True, inputs=[ours])
    # relative and absolute spellings of one path are the same path
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreExistsError, match="is the input"):
        check_output("ours.zarr", overwrite=True, inputs=[str(ours)])
    np.testing.assert_array_equal(read_array(ours).compute(), np.ones((6, 2)))


def test_an_output_inside_another_store_is_refused(ours: Path) -> None:
    with pytest.raises(StoreExistsError, match="inside the Zarr store"):
        write_array(np.ones((4, 2)), ours / "X" / "new.zarr")


def _slow(block: np.ndarray, delay: float) -> np.ndarray:
    time.sleep(delay)
    return block


def test_a_second_writer_gets_a_clear_error(tmp_path: Path) -> None:
    out = tmp_path / "o.zarr"
    x = da.from_array(np.full((8, 3), 7.0), chunks=2).map_blocks(_slow, 0.3, dtype=float)
    errors: list[BaseException] = []

    def first() -> None:
        try:
            write_array(x, out)
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    t = threading.Thread(target=first)
    t.start()
    deadline = time.monotonic() + 30
    while not (tmp_path / ".o.zarr.lock").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(StoreExistsError, match=rf"being written by process {os.getpid()}"):
        write_array(np.zeros((2, 3)), out, overwrite=True)
    t.join()
    assert not errors
    np.testing.assert_array_equal(read_array(out).compute(), np.full((8, 3), 7.0))
    assert _listing(tmp_path) == ["o.zarr"]


_WRITER = textwrap.dedent("""
    import sys, time
    import dask, dask.array as da, numpy as np
    from veob_dask.io import write_array
    def slow(b):
        time.sleep(0.05)
        return b
    value = float(sys.argv[2])
    x = da.from_array(np.full((40, 3), value), chunks=2).map_blocks(slow, dtype=float)
    try:
        with dask.config.set(scheduler="sync"):
            write_array(x, sys.argv[1], overwrite=True)
    except Exception as err:
        print(type(err).__name__, err)
        sys.exit(2)
""")


def test_two_processes_one_wins_and_the_store_is_complete(tmp_path: Path) -> None:
    out = tmp_path / "race.zarr"
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(out), str(v)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for v in (1.0, 2.0)]
    results = [p.communicate(timeout=120) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], results
    loser = next(r for p, r in zip(procs, results, strict=True) if p.returncode == 2)
    assert "StoreExistsError" in loser[0] and "being written by process" in loser[0]
    got = read_array(out).compute()
    assert got.shape == (40, 3) and np.unique(got).size == 1  # one writer's complete result
    assert _listing(tmp_path) == ["race.zarr"]


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_lock_and_orphans_are_cleaned_by_the_next_write(tmp_path: Path) -> None:
    pid = _dead_pid()
    (tmp_path / ".o.zarr.lock").write_text(json.dumps({"pid": pid, "host_id": HOST_ID,
                                                        "host": "here", "started": 1.0}))
    orphan = tmp_path / f".other.zarr.tmp-{HOST_ID}-{pid}-0123abcd"
    (orphan / "X").mkdir(parents=True)
    live = tmp_path / f".live.zarr.tmp-{HOST_ID}-{os.getpid()}-0123abcd"
    live.mkdir()
    foreign_host = tmp_path / f".x.zarr.tmp-ffffffff-{pid}-0123abcd"
    foreign_host.mkdir()
    write_array(np.ones((4, 2)), tmp_path / "o.zarr")
    assert _listing(tmp_path) == sorted([live.name, foreign_host.name, "o.zarr"])


def test_an_interrupted_replacement_is_rolled_back(tmp_path: Path, ours: Path) -> None:
    pid = _dead_pid()
    aside = tmp_path / f".ours.zarr.old-{HOST_ID}-{pid}-0123abcd"
    os.rename(ours, aside)  # a writer died between moving the old store aside and renaming in
    assert sweep_orphans(tmp_path) == [aside.name]
    np.testing.assert_array_equal(read_array(ours).compute(), np.ones((6, 2)))


def test_target_states(tmp_path: Path, ours: Path) -> None:
    from veob_dask.io import as_location

    (tmp_path / "f").write_text("x")
    assert target_state(as_location(ours)) == ("ours", "dataset")
    assert target_state(as_location(tmp_path / "f"))[0] == "file"
    assert target_state(as_location(tmp_path / "absent"))[0] == "absent"


# -- object stores (fsspec memory://) -------------------------------------------------------

@pytest.fixture
def memfs():
    fs = fsspec.filesystem("memory")
    root = f"/veob-{os.getpid()}-{time.monotonic_ns()}"
    yield fs, root
    if fs.exists(root):
        fs.rm(root, recursive=True)


def test_object_store_publish_replace_and_refuse(memfs) -> None:
    fs, root = memfs
    url = f"memory://{root}/a.zarr"
    write_array(np.arange(8.0).reshape(4, 2), url, chunk_rows=2)
    assert sorted(p.rsplit("/", 1)[-1] for p in fs.ls(root, detail=False)) == ["a.zarr"]
    with pytest.raises(StoreExistsError, match="already exists"):
        write_array(np.zeros((4, 2)), url)
    write_array(np.zeros((3, 2)), url, overwrite=True)
    np.testing.assert_array_equal(read_array(url).compute(), np.zeros((3, 2)))
    fs.pipe_file(f"{root}/b.zarr/notes.txt", b"mine")
    with pytest.raises(StoreExistsError, match="did not write"):
        write_array(np.zeros((3, 2)), f"memory://{root}/b.zarr", overwrite=True)
    assert fs.cat_file(f"{root}/b.zarr/notes.txt") == b"mine"


def test_object_store_failure_leaves_nothing(memfs) -> None:
    fs, root = memfs

    def boom(block: np.ndarray, block_id=None) -> np.ndarray:
        if block_id[0] == 1:
            raise ZeroDivisionError("simulated")
        return block

    x = da.from_array(np.ones((6, 2)), chunks=2).map_blocks(boom, dtype=float)
    with pytest.raises(ZeroDivisionError):
        write_array(x, f"memory://{root}/c.zarr")
    assert not fs.exists(root) or fs.ls(root, detail=False) == []


def test_object_store_lock_held(memfs) -> None:
    fs, root = memfs
    fs.pipe_file(f"{root}/.d.zarr.lock", json.dumps({"pid": os.getpid(), "host_id": HOST_ID,
                                                      "host": "here"}).encode())
    with pytest.raises(StoreExistsError, match="being written"):
        write_array(np.ones((2, 2)), f"memory://{root}/d.zarr")


def test_checkpoints_work_on_object_stores(memfs, rng) -> None:
    from veob_dask.svd.checkpoint import load_checkpoint, save_checkpoint
    from veob_dask.svd.incremental import summarize_block

    _, root = memfs
    url = f"memory://{root}/fit.checkpoint"
    assert load_checkpoint(url) is None
    for chunk in (2, 5):
        summ = summarize_block(rng.normal(size=(30, 4)), max_rank=3, center=True)
        save_checkpoint(url, summ, next_chunk=chunk, fingerprint={"a": 1})
    back, meta = load_checkpoint(url)
    assert meta["next_chunk"] == 5 and back.components.shape == (3, 4)


def test_replacing_swaps_in_one_step(ours: Path, monkeypatch) -> None:
    """The new store and the old swap places at once: no moment without a store at the path
    (checked by a reader thread), no moved-aside ``.old-`` store, the old one removed."""
    from veob_dask.io import publishers

    moved: list[str] = []
    real = publishers.rename_noreplace
    monkeypatch.setattr(publishers, "rename_noreplace",
                        lambda a, b: (moved.append(os.fspath(b)), real(a, b))[1])
    seen_missing = threading.Event()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            if not (ours / "zarr.json").exists():
                seen_missing.set()

    reader = threading.Thread(target=watch, daemon=True)
    reader.start()
    try:
        for value in (2.0, 3.0):
            write_array(np.full((40, 3), value), ours, chunk_rows=10, overwrite=True)
    finally:
        stop.set()
        reader.join()
    assert not seen_missing.is_set()
    assert moved == []  # no rename of the old store aside
    np.testing.assert_array_equal(read_array(ours).compute(), np.full((40, 3), 3.0))
    assert sorted(p.name for p in ours.parent.iterdir()) == [ours.name]  # nothing left over


def test_replacing_without_the_swap_moves_the_old_store_aside(ours: Path, monkeypatch) -> None:
    from veob_dask.io import publishers

    monkeypatch.setattr(publishers, "rename_exchange", lambda a, b: False)
    write_array(np.full((40, 3), 5.0), ours, chunk_rows=10, overwrite=True)
    np.testing.assert_array_equal(read_array(ours).compute(), np.full((40, 3), 5.0))
    assert sorted(p.name for p in ours.parent.iterdir()) == [ours.name]
