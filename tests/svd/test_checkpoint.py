"""Checkpoints of the incremental fit: atomic writes, resume after a crash, the real CLI killed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dask.array as da
import numpy as np
import pytest

from veob_dask import load
from veob_dask.errors import InvalidParameterError, StoreFormatError
from veob_dask.io import write_array
from veob_dask.svd import IncrementalSVDEmbedding
from veob_dask.svd.checkpoint import (
    PAUSE_ENV,
    fit_checkpointed,
    fit_segments,
    load_checkpoint,
    remove_checkpoint,
    save_checkpoint,
)
from veob_dask.svd.incremental import summarize_block


def test_checkpoint_round_trip(tmp_path, rng):
    summ = summarize_block(rng.normal(size=(50, 7)) + 2, max_rank=4, center=True)
    path = tmp_path / "fit.checkpoint"
    save_checkpoint(path, summ, next_chunk=3, fingerprint={"a": [1, 2]})
    back, meta = load_checkpoint(path)
    assert meta["next_chunk"] == 3 and meta["fingerprint"] == {"a": [1, 2]}
    np.testing.assert_array_equal(back.components, summ.components)
    np.testing.assert_array_equal(back.mean, summ.mean)
    assert (back.n_samples, back.energy) == (summ.n_samples, summ.energy)
    assert [p.name for p in tmp_path.iterdir()] == ["fit.checkpoint"]  # no temp file left
    assert load_checkpoint(tmp_path / "absent") is None


def test_corrupt_checkpoint_is_reported(tmp_path):
    path = tmp_path / "fit.checkpoint"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(StoreFormatError, match="delete it"):
        load_checkpoint(path)


class Crash(Exception):
    pass


def test_resume_after_a_crash_equals_an_uninterrupted_run(tmp_path, low_rank):
    x = da.from_array(low_rank, chunks=(100, 40))  # 12 chunks, 4 segments of 3
    kw = {"max_rank": 8, "every": 3, "fingerprint": {"data": "low_rank"}}
    full, start = fit_segments(x, checkpoint=tmp_path / "a", log=lambda s: None, **kw)
    assert start == 0

    def crash_after_two(line: str) -> None:
        if "chunks 3-5" in line:
            raise Crash

    with pytest.raises(Crash):
        fit_segments(x, checkpoint=tmp_path / "b", log=crash_after_two, **kw)
    _, meta = load_checkpoint(tmp_path / "b")
    assert meta["next_chunk"] == 6
    lines: list[str] = []
    resumed, start = fit_segments(x, checkpoint=tmp_path / "b", log=lines.append, **kw)
    assert start == 6 and lines[0].startswith("resumed from chunk 6")
    assert len(lines) == 3  # the resume note and two segments: chunks 0-5 were not redone
    np.testing.assert_allclose(resumed.singular_values, full.singular_values, rtol=1e-12)
    np.testing.assert_allclose(resumed.components, full.components, atol=1e-12)
    assert resumed.n_samples == 1200


def test_fit_checkpointed_is_a_quiet_library_function(tmp_path, low_rank, capsys):
    x = da.from_array(low_rank, chunks=(100, 40))
    lines: list[str] = []
    fitted = fit_checkpointed(x, checkpoint=tmp_path / "c", checkpoint_every=4, n_components=5,
                              source="low_rank", progress=lines.append)
    assert capsys.readouterr() == ("", "")  # the library prints nothing; progress is a callback
    assert len(lines) == 1 + 3 + 1 and "working rank 10" in lines[0]  # start, 3 segments, refine
    assert (fitted.n_chunks, fitted.resumed_from_chunk, fitted.working_rank) == (12, 0, 10)
    ref = IncrementalSVDEmbedding(5, random_state=0).fit(x)
    np.testing.assert_allclose(fitted.estimator.singular_values_, ref.singular_values_,
                               rtol=1e-8)
    again = fit_checkpointed(x, checkpoint=tmp_path / "c", checkpoint_every=4, n_components=5,
                             source="low_rank")  # the finished checkpoint: nothing left to merge
    assert again.resumed_from_chunk == 12
    np.testing.assert_array_equal(again.estimator.components_, fitted.estimator.components_)
    remove_checkpoint(tmp_path / "c")
    assert not (tmp_path / "c").exists()


def test_checkpoint_of_another_fit_is_refused(tmp_path, low_rank):
    x = da.from_array(low_rank, chunks=(400, 40))
    fit_segments(x, max_rank=4, every=1, checkpoint=tmp_path / "c", fingerprint={"k": 2},
                 log=lambda s: None)
    with pytest.raises(InvalidParameterError, match=r"another fit .*\['k'\]"):
        fit_segments(x, max_rank=4, every=1, checkpoint=tmp_path / "c", fingerprint={"k": 3},
                     log=lambda s: None)
    with pytest.raises(InvalidParameterError, match="checkpoint_every"):
        fit_segments(x, max_rank=4, every=0, checkpoint=tmp_path / "d", fingerprint={},
                     log=lambda s: None)


# -- the real command line, killed with SIGKILL ----------------------------------------------

def _veob_fit(args: list[str], env: dict[str, str] | None = None, **kw) -> subprocess.Popen:
    full_env = {**os.environ, **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "veob_dask", "fit", *args], env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    rng = np.random.default_rng(5)
    n, d = 6000, 48
    x = (rng.normal(size=(n, d)) * (50 * 0.85 ** np.arange(d))) @ np.linalg.qr(
        rng.normal(size=(d, d)))[0]
    path = tmp_path / "data"
    write_array(x.astype(np.float32), path, chunk_rows=250)  # 24 chunks
    return path


def _progress(ckpt) -> int:
    """Chunks a running fit's checkpoint holds; 0 while there is none, or while the fit is
    replacing it (a directory store renamed over another can lose files under a reader)."""
    try:
        return load_checkpoint(ckpt)[1]["next_chunk"] if ckpt.exists() else 0
    except StoreFormatError:
        return 0


def test_killed_cli_fit_resumes_and_matches(tmp_path, store):
    common = [str(store), "-k", "6", "--n-oversamples", "3", "--solver", "incremental",
              "--checkpoint-every", "2", "--scheduler", "sync", "--json"]
    ref = _veob_fit([*common, "-o", str(tmp_path / "ref")])
    _, err = ref.communicate(timeout=300)
    assert ref.returncode == 0, err

    model, ckpt = tmp_path / "model", tmp_path / "model.checkpoint"
    victim = _veob_fit([*common, "-o", str(model)], env={PAUSE_ENV: "0.4"})
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and victim.poll() is None:
            if _progress(ckpt) >= 6:
                break
            time.sleep(0.02)
        assert victim.poll() is None, "the fit ended before it could be killed"
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=60)
    assert victim.returncode == -signal.SIGKILL
    assert not model.exists()
    done = load_checkpoint(ckpt)[1]["next_chunk"]
    assert 6 <= done < 24

    again = _veob_fit([*common, "-o", str(model)])
    out2, err2 = again.communicate(timeout=300)
    assert again.returncode == 0, err2
    assert f"resumed from chunk {done} of 24" in err2
    summary = json.loads(out2)  # --json: stdout holds the one JSON document
    assert summary["resumed_from_chunk"] == done and summary["n_samples"] == 6000
    assert not ckpt.exists()
    a, b = load(model), load(tmp_path / "ref")
    np.testing.assert_allclose(a.singular_values_, b.singular_values_, rtol=1e-6)
    np.testing.assert_allclose(a.components_, b.components_, atol=1e-6)
    np.testing.assert_allclose(a.spectrum_, b.spectrum_, rtol=1e-6)


def test_cli_refuses_existing_model_and_foreign_checkpoint(tmp_path, store, capsys):
    from veob_dask.cli import main

    base = ["fit", str(store), "-o", str(tmp_path / "m"), "-k", "4", "--solver", "incremental",
            "--scheduler", "sync"]
    save_checkpoint(tmp_path / "m.checkpoint", summarize_block(np.eye(48), max_rank=2),
                    next_chunk=1, fingerprint={"store": "elsewhere"})
    assert main(base) == 2
    assert "belongs to another fit" in capsys.readouterr().err
    shutil.rmtree(tmp_path / "m.checkpoint")
    assert main(base) == 0
    out = capsys.readouterr()
    assert "model written to" in out.out and "merged chunks 0-7 of 24" in out.err
    assert not (tmp_path / "m.checkpoint").exists()
    assert main(base) == 2
    assert "already exists" in capsys.readouterr().err
    assert main([*base, "--spectral", "dct2"]) == 2
    assert "flat feature rows" in capsys.readouterr().err


@pytest.mark.parametrize(("solver", "option", "value", "name"), [
    ("incremental", "--n-oversamples", "-4", "n_oversamples"),
    ("gram", "--n-oversamples", "-4", "n_oversamples"), ("gram", "--n-iter", "-1", "n_iter"),
    ("incremental", "--seed", "-3", "random_state"),
    ("randomized", "--n-oversamples", "-1", "n_oversamples"),
])
def test_cli_refuses_out_of_range_parameters(tmp_path, store, capsys, solver, option, value,
                                             name):
    # issue 11: `--solver incremental --n-oversamples -4` exited 0 with one component.
    from veob_dask.cli import main

    assert main(["fit", str(store), "-o", str(tmp_path / "m"), "-k", "4", "--solver", solver,
                 option, value, "--scheduler", "sync"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and name in errors[0] and value in errors[0]
    assert not (tmp_path / "m").exists() and not (tmp_path / "m.checkpoint").exists()


def test_cli_incremental_refines_by_default(tmp_path, store, capsys):
    from veob_dask.cli import main

    base = [str(store), "-k", "4", "--solver", "incremental", "--scheduler", "sync", "--json"]
    assert main(["fit", *base, "-o", str(tmp_path / "a")]) == 0
    out, err = capsys.readouterr()
    assert "Rayleigh–Ritz" in err and json.loads(out)["refined"] is True
    assert main(["fit", *base, "-o", str(tmp_path / "b"), "--no-refine"]) == 0
    assert json.loads(capsys.readouterr().out)["refined"] is False
    x = np.asarray(da.from_zarr(str(store), component="X"), dtype=np.float64)
    a, b = load(tmp_path / "a"), load(tmp_path / "b")
    truth = np.linalg.svd(x @ a.components_.T, compute_uv=False)
    np.testing.assert_allclose(a.singular_values_, truth, rtol=1e-9)
    assert np.all(b.singular_values_ <= a.singular_values_ * (1 + 1e-9))
