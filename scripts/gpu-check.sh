#!/usr/bin/env bash
# GPU check in two halves, because the GPU machine has no Java and no Maven, and this one has no GPU.
#
#   scripts/gpu-check.sh            (here)  builds everything the GPU machine needs into .gpu/ (ignored by git):
#                                           a jlink'd JDK 25 runtime, the application jars, the GPU test classes and
#                                           their libraries, the kernel fatbin, and the llama-spm vocabulary.
#   scripts/gpu-check.sh --refresh  (here)  for a bundle that exists: rebuilds llm-service and what it needs, swaps
#                                           the runtime-actors/device-workers/scheduler/llm-service jars, the GPU test jars, the
#                                           fatbin and .gpu/repo (launcher, scripts) in place; minutes, not a full build.
#   scripts/gpu-check.sh --remote   (there, from the repo root, with .gpu carried) in one go, under 9 minutes:
#                                           nvidia-smi -L; the GPU tests (JUnit, tag gpu: kernels, segment kernels vs the
#                                           CPU worker, the GPU worker end to end, the LLM); device-to-device copy
#                                           bandwidth and the GEMV kernels at 1B/8B shapes (CudaBench), the batched-
#                                           decode row GEMV at 8B shapes (CudaRowBench), the prefill attention
#                                           (attn_prefill vs flash, 8B/1B shapes, CudaAttentionBench); synthesizes
#                                           the 8b (Q4_0, Q4_K), 1b (Q4_0, Q8_0, F16, BF16) and 8b Q8_0 presets one after another and
#                                           runs `./aether bench --device cuda` on each (GPU_CHECK_RUNS overrides the
#                                           list; a run that would pass GPU_CHECK_BUDGET_S, default 480 s, is skipped);
#                                           a run with a sixth field N benches the model split with `--gpu-layers N`
#                                           (CPU runs the first layers; GPU_CHECK_SPLIT_ARGS, default -p 128 -n 32
#                                           -r 2), reusing the model the run before it synthesized when the same;
#                                           e.g. GPU_CHECK_RUNS="8b:Q4_0:340:10800:180 8b:Q4_0:-:-:200:16";
#                                           right after the (unsplit) bench of GPU_CHECK_AB_MODEL (default 8b:Q4_0),
#                                           tg128 with the decode fusions on, off and each off alone, in turns in one
#                                           process (DecodeFusionBench; GPU_CHECK_AB=0 skips it; GPU_CHECK_AB_CONFIGS=1,5
#                                           picks rows: none and SwiGLU by rows), the A/B on one card;
#                                           right after the (unsplit) bench of GPU_CHECK_SERVE (default 8b:Q4_0; none
#                                           = off), a serving load on the same file (`./aether loadtest --device cuda`
#                                           at 1, 8, 64 sequences, at most GPU_CHECK_SERVE_S = 150 s; see serve_load);
#                                           prints the tables against llama.cpp last. Logs go to $OUT when set (else
#                                           /tmp/aether-gpu-out), 4 files. GPU_CHECK_TESTS (test classes,
#                                           space-separated; "none" skips them), GPU_CHECK_CUDABENCH=0 and
#                                           GPU_CHECK_CUDABENCH_ARGS (e.g. "--types Q4_0"), GPU_CHECK_ROWBENCH=0 and
#                                           GPU_CHECK_ROWBENCH_ARGS (e.g. "--rows 1,64"), GPU_CHECK_ATTNBENCH=0 narrow a
#                                           short run.
#                                           GPU_CHECK_SERVE_ARGS adds loadtest options, e.g. "--temperature 0.8 --top-k
#                                           40" for sampled requests (with AETHER_JAVA_OPTS=-Daether.cuda.deviceSampling=false
#                                           for the same load without device candidates).
#                                           AETHER_JAVA_OPTS=-Daether.cuda.profile=N adds per-kernel GPU time tables of
#                                           N decode steps / row passes to the bench and serving logs.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
GPU="${GPU_DIR:-$ROOT/.gpu}"
# jdk.management: bench reads the process CPU time through com.sun.management.OperatingSystemMXBean (without it every
# bench run on the GPU machine died with NoClassDefFoundError, 2026-12-07). java.desktop: Jinjava's expression resolver
# needs java.beans (serve and loadtest compile the chat template; without it the GPU serving load died the same way,
# 2026-12-07); its AWT/font/sound natives are left out (java.beans needs none of them). java.sql: optional date
# types of Jackson and Logback that jdeps lists.
JDK_MODULES=java.base,java.management,jdk.management,java.naming,java.net.http,java.xml,jdk.jfr,jdk.unsupported,jdk.incubator.vector,java.logging,java.desktop,java.sql
JDK_EXCLUDE='**libawt*,**libfontmanager.so,**libjavajpeg.so,**liblcms.so,**libmlib_image.so,**libsplashscreen.so,**libjsound.so'
JUNIT_CONSOLE=org.junit.platform:junit-platform-console-standalone:1.14.1
VOCAB_NAME=ggml-vocab-llama-spm.gguf
TEST_CLASSES=(aether.device.cuda.CudaAvailabilityTest aether.device.cuda.CudaKernelsTest aether.device.cuda.FusedDecodeKernelsTest
  aether.device.cuda.CudaPrefillTest aether.device.cuda.CudaFlashPrefillTest
  aether.device.cuda.CudaRowKernelsTest aether.device.cuda.GpuWorkersTest aether.scheduler.cuda.CudaSegmentKernelsTest
  aether.scheduler.cuda.CudaComputeRuntimeTest aether.llm.engine.cuda.CudaInferenceModelTest
  aether.llm.engine.cuda.HybridInferenceModelTest aether.llm.engine.cuda.CudaBatchedDecodeTest
  aether.device.cuda.ArgmaxRowsKernelTest aether.llm.engine.cuda.CudaArgmaxStepTest aether.llm.engine.cuda.CudaGoldenTest
  aether.llm.engine.cuda.CudaDecodeFusionTest aether.llm.engine.cuda.SampleCandidatesKernelTest
  aether.llm.engine.cuda.CudaDeviceSamplingTest)
