#!/usr/bin/env bash
# The commands behind benchmarks/RESULTS.md. Run from the project root with the project
# installed (and MICROAST_VIDEO_WEIGHTS set, or internet for the first download).
set -euo pipefail
mkdir -p benchmarks/out

# 1. bench: model-only, end-to-end and the naive baseline, in one run each.
microast-video bench --resolution 1920x1080 --frames 8 --json benchmarks/out/bench_1080_bf16.json
microast-video bench --resolution 1920x1080 --frames 8 --precision fp32 --json benchmarks/out/bench_1080_fp32.json
microast-video bench --resolution 3840x2160 --frames 8 --json benchmarks/out/bench_2160_bf16.json
microast-video bench --resolution 1280x720 --frames 8 --json benchmarks/out/bench_720_bf16.json

# 2. Memory against clip length at UHD: 10 and 100 frames of the same clip.
python - <<'PY'
from pathlib import Path
import cv2
from microast_video._encode import ffmpeg_exe
from microast_video._procedural import painting, synth_clip
synth_clip(Path("benchmarks/out/uhd100.mp4"), width=3840, height=2160, frames=100, exe=ffmpeg_exe())
cv2.imwrite("benchmarks/out/style.png", painting(512))
PY
for n in 10 100; do
  d=$(python -c "print($n / 25)")
  /usr/bin/time -v microast-video benchmarks/out/uhd100.mp4 -s benchmarks/out/style.png --duration "$d" \
    -o "benchmarks/out/uhd_$n.mp4" --overwrite --compile on --quiet --report "benchmarks/out/uhd_$n.json" \
    2> "benchmarks/out/uhd_$n.time"
  grep "Maximum resident" "benchmarks/out/uhd_$n.time"
done

# 3. Where the time goes.
python benchmarks/profile_ops.py --resolution 1920x1080 --precision bf16
python benchmarks/profile_ops.py --resolution 1920x1080 --precision fp32 --whole
