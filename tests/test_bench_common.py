"""The benchmarks' peak-memory sampler (``benchmarks/_common.PeakRSS``)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
common = pytest.importorskip("_common")


def test_peak_rss_counts_a_child_started_after_the_sampler():
    # the child is not in the process list the sampler starts with: a refresh must find it
    code = "import time; b = b'x' * (200 * 2**20); time.sleep(0.6)"
    with common.PeakRSS(interval=0.01, refresh=0.05) as mem:
        subprocess.run([sys.executable, "-c", code], check=True)
    assert mem.delta_mb > 150


def test_peak_rss_keeps_the_process_list_between_refreshes(monkeypatch):
    calls = []
    sampler = common.PeakRSS(interval=0.005, refresh=60.0)
    real = sampler._members
    monkeypatch.setattr(sampler, "_members", lambda: calls.append(1) or real())
    with sampler:
        time.sleep(0.1)
    # listed at entry, when the sampler starts and at exit, not at each of ~20 samples
    assert len(calls) == 3


def test_peak_rss_leaves_out_the_processes_it_is_told_to():
    # a helper beside the measured call (the speed probe's process) is not the call's memory
    code = "import time; b = b'x' * (200 * 2**20); print(flush=True); time.sleep(30)"
    helper = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        helper.stdout.readline()  # it holds its 200 MB
        with common.PeakRSS(interval=0.01, refresh=0.05) as counted:
            time.sleep(0.1)
        with common.PeakRSS(interval=0.01, refresh=0.05,
                            exclude=frozenset({helper.pid})) as left_out:
            time.sleep(0.1)
    finally:
        helper.kill()
        helper.wait()
        helper.stdout.close()
    assert counted.peak_mb - left_out.peak_mb > 150
