#!/usr/bin/env bash
# The device check's end-to-end step needs PyAV and an ffmpeg program, which the lent GPU
# machine lacks (and cannot fetch); one call carries at most 64 MiB, and the av wheel
# (~36 MB) and ffmpeg (~50 MB xz-compressed) do not fit together. So, in three steps:
#
#   bash benchmarks/device_prepare.sh here     # on this machine: fill the ignored .device/
#   bash benchmarks/device_prepare.sh install  # GPU call 1, carry .device/wheels: PyAV etc. into
#                                              #   .device/site (ignored: kept on the warm machine)
#   bash benchmarks/device_prepare.sh check    # GPU call 2 (within 30 s), carry .device/ffmpeg and
#                                              #   .device/weights: unpack ffmpeg, run the device check
#
# Without the first GPU call, `check` still runs every other step (end to end says skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
DEV=.device
step=${1:-}
case "$step" in
here)
    mkdir -p "$DEV/wheels" "$DEV/ffmpeg" "$DEV/weights"
    # PyAV (abi3: any CPython >= 3.11), ffmpeg-python, and imageio-ffmpeg without its binary
    python -m pip download --no-deps -d "$DEV/wheels" --only-binary=:all: --python-version 3.12 \
        --platform manylinux_2_28_x86_64 av==18.1.1 ffmpeg-python future
    python -m pip wheel --no-deps --no-binary imageio-ffmpeg -w "$DEV/wheels" imageio-ffmpeg
    exe=$(python -c "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())")
    xz -6 -T0 -c "$exe" > "$DEV/ffmpeg/ffmpeg.xz"
    cp "${MICROAST_VIDEO_WEIGHTS:-../shared/weights/microast}"/*.pth.tar "$DEV/weights/"
    du -sh "$DEV/wheels" "$DEV/ffmpeg" "$DEV/weights"
    ;;
install)
    python -m pip install --quiet --no-deps --no-index --target "$DEV/site" "$DEV"/wheels/*.whl
    PYTHONPATH="$DEV/site" python -c "import av, ffmpeg, imageio_ffmpeg; print('installed: av', av.__version__)"
    ;;
check)
    if [ -f "$DEV/ffmpeg/ffmpeg.xz" ]; then
        xz -d -c "$DEV/ffmpeg/ffmpeg.xz" > "$DEV/ffmpeg/ffmpeg" && chmod +x "$DEV/ffmpeg/ffmpeg"
        export MICROAST_VIDEO_FFMPEG="$PWD/$DEV/ffmpeg/ffmpeg" IMAGEIO_FFMPEG_EXE="$PWD/$DEV/ffmpeg/ffmpeg"
    fi
    export PYTHONPATH="$PWD/$DEV/site${PYTHONPATH:+:$PYTHONPATH}"
    shift
    python benchmarks/device_check.py --out "${OUT:-/tmp/device-check}" --weights "$DEV/weights" "$@"
    ;;
*)
    echo "usage: bash benchmarks/device_prepare.sh here|install|check [device_check options]" >&2
    exit 2
    ;;
esac
