"""The benchmark cost model's arithmetic, on a hand-made calibration (no timing here)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
cost_model = pytest.importorskip("cost_model")


def _op(per_row: float, fixed: float = 0.0) -> dict[str, float]:
    return {"per_row": per_row, "fixed": fixed}


CAL = {
    "machine": {"cpus": 2},
    "per_d": {"64": {
        "chunk_rows": 100_000,
        "ops": {"sum": _op(1e-8), "gen": _op(1e-7), "keys": _op(1e-9),
                "gram": _op(1e-7, 0.05), "randomized": _op(2e-7, 0.1),
                "incremental": _op(3e-7), "subdomain": _op(1e-5),
                "transform": _op(5e-7),
                "read": {**_op(4e-7), "compression": 0.9, "disk_bytes_per_s": 5e8}},
        "efficiency": {"threads-2": 1.8, "cluster-2x1": 1.6, "cluster-1x1": 0.95}}},
    "task_s": {"sync": 1e-5, "threads": 1e-4, "cluster-2x1": 2e-3, "cluster-1x1": 1.5e-3},
    "graph_s_per_task": 1e-4,
    "tree": {"cluster": {"by_fan_in": {"4": {"seconds": 0.04, "depth": 4}}}},
}


def _p(**kw):
    base = {"op": "gram", "rows": 10**8, "cols": 64, "chunk_rows": 100_000}
    return cost_model.predict(CAL, **{**base, **kw})["predicted_s"]


def test_prediction_adds_up():
    # (1e8 rows x (gen + gram) + 1000 tasks x scheduler overhead) / 1.8 + fixed
    expected = (1e8 * 2e-7 + 1000 * (1e-4 - 1e-5)) / 1.8 + 0.05
    assert _p() == pytest.approx(expected)


def test_prediction_properties():
    assert _p(rows=2 * 10**8) > 1.9 * _p(rows=10**8) - 0.1
    assert _p(op="randomized") > 5 * _p(op="gram") * 0.5  # q + 1 = 5 passes of a 2x kernel
    assert _p(scheduler="cluster", workers=2, threads=1) > _p()  # lower efficiency, more overhead
    cold = _p(op="read", source="read", cold_bytes=10**12)  # a terabyte at 0.5 GB/s
    assert cold >= 10**12 / 5e8


def test_extrapolation_names_the_binding_term():
    rows = cost_model.extrapolate(CAL, rows=10**10, cols=64, workers=[10, 1000], threads=2,
                                  objstore_mbps=[10, 10_000], aggregate_gbps=1e6)
    by = {(r["workers"], r["objstore_mbps"]): r for r in rows}
    assert by[(10, 10)]["binding"] == "object store"
    assert by[(10, 10_000)]["binding"] == "workers (compute)"
    assert by[(1000, 10_000)]["binding"] == "scheduler"  # 1e5 tasks x 2 ms beat 1000 workers
    assert all(r["tasks"] <= 100_000 for r in rows)
    assert by[(1000, 10_000)]["predicted_s"] < by[(10, 10_000)]["predicted_s"]


def test_fixed_cost_per_call_waves_and_cold_reads():
    cal = {**CAL, "per_d": {"64": {**CAL["per_d"]["64"],
                                   "call_s": {"threads-2": {"gram": 0.5, "sum": 0.2}}}}}
    cal["per_d"]["64"]["ops"] = {**CAL["per_d"]["64"]["ops"],
                                 "read": {**CAL["per_d"]["64"]["ops"]["read"],
                                          "cold_per_row": 1e-6}}

    def p(**kw):
        base = {"op": "gram", "rows": 10**8, "cols": 64, "chunk_rows": 100_000}
        return cost_model.predict(cal, **{**base, **kw})
    # the measured wall of a one-chunk call replaces the kernel's CPU intercept
    assert p()["predicted_s"] == pytest.approx(_p() - 0.05 + 0.5)
    assert p(op="gen")["fixed_s"] == 0.2
    # 3 tasks on 2 threads: the second wave runs one task, so 4/3 of the even split
    three = p(rows=300_000)
    assert three["work_s"] == pytest.approx(300_000 * 2e-7 / 1.8 * (2 / 1.5))
    # a cold read costs the cold CPU per row, or the disk time when that is longer
    warm = p(op="read", source="read")["work_s"]
    cold = p(op="read", source="read", cold_bytes=1)["work_s"]
    assert cold == pytest.approx(warm * (1e-6 + 1e-8) / (4e-7 + 1e-8))
    slow_disk = p(op="read", source="read", cold_bytes=10**11, disk_bytes_per_s=1e8)
    assert slow_disk["io_s"] == pytest.approx(1000.0)
    assert slow_disk["predicted_s"] >= 1000.0


def test_a_pipelines_measured_speedup_replaces_the_generic_one():
    entry = {**CAL["per_d"]["64"], "speedup": {"threads-2": {"gen:gram": 1.0, "gen:sum": 1.5}}}
    cal = {**CAL, "per_d": {"64": entry}}
    got = cost_model.predict(cal, op="gram", rows=10**8, cols=64, chunk_rows=100_000)
    # its own speed-up (1.0, not 1.8), and no separate task term: the speed-up holds it
    assert got["predicted_s"] == pytest.approx(1e8 * 2e-7 / 1.0 + 0.05)
    floor = cost_model.predict(cal, op="gen", rows=10**8, cols=64, chunk_rows=100_000)
    assert floor["efficiency"] == 1.5
    other = cost_model.predict(cal, op="randomized", rows=10**8, cols=64, chunk_rows=100_000)
    assert other["efficiency"] == 1.8  # not measured: the generic speed-up


def test_subdomain_pipelines_start_once_every_key_is_met():
    c = 98_304
    assert cost_model.pipeline_chunks("gram", c, n_keys=1000) == cost_model.PIPELINE_SMALL_CHUNKS
    # 8 groups of 512 rows per key: 4.1e6 rows, 42 chunks of 98,304 rows
    assert cost_model.pipeline_chunks("subdomain", c, n_keys=1000) == 42
    assert cost_model.pipeline_chunks("subdomain", c, n_keys=10) == cost_model.PIPELINE_SMALL_CHUNKS


def test_a_pipelines_intercept_is_the_fixed_cost_and_codecs_have_their_own_pipelines():
    entry = {**CAL["per_d"]["64"],
             "speedup": {"threads-2": {"read:sum": 2.0, "read-none:sum": 1.0}},
             "pipeline_fixed_s": {"threads-2": {"read:sum": 0.3, "read-none:sum": -0.1}},
             "call_s": {"threads-2": {"sum": 5.0}}}
    entry["ops"] = {**entry["ops"], "read-none": _op(1e-8)}
    cal = {**CAL, "per_d": {"64": entry}}

    def p(**kw):
        return cost_model.predict(cal, op="read", source="read", rows=10**8, cols=64,
                                  chunk_rows=100_000, **kw)
    zstd, plain = p(), p(codec="none")
    assert zstd["fixed_s"] == 0.3  # the intercept, not the one-chunk call
    assert zstd["predicted_s"] == pytest.approx(0.3 + 1e8 * (4e-7 + 1e-8) / 2.0)
    # a negative intercept is kept (the line runs through the smaller call's own time) ...
    assert plain["efficiency"] == 1.0 and plain["fixed_s"] == -0.1
    assert plain["predicted_s"] == pytest.approx(-0.1 + 1e8 * (1e-8 + 1e-8) / 1.0)
    # ... and a run smaller than that call takes its share of it (a negative intercept puts
    # the line under that share); larger runs, and positive intercepts, keep the line
    small = cost_model.PIPELINE_SMALL_CHUNKS * 100_000
    row = (1e-8 + 1e-8) / 1.0

    def small_run(rows, fixed):
        entry["pipeline_fixed_s"]["threads-2"]["read-none:sum"] = fixed
        return cost_model.predict(cal, op="read", source="read", rows=rows, cols=64,
                                  chunk_rows=100_000, codec="none")["predicted_s"]
    assert small_run(small // 2, -0.02) == pytest.approx((-0.02 + small * row) / 2)
    assert small_run(small // 2, -0.02) > -0.02 + small // 2 * row  # above the line
    assert small_run(small * 2, -0.02) == pytest.approx(-0.02 + 2 * small * row)  # the line
    assert small_run(small // 2, 0.02) == pytest.approx(0.02 + small // 2 * row)


def test_wave_factor_counts_a_partial_last_chunk_by_its_rows():
    # 3 whole chunks on 2 slots: 2 waves for 1.5 chunk times of work
    assert cost_model.wave_factor(300, 100, 2) == pytest.approx(2 / 1.5)
    # 10 whole chunks and one of 17 rows on 2 slots: the partial chunk runs alone at the end
    assert cost_model.wave_factor(1017, 100, 2) == pytest.approx(5.17 / 5.085)
    # ... but beside a whole chunk it ends no later than that chunk
    assert cost_model.wave_factor(917, 100, 2) == pytest.approx(5 / 4.585)
    # one slot: the span is the work itself
    assert cost_model.wave_factor(1017, 100, 1) == pytest.approx(1.0)
    assert cost_model.wave_factor(10**8, 100_000, 2) == pytest.approx(1.0)


def test_extrapolation_takes_the_measured_cpu_per_row_of_the_pipeline():
    base = {**CAL["per_d"]["64"], "pipeline_cpu_per_row": {"threads-2": {"gen:subdomain": 2e-6}}}
    cal = {**CAL, "per_d": {"64": base}}
    # generator (1e-7) and keys (1e-9) swapped for the store's decode (4e-7)
    assert cost_model._row_cpu(cal, 64, "subdomain") == pytest.approx(2e-6 - 1.01e-7 + 4e-7)
    base["pipeline_cpu_per_row"]["cluster-2x1"] = {"read:gram": 7e-7}
    assert cost_model._row_cpu(cal, 64, "gram") == 7e-7
    assert cost_model._row_cpu(CAL, 64, "gram") == pytest.approx(4e-7 + 1e-7)


def test_a_configurations_measurements_are_filed_under_its_key():
    cal = {"task_s": {}, "tree": {}, "per_d": {"64": {"efficiency": {}, "inflation": {},
                                                     "call_s": {}}}}
    pipes = {"speedup": {"read:sum": 1.5}, "inflation": {"read:sum": 1.1},
             "cpu_per_row": {"read:sum": 3e-7}, "fixed_s": {"read:sum": 0.2}}
    got = {"task_s": 2e-3, "tree": {"leaves": 64}, "cluster_start_s": 1.0,
           "per_d": {"64": {"key": "cluster-2x1", "call_s": {"sum": 0.1}, "efficiency": 0.9,
                            "inflation": 1.2, "pipelines": pipes}}}
    cost_model._merge_config(cal, "2x1", got)
    entry = cal["per_d"]["64"]
    assert cal["task_s"] == {"cluster-2x1": 2e-3} and cal["tree"] == {"cluster": {"leaves": 64}}
    assert entry["efficiency"] == {"cluster-2x1": 0.9}
    assert entry["speedup"] == {"cluster-2x1": {"read:sum": 1.5}}
    assert entry["pipeline_fixed_s"] == {"cluster-2x1": {"read:sum": 0.2}}
    # a 2x2 run on a 2-CPU machine takes the 2x1 pipelines (no more cores), a 1x2 run its own
    cal["machine"] = {"cpus": 2}
    assert cost_model._config_key(cal, entry, "cluster", 2, 2) == "cluster-2x1"
    assert cost_model._config_key(cal, entry, "cluster", 1, 2) == "cluster-1x2"
    assert cost_model._config_key(cal, entry, "threads", 1, 2) == "threads-2"


def test_each_configuration_measures_the_pipelines_its_runs_need():
    pipes = cost_model.config_pipelines
    assert ("gen", "subdomain") in pipes("threads-2") and ("read-none", "transform") in pipes(
        "threads-2")
    assert ("read", "incremental") in pipes("1x2") and ("read-none", "gram") not in pipes("1x2")
    both = pipes("2x1")
    assert ("read", "incremental") in both and ("read-none", "gram") in both
    assert len(set(both)) == len(both)  # no pipeline measured twice
    assert ("read", "randomized") not in pipes("2x2") and ("read-none", "sum") in pipes("2x2")


def test_the_speed_probe_scales_the_compute_terms_not_the_disk():
    cal = {**CAL, "probe_s": 0.5,
           "per_d": {"64": {**CAL["per_d"]["64"],
                            "speedup": {"threads-2": {"gen:gram": 2.0}},
                            "pipeline_fixed_s": {"threads-2": {"gen:gram": 0.1}},
                            "pipeline_probe_s": {"threads-2": {"gen:gram": 0.4}}}}}
    base = {"op": "gram", "rows": 10**7, "cols": 64, "chunk_rows": 100_000}
    plain = cost_model.predict(cal, **base)
    slow = cost_model.predict(cal, **base, probe_s=0.6)  # 1.5x the pipeline's own probe
    assert plain["speed"] == 1.0 and slow["speed"] == pytest.approx(1.5)
    assert slow["predicted_s"] == pytest.approx(1.5 * plain["predicted_s"])
    # without a probe of its own, a pipeline takes the calibration's
    rand = cost_model.predict(cal, **{**base, "op": "randomized"}, probe_s=0.6)
    assert rand["speed"] == pytest.approx(1.2)
    # a cold read bound by the disk: its disk time is not scaled
    cold = {**base, "op": "read", "source": "read", "cold_bytes": 10**12}
    assert (cost_model.predict(cal, **cold, probe_s=1.0)["io_s"]
            == cost_model.predict(cal, **cold)["io_s"] == pytest.approx(10**12 / 5e8))
    assert (cost_model.predict(cal, **cold, probe_s=1.0)["predicted_s"]
            == pytest.approx(cost_model.predict(cal, **cold)["predicted_s"], rel=1e-3))


def test_the_speed_probe_runs_threaded_whatever_the_default(monkeypatch):
    import dask

    seen = []
    monkeypatch.setattr(cost_model, "_probe_call", [lambda: seen.append(
        (dask.config.get("scheduler"), dask.config.get("num_workers")))])
    with dask.config.set(scheduler="sync"):
        assert cost_model.probe_here(repeat=3) >= 0
    assert seen == [("threads", cost_model.PROBE_THREADS)] * 3


def test_the_probe_process_answers_each_request(monkeypatch):
    import io

    calls = []
    monkeypatch.setattr(cost_model, "_probe_call", [lambda: calls.append(1)])
    out = io.StringIO()
    cost_model.serve_probes(["2\n", "\n", "3\n"], out, warm=1)
    assert len(calls) == 6
    assert [float(v) >= 0 for v in out.getvalue().split()] == [True, True]


def test_the_speed_probe_runs_in_a_process_of_its_own_and_is_restarted():
    import os

    try:
        first = cost_model.speed_probe(repeat=1)
        proc = cost_model._probe_server[0]
        assert proc.pid != os.getpid() and 0 < first < 60
        assert cost_model.speed_probe(repeat=1) > 0 and cost_model._probe_server[0] is proc
        proc.kill()
        proc.wait()
        assert cost_model.speed_probe(repeat=1) > 0  # a new process
        assert cost_model._probe_server[0] is not proc
    finally:
        cost_model._stop_probe_server()
    assert not cost_model._probe_server


def test_the_transform_pipelines_write_a_sharded_output(tmp_path):
    import dask
    import zarr

    from veob_dask.datasets import SyntheticMatrix

    x = SyntheticMatrix(4 * 500, 8).to_dask(500)
    with dask.config.set(scheduler="sync"):
        for shard_above, sharded in ((cost_model.TRANSFORM_SHARD_ABOVE, True), (None, False)):
            out = tmp_path / f"t{shard_above}.zarr"
            cost_model.op_callable("transform", x, k=3, q=1, out=out,
                                   shard_above=shard_above)()
            arr = zarr.open_group(out, mode="r")["X"]
            assert (arr.shards is not None) is sharded
            assert arr.shape == (2000, 3)


def test_a_pipelines_line_is_fitted_through_every_size():
    # exact on a line, and its value at the smaller call is the line's, not the first point's
    slope, at = cost_model._line([12, 24, 36], [1.0 + 0.5 * m for m in (12, 24, 36)], 12)
    assert slope == pytest.approx(0.5) and at == pytest.approx(7.0)
    # one slow middle point moves the slope less than a two-point fit would move it
    slope, _ = cost_model._line([12, 24, 36], [7.0, 16.0, 19.0], 12)
    assert slope == pytest.approx(0.5)


def test_interleaved_rounds_alternate_direction_and_take_medians(monkeypatch):
    calls: list[int] = []
    fns = [lambda i=i: calls.append(i) for i in range(3)]
    # call n (0-based) of size i takes 10 i + n wall seconds and i + 0.1 n CPU seconds
    timed = iter(range(9))

    def fake_wall_cpu(fn, repeat):
        fn()
        n = next(timed)
        return 10 * calls[-1] + n, calls[-1] + 0.1 * n

    monkeypatch.setattr(cost_model, "_wall_cpu", fake_wall_cpu)
    walls, cpus = cost_model._interleaved(fns, 3)
    assert calls == [0, 1, 2, 2, 1, 0, 0, 1, 2]
    # size 0 was call 0, 5, 6; size 1 call 1, 4, 7; size 2 call 2, 3, 8: medians 5, 4, 3
    assert walls == [5, 14, 23]
    assert cpus == pytest.approx([0.5, 1.4, 2.3])


def test_a_store_head_reads_like_the_whole_store(tmp_path):
    import dask
    import numpy as np

    from veob_dask.datasets import SyntheticMatrix
    from veob_dask.io import read_array

    c = 500
    path = tmp_path / "s.zarr"
    cost_model.write_sharded_store(SyntheticMatrix(8 * c, 6), path, chunk_rows=c,
                                   chunks_per_shard=4, codec="zstd")
    head = cost_model.store_head(path, 3 * c)
    assert head.shape == (3 * c, 6) and head.chunks[0] == (c, c, c)
    np.testing.assert_array_equal(head.compute(), read_array(path)[: 3 * c].compute())
    # as many tasks as a pass over a store of 3 chunks: no slicing task per chunk
    short = tmp_path / "short.zarr"
    cost_model.write_sharded_store(SyntheticMatrix(3 * c, 6), short, chunk_rows=c,
                                   chunks_per_shard=4, codec="zstd")
    n_tasks = [len(dict(dask.optimize(x.sum())[0].__dask_graph__()))
               for x in (head, read_array(short), read_array(path)[: 3 * c])]
    assert n_tasks[0] == n_tasks[1] < n_tasks[2]
    assert cost_model.store_head(path, 10 * c).shape == (8 * c, 6)
    with pytest.raises(ValueError, match="whole number of stored chunks"):
        cost_model.store_head(path, c + 1)


def test_a_cold_pass_is_the_closed_network_of_disk_and_cores():
    cp = cost_model.closed_pass
    assert cp(3.0, 2.0, 1, 2) == pytest.approx(5.0)  # one slot: read, then compute
    assert cp(0.0, 2.0, 2, 2) == 2.0 and cp(3.0, 0.0, 2, 2) == 3.0
    # two slots on two cores, solved by hand: (io² + 2 cpu io + 2 cpu²) / (io + 2 cpu)
    io, cpu = 24.9, 11.0
    assert cp(io, cpu, 2, 2) == pytest.approx((io**2 + 2 * cpu * io + 2 * cpu**2)
                                              / (io + 2 * cpu))
    for slots in (1, 2, 4, 8):
        for io, cpu in ((1.0, 10.0), (10.0, 1.0), (5.0, 5.0)):
            assert max(io, cpu) <= cp(io, cpu, slots, 2) <= io + cpu
    # far more of one than of the other: about that one (plus a slot's share of the disk)
    assert cp(1.0, 1000.0, 2, 2) == pytest.approx(1000.5, rel=1e-3)
    assert cp(1000.0, 1.0, 2, 2) == pytest.approx(1000.0, rel=1e-3)
    # more slots overlap more of the disk with the compute, even past the cores
    assert cp(10.0, 10.0, 4, 2) < cp(10.0, 10.0, 2, 2) < cp(10.0, 10.0, 1, 2)


def test_a_cold_pass_is_predicted_by_the_closed_network():
    got = cost_model.predict(CAL, op="read", source="read", rows=10**8, cols=64,
                             chunk_rows=100_000, cold_bytes=2 * 10**10, disk_bytes_per_s=1e9)
    per_pass = cost_model.closed_pass(got["io_s"], got["work_s"], 2, 2)
    assert got["io_s"] == pytest.approx(20.0)
    assert got["predicted_s"] == pytest.approx(got["fixed_s"] + per_pass + got["overhead_s"])
    # read-ahead overlaps disk and compute fully
    ahead = cost_model.predict(CAL, op="read", source="read", rows=10**8, cols=64,
                               chunk_rows=100_000, cold_bytes=2 * 10**10,
                               disk_bytes_per_s=1e9, readahead=True)
    assert ahead["predicted_s"] == pytest.approx(
        ahead["fixed_s"] + max(ahead["io_s"], ahead["work_s"]) + ahead["overhead_s"])


def test_a_cold_pass_with_more_slots_than_cpus_computes_at_one_slot_a_cpu():
    entry = {**CAL["per_d"]["64"], "speedup": {"cluster-2x1": {"read:sum": 1.6},
                                                "cluster-2x2": {"read:sum": 1.2}}}
    cal = {**CAL, "per_d": {"64": entry}}
    key = cost_model._config_key
    assert key(cal, entry, "cluster", 2, 2) == "cluster-2x2"  # warm: all four compute at once
    assert key(cal, entry, "cluster", 2, 2, cold=True) == "cluster-2x1"
    assert key(cal, entry, "cluster", 2, 1, cold=True) == "cluster-2x1"
    kw = {"op": "read", "source": "read", "rows": 10**8, "cols": 64, "chunk_rows": 100_000,
          "scheduler": "cluster", "workers": 2, "threads": 2}
    assert cost_model.predict(cal, **kw)["efficiency"] == 1.2
    cold = cost_model.predict(cal, **kw, cold_bytes=10**10, disk_bytes_per_s=1e9)
    assert cold["efficiency"] == 1.6


def test_a_transform_written_behind_with_o_direct_waits_on_the_disk_with_one_slot_a_core():
    assert cost_model.disk_slots("transform", "threads", 4, 2) == 2
    assert cost_model.disk_slots("transform", "sync", 1, 2) == 1
    assert cost_model.disk_slots("transform", "cluster", 4, 2) == 4  # no write-behind there
    assert cost_model.disk_slots("gram", "threads", 4, 2) == 4
    assert cost_model.disk_slots("transform", "threads", 4, 2, "zstd") == 4  # decode-bound
    ops = CAL["per_d"]["64"]["ops"]
    cal = {**CAL, "per_d": {"64": {**CAL["per_d"]["64"],
                                   "ops": {**ops, "read-none": ops["read"]}}}}
    kw = {"rows": 10**8, "cols": 64, "chunk_rows": 100_000, "source": "read",
          "cold_bytes": 10**8 * 256, "disk_bytes_per_s": 1e9, "codec": "none"}
    # a cold fit gains from two threads a core; a cold transform written O_DIRECT does not
    assert (cost_model.predict(cal, op="gram", threads=4, **kw)["predicted_s"]
            < cost_model.predict(cal, op="gram", threads=2, **kw)["predicted_s"])
    four = cost_model.predict(cal, op="transform", threads=4, direct_writes=True, **kw)
    two = cost_model.predict(cal, op="transform", threads=2, direct_writes=True, **kw)
    assert four["predicted_s"] == pytest.approx(two["predicted_s"])
    assert four["predicted_s"] == pytest.approx(
        four["fixed_s"] + cost_model.closed_pass(four["io_s"], four["work_s"], 2, 2)
        + four["overhead_s"])
    # written through the page cache, its output reaches the disk after the pass: it gains
    assert cost_model.disk_slots("transform", "threads", 4, 2, "none", direct_writes=False) == 4
    assert (cost_model.predict(cal, op="transform", threads=4, **kw)["predicted_s"]
            < cost_model.predict(cal, op="transform", threads=2, **kw)["predicted_s"])
    # a zstd store's transform gains from the two further slots as a fit does
    z = {**kw, "codec": "zstd"}
    assert (cost_model.predict(cal, op="transform", threads=4, **z)["predicted_s"]
            < cost_model.predict(cal, op="transform", threads=2, **z)["predicted_s"])


def test_merged_calibrations_average_each_pipeline_over_its_probe():
    def cal(speedup, probe, fixed, created):
        entry = {**CAL["per_d"]["64"], "speedup": {"threads-2": {"gen:gram": speedup}},
                 "pipeline_probe_s": {"threads-2": {"gen:gram": probe}},
                 "pipeline_fixed_s": {"threads-2": {"gen:gram": fixed}},
                 "pipeline_cpu_per_row": {"threads-2": {"gen:gram": 1e-6 * speedup}}}
        return {**CAL, "per_d": {"64": entry}, "created": created}

    # wall per row over the probe, work / E / probe: 2 x work in the first, 1 x work in the
    # second; their mean, 1.5 x work, is put back at the last calibration's probe
    a, b = cal(1.0, 0.5, 0.2, "a"), cal(4.0, 0.25, 0.05, "b")
    merged = cost_model.merge_calibrations([a, b])
    e = merged["per_d"]["64"]
    assert e["speedup"]["threads-2"]["gen:gram"] == pytest.approx(1 / (1.5 * 0.25))
    assert e["pipeline_fixed_s"]["threads-2"]["gen:gram"] == pytest.approx(
        (0.2 / 0.5 + 0.05 / 0.25) / 2 * 0.25)
    assert e["pipeline_cpu_per_row"]["threads-2"]["gen:gram"] == pytest.approx(2.5e-6)
    assert merged["merged_from"] == ["a", "b"]
    assert b["per_d"]["64"]["speedup"]["threads-2"]["gen:gram"] == 4.0  # inputs untouched
    # a calibration merged with itself is itself
    same = cost_model.merge_calibrations([b, b])["per_d"]["64"]
    assert same["speedup"]["threads-2"]["gen:gram"] == pytest.approx(4.0)
    # fixed seconds of another calibration version (defined another way) are left out
    old = {**a, "version": 5}
    mixed = cost_model.merge_calibrations([old, {**b, "version": 6}])["per_d"]["64"]
    assert mixed["pipeline_fixed_s"]["threads-2"]["gen:gram"] == pytest.approx(0.05)
    assert mixed["speedup"]["threads-2"]["gen:gram"] == pytest.approx(1 / (1.5 * 0.25))
    # pipelines probed in the calibration's process are not merged with those probed in a
    # process of their own (version 7 on)
    new = cost_model.merge_calibrations([old, {**b, "version": 7}])["per_d"]["64"]
    assert new["speedup"]["threads-2"]["gen:gram"] == pytest.approx(4.0)
    with pytest.raises(ValueError):
        cost_model.merge_calibrations([])


def test_a_configuration_is_measured_in_a_child_process_and_its_failure_is_named(tmp_path):
    # a one-worker cluster with no feature widths: the child starts it, times its tasks and
    # sends the result back as JSON
    got = cost_model._config_in_child({"per_d": {}, "task_s": {"sync": 0.0}}, "1x1", [],
                                      tmp_path)
    assert got["per_d"] == {} and got["task_s"] > 0 and got["cluster_start_s"] > 0
    # a calibration without the widths asked for: the child fails, and the error says where
    with pytest.raises(RuntimeError, match=r"configuration 1x1 failed(.|\n)*KeyError"):
        cost_model._config_in_child({"per_d": {}, "task_s": {"sync": 0.0}}, "1x1", [8],
                                    tmp_path)


def test_a_cold_pass_read_with_o_direct_costs_the_direct_decode():
    import copy

    cal = copy.deepcopy(CAL)
    kw = {"op": "read", "source": "read", "rows": 10**8, "cols": 64, "chunk_rows": 100_000,
          "cold_bytes": 2 * 10**10, "disk_bytes_per_s": 1e9, "readahead": True}
    warm = cost_model.predict(cal, **kw, direct_io=True)  # no direct cost measured: the warm one
    cal["per_d"]["64"]["ops"]["read"]["direct_per_row"] = 1e-7
    direct = cost_model.predict(cal, **kw, direct_io=True)
    cached = cost_model.predict(cal, **kw)  # through the page cache: unchanged
    # (1e8 rows x (source + sum kernel)) / E, E = 1.8
    assert warm["work_s"] == pytest.approx(1e8 * (4e-7 + 1e-8) / 1.8)
    assert direct["work_s"] == pytest.approx(1e8 * (1e-7 + 1e-8) / 1.8)
    assert cached["work_s"] == pytest.approx(warm["work_s"])


def test_a_transform_written_direct_takes_its_own_pipeline():
    entry = {**CAL["per_d"]["64"],
             "ops": {**CAL["per_d"]["64"]["ops"], "transform-none": _op(5e-7),
                     "transform-none-dw": _op(2e-7),
                     "read-none": {**_op(4e-7), "disk_bytes_per_s": 5e8}},
             "speedup": {"threads-2": {"read-none:transform": 1.5,
                                       "read-none:transform-dw": 1.2}}}
    cal = {**CAL, "per_d": {"64": entry}}
    kw = {"op": "transform", "rows": 10**8, "cols": 64, "chunk_rows": 100_000,
          "source": "read", "codec": "none", "cold_bytes": 10**8 * 256}
    cached = cost_model.predict(cal, **kw)
    direct = cost_model.predict(cal, **kw, direct_writes=True)
    # the output's 6.4 GB share the disk with the reads either way
    assert cached["io_s"] == direct["io_s"] == pytest.approx((10**8 * 256 + 10**8 * 64) / 5e8)
    assert cached["efficiency"] == 1.5 and direct["efficiency"] == 1.2
    assert direct["work_s"] == pytest.approx(10**8 * (4e-7 + 2e-7) / 1.2)
    # a calibration without the direct pipeline: the cached one, its writes on the disk
    del entry["speedup"]["threads-2"]["read-none:transform-dw"]
    fallback = cost_model.predict(cal, **kw, direct_writes=True)
    assert fallback["efficiency"] == 1.5 and fallback["io_s"] == pytest.approx(cached["io_s"])


def test_transform_pipelines_merge_only_within_a_calibration_version():
    def cal(version: int, speedup: float) -> dict:
        entry = {**CAL["per_d"]["64"], "speedup": {"threads-2": {
            "read:transform": speedup, "read:gram": speedup}},
            "pipeline_probe_s": {"threads-2": {"read:transform": 0.5, "read:gram": 0.5}}}
        return {**CAL, "per_d": {"64": entry}, "version": version}

    merged = cost_model.merge_calibrations([cal(7, 1.0), cal(8, 2.0)])["per_d"]["64"]
    assert merged["speedup"]["threads-2"]["read:transform"] == pytest.approx(2.0)
    assert merged["speedup"]["threads-2"]["read:gram"] == pytest.approx(4 / 3)  # 1/mean(1, 1/2)
    same = cost_model.merge_calibrations([cal(8, 1.0), cal(8, 2.0)])["per_d"]["64"]
    assert same["speedup"]["threads-2"]["read:transform"] == pytest.approx(4 / 3)


def test_direct_writes_reach_the_transform(tmp_path, monkeypatch):
    import os

    import dask

    from veob_dask.datasets import SyntheticMatrix
    from veob_dask.io import direct

    if not hasattr(os, "O_DIRECT"):
        pytest.skip("no O_DIRECT on this platform")
    seen: list[bool] = []
    real = direct.direct_writes_for
    monkeypatch.setattr(direct, "direct_writes_for", lambda layout: seen.append(real(layout))
                        or seen[-1])
    x = SyntheticMatrix(4 * 1024, 64).to_dask(1024)
    with dask.config.set(scheduler="sync"):
        for flag in (True, None):
            seen.clear()
            cost_model.op_callable("transform", x, k=16, q=1, out=tmp_path / "t.zarr",
                                   codec="none", shard_above=0, direct_writes=flag)()
            assert seen and all(s is bool(flag) for s in seen)


def test_a_cold_threaded_read_pass_with_o_direct_drops_the_page_cache_inflation():
    entry = {**CAL["per_d"]["64"],
             "ops": {**CAL["per_d"]["64"]["ops"],
                     "read": {**CAL["per_d"]["64"]["ops"]["read"], "direct_per_row": 3e-7}},
             "speedup": {"threads-2": {"read:sum": 1.3, "read:gram": 1.4},
                         "cluster-2x1": {"read:sum": 1.3}},
             "pipeline_inflation": {"threads-2": {"read:sum": 1.5, "read:gram": 1.5},
                                    "cluster-2x1": {"read:sum": 1.5}}}
    cal = {**CAL, "per_d": {"64": entry}}
    kw = {"op": "read", "source": "read", "rows": 10**8, "cols": 64, "chunk_rows": 100_000,
          "cold_bytes": 2 * 10**10, "disk_bytes_per_s": 1e9}
    cold = cost_model.predict(cal, **kw, direct_io=True)
    # the warm pipeline's cores (1.3 x 1.5 = 1.95 busy), each row at its single-thread cost
    assert cold["efficiency"] == pytest.approx(1.95)
    assert cold["work_s"] == pytest.approx(1e8 * (3e-7 + 1e-8) / 1.95)
    assert cold["predicted_cpu_s"] == pytest.approx(1e8 * (3e-7 + 1e-8))
    # 4 threads on 2 cores: no more than a core each
    assert cost_model.predict(cal, **kw, direct_io=True, threads=4)["efficiency"] == pytest.approx(1.95)
    assert cost_model.cold_direct_read_speedup(1.5, 1.5, 4, 2) == 2.0
    # never below the warm speed-up (a pipeline whose CPU shrank when run on two threads)
    assert cost_model.cold_direct_read_speedup(1.5, 0.8, 2, 2) == 1.5
    # through the page cache, on a cluster, or a Gram fit: the warm pipeline as measured
    assert cost_model.predict(cal, **kw)["efficiency"] == 1.3
    cluster = cost_model.predict(cal, **kw, direct_io=True, scheduler="cluster", workers=2,
                                 threads=1)
    assert cluster["efficiency"] == 1.3
    gram = cost_model.predict(cal, **{**kw, "op": "gram"}, direct_io=True)
    assert gram["efficiency"] == 1.4
    assert gram["predicted_cpu_s"] > 1.4 * 1e8 * (3e-7 + 1e-7)
