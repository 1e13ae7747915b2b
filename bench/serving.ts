/**
 * Serving: `dsi serve`'s server (in this process, loopback HTTP, Server-Sent Events) under 1,
 * 4, 5, 8 and 16 concurrent streams, for non-SI, SI and DSI (auto lookahead) chosen per request
 * (`dsi.algo`), on three setups:
 * - a paper pair emulated on a GPU-like device that batches: synthetic models, Vicuna-13B/68M
 *   latencies with the GPU-like batch model (a pass costs a step up to 32 tokens), 4 targets x
 *   4 sequences sharing passes;
 * - the generated GGUF pair on this machine's cores (llama.cpp, one thread per context), 2
 *   targets, before (one sequence per target: generations beyond 2 wait) and after (8
 *   sequences per target sharing forward passes).
 * Each client streams greedy completions back to back (a lone client's requests go round by
 * round across every setup and algorithm, paired in time); per request: time to first token and
 * per-token latency ((last token - first token) / (tokens - 1)); per configuration: requests
 * and tokens per second over its run (a lone client's: over its own requests' time). Verdicts
 * (each names its figure):
 * - emulated GPU-like device: DSI's per-token p50 below SI's and non-SI's at 1, 4 and 8 streams;
 * - GGUF pair, 8 sequences: no algorithm's tokens/s at 5, 8 or 16 streams below 0.95x its
 *   figure at 4 (runs on this machine move by about 4%);
 * - GGUF pair: at 8 streams, the best tokens/s with 8 sequences at least 1.7x the best with one;
 * - GGUF pair: at 1 stream, no algorithm's per-token p50 with 8 sequences above 1.03x its
 *   figure with one.
 *
 * Usage: node dist/bench/serving.js [--requests 3] [--tokens 32] [--llama-tokens 32]
 */
import { cpus } from "node:os";
import Table from "cli-table3";
import { benchArgs } from "./args.js";
import { quantile } from "./stats.js";
import { openBackend, syntheticBackend, type Backend } from "../src/models/backend.js";
import { resolveProfile, withBatchCost, type LatencyProfile } from "../src/models/latency.js";
import { ServeMetrics } from "../src/serve/metrics.js";
import { buildServer } from "../src/serve/server.js";
import { Service } from "../src/serve/service.js";

const USAGE = "usage: node dist/bench/serving.js [--requests 3] [--tokens 32] [--llama-tokens 32]";
const args = benchArgs(USAGE, { requests: { default: 3, min: 1 }, tokens: { default: 32, min: 2 }, "llama-tokens": { default: 32, min: 2 } });
const CONCURRENCY = [1, 4, 5, 8, 16];
/** A lone client's requests per setup and algorithm (`measureAlone`). */
const ALONE_REQUESTS = 8 * args.requests;
const ALGOS = ["nonsi", "si", "dsi"] as const;
const PROMPTS = ["the cat sat on", "a b c d", "once upon a time", "hello world", "to be or not", "the quick brown", "it was the best", "in the beginning"];

interface Sample {
  ttftMs: number;
  perTokenMs: number;
  tokens: number;
  /** The whole request, sent to last byte. */
  ms: number;
}

/** One streamed completion: its time to first token and per-token latency. */
async function streamOnce(url: string, prompt: string, algo: string, maxTokens: number): Promise<Sample> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "dsi", prompt, max_tokens: maxTokens, temperature: 0, stream: true, stream_options: { include_usage: true }, dsi: { algo } }),
  });
  if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  let first = 0;
  let last = 0;
  let tokens = 0;
  let buffer = "";
  const decoder = new TextDecoder();
  for await (const bytes of res.body) {
    buffer += decoder.decode(bytes as Uint8Array, { stream: true });
    let at: number;
    while ((at = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, at);
      buffer = buffer.slice(at + 2);
      if (!event.startsWith("data: ") || event === "data: [DONE]") continue;
      const chunk = JSON.parse(event.slice(6)) as { choices: { text: string }[]; usage?: { completion_tokens: number }; error?: { message: string } };
      if (chunk.error) throw new Error(chunk.error.message);
      if (chunk.usage) tokens = chunk.usage.completion_tokens;
      else if (chunk.choices[0]?.text) {
        const now = performance.now();
        if (first === 0) first = now;
        last = now;
      }
    }
  }
  return { ttftMs: first - t0, perTokenMs: tokens > 1 ? (last - first) / (tokens - 1) : 0, tokens, ms: performance.now() - t0 };
}

