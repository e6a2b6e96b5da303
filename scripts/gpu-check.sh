#!/usr/bin/env bash
# GPU check in two halves, because the GPU machine has no Java and no Maven, and this one has no GPU.
#
#   scripts/gpu-check.sh            (here)  builds everything the GPU machine needs into .gpu/ (ignored by git):
#                                           a jlink'd JDK 25 runtime, the application jars, the GPU test classes and
#                                           their libraries, the kernel fatbin, and the llama-spm vocabulary.
#   scripts/gpu-check.sh --remote   (there, from the repo root, with .gpu carried) in one go, under 9 minutes:
#                                           nvidia-smi -L; the GPU tests (JUnit, tag gpu); device-to-device copy
#                                           bandwidth and the GEMV kernels at 1B/8B shapes (CudaBench); synthesizes
#                                           the 1B Q4_0 model and runs `./aether bench --device cuda` on it; prints a
#                                           short table last. Logs go to $OUT when set (else /tmp/aether-gpu-out).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
GPU="${GPU_DIR:-$ROOT/.gpu}"
JDK_MODULES=java.base,java.management,java.naming,java.net.http,java.xml,jdk.jfr,jdk.unsupported,jdk.incubator.vector,java.logging
JUNIT_CONSOLE=org.junit.platform:junit-platform-console-standalone:1.14.1
VOCAB_NAME=ggml-vocab-llama-spm.gguf
TEST_CLASSES=(aether.device.cuda.CudaAvailabilityTest aether.device.cuda.CudaKernelsTest
  aether.llm.engine.cuda.CudaInferenceModelTest)

