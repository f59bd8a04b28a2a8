"""Nothing lost, nothing confusing: run safety, up-front checks, honest numbers, hostile files.

Each test is one promise of RELIABILITY.md. CLI tests call `main(argv)` (or a subprocess) and
check the exit code, the one-line message and that no earlier file changed.
"""

import json
import os
import platform
import signal
import stat
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from tinyllm.cli import main
from tinyllm.models import GPT, GPTConfig
from tinyllm.models.checkpoint import CheckpointError
from tinyllm.tokenizers import BPETokenizer, CharTokenizer
from tinyllm.tokenizers.base import TokenizerFileError
from tinyllm.training import TrainConfig, Trainer, load_checkpoint, save_checkpoint
from tinyllm.training.inference import TextStreamer, evaluate_run, load_run
from tinyllm.training.rundir import RunLock

TEXT = "the cat sat on the mat. a dog ran to the log. " * 300


@pytest.fixture()
def corpus(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(TEXT)
    return path


def _train_args(corpus, out, *extra):
    return ["train", "--data", str(corpus), "--preset", "nano", "--steps", "8",
            "--eval-interval", "4", "--eval-iters", "2", "--batch-size", "4", "--out", str(out),
            "--quiet", *extra]


def _config(corpus, out, **changes):
    base = dict(data=str(corpus), preset="nano", steps=8, eval_interval=4, eval_iters=2,
                batch_size=4, sample_tokens=4, out=str(out))
    return TrainConfig(**{**base, **changes})


def _snapshot(directory):
    return {p: p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def _err_line(capsys):
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


# ---------------------------------------------------------------------- runs lost or mixed
def test_a_second_run_with_the_same_name_is_refused_and_changes_nothing(corpus, tmp_path,
                                                                       capsys):
    out = tmp_path / "runs"
    assert main(_train_args(corpus, out)) == 0
    run = out / "gpt-nano-text"
    before = _snapshot(run)
    capsys.readouterr()
    assert main(_train_args(corpus, out, "--steps", "12", "--lr", "0.002")) == 2
    err = _err_line(capsys)
    assert "already holds a run" in err and "--resume" in err and "--name" in err
    assert "--overwrite" in err
    assert _snapshot(run) == before


def test_overwrite_replaces_the_run_whole(corpus, tmp_path):
    out = tmp_path / "runs"
    assert main(_train_args(corpus, out, "--steps", "12")) == 0
    assert main(_train_args(corpus, out, "--overwrite")) == 0
    lines = (out / "gpt-nano-text" / "metrics.jsonl").read_text().splitlines()
    steps = [r["step"] for r in map(json.loads, lines) if r["kind"] == "train"]
    assert steps == list(range(1, 9))      # not 1..12 followed by 1..8


def test_a_second_writer_is_kept_out_by_the_lock(corpus, tmp_path, capsys):
    run = tmp_path / "runs" / "gpt-nano-text"
    with RunLock(run):
        assert main(_train_args(corpus, tmp_path / "runs")) == 2
    err = _err_line(capsys)
    assert f"another process (pid {os.getpid()}) is writing to {run}" in err
    assert not (run / "metrics.jsonl").exists()


def test_the_lock_holds_across_processes_and_dies_with_its_holder(tmp_path):
    run = tmp_path / "run"
    code = ("import sys, time; from tinyllm.training.rundir import RunLock\n"
            "with RunLock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(30)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(run)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(ValueError, match=f"pid {holder.pid}"):
            RunLock(run).__enter__()
    finally:
        holder.kill()
        holder.wait()
    with RunLock(run):       # a killed holder leaves no stale lock
        pass


# ---------------------------------------------------------------------- doomed work
def test_a_step_that_cannot_fit_in_memory_is_refused_before_anything_is_allocated(
        corpus, tmp_path, capsys):
    assert main(_train_args(corpus, tmp_path, "--preset", "medium", "--block-size", "100000")) == 2
    err = _err_line(capsys)
    assert "needs about" in err and "available" in err and "--ignore-memory-check" in err
    assert not (tmp_path / "gpt-medium-text").exists()


def test_the_memory_check_can_be_overridden(corpus, tmp_path, monkeypatch):
    monkeypatch.setattr("tinyllm._memory.available_memory_bytes", lambda: 2**10)
    with pytest.raises(ValueError, match="needs about .* of memory, but this machine has"):
        Trainer(_config(corpus, tmp_path), quiet=True)
    assert Trainer(_config(corpus, tmp_path), quiet=True, check_memory=False).step == 0


@pytest.mark.parametrize("family", ["gpt", "bert", "lstm"])
def test_the_memory_estimate_bounds_the_measured_peak(family):
    """The estimate is an upper bound, within 3x of what one step really allocates."""
    import tracemalloc

    from tinyllm.models import get_family
    from tinyllm.optim import AdamW
    from tinyllm.training.objectives import objective_for

    fam, tok = get_family(family), CharTokenizer().train("abcdefghij ")
    config = fam.make_config("mini", vocab_size=tok.vocab_size, tokenizer=tok)
    model = fam.build(config, seed=0)
    batcher = objective_for(fam).batcher(np.arange(4000) % 11, tok, 8, 64, seed=0)
    opt = AdamW(model.parameters(), lr=1e-3)
    tracemalloc.start()
    for _ in range(2):
        loss = objective_for(fam).loss(model, next(batcher))
        opt.zero_grad()
        loss.backward()
        opt.step()
    peak = tracemalloc.get_traced_memory()[1] + 4 * model.num_params()
    tracemalloc.stop()
    estimate = config.train_memory_bytes(8, 64)
    assert peak <= estimate <= 3 * peak


@pytest.mark.parametrize("family", ["gpt", "bert", "lstm"])
def test_param_count_equals_the_built_model(family):
    from tinyllm.models import get_family

    fam = get_family(family)
    for preset in fam.presets:
        config = fam.make_config(preset, vocab_size=101)
        assert config.param_count() == fam.build(config).num_params(), preset
    untied = fam.make_config("nano", vocab_size=50, tie_word_embeddings=False) \
        if family != "bert" else fam.make_config("nano", vocab_size=50)
    assert untied.param_count() == fam.build(untied).num_params()


def test_a_validation_split_too_short_is_reported_before_any_step(tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("abcdefghij" * 40)        # 400 characters: 40 in the validation split
    with pytest.raises(ValueError, match=r"the validation split of .* has 40 tokens .* "
                                         r"block_size=64 needs 65"):
        Trainer(_config(short, tmp_path, block_size=64), quiet=True)
    assert not (tmp_path / "gpt-nano-short").exists()


def test_short_runs_need_no_warmup_option(corpus, tmp_path):
    assert TrainConfig(steps=50).warmup_steps == 5
    assert TrainConfig().warmup_steps == 100
    assert main(_train_args(corpus, tmp_path, "--steps", "20")) == 0


def _slow_at(trainer, step: int, seconds: float):
    """Make step `step`'s forward pass take `seconds` (interruptible Python work)."""
    objective = trainer.objective

    class Slow(objective):
        @staticmethod
        def loss(model, batch):
            if trainer.step + 1 == step:
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    time.sleep(0.01)
            return objective.loss(model, batch)

    trainer.objective = Slow


def test_ctrl_c_inside_a_long_step_stops_within_seconds_and_loses_nothing(corpus, tmp_path):
    full = Trainer(_config(corpus, tmp_path / "a"), quiet=True)
    full.train()
    trainer = Trainer(_config(corpus, tmp_path / "b"), quiet=True)
    _slow_at(trainer, step=3, seconds=60)
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    start = time.monotonic()
    timer.start()
    result = trainer.train()
    assert time.monotonic() - start < 10
    assert result.status == "interrupted" and result.step == 2
    assert load_checkpoint(trainer.run_dir / "last.safetensors")[1]["step"] == 2
    Trainer.resume(trainer.run_dir, quiet=True).train()
    a = load_checkpoint(full.run_dir / "last.safetensors")[0]
    b = load_checkpoint(trainer.run_dir / "last.safetensors")[0]
    assert all(np.array_equal(a[k], b[k]) for k in a)      # as if never interrupted


_STUCK_STEP = """
import sys
import numpy as np
from tinyllm.training import TrainConfig, Trainer
config = TrainConfig(data=sys.argv[1], preset="nano", steps=8, eval_interval=4, eval_iters=2,
                     batch_size=4, sample_tokens=4, out=sys.argv[2])
trainer = Trainer(config, quiet=True)
trainer.interrupt_grace_s = 0.5
objective = trainer.objective

class Stuck(objective):
    @staticmethod
    def loss(model, batch):
        if trainer.step == 2:
            print("inside one long call", flush=True)
            ones = np.ones(400_000)
            np.convolve(ones, ones)    # ~15 s in C, never back in Python: no handler runs
        return objective.loss(model, batch)

trainer.objective = Stuck
trainer.train()
print("the long call ran to its end", flush=True)
"""


def test_ctrl_c_inside_one_long_computation_saves_the_last_step_within_seconds(corpus,
                                                                              tmp_path):
    child = subprocess.Popen([sys.executable, "-c", _STUCK_STEP, str(corpus), str(tmp_path / "b")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "inside one long call"
    time.sleep(0.3)
    start = time.monotonic()
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert time.monotonic() - start < 8, "the signal waited for the long call"
    assert child.returncode == 130 and "the long call ran to its end" not in out
    assert "SIGINT received: saved step 2" in err
    run = tmp_path / "b" / "gpt-nano-text"
    assert load_checkpoint(run / "last.safetensors")[1]["step"] == 2
    Trainer.resume(run, quiet=True).train()
    full = Trainer(_config(corpus, tmp_path / "a"), quiet=True).train().run_dir
    a = load_checkpoint(full / "last.safetensors")[0]
    b = load_checkpoint(run / "last.safetensors")[0]
    assert all(np.array_equal(a[k], b[k]) for k in a)      # as if never interrupted


# ---------------------------------------------------------------------- honest numbers
def test_eval_measures_the_whole_split_and_says_so(corpus, tmp_path, capsys):
    assert main(_train_args(corpus, tmp_path)) == 0
    run = tmp_path / "gpt-nano-text"
    result = evaluate_run(run)
    assert result["scope"] == "all of it"
    capsys.readouterr()
    assert main(["eval", str(run), "--max-batches", "1"]) == 0
    assert "the first 4 windows of 32 tokens" in capsys.readouterr().out


def test_eval_skips_and_counts_characters_the_tokenizer_never_saw(corpus, tmp_path, capsys):
    assert main(_train_args(corpus, tmp_path)) == 0
    run = tmp_path / "gpt-nano-text"
    other = tmp_path / "other.txt"
    other.write_text("the cat sät on the mät. " * 50)
    r = evaluate_run(run, data=str(other))
    assert 90 <= r["unknown_tokens"] <= 100     # the 100 'ä' that fall among the targets
    assert r["bits_per_char"] == pytest.approx(r["bits_per_token"])   # one character a token
    capsys.readouterr()
    assert main(["eval", str(run), "--data", str(other)]) == 0
    note = f"{r['unknown_tokens']} tokens are characters this run's tokenizer never saw"
    assert note in capsys.readouterr().out


def test_wsd_runs_extend_exactly_and_cosine_runs_say_they_do_not(corpus, tmp_path, capsys):
    def losses(run_dir):
        records = map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
        return [(r["step"], r["loss"], r["lr"]) for r in records if r["kind"] == "train"]

    wsd = dict(schedule="wsd", warmup_steps=2)
    long = Trainer(_config(corpus, tmp_path / "a", steps=20, **wsd), quiet=True)
    long.train()
    short = Trainer(_config(corpus, tmp_path / "b", steps=10, **wsd), quiet=True)
    short.train(until=6)                                    # still in the stable stretch
    resumed = Trainer.resume(short.run_dir, steps=20, quiet=True)
    assert "continues exactly" in resumed.schedule_note
    resumed.train()
    assert losses(short.run_dir) == losses(long.run_dir)
    cosine = Trainer(_config(corpus, tmp_path / "c", steps=10), quiet=True)
    cosine.train(until=6)
    note = Trainer.resume(cosine.run_dir, steps=20, quiet=True).schedule_note
    assert "the rate of step 7 moves from" in note and "--schedule wsd" in note


# ---------------------------------------------------------------------- one line, not a traceback
def test_bad_option_values_name_the_option(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["generate", "runs/x", "--seed", "-1"])
    assert exc.value.code == 2
    assert "argument --seed: must be a non-negative integer, got '-1'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["eval", "runs/x", "--max-batches", "0"])
    assert "argument --max-batches: must be a positive integer" in capsys.readouterr().err
    with pytest.raises(ValueError, match="max_batches must be a positive integer, got 0"):
        evaluate_run("runs/x", max_batches=0)


def test_a_closed_pipe_is_not_an_error():
    read, write = os.pipe()
    os.close(read)
    r = subprocess.run([sys.executable, "-m", "tinyllm", "info"], stdout=write,
                       stderr=subprocess.PIPE, text=True)
    os.close(write)
    assert r.returncode == 0 and r.stderr == ""


def test_a_full_disk_is_one_line_and_keeps_the_previous_checkpoint(corpus, tmp_path, capsys,
                                                                  monkeypatch):
    from safetensors import SafetensorError

    trainer = Trainer(_config(corpus, tmp_path), quiet=True)
    trainer.train(until=4)
    path = trainer.run_dir / "last.safetensors"
    before = path.read_bytes()

    def full_disk(*args, **kwargs):
        raise SafetensorError("Error while serializing: I/O error: No space left on device")

    monkeypatch.setattr("safetensors.numpy.save_file", full_disk)
    with pytest.raises(OSError, match=f"cannot write {path}: .*No space left"):
        trainer.save()
    assert path.read_bytes() == before
    assert sorted(p.name for p in trainer.run_dir.iterdir() if ".tmp" in p.name) == []
    assert main(["train", "--resume", str(trainer.run_dir), "--quiet"]) == 2
    assert "No space left on device" in _err_line(capsys)


@pytest.mark.parametrize("line", [b"\xff\xfe\n", b"[1, 2, 3]\n", b"{not json\n"])
def test_a_damaged_metrics_log_is_named(corpus, tmp_path, capsys, line):
    trainer = Trainer(_config(corpus, tmp_path), quiet=True)
    trainer.train(until=4)
    with open(trainer.run_dir / "metrics.jsonl", "ab") as f:
        f.write(line)
    assert main(["train", "--resume", str(trainer.run_dir), "--quiet"]) == 2
    err = _err_line(capsys)
    assert f"{trainer.run_dir / 'metrics.jsonl'}" in err and "damaged" in err


def test_files_respect_the_umask(corpus, tmp_path):
    old = os.umask(0o022)
    try:
        run = Trainer(_config(corpus, tmp_path), quiet=True).train().run_dir
    finally:
        os.umask(old)
    for name in ("last.safetensors", "best.safetensors", "train_config.json", "metrics.jsonl",
                 "model/model.safetensors", "model/config.json", "tokenizer.json"):
        assert stat.S_IMODE((run / name).stat().st_mode) == 0o644, name


# ---------------------------------------------------------------------- streaming generation
def test_generate_prints_as_it_goes_and_ctrl_c_keeps_the_text(corpus, tmp_path, capsys,
                                                              monkeypatch):
    assert main(_train_args(corpus, tmp_path)) == 0
    run = tmp_path / "gpt-nano-text"
    capsys.readouterr()
    original, calls = TextStreamer.put, []

    def put_then_stop(self, ids):
        original(self, ids)
        calls.append(self.text)
        if len(calls) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(TextStreamer, "put", put_then_stop)
    assert main(["generate", str(run), "--prompt", "the ", "--max-new-tokens", "50"]) == 130
    out = capsys.readouterr().out
    assert out == "the " + calls[-1] + "\n" and len(calls) == 3


def test_streaming_holds_back_a_split_utf8_character():
    tok = BPETokenizer(special_tokens=()).train("héllo wörld " * 30, vocab_size=260)
    ids = tok.encode("é🙂")
    pieces = []

    class File:
        def write(self, text):
            pieces.append(text)

        def flush(self):
            pass

    streamer = TextStreamer(tok, File())
    for i in ids:
        streamer.put(np.array([i]))
    streamer.end()
    assert "".join(pieces) == "é🙂" and all("\ufffd" not in p for p in pieces)


# ---------------------------------------------------------------------- damaged and hostile files
def test_a_flipped_byte_in_a_checkpoint_is_caught(corpus, tmp_path):
    run = Trainer(_config(corpus, tmp_path), quiet=True).train().run_dir
    path = run / "last.safetensors"
    raw = bytearray(path.read_bytes())
    raw[-10] ^= 0x40                             # inside the last tensor's data
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match=r"damaged.*best\.safetensors may be whole"):
        Trainer.resume(run)
    weights = run / "model" / "model.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-10] ^= 0x40
    weights.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="is damaged"):
        GPT.load(run / "model")


def test_non_finite_weights_are_refused(corpus, tmp_path, capsys):
    run = Trainer(_config(corpus, tmp_path), quiet=True).train().run_dir
    for name in ("best.safetensors", "last.safetensors"):
        arrays, meta = load_checkpoint(run / name)
        arrays["model.transformer.ln_f.weight"][:] = np.nan
        save_checkpoint(run / name, arrays, meta)
    with pytest.raises(CheckpointError, match="non-finite weights"):
        load_run(run)
    assert main(["eval", str(run)]) == 2
    assert "non-finite" in _err_line(capsys)


@pytest.mark.parametrize("change, message", [
    ({"n_layer": 10**9}, "needs about .* of memory"),
    ({"n_embd": 2**24, "n_head": 1}, "needs about .* of memory"),
    ({"vocab_size": 10**12}, "needs about .* of memory"),
    ({"layer_norm_epsilon": "1e-5"}, "layer_norm_epsilon must be a positive number"),
    ({"n_positions": "64"}, "n_positions must be a positive integer"),
])
def test_hostile_model_configs_are_refused_before_allocation(tmp_path, change, message):
    GPT(GPTConfig.from_preset("nano", vocab_size=20), seed=0).save(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, **change}))
    start = time.monotonic()
    with pytest.raises(CheckpointError, match=message):
        GPT.from_pretrained(tmp_path)
    assert time.monotonic() - start < 5


def test_deeply_nested_config_is_refused(tmp_path):
    GPT(GPTConfig.from_preset("nano", vocab_size=20), seed=0).save(tmp_path)
    (tmp_path / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CheckpointError, match="nested too deeply"):
        GPT.from_pretrained(tmp_path)


def test_self_doubling_merges_are_refused(tmp_path):
    merges = [[0, 0]] + [[256 + m, 256 + m] for m in range(40)]
    path = tmp_path / "tok.json"
    tok = json.loads(BPETokenizer(special_tokens=()).to_json())
    path.write_text(json.dumps({**tok, "merges": merges, "vocab": None}))
    assert path.stat().st_size < 1024
    with pytest.raises(TokenizerFileError, match="makes a token of 2,048 bytes"):
        BPETokenizer.load(path)


def test_an_unknown_pretokenizer_pattern_is_refused(tmp_path):
    path = tmp_path / "tok.json"
    tok = json.loads(BPETokenizer(special_tokens=()).to_json())
    path.write_text(json.dumps({**tok, "pattern": "(a+)+$"}))
    with pytest.raises(TokenizerFileError, match="not a pre-tokenizer tinyllm knows to be safe"):
        BPETokenizer.load(path)


# ---------------------------------------------------------------------- install and test flow
def test_a_missing_build_says_where_it_looked_and_never_installs_by_bare_name():
    """The hint must not be `pip install tinyllm`: that name on the index is another project."""
    code = ("import sys; sys.modules['tinyllm.kernels._softmax'] = None\n"
            "import tinyllm.kernels as k; print(k.backend()); print(k.backend_reason())")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "TINYLLM_KERNELS": "auto"})
    backend, reason = r.stdout.splitlines()
    import tinyllm.kernels

    assert backend == "numpy"
    assert f"unavailable in {os.path.dirname(tinyllm.kernels.__file__)}" in reason
    assert "pip install -e ." in reason
    assert not any(w in reason for w in ("install tinyllm", "reinstall tinyllm",
                                          "force-reinstall tinyllm"))


