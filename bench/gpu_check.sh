#!/usr/bin/env bash
# The GPU check (issue 14): the CUDA path measured in one run of under 8 minutes.
#
# A session with a GPU lent (the device tool's `status`: can_start_another true) does, from
# the root of its checkout:
#
#   1. here:  bash bench/gpu_check.sh --stage-data
#        copies ../shared/data/mnist (which does not travel) into .gpu-data/mnist (git-ignored,
#        11.6 MiB; the working tree must stay under 64 MiB with it)
#   2. the device tool:  run(command="bash bench/gpu_check.sh", carry=[".gpu-data"],
#                            timeout_s=540)
#   3. here:  read files_at/gpu_check.json (every step's status, seconds, numbers, goals) and
#        files_at/gpu_check.log (every step's output, each line stamped with its seconds);
#        then give_back.
#
# Steps, each under its own `timeout` (a step that fails or times out is recorded as such and
# the next one runs; gpu_check.json is rewritten after every step):
#   install      pip install --no-deps --no-build-isolation -e .   (never another torch)
#   env          torch, CUDA and GPU names; a measured float32 matmul rate
#   tests        the tests that take a device, LANDSCAPE_TEST_DEVICE=cuda
#   train_seeds  bench/train_seeds.py --device cuda, case (d) MNIST MLP, K = 1, 8, 32, 64
#   surface      bench/surface.py --device cuda, 21 x 21 and 51 x 51
#   paper        landscape run merkulov-mnist-mlp-paper (200 + 200 runs, full MNIST), capped
#                at 300 s = its goal; training FLOPs and the fraction of the GPU's peak
#
# Usage:
#   bash bench/gpu_check.sh [OUTDIR]               the GPU check (OUTDIR: $OUT, else ./gpu_check_out)
#   bash bench/gpu_check.sh --cpu-smoke [OUTDIR]   the same steps on the CPU, tiny sizes, < 3 min
#   bash bench/gpu_check.sh --stage-data [SRC]     copy SRC/mnist (default ../shared/data) into
#                                                  $GPU_CHECK_DATA (default .gpu-data)
# Environment: GPU_CHECK_DATA (MNIST's parent folder), GPU_CHECK_WORK (scratch: stores,
# reports, per-step files; default /tmp/gpu_check_work), GPU_CHECK_DEADLINE_S (whole run).
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO" || exit 1
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
DATA=${GPU_CHECK_DATA:-$REPO/.gpu-data}
HELPER=(python3 "$REPO/bench/gpu_check.py")

MODE=cuda
case "${1:-}" in
--stage-data)
    exec "${HELPER[@]}" stage-data "${2:-$REPO/../shared/data}" "$DATA"
    ;;
--cpu-smoke)
    MODE=cpu-smoke
    shift
    ;;
-h | --help)
    sed -n '2,32p' "${BASH_SOURCE[0]}"
    exit 0
    ;;
