"""tinyllm.threads: how many threads, counted how, set how; --threads on the command line."""

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import tinyllm
from tinyllm import kernels, threads
from tinyllm.cli import main


def _pools(api):
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == api]


def test_set_num_threads_runs_one_pool():
    """With the compiled products: OpenMP at n, every BLAS at 1 (the kernels call BLAS from
    their threads); with the NumPy kernels only, BLAS at n."""
    before = tinyllm.get_num_threads()
    try:
        tinyllm.set_num_threads(2)
        assert tinyllm.get_num_threads() == 2
        compiled = kernels.matmul is not kernels.reference.matmul
        assert threads.limits_for(2) == ({"openmp": 2, "blas": 1} if compiled
                                         else {"openmp": 2, "blas": 2})
        if compiled and _pools("openmp"):
            assert set(_pools("openmp")) == {2} and set(_pools("blas")) == {1}
        tinyllm.set_num_threads(1)
        assert tinyllm.get_num_threads() == 1
    finally:
        tinyllm.set_num_threads(before)


def test_limited_restores_every_pool():
    saved = {i["filepath"]: i["num_threads"] for i in threadpool_info()}
    with threads.limited(1) as n:
        assert n == 1 and tinyllm.get_num_threads() == 1
    assert {i["filepath"]: i["num_threads"] for i in threadpool_info()} == saved


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "two", None])
def test_bad_counts_are_refused(bad):
    with pytest.raises(ValueError, match="whole number >= 1"):
        threads.set_num_threads(bad) if not isinstance(bad, str) else threads.resolve(bad)


def test_resolve_a_number_and_auto():
    assert threads.resolve(3) == (3, "3 threads (asked for)")
    assert threads.resolve("1") == (1, "1 thread (asked for)")
    n, why = threads.resolve("auto")
    cores, counted = threads.physical_cores()
    assert 1 <= n <= cores and why.startswith(f"auto: {n} (") and counted in why


def test_auto_takes_fewer_threads_only_where_the_probe_says_more_is_slower(monkeypatch):
    monkeypatch.setattr(threads, "physical_cores", lambda: (8, "8 cores (test)"))
    for times, want in [({8: 1.0, 4: 1.5, 2: 2.0, 1: 3.0}, 8),     # more is faster: all
                        ({8: 2.0, 4: 1.0, 2: 1.5, 1: 3.0}, 4),     # 8 slower than 4: 4
                        ({8: 1.0, 4: 0.99, 2: 0.98, 1: 3.0}, 8),   # within the margin: more
                        ({8: 5.0, 4: 4.0, 2: 3.0, 1: 1.0}, 1)]:    # a busy machine: 1
        monkeypatch.setattr(threads, "probe_seconds", lambda n, t=times: t[n])
        threads._auto.cache_clear()
        assert threads.resolve("auto")[0] == want, times
    threads._auto.cache_clear()


def test_cgroup_quotas_v2_and_v1(tmp_path):
    member = tmp_path / "cgroup"
    member.write_text("0::/job\n")
    (tmp_path / "job").mkdir()
    (tmp_path / "job" / "cpu.max").write_text("150000 100000\n")
    assert threads._cgroup_quota(str(tmp_path), str(member)) == 1.5
    (tmp_path / "job" / "cpu.max").write_text("max 100000\n")
    assert threads._cgroup_quota(str(tmp_path), str(member)) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu" / "box").mkdir(parents=True)
    member.write_text("4:cpu,cpuacct:/box\n")
    (v1 / "cpu" / "box" / "cpu.cfs_quota_us").write_text("300000\n")
    (v1 / "cpu" / "box" / "cpu.cfs_period_us").write_text("100000\n")
    assert threads._cgroup_quota(str(v1), str(member)) == 3.0
    (v1 / "cpu" / "box" / "cpu.cfs_quota_us").write_text("-1\n")
    assert threads._cgroup_quota(str(v1), str(member)) is None
    assert threads._cgroup_quota(str(tmp_path / "none"), str(tmp_path / "missing")) is None


def test_physical_cores_counts_cores_not_hyperthreads(monkeypatch):
    monkeypatch.setattr(threads, "_affinity_cpus", lambda: [0, 1, 2, 3])
    monkeypatch.setattr(threads, "_core_of", lambda cpu: ("0", str(cpu // 2)))
    monkeypatch.setattr(threads, "_cgroup_quota", lambda: None)
    assert threads.physical_cores() == (2, "4 CPUs in the affinity mask on 2 physical cores")
    monkeypatch.setattr(threads, "_cgroup_quota", lambda: 1.2)     # 2 CPUs' worth: no limit
    assert threads.physical_cores()[0] == 2
    monkeypatch.setattr(threads, "_cgroup_quota", lambda: 0.5)
    assert threads.physical_cores() == (1, "4 CPUs in the affinity mask on 2 physical cores, "
                                           "cgroup quota 0.5 CPUs")
    monkeypatch.setattr(threads, "_core_of", lambda cpu: None)
    monkeypatch.setattr(threads, "_cgroup_quota", lambda: None)
    assert threads.physical_cores() == (4, "4 CPUs (no core topology found: each counted)")


def test_the_probe_times_a_product():
    assert 0 < threads.probe_seconds(1, repeats=1) < 5


def test_cli_threads_option(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "threads: --threads auto computes on" in out
    with pytest.raises(SystemExit) as exc:
        main(["generate", "nowhere", "--threads", "0"])
    assert exc.value.code == 2
    assert "--threads: must be 'auto' or a positive integer, got '0'" in capsys.readouterr().err
    x = np.ones((4, 4), np.float32)
    np.testing.assert_array_equal(kernels.matmul(x, x), np.full((4, 4), 4.0, np.float32))


def test_training_gives_the_same_bits_on_any_number_of_threads():
    """Three AdamW steps of a GPT on 1 and on 2 threads, every compiled kernel forced to split
    (threshold 0): the same parameters bit for bit. Products are cut where BLAS's own tiling
    would cut them, and every sum over rows adds fixed groups in a fixed order."""
    if kernels.backend() != "cython":
        pytest.skip("compiled kernels not built")
    import importlib

    from tinyllm.models import GPT, GPTConfig
    from tinyllm.optim import AdamW
    modules = [importlib.import_module(f"tinyllm.kernels._{stem}")
               for stem in ("matmul", "attention", "softmax", "fused", "optim", "special")]
    saved = [m.set_parallel_threshold(0) for m in modules]
    before = tinyllm.get_num_threads()
    try:
        states = []
        for n in (1, 2):
            tinyllm.set_num_threads(n)
            model = GPT(GPTConfig.from_preset("small", vocab_size=65), seed=0)
            opt = AdamW(model.parameters(), lr=1e-3)
            rng = np.random.default_rng(0)
            for _ in range(3):
                x = rng.integers(0, 65, (4, 64))
                loss = model(x, np.roll(x, -1, axis=1)).loss
                opt.zero_grad()
                loss.backward()
                opt.step()
            states.append(model.state_dict())
        for name, value in states[0].items():
            assert np.array_equal(value, states[1][name]), name
    finally:
        for m, old in zip(modules, saved):
            m.set_parallel_threshold(old)
        tinyllm.set_num_threads(before)
