"""SIGTERM during every command that writes: exit 143, one line, nothing left behind.

The signal is sent from inside the publish step of the first store a command writes (its
temporary store is complete then), so each command is stopped at its latest possible moment.
A guard handler keeps pytest alive if a command ran without the CLI's termination handler.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

from veob_dask.cli import main
from veob_dask.io import write_array
from veob_dask.io.publishers import LocalPublisher

from ..text.test_sentences import random_reviews, write_reviews


class Unhandled(Exception):
    """SIGTERM arrived while no command handler was installed."""


def _guard(signum, frame):
    raise Unhandled("SIGTERM reached the test's guard: the command did not install a handler")


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    from veob_dask import SVDEmbedding, save

    x = np.random.default_rng(0).normal(size=(200, 6)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    write_array(x, tmp_path / "x.zarr", chunk_rows=50)
    save(SVDEmbedding(3).fit(x), tmp_path / "m.zarr")
    write_array(x[:, :3], tmp_path / "e.zarr")
    (tmp_path / "words.txt").write_text("cat\ncats\ndog\ndogs\nbird\n")
    from veob_dask.index import SubdomainIndex
    from veob_dask.subdomain import SubdomainEmbedding

    keys = np.arange(200) % 3
    np.save(tmp_path / "keys.npy", keys)
    sub = SubdomainEmbedding(2).fit(x, domains=keys)
    save(sub, tmp_path / "sm.zarr")
    SubdomainIndex().fit(sub, x, keys).save(tmp_path / "si.zarr")
    write_reviews(tmp_path, random_reviews(12, seed=3))
    from veob_dask.supervised import CellMapClassifier

    write_array(x, tmp_path / "xy.zarr", extra={"y": keys}, chunk_rows=50)
    save(CellMapClassifier(n_partitions=1).fit(x, keys), tmp_path / "cm.zarr")
    return tmp_path


COMMANDS = {
    "ingest": ["ingest", "{t}/x.npy", "-o", "{t}/out.zarr"],
    "fit": ["fit", "{t}/x.zarr", "-o", "{t}/out.zarr", "-k", "2"],
    "fit incremental": ["fit", "{t}/x.zarr", "-o", "{t}/out.zarr", "-k", "2", "--solver",
                        "incremental", "--checkpoint-every", "1"],
    "transform": ["transform", "{t}/m.zarr", "{t}/x.zarr", "-o", "{t}/out.zarr"],
    "query": ["query", "{t}/e.zarr", "--rows", "0:3", "-o", "{t}/out.zarr"],
    "index build": ["index", "build", "{t}/e.zarr", "-o", "{t}/out.zarr"],
    "words build": ["words", "build", "spelling", "{t}/words.txt", "-o", "{t}/out.zarr",
                    "-k", "2"],
    "sentences build": ["sentences", "build", "{t}/r.tsv", "-o", "{t}/out.zarr", "-k", "3"],
    "demo": ["demo", "--scheduler", "sync", "--workdir", "{t}/demo"],
    "subdomains fit": ["subdomains", "fit", "{t}/x.zarr", "-o", "{t}/out.zarr", "--domains",
                       "{t}/keys.npy", "-k", "2"],
    "subdomains index": ["subdomains", "index", "{t}/sm.zarr", "{t}/x.zarr", "-o",
                         "{t}/out.zarr", "--domains", "{t}/keys.npy"],
    "subdomains query": ["subdomains", "query", "{t}/si.zarr", "--queries", "{t}/x.zarr", "-n",
                         "2", "-o", "{t}/out.zarr"],
    "supervised fit": ["supervised", "fit", "{t}/xy.zarr", "-o", "{t}/out.zarr", "-k", "3",
                       "--partitions", "1"],
    "supervised predict": ["supervised", "predict", "{t}/cm.zarr", "{t}/xy.zarr", "-o",
                           "{t}/out.zarr"],
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_sigterm_while_publishing_leaves_nothing(inputs, monkeypatch, capsys, name):
    publish = LocalPublisher.publish

    def publish_then_terminate(self, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # handled in this (main) thread, right here
        return publish(self, *args, **kwargs)

    monkeypatch.setattr(LocalPublisher, "publish", publish_then_terminate)
    before = sorted(p.name for p in inputs.iterdir())
    previous = signal.signal(signal.SIGTERM, _guard)
    try:
        code = main([a.format(t=inputs) for a in COMMANDS[name]])
    finally:
        signal.signal(signal.SIGTERM, previous)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 143 and err[-1].endswith("terminated (SIGTERM); nothing partial was left")
    assert sorted(p.name for p in inputs.iterdir() if p.name != "demo") == before
    if name == "demo":
        assert list((inputs / "demo").iterdir()) == []


def test_every_writing_command_is_covered():
    from .test_grammar import LEAVES, _visible_flags

    writers = {path for path, parser in LEAVES.items() if "--overwrite" in _visible_flags(parser)}
    covered = {path for argv in COMMANDS.values() for path in LEAVES
               if tuple(argv[:len(path)]) == path}
    # report writes one HTML file, not a store: tests/cli/test_report.py terminates it itself
    assert writers <= covered | {("words", "build", "context"), ("words", "build", "dictionary"),
                                 ("report",)}
