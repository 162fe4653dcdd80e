#!/usr/bin/env bash
# Runs on the GPU machine, from the repo root, one call per staged part (bench/gpu_stage.py
# says how many; three for Whisper base):
#
#   bash bench/gpu_device.sh 0 smoke          carry .gpu/common .gpu/part0
#   bash bench/gpu_device.sh 1                carry .gpu/common .gpu/part1
#   bash bench/gpu_device.sh 2 run [ARGS...]  carry .gpu/common .gpu/part2
#
# Each call copies its part into $STAGE, which lives in /tmp because /tmp survives between
# calls while the machine stays warm. Once every part is there the weights' pieces are
# joined and checked against common/SHA256. "run" then runs bench/gpu_speed.py on the
# stage, ARGS passed on, its JSON, text and log written under $OUT. "smoke" runs it with
# random weights on a few minutes of audio, to try the CUDA code before the weights are
# complete (it needs the part with py/ and films/, part0).
set -euo pipefail
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 SUBPIPE_OFFLINE=1

PY=${PYTHON:-python3}
STAGE=${SUBPIPE_GPU_DIR:-/tmp/subpipe-gpu}
OUT=${OUT:-$STAGE/out}
WEIGHTS=hf/model.safetensors

part=${1:?usage: bash bench/gpu_device.sh PART [run|smoke] [gpu_speed.py args]}
mode=${2:-copy}
shift $(($# < 2 ? $# : 2))

machine() {
    echo "== machine"
    if command -v nvidia-smi >/dev/null; then nvidia-smi -L; else echo "no nvidia-smi"; fi
    nproc
    "$PY" - <<'EOF'
import platform, torch
print("python", platform.python_version(), "| torch", torch.__version__, "| cuda", torch.version.cuda,
      "| available", torch.cuda.is_available())
for name in ("transformers", "numpy", "tiktoken", "onnxruntime", "safetensors", "numba", "huggingface_hub"):
    try:
        print(name, __import__(name).__version__)
    except ImportError:
        print(name, "MISSING")
EOF
}

copy_part() {
    # Carried paths arrive as copies in the working tree; a missing one means a wrong carry list.
    [ -d .gpu/common ] || { echo "no .gpu/common here: carry it" >&2; exit 2; }
    [ -d ".gpu/part$part" ] || { echo "no .gpu/part$part here: carry it" >&2; exit 2; }
    mkdir -p "$STAGE"
    cp -r .gpu/common/. "$STAGE"/
    cp -r ".gpu/part$part"/. "$STAGE"/
}

join_weights() {
    # Returns 1 (and says what is missing) until every part has been copied by some call.
    local parts want have i
    local missing=()
    parts=$(tr -d '[:space:]' <"$STAGE/PARTS")
    for ((i = 0; i < parts; i++)); do
        [ -f "$STAGE/.part$i" ] || missing+=("$i")
    done
    if ((${#missing[@]})); then
        echo "parts ${missing[*]} not here yet (a machine that went cold loses /tmp: start again at 0)"
        return 1
    fi
    want=$(tr -d '[:space:]' <"$STAGE/SHA256")
    if [ -f "$STAGE/$WEIGHTS" ] && [ "$(sha256sum "$STAGE/$WEIGHTS" | cut -d' ' -f1)" = "$want" ]; then
        echo "weights: already joined, sha256 ok"
        return 0
    fi
    # Pieces in their numeric order, however many parts held them.
    local k=0
    : >"$STAGE/$WEIGHTS.tmp"
    while [ -f "$STAGE/$WEIGHTS.$k" ]; do
        cat "$STAGE/$WEIGHTS.$k" >>"$STAGE/$WEIGHTS.tmp"
        k=$((k + 1))
    done
    have=$(sha256sum "$STAGE/$WEIGHTS.tmp" | cut -d' ' -f1)
    if [ "$have" != "$want" ]; then
        rm -f "$STAGE/$WEIGHTS.tmp"
        echo "weights: sha256 $have, expected $want" >&2
        exit 3
    fi
    mv "$STAGE/$WEIGHTS.tmp" "$STAGE/$WEIGHTS"
    rm -f "$STAGE/$WEIGHTS".[0-9]*
    echo "weights: joined, sha256 ok"
}

machine
copy_part
touch "$STAGE/.part$part"
echo "== staged in $STAGE"
du -sh "$STAGE"/* | sort -k2
mkdir -p "$OUT"
case "$mode" in
    copy)
        join_weights || true
        ;;
    smoke)
        join_weights || true
        "$PY" bench/gpu_speed.py --data "$STAGE" --random-weights --hours 0.05 --ref-windows 8 --films "" \
            --out "$OUT/gpu_smoke.json" "$@" 2>&1 | tee "$OUT/gpu_smoke.log"
        ;;
    run)
        join_weights || { echo "cannot run without every part" >&2; exit 2; }
        "$PY" bench/gpu_speed.py --data "$STAGE" --out "$OUT/gpu_speed.json" "$@" 2>&1 | tee "$OUT/gpu_speed.log"
        ;;
    *)
        echo "unknown mode $mode: copy, smoke or run" >&2
        exit 2
        ;;
esac
