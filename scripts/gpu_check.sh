#!/usr/bin/env bash
# The GPU checks of the simulator boundary in one short run, for a machine with an NVIDIA GPU (driver R580+ for PyPI's
# CUDA 13 warp-lang wheels) and a CUDA build of torch already installed:
#   bash scripts/gpu_check.sh [OUT_DIR]
# 1. the conformance suite with Warp on cuda beside the CPU backends; 2. bench_backends.py on the GPU, flat and
# rough; 3. a short go2_flat_gpu training run, then play on its checkpoint. Results land in OUT_DIR (default gpu_check/).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-gpu_check}"
mkdir -p "$out"
python -m pip install --quiet -e ".[test,warp]"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
LEGGEDEX_TEST_CUDA=1 python -m pytest tests/envs/backends/test_backend_conformance.py -q -p no:cacheprovider -s \
  -k "warp_cuda" 2>&1 | tee "$out/conformance.txt"
python scripts/bench_backends.py --backends warp-cuda --num-envs 4096 8192 16384 --seconds 5 --iterations 3 \
  --json "$out/bench_flat.json" | tee "$out/bench_flat.md"
python scripts/bench_backends.py --backends warp-cuda --task rough --num-envs 4096 8192 --seconds 5 --iterations 3 \
  --json "$out/bench_rough.json" | tee "$out/bench_rough.md"
LEGGEDEX_RUN_STAMP=gpu_check leggedex fit --config configs/go2_flat_gpu.yaml --trainer.max_epochs 30 \
  --experiment gpu_check 2>&1 | tail -5 | tee "$out/fit.txt"
leggedex play --config configs/go2_flat_gpu.yaml --ckpt_path logs/gpu_check/gpu_check/checkpoints/last.ckpt \
  --num_envs 600 --json "$out/play.json" 2>&1 | tail -12 | tee "$out/play.txt"
