// llama.cpp (through the npm package node-llama-cpp, CPU build) under the load `./aether loadtest` puts on
// `./aether serve`: at each concurrency level C, C generations run at once (closed loop: a finished request is
// replaced by the next until --requests are done), each one greedy, exactly --max-tokens tokens long, from the same
// prompt. Prints, per level, the aggregate decode rate (generated tokens over the level's wall time) and p50/p99 time
// to first token and inter-token latency, in loadtest's table format (or loadtest's JSON with --json).
//
// Usage: node llama-cpp-load.mjs MODEL.gguf [-c 1,8,32] [--requests N] [-n 64] [--prompt TEXT | --prompt-file F]
//                                [--threads 2] [--ctx 256] [--batch 256] [--warmup 1] [--no-cache-prompt] [--json] [--print-prompt-ids]
// Needs `npm install node-llama-cpp@3` in the folder this script runs from (its prebuilt llama.cpp comes with it as
// the optional package @node-llama-cpp/linux-x64; no compiler needed). `scripts/load-table.sh` runs it next to
// `./aether loadtest` and prints one table.
//
// How the load maps onto node-llama-cpp (3.22):
// - One context per level with `sequences: C` (llama.cpp's n_seq_max, one KV stream per sequence, kv_unified off),
//   `contextSize` per sequence (--ctx, like `aether serve --ctx`), `batchSize` --batch (like `--batch`). Every
//   sequence queues its next token and node-llama-cpp's batching ("nextCycle" dispatch, "maximumParallelism")
//   decodes all queued tokens of the context in one llama_decode call: llama.cpp's batched decoding.
// - Greedy: `temperature: 0` (node-llama-cpp then samples with llama.cpp's greedy sampler).
// - Ignore EOS: `yieldEogToken: true` keeps generating after an end-of-generation token (the EOG token is fed back
//   like any other), as `ignore_eos` does in `aether serve`; every request yields exactly --max-tokens tokens.
// - Prompt: --prompt TEXT (default: loadtest's default text) is tokenized by llama.cpp with BOS when the model asks
//   for it (what `aether serve` does with a text prompt); --prompt-file F reads a file that is either the text or a
//   JSON array of token ids used as is (loadtest --prompt-file reads the same two forms). --print-prompt-ids prints
//   the ids of the text as such an array and exits, so that both tools can be given identical ids.
// - Prompt cache: each sequence keeps its last request's tokens, and a request reuses the part that matches its
//   prompt except the last prompt token (llama-server's default `cache_prompt`, per slot); --no-cache-prompt clears
//   the sequence instead. `aether serve` does the same through its prefix cache (finished sequences kept, shared
//   by all requests; `./aether loadtest` keeps one per slot of its highest level, as here; `prefix-cache = 4` in
//   `aether serve`'s config otherwise, AETHER_SERVE_PREFIX_CACHE=0 turns it off).
// - Warm-up: --warmup requests run one at a time before the first level, untimed (loadtest --warmup does the same;
//   for Aether it also lets the JIT compile the step graphs' kernels).
//
// What node-llama-cpp cannot do, and what differs from `./aether loadtest` therefore:
// - It has no HTTP server (no OpenAI API), so there is no HTTP/SSE/JSON in llama.cpp's figures; requests are async
//   generator calls in this process. Aether's figures include its HTTP server and client (in one JVM, sharing the
//   cores). TTFT is measured from the start of the request to the first yielded token in both.
// - There is no continuous batching of prefill with decode: a new request's prompt joins the next batch whole
//   (it is split only at --batch tokens), which is what llama.cpp's own server does too.
// - Timing granularity: tokens of one batch are handed to the sequences' generators one after the other on the
//   event loop, so the inter-token gaps include that hand-off (microseconds; like Aether's SSE chunks).
import {getLlama} from "node-llama-cpp";
import {readFileSync} from "node:fs";

const DEFAULT_PROMPT = "Once upon a time, in a small village by the sea, there lived";

function parseArgs(argv) {
    const o = {levels: [1, 8, 32], requests: null, maxTokens: 64, prompt: DEFAULT_PROMPT, promptFile: null,
        threads: 2, ctx: 256, batch: 256, warmup: 1, cachePrompt: true, json: false, printIds: false, model: null};
    const value = (i, name) => {
        if (i + 1 >= argv.length) throw new Error(`${name} needs a value`);
        return argv[i + 1];
    };
    const int = (s, name, min) => {
        const v = Number(s);
        if (!Number.isInteger(v) || v < min) throw new Error(`${name} ${s} (expected an integer ${min}+)`);
        return v;
    };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        switch (a) {
            case "-c": case "--concurrency":
                o.levels = value(i, a).split(",").map(s => int(s, a, 1)); i++; break;
            case "--requests": o.requests = int(value(i, a), a, 1); i++; break;
            case "-n": case "--max-tokens": o.maxTokens = int(value(i, a), a, 1); i++; break;
            case "-p": case "--prompt": o.prompt = value(i, a); i++; break;
            case "--prompt-file": o.promptFile = value(i, a); i++; break;
            case "-t": case "--threads": o.threads = int(value(i, a), a, 1); i++; break;
            case "--ctx": o.ctx = int(value(i, a), a, 2); i++; break;
            case "--batch": o.batch = int(value(i, a), a, 1); i++; break;
            case "--warmup": o.warmup = int(value(i, a), a, 0); i++; break;
            case "--no-cache-prompt": o.cachePrompt = false; break;
            case "--json": o.json = true; break;
            case "--print-prompt-ids": o.printIds = true; break;
            default:
                if (a.startsWith("-") || o.model) throw new Error(`unknown argument ${a}`);
                o.model = a;
        }
    }
    if (!o.model) throw new Error("MODEL.gguf missing");
    return o;
}