interface Row {
  backend: string;
  algo: string;
  streams: number;
  rps: number;
  tokensPerSecond: number;
  ttft: [number, number];
  perToken: [number, number];
}

/** A server over a backend, for one setup of the table. */
interface Setup {
  name: string;
  url: string;
  maxTokens: number;
  close: () => Promise<void>;
}

async function serve(name: string, backend: Backend, sp: number, profile: LatencyProfile, maxTokens: number): Promise<Setup> {
  const metrics = new ServeMetrics();
  const service = await Service.open({ backend, sp, profile, maxConcurrent: 64, maxQueue: 1024, metrics });
  const app = buildServer({ slot: { service }, metrics, modelId: "dsi", algo: "dsi", lookahead: "auto", defaultMaxTokens: maxTokens });
  const url = await app.listen({ host: "127.0.0.1", port: 0 });
  await streamOnce(url, PROMPTS[0], "dsi", 4); // warm-up (instances made, costs observed)
  return { name, url, maxTokens, close: () => app.close() };
}

/**
 * `streams` clients (2 or more) of one setup, each streaming `args.requests` completions back
 * to back.
 */
async function measure(setup: Setup, streams: number, algo: string): Promise<Row> {
  const samples: Sample[] = [];
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: streams }, async (_, c) => {
      for (let r = 0; r < args.requests; r++) samples.push(await streamOnce(setup.url, PROMPTS[(c + r) % PROMPTS.length], algo, setup.maxTokens));
    }),
  );
  return rowOf(setup, algo, streams, samples, (performance.now() - t0) / 1000);
}

/**
 * A lone client: `ALONE_REQUESTS` completions per setup and algorithm (the 1-stream verdicts
 * compare medians of per-token latencies a few percent apart, which a dozen samples leave at
 * the mercy of a few slow requests), taken round by round across every setup and algorithm,
 * so that the comparisons at one stream are paired in time: a machine that gets busier or
 * quieter for a few seconds moves every configuration alike. (Before, each configuration's
 * requests ran in one block, and the 1-stream verdicts flipped between runs.) Rates count
 * each configuration's own requests.
 */
async function measureAlone(setups: readonly Setup[]): Promise<Row[]> {
  const configs = setups.flatMap((setup) => ALGOS.map((algo) => ({ setup, algo, samples: [] as Sample[] })));
  for (let r = 0; r < ALONE_REQUESTS; r++) {
    // Each round starts one configuration later: none always follows the same one (a request
    // can leave work behind, a drafter's last window, that slows the next).
    for (let i = 0; i < configs.length; i++) {
      const c = configs[(i + r) % configs.length];
      c.samples.push(await streamOnce(c.setup.url, PROMPTS[r % PROMPTS.length], c.algo, c.setup.maxTokens));
    }
  }
  return configs.map((c) => rowOf(c.setup, c.algo, 1, c.samples, c.samples.reduce((t, x) => t + x.ms, 0) / 1000));
}

function rowOf(setup: Setup, algo: string, streams: number, samples: readonly Sample[], seconds: number): Row {
  return {
    backend: setup.name,
    algo,
    streams,
    rps: samples.length / seconds,
    tokensPerSecond: samples.reduce((n, x) => n + x.tokens, 0) / seconds,
    ttft: [quantile(samples.map((s) => s.ttftMs), 0.5), quantile(samples.map((s) => s.ttftMs), 0.99)],
    perToken: [quantile(samples.map((s) => s.perTokenMs), 0.5), quantile(samples.map((s) => s.perTokenMs), 0.99)],
  };
}