# (GpuCheckListTest, device-workers, fails when a @Tag("gpu") test class of the cuda test packages is missing here)

# llama.cpp's golden generations for the llama models in the types the CUDA engine runs (CudaGoldenTest): ~4.5 MB
golden_files() {
  local src="$ROOT/../shared/golden/forward" dst="$GPU/golden/forward"
  [ -d "$src" ] || { echo "gpu-check: $src not found; CudaGoldenTest will skip" >&2; return 0; }
  mkdir -p "$dst/models"
  cp "$src/index.json" "$src/forward.jsonl" "$dst/"
  for t in q4_0 q8_0 q4_k q6_k; do cp "$src/models/rand-llama-s1-$t.gguf" "$dst/models/"; done
}

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
  # zip-0: xz compresses the whole image far better than jlink's per-resource zip (21 vs 37 MB with java.desktop)
  "$JAVA_HOME/bin/jlink" --add-modules "$JDK_MODULES" --compress zip-0 --strip-debug --no-header-files \
    --no-man-pages --exclude-files="$JDK_EXCLUDE" --output "$stage/jdk"

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
  # plus GoldenForwardTest's record reader, which CudaGoldenTest uses
  (cd "$ROOT/llm-service/target/test-classes" && "$JAVA_HOME/bin/jar" cf "$stage/test/llm-service-gpu-tests.jar" \
    aether/llm/engine/cuda aether/llm/engine/GoldenForwardTest*.class)
  "$JAVA_HOME/bin/jar" cf "$stage/test/scheduler-gpu-tests.jar" -C "$ROOT/scheduler/target/test-classes" aether/scheduler/cuda
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
  golden_files
  local total
  total=$(du -sm "$GPU" | cut -f1)
  ls -la "$GPU"
  echo "gpu-check: .gpu/ is ${total} MiB (limit 55)"
  [ "$total" -le 55 ] || { echo "gpu-check: .gpu/ is over 55 MiB" >&2; exit 1; }
  echo "gpu-check: ready. On the GPU machine, from the repo root with .gpu carried: scripts/gpu-check.sh --remote"
}