/** loadtest's percentile: the value at rank ceil(p/100 * n) of the sorted values. */
function percentile(values, p) {
    if (values.length === 0) return NaN;
    const sorted = Float64Array.from(values).sort();
    const rank = Math.ceil(p / 100 * sorted.length) - 1;
    return sorted[Math.max(0, Math.min(sorted.length - 1, rank))];
}

function promptIds(model, o) {
    let text = o.prompt;
    if (o.promptFile) {
        const content = readFileSync(o.promptFile, "utf8");
        if (content.trimStart().startsWith("[")) {
            const ids = JSON.parse(content);
            if (!Array.isArray(ids) || ids.length === 0 || !ids.every(Number.isInteger))
                throw new Error(`--prompt-file ${o.promptFile}: expected a non-empty JSON array of token ids`);
            return ids;
        }
        text = content;
    }
    const ids = model.tokenize(text, false);
    if (model.tokens.shouldPrependBosToken && model.tokens.bos != null) ids.unshift(model.tokens.bos);
    return ids;
}

/** Runs `n` requests, `c` at a time, on one context of `c` sequences; returns loadtest's Level record. */
async function runLevel(model, o, prompt, c, n) {
    const context = await model.createContext({sequences: c, contextSize: o.ctx, batchSize: o.batch,
        threads: {ideal: o.threads, min: o.threads}});
    const ttft = new Array(n).fill(NaN), tokens = new Array(n).fill(0), gaps = [];
    let next = 0;
    async function worker(seq) {
        for (let i = next++; i < n; i = next++) {
            const sent = performance.now();
            // llama-server's cache_prompt: keep the slot's tokens that match the prompt, but run at least its last
            // token (for the logits of the first generated one); aether serve's prefix cache does the same
            const keep = o.cachePrompt
                ? Math.min(seq.compareContextTokens(prompt).firstDifferentIndex, prompt.length - 1) : 0;
            if (keep === 0) await seq.clearHistory();
            else await seq.eraseContextTokenRanges([{start: keep, end: seq.nextTokenIndex}]);
            let last = 0, count = 0;
            for await (const _ of seq.evaluate(prompt.slice(keep), {temperature: 0, yieldEogToken: true})) {
                const now = performance.now();
                if (count === 0) ttft[i] = now - sent;
                else gaps.push(now - last);
                last = now;
                if (++count >= o.maxTokens) break;
            }
            tokens[i] = count;
        }
    }
    const sequences = Array.from({length: c}, () => context.getSequence());
    let seconds;
    try {
        const start = performance.now();
        await Promise.all(sequences.map(worker));
        seconds = (performance.now() - start) / 1000;
    } finally {
        await context.dispose();
    }
    const total = tokens.reduce((a, b) => a + b, 0);
    return {concurrency: c, requests: n, tokens: total, seconds, tokensPerSecond: total / seconds,
        ttftP50Ms: percentile(ttft, 50), ttftP99Ms: percentile(ttft, 99),
        itlP50Ms: percentile(gaps, 50), itlP99Ms: percentile(gaps, 99)};
}

function printRow(l, header) {
    if (header) {
        console.log("| concurrency | requests | tokens | decode t/s | TTFT p50 ms | TTFT p99 ms | ITL p50 ms | ITL p99 ms |");
        console.log("|---:|---:|---:|---:|---:|---:|---:|---:|");
    }
    console.log(`| ${l.concurrency} | ${l.requests} | ${l.tokens} | ${l.tokensPerSecond.toFixed(1)} | `
        + `${l.ttftP50Ms.toFixed(1)} | ${l.ttftP99Ms.toFixed(1)} | ${l.itlP50Ms.toFixed(2)} | ${l.itlP99Ms.toFixed(2)} |`);
}

let o;
try {
    o = parseArgs(process.argv.slice(2));
} catch (e) {
    console.error(`llama-cpp-load: ${e.message}`);
    console.error("usage: node llama-cpp-load.mjs MODEL.gguf [-c 1,8,32] [--requests N] [-n 64] "
        + "[--prompt TEXT | --prompt-file F] [--threads 2] [--ctx 256] [--batch 256] [--warmup 1] [--no-cache-prompt] [--json] [--print-prompt-ids]");
    process.exit(2);
}
const llama = await getLlama({gpu: false, maxThreads: o.threads, logLevel: "error"});
const model = await llama.loadModel({modelPath: o.model});
const prompt = promptIds(model, o);
if (o.printIds) {
    console.log(JSON.stringify(prompt));
    process.exit(0);
}
if (prompt.length + o.maxTokens > o.ctx) {
    console.error(`llama-cpp-load: ${prompt.length} prompt + ${o.maxTokens} generated tokens do not fit --ctx ${o.ctx}`);
    process.exit(2);
}
console.error(`llama-cpp-load: llama.cpp (node-llama-cpp, ${llama.buildType} build) on ${o.model}, `
    + `${o.threads} threads, prompt ${prompt.length} tokens, ${o.maxTokens} generated per request`);
if (o.warmup > 0) {
    await runLevel(model, o, prompt, 1, o.warmup);     // untimed, as loadtest --warmup
}
const results = [];
for (const c of o.levels) {
    results.push(await runLevel(model, o, prompt, c, o.requests ?? Math.max(4, 2 * c)));
    if (!o.json) printRow(results.at(-1), results.length === 1);
}
if (o.json) console.log(JSON.stringify(results, null, 2));
await model.dispose();
await llama.dispose();
