#!/usr/bin/env bash
# The commands behind benchmarks/RESULTS.md. Run from the project root with the project
# installed (and MICROAST_VIDEO_WEIGHTS set, or internet for the first download).
set -euo pipefail
mkdir -p benchmarks/out

# 1. bench: every arm under one timing rule, with the peers (ONNX Runtime, OpenVINO), one run
#    per resolution, every arm (model-only and end to end) in rounds (pip install -e '.[onnx,openvino]').
microast-video bench --resolution 1920x1080 --frames 8 --peers --repeat 3 --json benchmarks/out/bench_1080p.json
microast-video bench --resolution 3840x2160 --frames 4 --peers --repeat 2 --json benchmarks/out/bench_2160p.json
#    The UHD run in one round (RESULTS.md, after the UHD middle went in strips).
microast-video bench --resolution 3840x2160 --frames 4 --peers --json benchmarks/out/bench_2160p_1round.json
#    The middle's native kernels against PyTorch's ops, interleaved in one process.
python benchmarks/middle_kernels.py 3840x2160
#    End to end with the fastest libx264 preset (how much of the gap is the encoder).
microast-video bench --resolution 1920x1080 --frames 8 --preset ultrafast --json benchmarks/out/bench_1080p_ultrafast.json
#    The same in rounds, without the naive arms (RESULTS.md, "OpenMP threads that stop spinning soon").
microast-video bench --resolution 1920x1080 --frames 8 --preset ultrafast --no-naive --repeat 2 --json benchmarks/out/bench_1080p_ultrafast_rounds.json
#    The CPU time of the work beside the network (decode, temporal stage, libx264 per preset).
python benchmarks/side_costs.py
python benchmarks/side_costs.py --clip ../shared/media/videos/mediabunny__hevc.ts  # 1080p at its own size: the decoder's colour conversion
#    How long OpenMP threads spin before sleeping (libgomp's default against the command line's), a long 1080p clip.
python benchmarks/openmp_waits.py --size 1920x1080 --frames 72 --rounds 2

# 1a. bf16 against fp32 on the shared photos and clip frames (whole frame, eager strips, compiled-style strips).
python benchmarks/bf16_psnr.py

# 1b. Memory of the engine's middle (strips vs whole) and of whole jobs at UHD and 8K.
python benchmarks/memory_targets.py middle 3840x2160
python benchmarks/memory_targets.py job 3840x2160 --frames 8
python benchmarks/memory_targets.py job 7680x4320 --frames 3
python benchmarks/memory_targets.py job 3840x2160 --frames 24 --compile on --temporal on
python benchmarks/memory_targets.py job 3840x2160 --frames 24 --temporal on
# 1b''. The heap frame by frame over a UHD job (resident, held by glibc, in use), and two allocator knobs.
python benchmarks/heap_timeline.py 3840x2160 --frames 24
python benchmarks/heap_timeline.py 3840x2160 --frames 24 --compile on
python benchmarks/heap_timeline.py 3840x2160 --frames 100 --compile on
python benchmarks/heap_timeline.py 3840x2160 --frames 24 --mmap-threshold-mb 16
python benchmarks/heap_timeline.py 3840x2160 --frames 24 --arena-max 2

# 1b'. The temporal stage's CPU time per frame, native kernels vs OpenCV / numpy / torch, one thread.
python benchmarks/temporal_kernels.py --size 1920x1080 --frames 8
python benchmarks/temporal_kernels.py --size 3840x2160 --frames 4

# 1c. Batch jobs: resume after SIGKILLs, the cost of segments, memory.
python benchmarks/batch_targets.py

# 2. Memory against clip length at UHD: 10 and 100 frames of the same clip.
python - <<'PY'
from pathlib import Path
import cv2
from microast_video.media.encode_plan import ffmpeg_exe
from microast_video.media.procedural import painting, synth_clip
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

# 4. Writing OpenEXR / DPX frames: OpenImageIO (with headers) against FFmpeg's image2 muxer.
python benchmarks/frame_writers.py --frames 8
