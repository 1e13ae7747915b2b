/**
 * `dsi serve` over a cluster: the workers' own counters in /metrics; when every target worker
 * is dead, 503 for requests and /health; and bad requests (too long for the workers' context,
 * bad fields, characters outside the vocabulary) among good ones under concurrency: each a
 * 4xx, no instance retired, the service up throughout.
 */
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, test } from "node:test";
import OpenAI, { APIError } from "openai";
import type { FastifyInstance } from "fastify";
import { generate } from "../../src/algorithms/generate.js";
import type { Backend } from "../../src/models/backend.js";
import { NO_LATENCY } from "../../src/models/latency.js";
import { clusterBackend, type ClusterSpec } from "../../src/models/remote/cluster.js";
import { syntheticRuntime } from "../../src/models/runtime.js";
import { SyntheticPair, SyntheticTokenizer } from "../../src/models/synthetic.js";
import { isPoolEvent, type PoolEvent } from "../../src/runtime/events.js";
import { ServeMetrics } from "../../src/serve/metrics.js";
import { buildServer } from "../../src/serve/server.js";
import { Service } from "../../src/serve/service.js";
import { pairFiles, SMALL_PAIR } from "../helpers/gguf-models.js";
import { dsi, startWorker, stopChildren } from "../helpers/processes.js";
import { tempDir } from "../helpers/temp.js";

let app: FastifyInstance | undefined;
const apps: FastifyInstance[] = [];
const backends: Backend[] = [];
after(async () => {
  await app?.close();
  for (const a of apps) await a.close();
  for (const b of backends) await b.close();
});

/** The pool events of each service's runtime. */
const poolLogs = new Map<Service, PoolEvent[]>();

/** A server over `backend` (its own service and pool, whose events are kept in `poolLogs`). */
async function serveOn(backend: Backend): Promise<{ url: string; service: Service }> {
  const metrics = new ServeMetrics();
  const service = await Service.open({ backend, sp: backend.targetCount!, profile: NO_LATENCY, maxConcurrent: 8, maxQueue: 256, metrics });
  // The server keeps no event log; its pool's events are heard as they happen.
  const log: PoolEvent[] = [];
  service.runtime.events.listen((e) => void (isPoolEvent(e) && log.push(e)));
  poolLogs.set(service, log);
  const server = buildServer({ slot: { service }, metrics, modelId: "dsi", algo: "dsi", lookahead: 3, defaultMaxTokens: 16 });
  apps.push(server);
  return { url: await server.listen({ host: "127.0.0.1", port: 0 }), service };
}

