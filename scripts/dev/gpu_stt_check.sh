#!/usr/bin/env bash
# faster-whisper on CUDA, checked on a lent GPU box whose image has CUDA 13 only and no network.
#
# Why this is a script and not a test: CI has no GPU. The box gets its files in pieces of < 64 MiB
# (wheels for Python 3.12, the whisper-base model.bin split in chunks, ../shared/audio), staged
# under $STAGE by earlier calls; this joins and installs them and runs scripts/bench_speech.py on
# the GPU (float16) and on the same box's CPU (int8) for comparison. Results go to $OUT.
#
# PyPI's CTranslate2 4.8.5 dlopens libcublas.so.12 and looks its functions up by unversioned name;
# the image ships cuBLAS 13 (same cublas*_v2 / cublasGemmEx entry points), so a libcublas.so.12
# link to libcublas.so.13 is enough for the check. A real install uses nvidia-cublas-cu12.
set -euo pipefail
STAGE=${STAGE:-/tmp/g}
OUT=${OUT:-/tmp/out}
mkdir -p "$STAGE/wb" "$OUT"
cp "$STAGE"/wb_meta/* "$STAGE/wb/"
cat "$STAGE"/mb.0 "$STAGE"/mb.1 "$STAGE"/mb.2 "$STAGE"/mb.3 "$STAGE"/mb.4 "$STAGE"/mb.5 > "$STAGE/wb/model.bin"
(cd "$STAGE/wb" && sha256sum -c model.sha256)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$STAGE"/*.whl
export PYTHONPATH=/tmp/site
cublas=$(find /opt /usr -name 'libcublas.so.13*' 2>/dev/null | head -1)
[ -n "$cublas" ] || { echo "no cuBLAS 13 on this box"; exit 1; }
mkdir -p /tmp/cu12 && ln -sf "$cublas" /tmp/cu12/libcublas.so.12
export LD_LIBRARY_PATH=/tmp/cu12:$(dirname "$cublas"):${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c 'import ctranslate2 as c; print("cuda devices", c.get_cuda_device_count(), sorted(c.get_supported_compute_types("cuda")))' | tee -a "$OUT/gpu.txt"
export EMPLOYAI_SERVICE__DATA_DIR=/tmp/edata EMPLOYAI_STT__MODEL="$STAGE/wb"
python3 scripts/bench_speech.py --json --skip-tts --repeats 3 --audio "$STAGE/audio" \
  --models "$STAGE/wb,$STAGE/wb:full" > "$OUT/stt_cuda.json"
EMPLOYAI_STT__DEVICE=cpu python3 scripts/bench_speech.py --json --skip-tts --skip-streaming --repeats 3 \
  --audio "$STAGE/audio" --models "$STAGE/wb" > "$OUT/stt_cpu16.json"
cat "$OUT"/stt_*.json
