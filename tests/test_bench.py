"""tinyllm bench's rows and report, on the smallest preset (what is measured, not how fast)."""

import pytest

from tinyllm import bench


def test_rows_at_one_and_two_threads_and_the_report():
    trows = bench.train_rows(("nano",), threads=2, repeats=1, numpy_twin=True)
    (row,) = trows
    for key in ("tinyllm_ms@1", "tinyllm_ms@2", "numpy_ms@2"):
        assert row[key] > 0, key
    krows = bench.kernel_rows(threads=2, repeats=1)
    assert all(r["cython_ms@2"] > 0 for r in krows if "cython_ms@2" in r)
    grows = bench.generation_rows(("nano",), (1, 2), threads=2, new_tokens=3, repeats=1,
                                  bandwidth=10.0)
    assert [r["batch"] for r in grows] == [1, 2]
    assert grows[0]["bound_tps"] == pytest.approx(10e9 / (grows[0]["params"] * 4))
    assert "bound_tps" not in grows[1]
    if bench._torch() is not None:
        assert all(r["same_tokens"] for r in grows)     # the same greedy tokens as HF
        assert row["torch_ms@2"] > 0
    lines = []
    bench.print_report("test", 2, {1: 50.0, 2: 90.0}, krows, trows, grows, [], out=lines.append)
    text = "\n".join(lines)
    assert "speedup" in text and "nano" in text and "bound (batch 1)" in text
    assert bench._scaling({"tinyllm_ms@1": 10.0, "tinyllm_ms@2": 5.0}, "tinyllm", 2) == \
        " 2.00x  100%"