# Lighter rebuild for a bundle that exists: rebuilds only runtime-actors, device-workers and llm-service (with the
# kernel fatbin), swaps their jars and the GPU test jars into app.tar.xz, and refreshes .gpu/repo (launcher, scripts).
refresh() {
  . "$ROOT/scripts/find-jdk.sh"
  aether_find_jdk || exit 1
  [ -f "$GPU/app.tar.xz" ] || { echo "gpu-check: $GPU/app.tar.xz missing: run the full build first" >&2; exit 1; }
  echo "gpu-check: rebuilding runtime-actors, device-workers, scheduler, llm-service (package, tests compiled, not run)..."
  (cd "$ROOT" && ./mvnw -q -o -B -pl llm-service -am -DskipTests package)
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' EXIT
  tar -C "$stage" -xJf "$GPU/app.tar.xz"
  for m in runtime-actors device-workers scheduler llm-service; do
    local j
    j=$(ls "$stage"/app/lib/$m-*.jar)
    rm -rf "$stage/repack" && mkdir -p "$stage/repack"
    (cd "$stage/repack" && "$JAVA_HOME/bin/jar" xf "$(ls "$ROOT"/$m/target/$m-*.jar | grep -v -- -tests.jar | head -1)"       && rm -f "$j" && "$JAVA_HOME/bin/jar" cfM0 "$j" .)
  done
  rm -rf "$stage/repack"
  "$JAVA_HOME/bin/jar" cfM0 "$stage/test/device-workers-gpu-tests.jar" -C "$ROOT/device-workers/target/test-classes" aether/device/cuda
  (cd "$ROOT/llm-service/target/test-classes" && "$JAVA_HOME/bin/jar" cfM0 "$stage/test/llm-service-gpu-tests.jar" \
    aether/llm/engine/cuda aether/llm/engine/GoldenForwardTest*.class)
  "$JAVA_HOME/bin/jar" cfM0 "$stage/test/scheduler-gpu-tests.jar" -C "$ROOT/scheduler/target/test-classes" aether/scheduler/cuda
  tar -C "$stage" -cJf "$GPU/app.tar.xz.new" app test && mv "$GPU/app.tar.xz.new" "$GPU/app.tar.xz"
  cp "$ROOT/device-workers/target/classes/aether/cuda/aether-kernels.fatbin" "$GPU/"
  mkdir -p "$GPU/repo/scripts"
  cp "$ROOT/aether" "$GPU/repo/"
  cp "$ROOT"/scripts/gpu-check.sh "$ROOT"/scripts/find-jdk.sh "$GPU/repo/scripts/"
  golden_files
  ls -la "$GPU"
  echo "gpu-check: .gpu/ is $(du -sm "$GPU" | cut -f1) MiB; refreshed"
}

# ---- on the GPU machine -------------------------------------------------------------------------------------------

# The decode A/B of the fused single-token kernels (issue 7): DecodeFusionBench loads the model just benched once and
# times tg128 with the decode fusions all on, all off and each one off, in turns over 3 rounds (one card, one process;
# ~20 s on 8b). GPU_CHECK_AB=0 skips it; GPU_CHECK_AB_MODEL (default 8b:Q4_0) picks the bench run it follows.
decode_ab() {
  local model=$1 preset=$2 type=$3 log="$out/ab.tmp" rc
  echo "== A/B $preset $type: decode fusions (DecodeFusionBench)"
  timeout 120 "$java" "${flags[@]}" -cp "$work/app/lib/*" aether.llm.engine.cuda.DecodeFusionBench "$model" 128 3 ${GPU_CHECK_AB_CONFIGS:-} \
    >"$log" 2>&1
  rc=$?
  cat "$log"
  status+=("A/B $preset $type|rc=$rc|$(grep -E '^\| (all|none \(default\)) ' "$log" | awk -F'|' '{gsub(/^ +| +$/,"",$2); gsub(/ /,"",$3); printf "%s%s %s t/s", sep, $2, $3; sep="; "}')")
  { echo "== $preset $type decode fusions A/B"; cat "$log"; } >>"$out/bench.log"
  rm -f "$log"
}

