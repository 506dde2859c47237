#!/usr/bin/env bash
# The GPU check: the gpu-marked tests and tools.bench on CUDA, for a session lent an NVIDIA
# machine (no network there: what it lacks travels in gpu_carry/, made by tools/gpu_wheels.sh).
#
#   here, once:  tools/gpu_wheels.sh                          (→ gpu_carry/, about 55 MiB)
#   there:       device tool run, command "bash tools/gpu_check.sh", carry ["gpu_carry"],
#                timeout_s 590; the figures come back from $OUT
#   try it here: DEVICE=cpu FRAMES=12 REPEAT=1 STREAMS=2 OUT=/tmp/gc bash tools/gpu_check.sh
#
# Steps (STEPS picks some, e.g. STEPS="install e2e" for a rerun), each with its own time
# limit, all inside BUDGET seconds (default 450):
#   install  the carried wheels into a fresh target folder, the fixtures unpacked
#   pytest   pytest -m gpu on the GPU test files (TensorRT absent: its tests skip)
#   e2e      tools.bench, side by side in 2 rounds on the 1080p clip: decode-only (CPU and
#            NVDEC, 1 and 8 sessions), annotated mp4 + JSONL, JSONL only, 8 streams with
#            --batch 8 (JSONL only), Ultralytics' track(stream=True, save=True), per-stage
#            latency
#   model    model-only, torch backend, batch 1/8/32, eager and CUDA graphs (fp16)
#   masks    mask decoding + overlay per 1080p frame at 5/30/100 instances, host vs device
# $OUT receives log.txt (everything), pytest.txt, e2e.json, model.json, masks.json and
# summary.md (the markdown of all three, for BENCHMARKS.md).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$(mktemp -d)}
CARRY=${CARRY:-gpu_carry}
DEVICE=${DEVICE:-cuda}
FRAMES=${FRAMES:-0}
REPEAT=${REPEAT:-2}
STREAMS=${STREAMS:-8}
BUDGET=${BUDGET:-450}
STEPS=${STEPS:-install pytest e2e model masks}
PY=${PYTHON:-python3}
UL_PY=${ULTRALYTICS_PYTHON:-}
WORK=$(mktemp -d)
SITE=$WORK/site
FIX=$WORK/fixtures
LOG=$OUT/log.txt
declare -A LIMIT=([install]=40 [pytest]=110 [e2e]=180 [model]=60 [masks]=30)  # 30 s under BUDGET: imports and kills
export PYTHONUNBUFFERED=1 OUT CARRY SITE FIX PY
mkdir -p "$OUT"
: > "$LOG"

log() { echo "[$(date +%T) +${SECONDS}s] $*" | tee -a "$LOG"; }

# run_step NAME CMD…: CMD under the step's limit (cut to what the budget has left)
declare -A RC
run_step() {
    local name=$1 limit=${LIMIT[$1]} left=$((BUDGET - SECONDS))
    shift
    case " $STEPS " in *" $name "*) ;; *) return 0 ;; esac
    if [ "$left" -lt 20 ]; then log "$name: skipped, the budget is spent"; RC[$name]=skipped; return 0; fi
    [ "$limit" -gt "$left" ] && limit=$left
    log "$name: start (limit ${limit}s): $*"
    timeout -k 5 "$limit" "$@" >>"${STEP_OUT:-$LOG}" 2>&1
    RC[$name]=$?
    log "$name: exit ${RC[$name]}$([ "${RC[$name]}" = 124 ] && echo ' (time limit)')"
}

