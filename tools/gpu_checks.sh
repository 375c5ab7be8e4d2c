#!/usr/bin/env bash
# The checks of docs/performance.md's "Measured (GPU)" section in one go, on a machine with a CUDA device:
#   bash tools/gpu_checks.sh OUT_DIR
# Each step writes its JSON (or text) under OUT_DIR (relative to the folder it is run from) and
# goes on if one fails; the most wanted first; the exit status is 1 if any step failed. Set5
# (--psnr) needs ../shared or $CFIN_SHARED. Not yet run as a whole on a GPU.
set -u
case ${1:-} in -h|--help) sed -n '2,7s/^# \{0,1\}//p' "$0"; exit 0 ;; esac
out=${1:?usage: bash tools/gpu_checks.sh OUT_DIR}
case $out in /*) ;; *) out=$PWD/$out ;; esac  # the caller's folder, before the cd
cd "$(dirname "$0")/.."
python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: these checks need one')" \
    || exit 2
mkdir -p "$out" || exit 2
failed=0
step() { echo "== $1"; shift; "$@" || { echo "   failed (exit $?): $*"; failed=1; }; }
step "CUDA tests" sh -c 'python -m pytest -q -rs tests/test_cuda.py > "$1/test_cuda.txt" 2>&1; rc=$?
    tail -3 "$1/test_cuda.txt"; exit $rc' sh "$out"
step "training step: fast vs faithful, checkpointing, host share, op breakdown" \
    python -m cfin bench --scale 4 --train --device cuda --grad-checkpoint --breakdown --runs 20 --warmup 5 \
    --output "$out/train.json"
step "training step through CUDA graphs" \
    python -m cfin bench --scale 4 --train --device cuda --compile-mode reduce-overhead --no-memory --runs 20 \
    --warmup 5 --output "$out/train_graphs.json"
step "x4 720p inference: fast vs faithful, op breakdown" \
    python -m cfin bench --scale 4 --lr-size 180x320 --device cuda --breakdown --runs 30 --warmup 5 \
    --output "$out/inference.json"
step "x4 inference options scored on Set5" \
    python -m cfin bench --scale 4 --device cuda --amp bf16 --tf32 --compile --psnr --runs 20 --warmup 5 \
    --output "$out/options.json"
step "audit on CUDA" python -m cfin audit --scale 4 --device cuda --out "$out/audit" --no-progress
exit $failed
