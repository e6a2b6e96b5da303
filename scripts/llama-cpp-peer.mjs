// Measures llama.cpp (through the npm package node-llama-cpp, CPU build) on a GGUF file the way `./aether bench`
// measures Aether: prompt tokens/s for a prompt of P tokens and decode tokens/s for N greedy tokens, R repetitions.
// Usage: node scripts/llama-cpp-peer.mjs MODEL.gguf [P=128] [N=64] [R=3] [THREADS=2]
// Needs `npm install node-llama-cpp@3` in a folder on NODE_PATH or next to this script's working directory.
import {getLlama} from "node-llama-cpp";

const [modelPath, p = "128", n = "64", r = "3", threads = "2"] = process.argv.slice(2);
if (!modelPath) {
    console.error("usage: node llama-cpp-peer.mjs MODEL.gguf [P] [N] [R] [THREADS]");
    process.exit(2);
}
const P = Number(p), N = Number(n), R = Number(r), T = Number(threads);
const llama = await getLlama({gpu: false, maxThreads: T});
const model = await llama.loadModel({modelPath});
// a fixed English text, tokenized by the model and repeated to P tokens (ids valid for any vocabulary)
const text = model.tokenize("Once upon a time, there was a little girl named Lily. She loved to play outside in the park. ");
const promptTokens = [];
for (let i = 0; i < P; i++) promptTokens.push(text[i % text.length]);
const pp = [], tg = [];
for (let rep = 0; rep < R + 1; rep++) {       // the first repetition warms up and is not counted
    const context = await model.createContext({contextSize: P + N + 8, threads: T, batchSize: Math.max(P, 8)});
    const seq = context.getSequence();
    let t0 = performance.now();
    await seq.evaluateWithoutGeneratingNewTokens(promptTokens);
    const prefill = (performance.now() - t0) / 1000;
    let count = 0;
    t0 = performance.now();
    for await (const token of seq.evaluate([promptTokens[P - 1]], {temperature: 0})) {
        if (++count >= N) break;
    }
    const decode = (performance.now() - t0) / 1000;
    await context.dispose();
    if (rep > 0) {
        pp.push(P / prefill);
        tg.push(count / decode);
    }
}
const stat = xs => {
    const m = xs.reduce((a, b) => a + b, 0) / xs.length;
    const sd = Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, xs.length - 1));
    return {mean: m, sd};
};
console.log(JSON.stringify({engine: "llama.cpp (node-llama-cpp)", build: llama.buildType, cpu: llama.cpuMathCores ?? null,
    model: modelPath, threads: T, prompt_tokens: P, decode_tokens: N, repetitions: R,
    prompt_tps: stat(pp), decode_tps: stat(tg)}));
await model.dispose();