async function post(url: string, body: unknown): Promise<{ status: number; body: { choices?: { text: string }[]; error?: { message: string; type: string; code: string | null } } }> {
  const res = await fetch(`${url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as never };
}

/**
 * Sends `bad` and `good` requests interleaved, all at once, while polling /health; returns the
 * answers in the same order and every /health status seen.
 */
async function storm(url: string, bad: unknown[], good: unknown[]): Promise<{ bad: Awaited<ReturnType<typeof post>>[]; good: Awaited<ReturnType<typeof post>>[]; health: number[] }> {
  const health: number[] = [];
  let done = false;
  const poll = (async () => {
    while (!done) {
      health.push((await fetch(`${url}/health`)).status);
      await new Promise((r) => setTimeout(r, 25));
    }
  })();
  const bads: Promise<Awaited<ReturnType<typeof post>>>[] = [];
  const goods: Promise<Awaited<ReturnType<typeof post>>>[] = [];
  for (let i = 0; i < Math.max(bad.length, good.length); i++) {
    if (i < bad.length) bads.push(post(url, bad[i]));
    if (i < good.length) goods.push(post(url, good[i]));
  }
  const answers = { bad: await Promise.all(bads), good: await Promise.all(goods) };
  done = true;
  await poll;
  return { ...answers, health };
}

test("serve on worker processes: their counters in /metrics; all dead: 503 for requests and /health", { timeout: 60_000 }, async () => {
  const workers = await Promise.all([0, 1].map(() => startWorker(["--listen", "127.0.0.1:0", "--vocab", "32", "--model-seed", "3"])));
  const backend = await clusterBackend({ drafter: { backend: "synthetic", vocab: 32, modelSeed: 3 }, targets: workers.map((w) => ({ address: w.address })) });
  const metrics = new ServeMetrics();
  const service = await Service.open({ backend, sp: 2, profile: NO_LATENCY, maxConcurrent: 8, maxQueue: 8, metrics });
  app = buildServer({ slot: { service }, metrics, modelId: "dsi", algo: "dsi", lookahead: 3, defaultMaxTokens: 16 });
  const url = await app.listen({ host: "127.0.0.1", port: 0 });
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "none", maxRetries: 0 });
  try {
    const r = await client.completions.create({ model: "dsi", prompt: "the", max_tokens: 12, temperature: 0 });
    assert.equal(r.usage?.completion_tokens, 12);
    const text = await (await fetch(`${url}/metrics`)).text();
    let calls = 0;
    for (const w of workers) {
      assert.match(text, new RegExp(`dsi_worker_up\\{worker="${w.address}"\\} 1`));
      calls += Number(new RegExp(`dsi_worker_calls_total\\{worker="${w.address}"\\} (\\d+)`).exec(text)?.[1] ?? NaN);
    }
    assert.ok(calls >= 1, "the workers counted the server's calls");

    assert.equal((await fetch(`${url}/health`)).status, 200);
    for (const w of workers) w.child.kill("SIGKILL");
    await Promise.all(workers.map((w) => new Promise((resolve) => (w.child.exitCode !== null || w.child.signalCode !== null ? resolve(null) : w.child.once("exit", resolve)))));
    // Before any request notices: /health asks every worker.
    const silent = await fetch(`${url}/health`);
    assert.equal(silent.status, 503);
    assert.match(((await silent.json()) as { reason: string }).reason, /target worker\(s\) not answering/);
    await assert.rejects(client.completions.create({ model: "dsi", prompt: "the", max_tokens: 12, temperature: 0 }), (err: unknown) => {
      assert.ok(err instanceof APIError);
      assert.equal(err.status, 503);
      assert.match(err.message, /no target instance left/);
      return true;
    });
    const health = await fetch(`${url}/health`);
    assert.equal(health.status, 503);
    assert.match(((await health.json()) as { reason: string }).reason, /no target instance is alive/);
    await assert.rejects(client.completions.create({ model: "dsi", prompt: "the", max_tokens: 4 }), (err: unknown) => err instanceof APIError && err.status === 503);
    const after = await (await fetch(`${url}/metrics`)).text();
    for (const w of workers) assert.match(after, new RegExp(`dsi_worker_up\\{worker="${w.address}"\\} 0`));
  } finally {
    await backend.close();
  }
});

test("50 bad requests among good ones, at once, on a cluster server: each refused, every good one non-SI's output, /health 200 throughout, no instance retired", { timeout: 60_000 }, async () => {
  const spec = ["--vocab", "32", "--model-seed", "3", "--history", "all", "--latency", "5/1"];
  const workers = await Promise.all([0, 1].map(() => startWorker(["--listen", "127.0.0.1:0", ...spec])));
  const cluster: ClusterSpec = { drafter: { backend: "synthetic", vocab: 32, modelSeed: 3, history: "all" }, targets: workers.map((w) => ({ address: w.address })) };
  const backend = await clusterBackend(cluster);
  backends.push(backend);
  const { url, service } = await serveOn(backend);
  const pair = new SyntheticPair({ vocab: 32, seed: 3, context: "all" });
  const tokenizer = new SyntheticTokenizer(32);
  const kinds: unknown[] = [
    { model: "dsi", prompt: "the", max_tokens: 8, foo: 1 }, // a field the server does not implement
    { model: "dsi", prompt: "the", max_tokens: "ten" },
    { model: "dsi", prompt: "THE END!", max_tokens: 8 }, // characters outside the vocabulary: tokens out of range
    { model: "dsi", prompt: "", max_tokens: 8 },
    { model: "dsi", prompt: "the", max_tokens: 8, n: 100 },
    { model: "dsi", prompt: "the", max_tokens: 8, dsi: { sp: 5 } }, // more instances than the cluster has
    { model: "dsi", prompt: "the", max_tokens: 8, dsi: { lookahead: 0 } },
    { model: "dsi", prompt: "the", max_tokens: 8, temperature: 7 },
    { model: "dsi", prompt: 7 },
    { model: "dsi", prompt: "the", max_tokens: -3 },
    "{ not json",
    { model: "gpt-4", prompt: "the" },
  ];
  const bad = Array.from({ length: 50 }, (_, i) => (typeof kinds[i % kinds.length] === "string" ? kinds[i % kinds.length] : { ...(kinds[i % kinds.length] as object) }));
  const prompts = ["the", "abc", "hello world", "a quiet day"];
  const good = Array.from({ length: 20 }, (_, i) => ({ model: "dsi", prompt: prompts[i % prompts.length], max_tokens: 16, temperature: 0, ...(i % 3 === 0 ? { dsi: { algo: "si" } } : {}) }));
  const r = await storm(url, bad, good);
  r.bad.forEach((a, i) => {
    assert.ok(a.status === 400 || a.status === 404, `bad request ${i}: ${a.status} ${JSON.stringify(a.body)}`);
    assert.ok(a.body.error?.message, `bad request ${i} says why`);
  });
  for (const [i, a] of r.good.entries()) {
    assert.equal(a.status, 200, JSON.stringify(a.body));
    const prompt = prompts[i % prompts.length];
    const expected = (await generate("nonsi", syntheticRuntime({ pair }), { prompt: tokenizer.encode(prompt), maxTokens: 16 }).result).tokens;
    assert.deepEqual(tokenizer.encode(a.body.choices![0].text), expected, prompt);
  }
  assert.ok(r.health.length > 0 && r.health.every((h) => h === 200), `health: ${r.health.join(",")}`);
  assert.ok(!poolLogs.get(service)!.some((e) => e.type === "retire"), "no instance retired");
  assert.equal(service.runtime.pool.alive, 2);
  await stopChildren(workers.map((w) => w.child));
});

test("llama workers: too long for their context is a 400 (context_length_exceeded), also when it reaches them; the workers stay", { timeout: 120_000 }, async () => {
  const files = await pairFiles("small", SMALL_PAIR);
  const workers = await Promise.all([0, 1].map(() => startWorker(["--backend", "llama", "--model", files.target, "--listen", "127.0.0.1:0"])));
  const backend = await clusterBackend({ drafter: { backend: "llama", model: files.drafter }, targets: workers.map((w) => ({ address: w.address })) });
  backends.push(backend);
  assert.equal(backend.contextSize, SMALL_PAIR.target.context, "the workers' context, from Info");
  const { url, service } = await serveOn(backend);
  const reference = await post(url, { model: "dsi", prompt: "the", max_tokens: 24, temperature: 0, dsi: { algo: "nonsi" } });
  assert.equal(reference.status, 200, JSON.stringify(reference.body));
  // A prompt of about 250 tokens.
  let long = "the";
  while (backend.tokenizer.encode(`${long} the`).length < SMALL_PAIR.target.context - 6) long += " the";
  const tooLong = { model: "dsi", prompt: long, max_tokens: 40, temperature: 0 };
  const good = { model: "dsi", prompt: "the", max_tokens: 24, temperature: 0 };
  const r = await storm(url, Array.from({ length: 10 }, () => ({ ...tooLong })), Array.from({ length: 10 }, () => ({ ...good })));
  for (const a of r.bad) {
    assert.equal(a.status, 400, JSON.stringify(a.body));
    assert.equal(a.body.error!.code, "context_length_exceeded");
    assert.match(a.body.error!.message, /exceeds the model's context of 256 tokens/);
  }
  for (const a of r.good) assert.equal(a.body.choices?.[0].text, reference.body.choices![0].text);
  assert.ok(r.health.every((h) => h === 200), `health: ${r.health.join(",")}`);

  // A server that does not know the context (its check skipped): the request reaches the
  // instances, which refuse it; still a 400, and no instance is retired.
  const blind = await serveOn({ ...backend, contextSize: undefined });
  // DSI: the in-process drafter refuses first; non-SI: the target workers' client does.
  for (const [algo, by] of [["dsi", /^the sequence/], ["nonsi", /\(worker 127\.0\.0\.1:\d+\)$/]] as const) {
    const refused = await post(blind.url, { ...tooLong, dsi: { algo } });
    assert.equal(refused.status, 400, JSON.stringify(refused.body));
    assert.equal(refused.body.error!.type, "invalid_request_error");
    assert.match(refused.body.error!.message, /the sequence \(2\d\d tokens\) (does not fit|plus the token it predicts exceeds) the model context of 256 tokens/);
    assert.match(refused.body.error!.message, by);
    // The instances hold what they should: the next requests are non-SI's.
    for (const next of ["nonsi", "dsi"]) assert.equal((await post(blind.url, { ...good, dsi: { algo: next } })).body.choices?.[0].text, reference.body.choices![0].text, `${next} after a refused ${algo}`);
  }
  assert.equal((await fetch(`${blind.url}/health`)).status, 200);
  assert.equal((await post(blind.url, good)).body.choices?.[0].text, reference.body.choices![0].text);
  for (const s of [service, blind.service]) {
    assert.ok(!poolLogs.get(s)!.some((e) => e.type === "retire"), "no instance retired");
    assert.equal(s.runtime.pool.alive, 2);
  }

  // generate --cluster checks against the workers' context as against a local model's.
  const file = join(await tempDir("llama-cluster"), "cluster.json");
  await writeFile(file, JSON.stringify({ drafter: { backend: "llama", model: files.drafter }, targets: workers.map((w) => ({ address: w.address })) }));
  const cli = await dsi(["generate", "--cluster", file, "--prompt", long, "--max-tokens", "40"]);
  assert.equal(cli.code, 2, cli.stderr);
  assert.match(cli.stderr.trim(), /^error: --prompt\/--max-tokens: the prompt \(\d+ tokens\) plus --max-tokens \(40\) exceeds the model's context of 256 tokens$/);
  await stopChildren(workers.map((w) => w.child));
});
