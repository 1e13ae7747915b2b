/**
 * `dsi serve` on real kernels with more generations than target instances: 8 concurrent
 * greedy requests on 2 llama instances, so instances switch between sequences and re-read whole
 * contexts; every response must be non-SI's text, token for token, as one request alone gives.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { FastifyInstance } from "fastify";
import { generate } from "../../src/algorithms/generate.js";
import { GREEDY } from "../../src/core/sampling.js";
import { llamaBackend, type Backend } from "../../src/models/backend.js";
import { PROFILES } from "../../src/models/latency.js";
import { makeClock } from "../../src/runtime/clock.js";
import { ServeMetrics } from "../../src/serve/metrics.js";
import { buildServer } from "../../src/serve/server.js";
import { Service } from "../../src/serve/service.js";
import { LONG_PAIR, pairFiles } from "../helpers/gguf-models.js";

const PROMPTS = ["the quick brown fox", "once upon a time", "speculative decoding", "to be or not to be", "hello world", "call me ishmael", "in the beginning", "zebra"];
const TOKENS = 120;

let backend: Backend;
let app: FastifyInstance;
let url: string;
const reference = new Map<string, string>();

before(async () => {
  const files = await pairFiles("long", LONG_PAIR);
  // Non-SI alone, one generation at a time, on a backend of its own.
  const alone = await llamaBackend({ ...files, threads: 1, gpu: false });
  try {
    for (const p of PROMPTS) {
      const rt = await alone.runtime(makeClock("real"), 1, PROFILES.get("none")!);
      const r = await generate("nonsi", rt, { prompt: alone.tokenizer.encode(p), maxTokens: TOKENS, sampling: GREEDY, verify: "greedy", seed: 0 }).result;
      reference.set(p, alone.tokenizer.decode(r.tokens));
    }
  } finally {
    await alone.close();
  }
  backend = await llamaBackend({ ...files, threads: 1, gpu: false });
  const metrics = new ServeMetrics();
  const service = await Service.open({ backend, sp: 2, profile: PROFILES.get("none")!, maxConcurrent: 64, maxQueue: 256, metrics });
  app = buildServer({ slot: { service }, metrics, modelId: "dsi", algo: "dsi", lookahead: "auto", defaultMaxTokens: 16 });
  url = await app.listen({ host: "127.0.0.1", port: 0 });
});

after(async () => {
  await app?.close();
  await backend?.close();
});

async function complete(prompt: string, dsi: Record<string, unknown>, at = url): Promise<string> {
  const res = await fetch(`${at}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "dsi", prompt, max_tokens: TOKENS, temperature: 0, dsi }),
  });
  const body = (await res.json()) as { choices?: { text: string }[]; error?: unknown };
  assert.equal(res.status, 200, JSON.stringify(body));
  return body.choices![0].text;
}

test("8 concurrent generations on 2 llama instances: every text is non-SI's", async () => {
  const kinds = [{ algo: "nonsi" }, { algo: "dsi", lookahead: 2 }, { algo: "si", lookahead: 3 }, { algo: "dsi" }];
  for (let round = 0; round < 2; round++) {
    const texts = await Promise.all(PROMPTS.map((p, i) => complete(p, kinds[(i + round) % kinds.length])));
    texts.forEach((t, i) => assert.equal(t, reference.get(PROMPTS[i]), `round ${round}, ${JSON.stringify(PROMPTS[i])} with ${JSON.stringify(kinds[(i + round) % kinds.length])}`));
  }
});

test("2 llama instances of 4 sequences each: 8 concurrent generations all run at once, each on its own sequence, and every text is non-SI's", async () => {
  const files = await pairFiles("long", LONG_PAIR);
  const multi = await llamaBackend({ ...files, threads: 1, gpu: false, sequences: 4 });
  const metrics = new ServeMetrics();
  const service = await Service.open({ backend: multi, sp: 2, profile: PROFILES.get("none")!, maxConcurrent: 64, maxQueue: 256, metrics });
  const server = buildServer({ slot: { service }, metrics, modelId: "dsi", algo: "dsi", lookahead: "auto", defaultMaxTokens: 16 });
  const at = await server.listen({ host: "127.0.0.1", port: 0 });
  try {
    const kinds = [{ algo: "nonsi" }, { algo: "dsi", lookahead: 2 }, { algo: "si", lookahead: 3 }, { algo: "dsi" }];
    const texts = await Promise.all(PROMPTS.map((p, i) => complete(p, kinds[i % kinds.length], at)));
    texts.forEach((t, i) => assert.equal(t, reference.get(PROMPTS[i]), `${JSON.stringify(PROMPTS[i])} with ${JSON.stringify(kinds[i % kinds.length])}`));
    assert.equal(service.runtime.pool.queuedMembers, 0);
  } finally {
    await server.close();
    await multi.close();
  }
});

test("/metrics reports the eval chunk of target and drafter", async () => {
  const text = await (await fetch(`${url}/metrics`)).text();
  for (const model of ["target", "drafter"] as const) {
    const m = new RegExp(`^dsi_eval_chunk_tokens\\{model="${model}"\\} (\\d+)$`, "m").exec(text);
    assert.ok(m, text.slice(0, 400));
    assert.equal(Number(m[1]), backend.evalChunk?.[model]?.chunk);
  }
});
