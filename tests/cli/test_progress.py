"""Progress while Dask computes: a bar on a terminal, plain lines otherwise, from dask's local
schedulers or from a distributed scheduler; ingest reports the rows it streams."""

from __future__ import annotations

import io
import re

import dask
import dask.array as da
import numpy as np

from veob_dask.cli import _progress, main
from veob_dask.cli._progress import Renderer, progress_for


def _graph() -> da.Array:
    x = da.ones((400, 10), chunks=(50, 10))
    return (x @ x.T).sum()


def _slow_graph() -> da.Array:
    import time

    x = da.ones((400, 10), chunks=(50, 10)).map_blocks(lambda b: time.sleep(0.25) or b)
    return (x @ x.T).sum()


def _last_count(text: str) -> tuple[int, int]:
    done, total = re.findall(r"\((\d+)/(\d+) tasks\)", text)[-1]
    return int(done), int(total)


def test_plain_lines_count_every_task_of_a_local_computation() -> None:
    out = io.StringIO()
    with dask.config.set(scheduler="threads"), progress_for("fit", out=out, tty=False, every=0):
        _graph().compute()
    lines = out.getvalue().splitlines()
    assert lines and all(ln.startswith("[fit] ") for ln in lines)
    done, total = _last_count(lines[-1])
    assert done == total > 8  # every task of the graph, counted once
    assert "\r" not in out.getvalue()


def test_a_terminal_gets_one_bar_redrawn_in_place() -> None:
    out = io.StringIO()
    with dask.config.set(scheduler="sync"), progress_for("fit", out=out, tty=True):
        _graph().compute()
    text = out.getvalue()
    assert "\n" not in text and text.startswith("\r[fit] [")
    assert "100% " in text and text.endswith("\r\033[2K")  # the line is cleared at the end


def test_a_quiet_stage_prints_nothing_until_its_interval() -> None:
    r = Renderer("x", out=io.StringIO(), tty=False, every=3600)
    r.update(1, 10)
    r.finish()
    assert r.out.getvalue() == ""


def test_a_distributed_computation_is_followed_on_the_scheduler() -> None:
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        out = io.StringIO()
        with dask.config.set(scheduler=client.get), progress_for("fit", out=out, tty=False,
                                                                 every=0) as shown:
            assert isinstance(shown, _progress.ClusterProgress)
            # each computation lasts ~1 s (a quarter of a second a chunk): the display looks
            # for new futures every 0.2 s, and a computation over before it looks is not shown
            _slow_graph().compute()
            _slow_graph().compute()  # a second computation in the same stage adds to the count
    done, total = _last_count(out.getvalue())
    assert done == total > 16


def test_ingest_reports_the_rows_it_streams(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(_progress, "PLAIN_EVERY", 0.0)
    np.save(tmp_path / "x.npy", np.ones((1000, 3)))
    np.save(tmp_path / "y.npy", np.arange(1000))
    assert main(["ingest", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy"),
                 "-o", str(tmp_path / "x.zarr"), "--chunk-rows", "100"]) == 0
    err = capsys.readouterr().err
    assert "[ingest] 100% (1000/1000 rows)" in err


def test_every_command_takes_the_shared_cluster_and_storage_flags() -> None:
    from veob_dask.cli import _leaves, build_parser

    for leaf in _leaves(build_parser()):
        flags = {s for a in leaf._actions for s in a.option_strings}
        assert "--storage-option" in flags, leaf.prog
        if "--scheduler" in flags:
            assert {"--scheduler-file", "--tls-ca-file", "--tls-cert", "--tls-key"} <= flags


def test_every_command_computes_through_the_shared_cluster_helper() -> None:
    """No command enters the scheduler itself: the flags above only matter through
    ``computing`` (scheduler file, TLS, start/stop stages, dashboard link, progress)."""
    from pathlib import Path

    from veob_dask import cli

    for path in Path(cli.__file__).parent.glob("*.py"):
        if path.name != "_common.py":
            assert "scheduler_context(" not in path.read_text(encoding="utf-8"), path.name
