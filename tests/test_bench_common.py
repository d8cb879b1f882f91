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
    assert len(calls) == 1  # listed once at start, not at each of ~20 samples
