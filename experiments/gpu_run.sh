#!/bin/bash
# The GPU benchmark in one script, from the repo root of a GPU host with no internet:
#   bash experiments/gpu_run.sh    (everything is also written to $OUT/gpu_bench.log)
# The host has jax (CUDA), flax, optax, numpy, absl and PyYAML but not jraph or
# ml_collections: their wheels travel in .whl/ (pip download, see NOTES) and go to
# /tmp/site. About 5.5 minutes on one H100; each benchmark stops starting new rows
# at its time budget and is killed at its timeout, and every row is printed as soon
# as it is measured, so a slow compile costs rows, not the log.
# PYTHON picks the interpreter and BENCH_EXTRA appends arguments to both benchmark
# runs (a CPU rehearsal: PYTHON=.venv/bin/python BENCH_EXTRA='--batch_sizes 2 ...').
set -u
OUT=${OUT:-/tmp/gpu_out}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
cd "$(dirname "$0")/.." || return 1

main() {
date -u

SITE=/tmp/site
if ! "$PY" -m pip install -q --no-index --no-deps --target "$SITE" .whl/*.whl; then
  # Both wheels are pure Python: unpacking them is installing them.
  "$PY" -c "import glob, zipfile
for wheel in glob.glob('.whl/*.whl'): zipfile.ZipFile(wheel).extractall('$SITE')"
fi
export PYTHONPATH=$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2

nvidia-smi || echo 'no nvidia-smi'
"$PY" -c "
import jax, flax, optax, numpy, jraph, ml_collections
print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__,
      'numpy', numpy.__version__, 'jraph', jraph.__version__)
print('jraph from', jraph.__file__, '; ml_collections from', ml_collections.__file__)
print(jax.devices())
import lipjax.models, lipjax.lstm, lipjax.graphs, extraction.schema
print('lipjax model code imports')
" || return 1

# small first (the demo's model), then base (LRW's); per-device batches largest first, so
# that a budget cut drops the CPU-like batch of 32, and bfloat16 before float32.
# shellcheck disable=SC2086
timeout 150 "$PY" experiments/bench_gpu.py --configs small --batch_sizes 1024,256,32 \
    --dtypes bfloat16,float32 --min_seconds 1 --time_budget_s 100 ${BENCH_EXTRA:-}
# shellcheck disable=SC2086
timeout 170 "$PY" experiments/bench_gpu.py --configs base --batch_sizes 1024,256,32 \
    --dtypes bfloat16,float32 --min_seconds 1 --time_budget_s 120 ${BENCH_EXTRA:-}
date -u
}

# A pipe, not exec > >(tee ...): the script ends only once the log is complete.
main 2>&1 | tee "$OUT/gpu_bench.log"