const started = performance.now();
const paper = resolveProfile("vicuna-13b/vicuna-68m")!;
const EMULATED = `paper pair, GPU-like batching (4 x 4 sequences)`;
const [BEFORE, AFTER] = ["GGUF pair, 2 targets x 1 sequence", "GGUF pair, 2 targets x 8 sequences"];
const { getLlama } = await import("node-llama-cpp");
const llamaCpp = await getLlama({ gpu: false, build: "never" });
console.log(`llama.cpp ${llamaCpp.llamaCppRelease.repo} release ${llamaCpp.llamaCppRelease.release} (${llamaCpp.buildType} build): ${llamaCpp.systemInfo.trim()}`);
const backends: Backend[] = [];
const setups: Setup[] = [];
const rows: Row[] = [];
try {
  const emulated = syntheticBackend({ vocab: 32, agreement: paper.acceptance ?? 0.63, seed: 1000 }, { sequences: 4 });
  backends.push(emulated);
  setups.push(await serve(EMULATED, emulated, 4, withBatchCost(paper, "gpu"), args.tokens));
  // Both GGUF setups are up at once and measured in turn at each concurrency, so a machine
  // that gets busier or quieter during the run moves both alike.
  for (const [name, sequences] of [[BEFORE, 1], [AFTER, 8]] as const) {
    const llama = await openBackend({ backend: "llama", threads: 1, gpu: false, sequences }, (dir) => console.error(`generated the default model pair in ${dir}`));
    backends.push(llama);
    console.log(`${name}: ${llama.describe()}`);
    setups.push(await serve(name, llama, 2, resolveProfile("none")!, args["llama-tokens"]));
  }
  for (const streams of CONCURRENCY) {
    if (streams === 1) rows.push(...(await measureAlone(setups)));
    else for (const setup of setups) for (const algo of ALGOS) rows.push(await measure(setup, streams, algo));
  }
} finally {
  for (const s of setups) await s.close();
  for (const b of backends) await b.close();
}

const table = new Table({
  head: ["setup", "streams", "algo", "req/s", "tokens/s", "TTFT p50 ms", "TTFT p99 ms", "per-token p50 ms", "per-token p99 ms"],
  colAligns: ["left", "right", "left", "right", "right", "right", "right", "right", "right"],
  style: { head: [], border: [] },
});
for (const r of rows) table.push([r.backend, r.streams, r.algo, r.rps.toFixed(2), r.tokensPerSecond.toFixed(1), r.ttft[0].toFixed(1), r.ttft[1].toFixed(1), r.perToken[0].toFixed(1), r.perToken[1].toFixed(1)]);
console.log(`Streaming completions through dsi serve (loopback HTTP), greedy, lookahead auto, ${args.requests} requests per stream back to back (at 1 stream ${ALONE_REQUESTS} per configuration, taken round by round across all of them); ${args.tokens} tokens (paper pair), ${args["llama-tokens"]} (GGUF pair).`);
console.log(table.toString());
const row = (backend: string, streams: number, algo: string): Row => rows.find((r) => r.backend === backend && r.streams === streams && r.algo === algo)!;
const verdict = (pass: boolean, text: string): void => console.log(`${pass ? "PASS" : "FAIL"} ${text}`);
for (const streams of [1, 4, 8]) {
  const [d, s, n] = ["dsi", "si", "nonsi"].map((a) => row(EMULATED, streams, a).perToken[0]);
  verdict(d < s && d < n, `${EMULATED}, ${streams} streams: DSI's per-token p50 ${d.toFixed(1)} ms vs SI's ${s.toFixed(1)}, non-SI's ${n.toFixed(1)} (target: below both)`);
}
for (const algo of ALGOS) {
  const at4 = row(AFTER, 4, algo).tokensPerSecond;
  const worst = Math.min(...[5, 8, 16].map((n) => row(AFTER, n, algo).tokensPerSecond));
  verdict(worst >= 0.95 * at4, `${AFTER}, ${algo}: least tokens/s at 5, 8, 16 streams ${worst.toFixed(1)} vs ${at4.toFixed(1)} at 4 (target: at least 0.95x)`);
}
const best = (backend: string): number => Math.max(...ALGOS.map((a) => row(backend, 8, a).tokensPerSecond));
verdict(best(AFTER) >= 1.7 * best(BEFORE), `GGUF pair, 8 streams: best tokens/s with 8 sequences ${best(AFTER).toFixed(1)} vs ${best(BEFORE).toFixed(1)} with one, ${(best(AFTER) / best(BEFORE)).toFixed(2)}x (target: at least 1.7x)`);
for (const algo of ALGOS) {
  const [after, before] = [row(AFTER, 1, algo).perToken[0], row(BEFORE, 1, algo).perToken[0]];
  verdict(after <= 1.03 * before, `GGUF pair, 1 stream, ${algo}: per-token p50 with 8 sequences ${after.toFixed(1)} ms vs ${before.toFixed(1)} with one (target: at most 1.03x)`);
}
console.log(`CPU: ${cpus()[0]?.model ?? "unknown"} (${cpus().length} cores). Took ${((performance.now() - started) / 1000).toFixed(1)} s.`);
