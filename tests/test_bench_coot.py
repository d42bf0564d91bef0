"""Smoke test of bench/bench_coot.py: ``--quick`` runs to the end and prints its ratio lines
(no timing assertions: the figures depend on the machine and its load)."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

RATIO_LINES = ("ratio CooT cached / BC:", "ratio CooT uncached / cached:",
               "ratio per-seat batched / batch-1 cached:", "ratio per-example / shared:")


def test_bench_coot_quick_prints_the_ratios(tmp_path):
    out = tmp_path / "bench_coot.txt"
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_coot.py"), "--quick",
                           "--out", str(out)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for line in RATIO_LINES:
        assert line in proc.stdout, f"missing {line!r} in:\n{proc.stdout}"
        assert re.search(re.escape(line) + r"\s+x\d+(\.\d+)?", proc.stdout), line
    assert "ms/step" in proc.stdout and "ms/example" in proc.stdout
    written = out.read_text()
    for line in RATIO_LINES:
        assert line in written