# The serving load on model file $1 (called by remote, whose locals it uses): `./aether loadtest` with an in-process
# `serve --device cuda` (ctx 512, as many KV slots as the highest level), streamed greedy completions of
# GPU_CHECK_SERVE_TOKENS (default 128) tokens at GPU_CHECK_SERVE_LEVELS (default 1,8,64), all within
# GPU_CHECK_SERVE_S (default 150 s, model load included; levels past it are skipped), and only while the whole check
# stays inside GPU_CHECK_BUDGET_S. Its table goes to gpu-check.log (no file of its own: $OUT brings back at most 8).
serve_load() {
  local model=$1 limit=${GPU_CHECK_SERVE_S:-150}
  serve_done=1
  if (( SECONDS - t0 > ${GPU_CHECK_BUDGET_S:-480} - limit )); then
    echo "== skip the serving load on $serve_model (would pass the ${GPU_CHECK_BUDGET_S:-480} s budget)"
    status+=("serving load|skipped|over the budget")
    return
  fi
  echo "== serving load: $serve_model, ./aether loadtest --device cuda -c ${GPU_CHECK_SERVE_LEVELS:-1,8,64}"
  local t1=$SECONDS
  timeout "$limit" "$ROOT/aether" loadtest -m "$model" --device cuda --ctx 512 \
    -c "${GPU_CHECK_SERVE_LEVELS:-1,8,64}" -n "${GPU_CHECK_SERVE_TOKENS:-128}" --budget-s $(( limit - 40 )) \
    ${GPU_CHECK_SERVE_ARGS:-} >/tmp/serve-load.log 2>&1
  local rc=$?
  cat /tmp/serve-load.log
  serve_table=()
  while IFS= read -r line; do serve_table+=("$line"); done < <(grep -E '^\|' /tmp/serve-load.log)
  local at64
  at64=$(awk -F'|' '$2 ~ /^ *64 *$/ {gsub(/ /,"",$5); print $5}' /tmp/serve-load.log)
  status+=("serving load|rc=$rc|$(( SECONDS - t1 ))s, at 64 sequences ${at64:--} t/s (llama.cpp 4987)")
}

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
  [ -d "$GPU/golden" ] && cp -r "$GPU/golden" "$work/shared/"   # CudaGoldenTest's records and llama models
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
  local classes=("${TEST_CLASSES[@]}")
  [ -n "${GPU_CHECK_TESTS:-}" ] && read -r -a classes <<<"$GPU_CHECK_TESTS"
  for c in "${classes[@]}"; do [ "$c" = none ] || sel+=(--select-class "$c"); done
  local console
  console=$(ls "$work"/test/junit-platform-console-standalone-*.jar)
  # --details=flat prints each test as it finishes: a run cut by the timeout still shows what passed and what failed
  # (tree prints nothing before the end; the fourth session lost a whole run's results that way). The test classes
  # took ~270 s on an H200 (2026-12-07): with the benches they no longer fit one 600 s call, so run
  # GPU_CHECK_RUNS=none GPU_CHECK_SERVE=none for the tests alone and GPU_CHECK_TESTS=none for the benches.
  [ ${#sel[@]} -gt 0 ] && timeout "${GPU_CHECK_TEST_TIMEOUT_S:-420}" "$java" "${flags[@]}" -Daether.shared.dir="$work/shared" -jar "$console" execute --disable-banner --disable-ansi-colors \
    --class-path "$cp" "${sel[@]}" --details=flat >"$out/tests.log" 2>&1
  local rc=$?
  grep -E "tests (successful|failed|aborted|skipped|found)|relative error|vs float64|GPU tests on|✘|MethodSource|Assumption|=>" "$out/tests.log" | head -80 || true
  status+=("gpu tests|rc=$rc|$(grep -E 'tests successful' "$out/tests.log" | tr -s ' ' | head -1), $(grep -E 'tests failed' "$out/tests.log" | tr -s ' ' | head -1), $(grep -E 'tests aborted' "$out/tests.log" | tr -s ' ' | head -1)")

  echo "== copy bandwidth and GEMV (CudaBench)"
  [ "${GPU_CHECK_CUDABENCH:-1}" != 0 ] && timeout 150 "$java" "${flags[@]}" -cp "$work/app/lib/*" aether.device.cuda.CudaBench ${GPU_CHECK_CUDABENCH_ARGS:-} >"$out/gemv.log" 2>&1
  rc=$?
  cat "$out/gemv.log"
  status+=("cuda bench|rc=$rc|$(grep -E '^copy bandwidth' "$out/gemv.log" | head -1)")

  # the batched-decode GEMV (R activation rows per weight read; mmq vs the 16-row tensor-core GEMV vs dp4a), appended to gemv.log
  echo "== row GEMV (CudaRowBench)"
  : >"$work/rows.log"
  [ "${GPU_CHECK_ROWBENCH:-1}" != 0 ] && timeout 120 "$java" "${flags[@]}" -cp "$work/app/lib/*" aether.device.cuda.CudaRowBench ${GPU_CHECK_ROWBENCH_ARGS:-} >"$work/rows.log" 2>&1
  rc=$?
  cat "$work/rows.log" | tee -a "$out/gemv.log"
  status+=("row gemv|rc=$rc|$(grep -cE '^\| Q' "$work/rows.log") shapes x rows timed")

  # the prefill chunk's attention: attn_prefill (warp per query) vs the tensor-core flash kernel, one row per case,
  # appended to gemv.log (its "| " rows show in the summary too)
  echo "== prefill attention (CudaAttentionBench)"
  : >"$work/attn.log"
  [ "${GPU_CHECK_ATTNBENCH:-1}" != 0 ] && timeout 90 "$java" "${flags[@]}" -cp "$work/app/lib/*" aether.device.cuda.CudaAttentionBench >"$work/attn.log" 2>&1
  rc=$?
  cat "$work/attn.log" | tee -a "$out/gemv.log"
  status+=("attn bench|rc=$rc|$(grep -cE '^\| [18]B' "$work/attn.log") cases timed")

  # the bench matrix: preset, type, llama.cpp's decode t/s on the same kind of card (issue 7: llama-bench -ngl 99;
  # 7B figures for the 8b preset), llama.cpp's pp512 where known, a time limit for synth + bench together, and
  # optionally --gpu-layers N (a CPU/GPU split: llama.cpp has no figure for it here). 1b BF16 has no llama.cpp figure
  # of its own in issue 7: its row carries the 1B F16 one (759 t/s; the same 2 bytes a weight to read per token).
  export AETHER_SKIP_BUILD=1 AETHER_APP="$work/app"
  local serve_model=${GPU_CHECK_SERVE:-8b:Q4_0} serve_table=() serve_done=0
  local runs=${GPU_CHECK_RUNS:-"8b:Q4_0:340:10800:180 8b:Q4_K:272:-:120 1b:Q4_0:1054:-:90 1b:Q4_0:-:-:90:8 1b:Q8_0:849:-:90 1b:F16:759:-:90 1b:BF16:759:-:90 8b:Q8_0:239:-:180"}
  local table=() synthesized=""
  [ "$runs" = none ] && runs=""
  for r in $runs; do
    IFS=: read -r preset type ref_tg ref_pp limit ngl <<<"$r"
    local name="$type${ngl:+ ngl$ngl}"
    if (( SECONDS - t0 > ${GPU_CHECK_BUDGET_S:-480} - limit )); then
      echo "== skip $preset $name (would pass the ${GPU_CHECK_BUDGET_S:-480} s budget)"
      table+=("$preset|$name|skipped|-|-|-|$ref_tg|-|$ref_pp")
      continue
    fi
    local log="$out/bench-$preset-$type${ngl:+-ngl$ngl}.log" t1=$SECONDS
    local bench_args=(--device cuda -p 512 -n 128 -r 3)
    if [ -n "$ngl" ]; then
      read -r -a bench_args <<<"--gpu-layers $ngl ${GPU_CHECK_SPLIT_ARGS:--p 128 -n 32 -r 2}"
    fi
    # the model of the run before is kept for a run of the same preset and type (a split run after the GPU run)
    if [ "$synthesized" != "$preset:$type" ]; then
      rm -f /tmp/m.gguf
      synthesized=""
    fi
    echo "== ${synthesized:+reuse }synth $preset $type and bench ${bench_args[*]}"
    LOG="$log" SYN="$synthesized" AETHER="$ROOT/aether" PRESET="$preset" TYPE="$type" VOCAB="$GPU/$VOCAB_NAME" \
      timeout "$limit" bash -c 'if [ -z "$SYN" ]; then "$AETHER" synth --preset "$PRESET" --type "$TYPE" \
        --vocab "$VOCAB" -o /tmp/m.gguf >"$LOG.synth" 2>&1 || exit $?; fi
        "$AETHER" bench -m /tmp/m.gguf "$@" >"$LOG" 2>&1' _ "${bench_args[@]}"
    rc=$?
    [ -f "$log.synth" ] && tail -c 300 "$log.synth"; echo; cat "$log" 2>/dev/null; rm -f "$log.synth"
    synthesized="$preset:$type"
    [ -f /tmp/m.gguf ] || synthesized=
    local pp tg frac
    pp=$(awk -F'|' '$2 ~ /pp[0-9]/ {gsub(/ /,"",$3); split($3,a,"±"); print a[1]}' "$log" 2>/dev/null)
    tg=$(awk -F'|' '$2 ~ /tg[0-9]/ {gsub(/ /,"",$3); split($3,a,"±"); print a[1]}' "$log" 2>/dev/null)
    frac=$(grep -o 'roofline fraction [0-9.]*' "$log" 2>/dev/null | awk '{print $3}')
    table+=("$preset|$name|rc=$rc $(( SECONDS - t1 ))s|${pp:--}|${tg:--}|${frac:--}|$ref_tg|$( [ -n "$tg" ] && [ "$ref_tg" != - ] && awk -v a="$tg" -v b="$ref_tg" 'BEGIN{printf "%.2f", a/b}' || echo -)|$ref_pp")
    status+=("bench $preset $name|rc=$rc|pp ${pp:--} tg ${tg:--} t/s")
    # one bench log for all runs: $OUT brings back at most 8 files
    { echo "== $preset $name"; cat "$log" 2>/dev/null; } >>"$out/bench.log"
    rm -f "$log"
    if [ -z "$ngl" ] && [ "$preset:$type" = "${GPU_CHECK_AB_MODEL:-8b:Q4_0}" ] && [ -f /tmp/m.gguf ] \
        && [ "${GPU_CHECK_AB:-1}" != 0 ]; then
      decode_ab /tmp/m.gguf "$preset" "$type"   # the same file, right after its bench: one card for both figures
    fi
    if [ -z "$ngl" ] && [ "$preset:$type" = "$serve_model" ] && (( ! serve_done )) && [ -f /tmp/m.gguf ]; then
      serve_load /tmp/m.gguf   # the headline serving run right after its model's bench, on the same file
    fi
  done
  # GPU_CHECK_KEEP_MODEL=1 keeps the last model at /tmp/m.gguf for commands run after the check
  [ "${GPU_CHECK_KEEP_MODEL:-0}" = 1 ] || rm -f /tmp/m.gguf

  if [ "$serve_model" != none ] && (( ! serve_done )); then
    IFS=: read -r preset type <<<"$serve_model"
    if (( SECONDS - t0 > ${GPU_CHECK_BUDGET_S:-480} - ${GPU_CHECK_SERVE_S:-150} - 90 )); then
      echo "== skip the serving load on $serve_model (would pass the ${GPU_CHECK_BUDGET_S:-480} s budget)"
      status+=("serving load|skipped|over the budget")
    else
      echo "== synth $preset $type for the serving load"
      rm -f /tmp/m.gguf
      timeout 90 "$ROOT/aether" synth --preset "$preset" --type "$type" --vocab "$GPU/$VOCAB_NAME" -o /tmp/m.gguf \
        >/tmp/serve-synth.log 2>&1 || tail -c 300 /tmp/serve-synth.log
      [ -f /tmp/m.gguf ] && serve_load /tmp/m.gguf
      rm -f /tmp/m.gguf
    fi
  fi

  echo
  echo "== summary ($(( SECONDS - t0 )) s; logs in $out)"
  grep -E '^device:|^\| ' "$out/gemv.log" 2>/dev/null || true
  grep -h -E '^== |decode reads|^split model' "$out/bench.log" 2>/dev/null || true
  printf '| %-14s | %-6s | %s\n' step status result
  for s in "${status[@]}"; do
    IFS='|' read -r name rcs result <<<"$s"
    printf '| %-14s | %-6s | %s\n' "$name" "$rcs" "$result"
  done
  echo
  echo "Aether on the GPU vs llama.cpp (issue 7 figures, same card kind; 8b preset vs llama.cpp's 7B). pp = prompt"
  echo "of 512, tg = 128 decoded tokens, t/s; bw = decode weight bytes x tg / measured copy bandwidth. nglN rows: the"
  echo "model split with --gpu-layers N (${GPU_CHECK_SPLIT_ARGS:--p 128 -n 32 -r 2}); their bw is the CPU part's roofline"
  echo "(its layers' weights against the CPU's read bandwidth). The 1b BF16 row's llama.cpp figure is its 1B F16 one"
  echo "(759 t/s; issue 7 lists no BF16 figure)."
  printf '| %-5s | %-5s | %-9s | %9s | %9s | %5s | %12s | %8s | %12s |\n' model type run pp tg bw "llama.cpp tg" "tg ratio" "llama.cpp pp"
  printf '|-------|-------|-----------|-----------|-----------|-------|--------------|----------|--------------|\n'
  for row in "${table[@]}"; do
    IFS='|' read -r a b c d e f g h i <<<"$row"
    printf '| %-5s | %-5s | %-9s | %9s | %9s | %5s | %12s | %8s | %12s |\n' "$a" "$b" "$c" "$d" "$e" "$f" "$g" "$h" "$i"
  done
  if (( ${#serve_table[@]} )); then
    echo
    echo "Serving load on the GPU ($serve_model, ./aether loadtest --device cuda, ${GPU_CHECK_SERVE_TOKENS:-128} tokens"
    echo "per request, ignore_eos; decode t/s = generated tokens / wall time of the level). llama.cpp (issue 7):"
    echo "4,987 t/s aggregate at 64 sequences on 7B Q4_0; goal >= 1.2x = 5,984 t/s."
    printf '%s\n' "${serve_table[@]}"
    local at64
    at64=$(printf '%s\n' "${serve_table[@]}" | awk -F'|' '$2 ~ /^ *64 *$/ {gsub(/ /,"",$5); print $5}')
    [ -n "$at64" ] && awk -v a="$at64" 'BEGIN{printf "at 64 sequences: %.2fx llama.cpp\n", a / 4987}'
  fi
}

case "${1:-}" in
  --remote) remote ;;
  --refresh) refresh ;;
  "") build ;;
  *) echo "usage: scripts/gpu-check.sh [--remote|--refresh]" >&2; exit 2 ;;
esac
