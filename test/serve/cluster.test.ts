/**
 * `dsi serve` over a cluster: the workers' own counters in /metrics, and when every target
 * worker is dead, 503 for requests and /health.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import OpenAI, { APIError } from "openai";
import type { FastifyInstance } from "fastify";
import { NO_LATENCY } from "../../src/models/latency.js";
import { clusterBackend } from "../../src/models/remote/cluster.js";
import { ServeMetrics } from "../../src/serve/metrics.js";
import { buildServer } from "../../src/serve/server.js";
import { Service } from "../../src/serve/service.js";
import { startWorker } from "../helpers/processes.js";

let app: FastifyInstance | undefined;
after(async () => {
  await app?.close();
});

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