def test_the_distribution_name_is_not_the_index_s_tinyllm():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    name = re.search(r'^name = "(.+)"', (root / "pyproject.toml").read_text(), re.M).group(1)
    assert name != "tinyllm" and name.replace("_", "-").lower() != "tinyllm"
    readme = (root / "README.md").read_text()
    assert "pip install tinyllm" not in readme and "pip install \"tinyllm" not in readme
    for path in (root / "tinyllm").rglob("*.py"):                 # nor any hint the code prints
        text = path.read_text(encoding="utf-8")
        assert "tinyllm[" not in text and "install tinyllm" not in text, path


def test_a_failed_build_removes_compiled_modules_left_by_an_earlier_one(tmp_path):
    """Else `pip install .` would package the old modules while saying it fell back."""
    pytest.importorskip("Cython")
    import shutil
    import sysconfig
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    src = tmp_path / "src"
    shutil.copytree(root / "ext", src / "ext")
    shutil.copytree(root / "tinyllm", src / "tinyllm",
                    ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    for name in ("setup.py", "pyproject.toml", "README.md", "MANIFEST.in"):
        shutil.copy(root / name, src / name)
    build = tmp_path / "build"
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    stale = build / "tinyllm" / "kernels" / f"_softmax{suffix}"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"an old build")
    os.utime(stale, (0, 0))              # older than the sources: the build retries it
    env = {k: v for k, v in os.environ.items() if k != "TINYLLM_REQUIRE_EXT"}
    r = subprocess.run([sys.executable, "setup.py", "build_ext", "--build-lib", str(build)],
                       cwd=src, env={**env, "CC": "false", "LDSHARED": "false"},
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "could not build the Cython kernels" in r.stdout
    assert f"removed {stale}" in r.stdout and not stale.exists()


# ------------------------------------------------------------------ freed memory kept
_FREED_PROBE = """
import os, sys, numpy as np, tinyllm
def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024
a = np.ones(64 * 2**20 // 8)          # 64 MiB in 8 MiB blocks below
del a
blocks = [np.ones(2**20) for _ in range(8)]
before = rss()
del blocks
print(tinyllm.KEEPS_FREED_MEMORY, round(before - rss()))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="the setting is glibc's")
@pytest.mark.parametrize("env, kept", [("1", True), ("0", False)])
def test_freed_memory_is_kept_for_the_next_step_unless_turned_off(env, kept):
    """With the setting, 64 MiB of freed 8 MiB arrays stays in the process (the next step
    reuses it without page faults); with TINYLLM_KEEP_FREED_MEMORY=0 glibc returns it."""
    out = subprocess.run([sys.executable, "-c", _FREED_PROBE], capture_output=True, text=True,
                         env={**os.environ, "TINYLLM_KEEP_FREED_MEMORY": env}, check=True)
    applied, released_mib = out.stdout.split()
    assert applied == str(kept)
    assert (int(released_mib) < 8) if kept else (int(released_mib) > 56)
