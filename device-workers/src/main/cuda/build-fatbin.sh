#!/bin/sh
# Compiles the CUDA kernels into one fatbin: SASS for sm_80 (A100) and sm_90 (H100/H200), PTX for compute_90 (newer
# chips JIT it). Called by the Maven build (device-workers, profile cuda-kernels): build-fatbin.sh NVCC OUTPUT.
# Skips the compile when the fatbin is newer than every .cu/.cuh source. Every .cu file of this folder goes into the one
# fatbin: nvcc -fatbin takes a single input, so a generated unit #includes them all (their names must not clash).
set -eu
NVCC=$1
OUT=$2
SRC=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$(dirname "$OUT")"
if [ -f "$OUT" ] && [ -z "$(find "$SRC" \( -name '*.cu' -o -name '*.cuh' -o -name 'build-fatbin.sh' \) -newer "$OUT")" ]; then
  exit 0
fi
for f in "$SRC"/*.cu; do printf '#include "%s"\n' "$f"; done >"$OUT.all.cu"
"$NVCC" -fatbin -O3 -std=c++17 \
  -gencode arch=compute_80,code=sm_80 \
  -gencode arch=compute_90,code=sm_90 \
  -gencode arch=compute_90,code=compute_90 \
  -o "$OUT.tmp" "$OUT.all.cu"
rm -f "$OUT.all.cu"
mv "$OUT.tmp" "$OUT"
echo "nvcc: built $(basename "$OUT") ($(wc -c <"$OUT") bytes) for sm_80, sm_90 + compute_90 PTX"