install_deps() {
    set -e
    mkdir -p "$SITE" "$FIX/models" "$FIX/videos"
    flags=()
    if [ "$("$PY" -c 'import sys; print(sys.version_info[:2] == (3, 12))')" != True ]; then
        # the wheels are for the GPU image's Python 3.12: install them all the same (what
        # is tried here is the mechanics), the packages then come from this interpreter
        flags=(--python-version 3.12 --implementation cp --only-binary=:all:
               --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64
               --platform manylinux2014_x86_64 --platform manylinux_2_5_x86_64
               --platform manylinux1_x86_64)
    fi
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --disable-pip-version-check --target "$SITE" "${flags[@]}" "$CARRY"/wheels/*.whl
    for t in "$CARRY"/wheels/*.tar.xz; do
        "$PY" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter="tar")' \
            "$t" "$SITE"
    done
    cp "$CARRY"/fixtures/videos/*.mp4 "$FIX/videos/"
    for m in "$CARRY"/fixtures/models/*.xz; do
        "$PY" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
            "$m" "$FIX/models/$(basename "${m%.xz}")"
    done
    ls -l "$SITE" "$FIX"/*
}

# --- the machine -------------------------------------------------------------------------
log "maskstream GPU check: DEVICE=$DEVICE STEPS='$STEPS' BUDGET=${BUDGET}s OUT=$OUT"
(command -v nvidia-smi >/dev/null && nvidia-smi -L; uptime; nproc) >>"$LOG" 2>&1
export -f install_deps
run_step install bash -c install_deps
if [ "$("$PY" -c 'import sys; print(sys.version_info[:2] == (3, 12))')" = True ] && [ -d "$SITE" ]; then
    export PYTHONPATH=$ROOT:$SITE
else
    log "not using $SITE: this Python is not 3.12 (the wheels' version); using its own packages"
    export PYTHONPATH=$ROOT
fi
if [ -d "$FIX/models" ] && [ -n "$(ls "$FIX/models")" ]; then
    export MASKSTREAM_FIXTURES=$FIX
else
    export MASKSTREAM_FIXTURES=${MASKSTREAM_FIXTURES:-$ROOT/../shared/fixtures}
fi
FX=$MASKSTREAM_FIXTURES
log "fixtures: $FX"
"$PY" - >>"$LOG" 2>&1 <<'EOF'
import importlib, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
for m in ("av", "trackers", "supervision", "pycocotools.mask", "onnx", "onnxruntime",
          "PyNvVideoCodec", "ultralytics", "lap", "tensorrt"):
    try:
        mod = importlib.import_module(m)
        print(f"import {m}: ok {getattr(mod, '__version__', '')} {getattr(mod, '__file__', '')}")
    except Exception as exc:  # a report line per package, whatever went wrong
        print(f"import {m}: FAILED {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
from engines.select import usable_backends  # onnx2torch is imported the project's way
from pipeline.io.nvdec import nvdec_unavailable_reason
print("\n".join(u.describe() for u in usable_backends()))
print("NVDEC:", nvdec_unavailable_reason() or "usable")
EOF

DECODE=cpu
BACKEND=auto
if [ "$DEVICE" != cpu ]; then
    BACKEND=torch  # not auto: where TensorRT exists, auto would build engines for minutes
    why=$("$PY" -c 'from pipeline.io.nvdec import nvdec_unavailable_reason as r; print(r() or "")' 2>&1 | tail -1)
    if [ -z "$why" ]; then DECODE=nvdec; else log "NVDEC not usable, decoding on the CPU: $why"; fi
fi
MODEL=$FX/models/yolov8n-seg-640.onnx
VIDEO=$FX/videos/udacity_solidWhiteRight_1080p.mp4
WEIGHTS=$FX/models/yolov8n-seg-state.pt
[ -f "$WEIGHTS" ] || WEIGHTS=$MODEL
BENCH=("$PY" -m tools.bench --device "$DEVICE" --model "$MODEL" --video "$VIDEO"
       --backend "$BACKEND" --frames "$FRAMES" --out "$OUT")
UL=(--ultralytics-weights "$WEIGHTS")
[ -n "$UL_PY" ] && UL+=(--ultralytics-python "$UL_PY")

# --- the steps ---------------------------------------------------------------------------
TIMEOUT_OPT=()
"$PY" -c 'import pytest_timeout' 2>/dev/null && TIMEOUT_OPT=(--timeout 90)
STEP_OUT=$OUT/pytest.txt run_step pytest "$PY" -m pytest -m gpu -q -rs -s -p no:cacheprovider \
    "${TIMEOUT_OPT[@]}" tests/engines/test_gpu.py tests/engines/test_gpu_engines.py \
    tests/test_device_path_gpu.py tests/engines/test_trt_gpu.py
[ -f "$OUT/pytest.txt" ] && tail -3 "$OUT/pytest.txt" | tee -a "$LOG"
run_step e2e "${BENCH[@]}" --name e2e --sections decode,pipeline,jsonl,streams,ultralytics \
    --decode "$DECODE" --streams "$STREAMS" --repeat "$REPEAT" "${UL[@]}"
run_step model "${BENCH[@]}" --name model --sections model --repeat 1
run_step masks "${BENCH[@]}" --name masks --sections masks --repeat 1 --instances 5 30 100

# --- summary.md: the markdown of every bench step, then the step results ----------------
{
    echo "## GPU check, $(date +%F)"
    echo
    echo "$( (command -v nvidia-smi >/dev/null && nvidia-smi -L) || echo 'no nvidia-smi'); $(nproc) cores;" \
         "DEVICE=$DEVICE, backend $BACKEND, decode $DECODE, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    for s in e2e model masks; do
        [ -f "$OUT/$s.md" ] && { cat "$OUT/$s.md"; echo; rm "$OUT/$s.md"; }
    done
    echo "Steps: $(for s in $STEPS; do printf '%s %s; ' "$s" "${RC[$s]:-not run}"; done)"
    [ -f "$OUT/pytest.txt" ] && echo "pytest: $(grep -E '(passed|failed|skipped|error)' "$OUT/pytest.txt" | tail -1)"
} > "$OUT/summary.md"
rm -rf "$WORK"
log "done in ${SECONDS}s; $OUT: $(ls "$OUT" | tr '\n' ' ')"
