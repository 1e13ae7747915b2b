/**
 * Serving: `dsi serve`'s server (in this process, loopback HTTP, Server-Sent Events) under 1, 8
 * and 32 concurrent streams, for non-SI, SI and DSI chosen per request (`dsi.algo`), on two
 * backends: a paper pair emulated by latency profiles (synthetic models, Vicuna-13B/68M
 * latencies, 7 targets) and the generated GGUF pair on this machine's cores (llama.cpp).
 * Each client streams greedy completions back to back; per request: time to first token and
 * per-token latency ((last token - first token) / (tokens - 1)); per configuration: requests
 * per second over the whole run. Verdict: at 1 stream, DSI's per-token latency p50 is at most
 * SI's (the figure named).
 *
 * Usage: node dist/bench/serving.js [--requests 2] [--tokens 32] [--llama-tokens 16]
 */
import { cpus } from "node:os";
import Table from "cli-table3";
import { benchArgs } from "./args.js";
import { quantile } from "./stats.js";
import { openBackend, syntheticBackend, type Backend } from "../src/models/backend.js";
import { resolveProfile, type LatencyProfile } from "../src/models/latency.js";
import { ServeMetrics } from "../src/serve/metrics.js";
import { buildServer } from "../src/serve/server.js";
import { Service } from "../src/serve/service.js";

const USAGE = "usage: node dist/bench/serving.js [--requests 2] [--tokens 32] [--llama-tokens 16]";
const args = benchArgs(USAGE, { requests: { default: 2, min: 1 }, tokens: { default: 32, min: 2 }, "llama-tokens": { default: 16, min: 2 } });
const CONCURRENCY = [1, 8, 32];
const ALGOS = ["nonsi", "si", "dsi"] as const;
const PROMPTS = ["the cat sat on", "a b c d", "once upon a time", "hello world", "to be or not", "the quick brown", "it was the best", "in the beginning"];

interface Sample {
  ttftMs: number;
  perTokenMs: number;
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
  return { ttftMs: first - t0, perTokenMs: tokens > 1 ? (last - first) / (tokens - 1) : 0 };
}

interface Row {
  backend: string;
  algo: string;
  streams: number;
  rps: number;
  ttft: [number, number];
  perToken: [number, number];
}

async function measure(name: string, backend: Backend, sp: number, profile: LatencyProfile, maxTokens: number): Promise<Row[]> {
  const metrics = new ServeMetrics();
  const service = await Service.open({ backend, sp, profile, maxConcurrent: 64, maxQueue: 1024, metrics });
  const app = buildServer({ slot: { service }, metrics, modelId: "dsi", algo: "dsi", lookahead: 5, defaultMaxTokens: maxTokens });
  const url = await app.listen({ host: "127.0.0.1", port: 0 });
  const rows: Row[] = [];
  try {
    await streamOnce(url, PROMPTS[0], "dsi", 4); // warm-up (instances made, costs observed)
    for (const streams of CONCURRENCY) {
      for (const algo of ALGOS) {
        const samples: Sample[] = [];
        const t0 = performance.now();
        await Promise.all(
          Array.from({ length: streams }, async (_, c) => {
            for (let r = 0; r < args.requests; r++) samples.push(await streamOnce(url, PROMPTS[(c + r) % PROMPTS.length], algo, maxTokens));
          }),
        );
        const seconds = (performance.now() - t0) / 1000;
        rows.push({
          backend: name,
          algo,
          streams,
          rps: samples.length / seconds,
          ttft: [quantile(samples.map((s) => s.ttftMs), 0.5), quantile(samples.map((s) => s.ttftMs), 0.99)],
          perToken: [quantile(samples.map((s) => s.perTokenMs), 0.5), quantile(samples.map((s) => s.perTokenMs), 0.99)],
        });
      }
    }
  } finally {
    await app.close();
  }
  return rows;
}

const started = performance.now();
const profile = resolveProfile("vicuna-13b/vicuna-68m")!;
const rows = [
  ...(await measure(`paper pair ${profile.name} (synthetic, 7 targets)`, syntheticBackend({ vocab: 32, agreement: profile.acceptance ?? 0.63, seed: 1000 }), 7, profile, args.tokens)),
];
const llama = await openBackend({ backend: "llama", threads: 1, gpu: false }, (dir) => console.error(`generated the default model pair in ${dir}`));
try {
  rows.push(...(await measure("generated GGUF pair (llama.cpp, 2 targets)", llama, 2, resolveProfile("none")!, args["llama-tokens"])));
} finally {
  await llama.close();
}

const table = new Table({
  head: ["backend", "streams", "algo", "req/s", "TTFT p50 ms", "TTFT p99 ms", "per-token p50 ms", "per-token p99 ms"],
  colAligns: ["left", "right", "left", "right", "right", "right", "right", "right"],
  style: { head: [], border: [] },
});
for (const r of rows) table.push([r.backend, r.streams, r.algo, r.rps.toFixed(2), r.ttft[0].toFixed(1), r.ttft[1].toFixed(1), r.perToken[0].toFixed(1), r.perToken[1].toFixed(1)]);
console.log(`Streaming completions through dsi serve (loopback HTTP), greedy, ${args.requests} requests per stream back to back; ${args.tokens} tokens (paper pair), ${args["llama-tokens"]} (GGUF pair).`);
console.log(table.toString());
for (const backend of [...new Set(rows.map((r) => r.backend))]) {
  const at1 = (algo: string): Row => rows.find((r) => r.backend === backend && r.streams === 1 && r.algo === algo)!;
  const [dsi, si] = [at1("dsi"), at1("si")];
  console.log(`${dsi.perToken[0] <= si.perToken[0] ? "PASS" : "FAIL"} ${backend}: at 1 stream DSI's per-token latency p50 ${dsi.perToken[0].toFixed(1)} ms vs SI's ${si.perToken[0].toFixed(1)} ms (target: at most SI's)`);
}
console.log(`CPU: ${cpus()[0]?.model ?? "unknown"} (${cpus().length} cores). Took ${((performance.now() - started) / 1000).toFixed(1)} s.`);
