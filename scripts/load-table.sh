#!/usr/bin/env bash
# Aether (`./aether loadtest` against an in-process `aether serve`) and llama.cpp (scripts/llama-cpp-load.mjs through
# node-llama-cpp) under the same serving load, one after the other, printed as one markdown table with `uptime` before
# and after. Both get the same prompt token ids (tokenized once by llama.cpp), the same tokens per request (greedy,
# EOS ignored), the same requests per level, context per sequence, threads and one untimed warm-up request.
#
# Usage: scripts/load-table.sh MODEL.gguf
# Environment: LEVELS (1,8,32), N (64 tokens per request), REQUESTS (default 2 x level, at least 4), THREADS (2),
#   CTX (256), PROMPT (loadtest's default text), PEER_DIR (/tmp/peer: where node-llama-cpp is installed; installed there
#   with npm when missing), KEEP (a folder to keep the raw JSON of both tools in).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ $# -eq 1 ] || { echo "usage: scripts/load-table.sh MODEL.gguf" >&2; exit 2; }
MODEL=$(realpath "$1")
[ -f "$MODEL" ] || { echo "load-table: no model file $1" >&2; exit 2; }
LEVELS=${LEVELS:-1,8,32}
N=${N:-64}
THREADS=${THREADS:-2}
CTX=${CTX:-256}
PROMPT=${PROMPT:-"Once upon a time, in a small village by the sea, there lived"}
PEER_DIR=${PEER_DIR:-/tmp/peer}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

if [ ! -d "$PEER_DIR/node_modules/node-llama-cpp" ]; then
  echo "load-table: installing node-llama-cpp@3 in $PEER_DIR" >&2
  mkdir -p "$PEER_DIR"
  (cd "$PEER_DIR" && { [ -f package.json ] || npm init -y >/dev/null; } && npm install --no-audit --no-fund node-llama-cpp@3 >&2)
fi
cp "$ROOT/scripts/llama-cpp-load.mjs" "$PEER_DIR/"
REQ=()
[ -n "${REQUESTS:-}" ] && REQ=(--requests "$REQUESTS")

(cd "$PEER_DIR" && node llama-cpp-load.mjs "$MODEL" --prompt "$PROMPT" --print-prompt-ids) > "$WORK/prompt.json"
BEFORE=$(uptime)
"$ROOT/aether" loadtest -m "$MODEL" -t "$THREADS" --ctx "$CTX" -c "$LEVELS" -n "$N" "${REQ[@]}" \
    --prompt-file "$WORK/prompt.json" --warmup 1 --json > "$WORK/aether.json"
MIDDLE=$(uptime)
(cd "$PEER_DIR" && node llama-cpp-load.mjs "$MODEL" -t "$THREADS" --ctx "$CTX" -c "$LEVELS" -n "$N" "${REQ[@]}" \
    --prompt-file "$WORK/prompt.json" --warmup 1 --json) > "$WORK/llama.json"
AFTER=$(uptime)
if [ -n "${KEEP:-}" ]; then
  mkdir -p "$KEEP" && cp "$WORK"/*.json "$KEEP/"
fi

node - "$WORK/aether.json" "$WORK/llama.json" "$MODEL" "$WORK/prompt.json" "$BEFORE" "$MIDDLE" "$AFTER" <<'JS'
const fs = require("fs");
const [a, l, model, prompt, before, middle, after] = process.argv.slice(2);
const A = JSON.parse(fs.readFileSync(a, "utf8")), L = JSON.parse(fs.readFileSync(l, "utf8"));
const ids = JSON.parse(fs.readFileSync(prompt, "utf8"));
const f1 = v => v.toFixed(1), f2 = v => v.toFixed(2);
console.log(`Model ${model.split("/").pop()}, prompt ${ids.length} tokens, ${A[0].tokens / A[0].requests} generated `
    + `per request (greedy, EOS ignored), threads ${process.env.THREADS || 2}.`);
console.log("");
console.log("| concurrency | requests | Aether decode t/s | llama.cpp decode t/s | Aether / llama.cpp "
    + "| TTFT p50 / p99 ms Aether | TTFT p50 / p99 ms llama.cpp | ITL p50 / p99 ms Aether | ITL p50 / p99 ms llama.cpp |");
console.log("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
for (let i = 0; i < A.length; i++) {
  const x = A[i], y = L.find(r => r.concurrency === x.concurrency);
  console.log(`| ${x.concurrency} | ${x.requests} | ${f1(x.tokensPerSecond)} | ${f1(y.tokensPerSecond)} `
      + `| ${f2(x.tokensPerSecond / y.tokensPerSecond)}× | ${f1(x.ttftP50Ms)} / ${f1(x.ttftP99Ms)} `
      + `| ${f1(y.ttftP50Ms)} / ${f1(y.ttftP99Ms)} | ${f2(x.itlP50Ms)} / ${f2(x.itlP99Ms)} `
      + `| ${f2(y.itlP50Ms)} / ${f2(y.itlP99Ms)} |`);
}
const one = A.find(r => r.concurrency === 1), oneL = L.find(r => r.concurrency === 1);
if (one) {
  const scale = (R, base) => R.filter(r => r.concurrency !== 1)
      .map(r => `C${r.concurrency}/C1 ${f2(r.tokensPerSecond / base.tokensPerSecond)}×`).join(", ");
  console.log("");
  console.log(`Throughput scaling: Aether ${scale(A, one)}; llama.cpp ${scale(L, oneL)}.`);
}
console.log("");
console.log(`uptime before Aether: ${before.trim()}`);
console.log(`uptime before llama.cpp: ${middle.trim()}`);
console.log(`uptime after: ${after.trim()}`);
JS
