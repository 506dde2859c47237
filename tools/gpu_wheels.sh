#!/usr/bin/env bash
# Prepare, on a machine with PyPI, what tools/gpu_check.sh needs on a GPU machine that has no
# network: the Python packages that machine lacks, and the fixtures, in one gitignored folder
# that the device tool carries (64 MiB for everything that travels, the project included).
#
#   tools/gpu_wheels.sh [DEST]          # DEST defaults to gpu_carry (in .gitignore)
#
# DEST/wheels/*.whl   trackers, supervision, pycocotools, onnx2torch, ultralytics, lap and
#                     the small packages they import that the GPU image lacks (pyDeprecate,
#                     defusedxml): pip install --no-index --no-deps --target there
# DEST/wheels/*.tar.xz  PyAV (a 36 MB wheel → 25 MB) and PyNvVideoCodec (27 MB → 3 MB: only
#                     its PyNvVideoCodec/ and pynvvideocodec./ folders, one copy of each
#                     FFmpeg library), unpacked into the same target
# DEST/fixtures/      the clips as they are; the models xz-compressed (their weights were
#                     dequantized from int8, so 13.8 MB → 2.5 MB each)
#
# The GPU image (KINDS.md) has Python 3.12, torch 2.11 (CUDA 13), torchvision, numpy,
# opencv-python-headless, onnx, onnxruntime (CPU), pyyaml, tqdm, prometheus-client, scipy,
# matplotlib, pillow, requests, psutil, rich: none of those travel.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${1:-gpu_carry}
FIXTURES=${MASKSTREAM_FIXTURES:-../shared/fixtures}
PY=${PYTHON:-.venv/bin/python}
case $PY in */*) PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY") ;; *) PY=$(command -v "$PY") ;; esac
LIMIT_MIB=64

# versions as in the development venv (ultralytics and lap: the comparison only)
WHEELS="trackers==2.6.1 supervision==0.31.2 pycocotools==2.0.11 onnx2torch==1.5.15
pyDeprecate==0.13.0 defusedxml==0.7.1 ultralytics==8.4.190 lap==0.5.13"
TRIMMED="av==18.1.0 pynvvideocodec==2.2.4"
PLATFORM="--only-binary=:all: --python-version 3.12 --implementation cp
 --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
 --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64"

mkdir -p "$DEST/wheels" "$DEST/fixtures/models" "$DEST/fixtures/videos"
raw=$(mktemp -d)
trap 'rm -rf "$raw"' EXIT

# shellcheck disable=SC2086
"$PY" -m pip download -q --disable-pip-version-check --no-deps $PLATFORM -d "$DEST/wheels" $WHEELS
# shellcheck disable=SC2086
"$PY" -m pip download -q --disable-pip-version-check --no-deps $PLATFORM -d "$raw" $TRIMMED

export XZ_OPT="-9 -T0"
for whl in "$raw"/*.whl; do
    name=$(basename "$whl" | cut -d- -f1)
    out="$DEST/wheels/$name.tar.xz"
    [ -s "$out" ] && { echo "kept $out"; continue; }
    unpacked="$raw/$name"
    mkdir -p "$unpacked"
    (cd "$unpacked" && "$PY" -m zipfile -e "$whl" .)
    case $name in
        av) keep="av av.libs $(cd "$unpacked" && ls -d av-*.dist-info)" ;;
        pynvvideocodec)
            # the wheel stores each FFmpeg library three times (zip has no links); the
            # modules need only the SONAME copies (libavformat.so.63, libavutil.so.61)
            (cd "$unpacked/PyNvVideoCodec" && rm -f libavformat.so libavutil.so \
                libavformat.so.*.*.* libavutil.so.*.*.*)
            keep="PyNvVideoCodec pynvvideocodec. $(cd "$unpacked" && ls -d pynvvideocodec-*.dist-info)" ;;
    esac
    # shellcheck disable=SC2086
    tar -C "$unpacked" -cJf "$out" $keep
    echo "wrote $out ($(du -h "$out" | cut -f1))"
done

for v in udacity_solidWhiteRight_1080p.mp4 udacity_solidWhiteRight.mp4; do
    cp -u "$FIXTURES/videos/$v" "$DEST/fixtures/videos/"
done
for m in yolov8n-seg-640.onnx yolov8n-seg-320.onnx yolov8n-seg-state.pt; do
    [ -s "$DEST/fixtures/models/$m.xz" ] || xz -c "$FIXTURES/models/$m" > "$DEST/fixtures/models/$m.xz"
done

# what travels: tracked files, untracked files git does not ignore, and DEST
tree=$( { git ls-files -z; git ls-files -z --others --exclude-standard; } \
        | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
carry=$(du -sb "$DEST" | cut -f1)
total=$((tree + carry))
awk -v t="$tree" -v c="$carry" -v d="$DEST" -v l="$LIMIT_MIB" 'BEGIN {
    printf "project %.1f MiB + %s %.1f MiB = %.1f MiB of %d MiB\n", t / 2^20, d, c / 2^20,
           (t + c) / 2^20, l }'
if [ "$total" -gt $((LIMIT_MIB * 1048576)) ]; then
    echo "too large for the device tool: drop yolov8n-seg-320.onnx.xz (TensorRT tests) first" >&2
    exit 1
fi
echo "run: device tool, command 'bash tools/gpu_check.sh', carry [\"$DEST\"], timeout_s 590"
