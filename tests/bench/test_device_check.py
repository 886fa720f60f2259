"""The device check's rehearsal on the CPU: the same script the GPU machine runs, small frames."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT


def test_the_device_check_runs_on_the_cpu_and_writes_its_figures(weights_env, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "device_check.py"), "--device", "cpu",
                           "--sizes", "64x48", "--frames", "1", "--out", str(out),
                           "--skip", "cuda_tests,model_only,e2e"], capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, **weights_env})
    assert proc.returncode == 0, proc.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["environment"]["torch"] and "av" in results["environment"]["importable"]
    fp32 = results["correctness"]["64x48 fp32"]
    assert fp32["finite"] and fp32["psnr_db"] > 80  # the same network on the same device
