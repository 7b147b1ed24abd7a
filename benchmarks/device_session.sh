#!/usr/bin/env bash
# One prepared run on a borrowed GPU machine: the GPU tests, both benchmarks (issue #14) and the
# retraining of the bundled weights (issue #11), in one command that ends inside BUDGET_S.
#
# Prepared here first (the GPU machine has torch, numpy, scipy, scikit-image and safetensors but no
# SimpleITK, nibabel, pydicom, VTK or MONAI):
#
#   python -m spinect_core.training.bundled_recipe pack-real .device/cases
#   python -m spinect_core.training.bundled_recipe pack-phantoms .device/cases --seeds 400-403 \
#       --option anatomy=real
#   pip download --no-deps --only-binary=:all: --python-version 3.12 ... -d .whl monai==1.6.1
#
# then run with `.device` and `.whl` carried: `bash benchmarks/device_session.sh` ($OUT: where the
# results go). The training runs in the background from the start: its phantoms are made by
# processes at nice 19 while the benchmarks run, and its first GPU step waits for the benchmarks
# to finish (bundled_recipe --wait-for), so no timing shares the GPU. The benchmarks' CPU phases
# do share the cores with those niced processes: the planner's CPU figures here are not the
# 2-core targets' figures (those are measured on the CPU machine).
#
# Output ($OUT, at most 8 files): bench.log (GPU tests, then one JSON line per benchmark),
# recipe.log (the training's printed lines) and train/ (the recipe's model.safetensors,
# model.json, training_log.json, summary.json, progress.log).
set -u
OUT=${OUT:-out/device}
BUDGET_S=${BUDGET_S:-540}
mkdir -p "$OUT/train"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH="$PWD:/tmp/site"
else
  export PYTHONPATH="$PWD"
fi
free_flag=$(mktemp -u /tmp/spinect-gpu-free.XXXXXX)
bench="$OUT/bench.log"
{
  echo "# $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1)"
  python3 -c 'import torch, sys; print("# torch", torch.__version__, "cuda", torch.version.cuda, "python", sys.version.split()[0])'
} >"$bench" 2>&1

# 1. training, in the background (one BLAS thread per process: 15 phantom makers, 14 loaders)
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 nice -n 19 \
  python3 -m spinect_core.training.bundled_recipe device --out "$OUT/train" --cases .device/cases \
  --budget-s "$BUDGET_S" --gen-budget-s "${GEN_BUDGET_S:-200}" --reserve-s 45 \
  --patient-seeds "${PATIENT_SEEDS:-134-165,300-331}" --synthseg \
  --init assets/weights/spinect_default.safetensors \
  --wait-for "$free_flag" --wait-max-s "${WAIT_MAX_S:-150}" >"$OUT/recipe.log" 2>&1 &
recipe=$!

# 2. GPU tests, then the benchmarks, each bounded
step() { local limit=$1; shift; echo "# step: $* (limit ${limit} s)" >>"$bench";
         local t0=$SECONDS; timeout "$limit" "$@" >>"$bench" 2>&1;
         echo "# rc $? in $((SECONDS - t0)) s" >>"$bench"; }
step 90 python3 -m pytest -q -p no:cacheprovider -m gpu tests/planning/test_torch_caster.py \
  tests/inference/test_predictor.py tests/inference/test_skip_air.py
step 220 python3 benchmarks/segmentation.py --device cuda --best --repeat 2 --json
step 45 python3 benchmarks/segmentation.py --_worker ours --device cuda --config study \
  --shape 320 400 400 --batch auto --precision auto --repeat 3
step 45 python3 benchmarks/segmentation.py --_worker raw --device cuda --config study \
  --shape 320 400 400 --batch 32 --precision bfloat16 --repeat 3
step 120 python3 benchmarks/planning.py --device cuda --no-cli --no-exports --json
touch "$free_flag"

wait "$recipe"
echo "# recipe rc $?" >>"$bench"