build() {
  . "$ROOT/scripts/find-jdk.sh"
  aether_find_jdk || exit 1
  [ -x /usr/local/cuda/bin/nvcc ] || { echo "gpu-check: nvcc not found at /usr/local/cuda/bin/nvcc; the bundle would have no kernels" >&2; exit 1; }
  local vocab="$ROOT/../shared/models/vocab/$VOCAB_NAME"
  [ -f "$vocab" ] || { echo "gpu-check: $vocab not found (the shared folder beside the checkout)" >&2; exit 1; }
  echo "gpu-check: building the product and the tests (./mvnw package, tests compiled, not run)..."
  (cd "$ROOT" && ./mvnw -q -B -DskipTests package)
  rm -rf "$GPU"
  mkdir -p "$GPU"
  STAGE=$(mktemp -d)
  trap 'rm -rf "$STAGE"' EXIT
  local stage=$STAGE

  echo "gpu-check: jlink ($JDK_MODULES)..."
  "$JAVA_HOME/bin/jlink" --add-modules "$JDK_MODULES" --compress zip-9 --strip-debug --no-header-files \
    --no-man-pages --output "$stage/jdk"

  echo "gpu-check: application and test jars..."
  mkdir -p "$stage/app/lib" "$stage/test"
  cp "$ROOT"/cluster-config/target/app/lib/*.jar "$stage/app/lib/"
  # JCuda's natives jar holds four libraries; the driver API needs only libJCudaDriver (the others need CUDA 12 libs)
  local natives
  natives=$(ls "$stage"/app/lib/jcuda-natives-*.jar)
  (mkdir -p "$stage/natives" && cd "$stage/natives" && "$JAVA_HOME/bin/jar" xf "$natives" \
    && find lib -name '*.so' ! -name 'libJCudaDriver-*' -delete && rm -f "$natives" \
    && "$JAVA_HOME/bin/jar" cf0 "$natives" .)
  rm -rf "$stage/natives"
  # the tests: only the CUDA test packages, plus SharedData from runtime-actors' test jar
  "$JAVA_HOME/bin/jar" cf "$stage/test/device-workers-gpu-tests.jar" -C "$ROOT/device-workers/target/test-classes" aether/device/cuda
  "$JAVA_HOME/bin/jar" cf "$stage/test/llm-service-gpu-tests.jar" -C "$ROOT/llm-service/target/test-classes" aether/llm/engine/cuda
  cp "$ROOT"/runtime-actors/target/runtime-actors-*-tests.jar "$stage/test/"
  (cd "$ROOT" && ./mvnw -q -B dependency:copy -Dartifact="$JUNIT_CONSOLE" -DoutputDirectory="$stage/test")
  (cd "$ROOT" && ./mvnw -q -B dependency:copy -Dartifact="org.assertj:assertj-core:3.27.6" -DoutputDirectory="$stage/test")
  # jars repacked uncompressed: xz then compresses the whole much better than deflate per entry
  for j in "$stage"/app/lib/*.jar "$stage"/test/*.jar; do
    local d="$stage/repack"
    rm -rf "$d" && mkdir -p "$d"
    (cd "$d" && "$JAVA_HOME/bin/jar" xf "$j" && rm -f "$j" && "$JAVA_HOME/bin/jar" cfM0 "$j" .)
  done
  rm -rf "$stage/repack"

  echo "gpu-check: packing (tar.xz)..."
  tar -C "$stage" -cJf "$GPU/jdk.tar.xz" jdk
  tar -C "$stage" -cJf "$GPU/app.tar.xz" app test
  cp "$ROOT/device-workers/target/classes/aether/cuda/aether-kernels.fatbin" "$GPU/"
  cp "$vocab" "$GPU/$VOCAB_NAME"
  local total
  total=$(du -sm "$GPU" | cut -f1)
  ls -la "$GPU"
  echo "gpu-check: .gpu/ is ${total} MiB (limit 55)"
  [ "$total" -le 55 ] || { echo "gpu-check: .gpu/ is over 55 MiB" >&2; exit 1; }
  echo "gpu-check: ready. On the GPU machine, from the repo root with .gpu carried: scripts/gpu-check.sh --remote"
}

# ---- on the GPU machine -------------------------------------------------------------------------------------------
remote() {
  local out=${OUT:-/tmp/aether-gpu-out}
  mkdir -p "$out"
  exec > >(tee -a "$out/gpu-check.log") 2>&1
  local work=/tmp/aether-gpu
  local t0=$SECONDS
  rm -rf "$work" && mkdir -p "$work/shared/models/vocab"
  for f in jdk.tar.xz app.tar.xz; do
    [ -f "$GPU/$f" ] || { echo "gpu-check: $GPU/$f missing: run scripts/gpu-check.sh here first, then carry .gpu" >&2; exit 1; }
    tar -C "$work" -xJf "$GPU/$f" 2>/dev/null \
      || python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall(sys.argv[2])" "$GPU/$f" "$work"
  done
  cp "$GPU/$VOCAB_NAME" "$work/shared/models/vocab/"
  export JAVA_HOME="$work/jdk"
  local java="$JAVA_HOME/bin/java"
  local flags=(--add-modules=jdk.incubator.vector --add-exports=java.base/jdk.internal.misc=ALL-UNNAMED
    --enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow -XX:+UseG1GC -Xss4m)
  local status=()
  # from here on every step runs whatever the one before did; each records its exit status for the summary
  set +e +o pipefail

  echo "== nvidia-smi -L"
  nvidia-smi -L || true
  "$java" -version 2>&1 | head -1

  echo "== GPU tests (JUnit, tag gpu)"
  local cp sel=()
  cp=$(ls "$work"/test/*.jar "$work"/app/lib/*.jar | tr '\n' ':')
  for c in "${TEST_CLASSES[@]}"; do sel+=(--select-class "$c"); done
  local console
  console=$(ls "$work"/test/junit-platform-console-standalone-*.jar)
  timeout 240 "$java" "${flags[@]}" -Daether.shared.dir="$work/shared" -jar "$console" execute --disable-banner --disable-ansi-colors \
    --class-path "$cp" "${sel[@]}" --details=tree >"$out/tests.log" 2>&1
  local rc=$?
  grep -E "tests (successful|failed|aborted|skipped|found)|relative error|GPU tests on|✘|MethodSource|Assumption|=>" "$out/tests.log" | head -80 || true
  status+=("gpu tests|rc=$rc|$(grep -E 'tests successful' "$out/tests.log" | tr -s ' ' | head -1), $(grep -E 'tests failed' "$out/tests.log" | tr -s ' ' | head -1), $(grep -E 'tests aborted' "$out/tests.log" | tr -s ' ' | head -1)")

  echo "== copy bandwidth and GEMV (CudaBench)"
  timeout 150 "$java" "${flags[@]}" -cp "$work/app/lib/*" aether.device.cuda.CudaBench >"$out/gemv.log" 2>&1
  rc=$?
  cat "$out/gemv.log"
  status+=("cuda bench|rc=$rc|$(grep -E '^copy bandwidth' "$out/gemv.log" | head -1)")

  local preset=${GPU_CHECK_PRESET:-1b}
  echo "== synth $preset Q4_0 and bench --device cuda"
  export AETHER_SKIP_BUILD=1 AETHER_APP="$work/app"
  timeout 150 "$ROOT/aether" synth --preset "$preset" --type Q4_0 --vocab "$GPU/$VOCAB_NAME" -o /tmp/m.gguf >"$out/synth.log" 2>&1
  rc=$?
  tail -c 400 "$out/synth.log"; echo
  if [ $rc -eq 0 ]; then
    timeout 120 "$ROOT/aether" bench -m /tmp/m.gguf --device cuda -p 128 -n 128 -r 3 >"$out/bench.log" 2>&1
    rc=$?
    cat "$out/bench.log"
  fi
  status+=("bench $preset Q4_0|rc=$rc|$(grep -E '^\| (pp|tg)' "$out/bench.log" 2>/dev/null | tr -s ' ' | tr '\n' ' ')")

  echo
  echo "== summary ($(( SECONDS - t0 )) s; logs in $out)"
  grep -E '^device:|^\| ' "$out/gemv.log" 2>/dev/null || true
  grep -E 'decode reads|GPU ' "$out/bench.log" 2>/dev/null || true
  printf '| %-14s | %-6s | %s\n' step status result
  for s in "${status[@]}"; do
    IFS='|' read -r name rcs result <<<"$s"
    printf '| %-14s | %-6s | %s\n' "$name" "$rcs" "$result"
  done
}

case "${1:-}" in
  --remote) remote ;;
  "") build ;;
  *) echo "usage: scripts/gpu-check.sh [--remote]" >&2; exit 2 ;;
esac
