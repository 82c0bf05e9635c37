#!/usr/bin/env bash
# The GPU checks, on a machine with CuPy and a CUDA GPU, from the repository root:
#
#     bash scripts/gpu_check.sh
#
# 1. tests/test_gpu.py (pytest -m gpu): every layer on the GPU equals numpy in float64, the
#    gradcheck sweep on the GPU, a short training run against the CPU's loss curve, GPU save / CPU load;
# 2. scripts/bench.py --device cuda: training steps of the reference CNN, the VGG-like net and a
#    ResNet stack against PyTorch on the same GPU.
# It needs numpy, cupy, pytest, torch, matplotlib and tqdm, and takes a few minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" MPLBACKEND=Agg
python - <<'PY'
import cupy, numpy
print(f"numpy {numpy.__version__}, cupy {cupy.__version__}, CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}, "
      f"{cupy.cuda.runtime.getDeviceCount()} GPU(s): {cupy.cuda.runtime.getDeviceProperties(0)['name'].decode()}")
PY
status=0
timeout 240 python -m pytest -m gpu -q -p no:cacheprovider tests/test_gpu.py || status=$?
timeout 150 python scripts/bench.py --device cuda --repeats 5 || status=$?
exit $status