esac
OUTDIR=${1:-${OUT:-$REPO/gpu_check_out}}
WORK=${GPU_CHECK_WORK:-/tmp/gpu_check_work}
mkdir -p "$OUTDIR" "$WORK/logs" "$WORK/steps" "$WORK/peak" || exit 1
rm -f "$WORK"/steps/*.json "$WORK"/peak/*.json "$WORK"/*.json "$WORK"/tests.xml
rm -rf "$WORK/runs" "$WORK/reports"
LOG="$OUTDIR/gpu_check.log"
: >"$LOG"
if [[ ! -f "$DATA/mnist/train-images-idx3-ubyte.gz" ]]; then
    echo "gpu_check: no MNIST under $DATA/mnist; run 'bash bench/gpu_check.sh --stage-data'" \
        "here first and carry .gpu-data" | tee -a "$LOG"
fi

if [[ $MODE == cuda ]]; then
    DEVICE=cuda
    DEADLINE_S=${GPU_CHECK_DEADLINE_S:-465}
    INSTALL=(python3 -m pip install --no-deps --no-build-isolation -e .)
    PEAK_SIZE=8192
    TESTS=(python3 -m pytest -q -p no:cacheprovider -m "device and not slow" --durations=10)
    # 4 workers share the GPU where pytest-xdist is installed (the image lists it)
    python3 -c "import xdist" 2>/dev/null && TESTS+=(-n 4)
    TESTS+=(tests)
    SEEDS=(--cases d --ks 1,8,32,64 --seconds 3 --repeats 3)
    SURFACE=(--case mnist --grids 21,51 --repeats 3 --methods batched,batched-plane,loop)
    PAPER=()
    CAPS=(install=90 env=45 tests=120 train_seeds=90 surface=60 paper=300)
else
    DEVICE=cpu
    DEADLINE_S=${GPU_CHECK_DEADLINE_S:-170}
    # the same pip command, --dry-run: checks the build metadata, replaces no installed copy
    INSTALL=(python3 -m pip install --no-deps --no-build-isolation --no-index --dry-run -e .)
    PEAK_SIZE=512
    # collected, not run: the CPU suite runs them anyway; this checks the marker selects them
    TESTS=(python3 -m pytest -q -p no:cacheprovider -m "device and not slow" --collect-only tests)
    SEEDS=(--cases d --ks 1,2 --quick --threads 2)
    SURFACE=(--case mnist --grids 5 --repeats 1 --methods batched,loop --threads 2
        --peak-size 512)
    # 2 + 2 runs of 1 epoch on 300 / 60 images; MLP 784-32-10 (the paper's 512 makes the
    # CPU's Hessian and sharpness searches the slowest part); every measure, small grids
    PAPER=(--runs 2 --set train.epochs=1 --set data.subset=300 --set data.test_subset=60
        --set model.widths=[32] --set train.checkpoints=3 --set train.log_points=4
        --set analyze.grid=5 --set analyze.line_points=5 --set analyze.alpha_points=5
        --set analyze.trace_samples=2 --set analyze.top_k=2)
    CAPS=(install=60 env=30 tests=60 train_seeds=60 surface=60 paper=120)
fi
START=$(date +%s)
DEADLINE=$((START + DEADLINE_S))
echo '["install","env","tests","train_seeds","surface","paper"]' >"$WORK/order.json"

cap_of() { # cap_of NAME: the step's own timeout in seconds
    local kv
    for kv in "${CAPS[@]}"; do [[ ${kv%%=*} == "$1" ]] && echo "${kv#*=}"; done
}

step() { # step NAME COMMAND...: run under timeout, log, record, rewrite gpu_check.json
    local name=$1 cap left limit t0 t1 rc
    shift
    cap=$(cap_of "$name")
    left=$((DEADLINE - $(date +%s)))
    limit=$((cap < left ? cap : left))
    if ((limit < 5)); then
        echo "== $name: skipped, ${left} s left of the ${DEADLINE_S} s deadline" | tee -a "$LOG"
        t0=$(date +%s.%N)
        "${HELPER[@]}" record "$WORK" "$name" 124 "$t0" "$t0" 0 >/dev/null
    else
        echo "== $name (timeout ${limit} s): $*" | tee -a "$LOG"
        t0=$(date +%s.%N)
        timeout --kill-after=15 "$limit" "$@" 2>&1 |
            "${HELPER[@]}" stamp "$t0" | tee "$WORK/logs/$name.log" >>"$LOG"
        rc=${PIPESTATUS[0]}
        t1=$(date +%s.%N)
        "${HELPER[@]}" record "$WORK" "$name" "$rc" "$t0" "$t1" "$limit" | tee -a "$LOG"
    fi
    "${HELPER[@]}" assemble "$WORK" "$OUTDIR" "$MODE" || echo "== assemble failed" | tee -a "$LOG"
}

step install "${INSTALL[@]}"
step env "${HELPER[@]}" env "$WORK/env.json" --peak-size "$PEAK_SIZE"
step tests env LANDSCAPE_TEST_DEVICE="$DEVICE" "${TESTS[@]}" --junitxml="$WORK/tests.xml"
step train_seeds "${HELPER[@]}" exec "$WORK/peak/train_seeds.json" bench/train_seeds.py -- \
    --device "$DEVICE" "${SEEDS[@]}" --data-dir "$DATA" --json "$WORK/train_seeds.json"
step surface "${HELPER[@]}" exec "$WORK/peak/surface.json" bench/surface.py -- \
    --device "$DEVICE" "${SURFACE[@]}" --data-dir "$DATA" --json "$WORK/surface.json"
step paper "${HELPER[@]}" exec "$WORK/peak/paper.json" landscape -- \
    run merkulov-mnist-mlp-paper "${PAPER[@]}" --device "$DEVICE" --data-dir "$DATA" \
    --offline --store "$WORK/runs/paper.h5" -o "$WORK/reports/paper"

echo "== done in $(($(date +%s) - START)) s; wrote $OUTDIR/gpu_check.json" | tee -a "$LOG"
"${HELPER[@]}" summary "$OUTDIR/gpu_check.json" | tee -a "$LOG"
