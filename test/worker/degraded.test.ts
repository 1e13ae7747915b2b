/**
 * A cluster that starts and runs degraded: `generate --cluster` and `serve --cluster` go on
 * with the target workers that answer, say so, and add the others when they answer; only when
 * none answers is it an error (generate: exit 2) or a 503 (serve), naming each address and
 * why. A worker paused (SIGSTOP) past the call deadline is retired without any request waiting
 * on it longer than that, and rejoins when it runs again. Whole-context synthetic models
 * (history all), so any evaluation on a wrong prefix would change an output.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, test } from "node:test";
import type { FastifyInstance } from "fastify";
import { generate } from "../../src/algorithms/generate.js";
import { NO_LATENCY } from "../../src/models/latency.js";
import { clusterBackend, type ClusterSpec } from "../../src/models/remote/cluster.js";
import { syntheticRuntime } from "../../src/models/runtime.js";
import { SyntheticPair, SyntheticTokenizer } from "../../src/models/synthetic.js";
import { isPoolEvent, type PoolEvent } from "../../src/runtime/events.js";
import { ServeMetrics } from "../../src/serve/metrics.js";
import { buildServer } from "../../src/serve/server.js";
import { Service } from "../../src/serve/service.js";
import { CLI, eventually, freeAddress, startWorker, stopChildren } from "../helpers/processes.js";
import { tempDir } from "../helpers/temp.js";

const SPEC = ["--vocab", "32", "--model-seed", "3", "--agreement", "0.7", "--history", "all"];
const pair = new SyntheticPair({ vocab: 32, seed: 3, agreement: 0.7, context: "all" });
const tokenizer = new SyntheticTokenizer(32);
const DRAFTER = { backend: "synthetic" as const, vocab: 32, modelSeed: 3, agreement: 0.7, history: "all" as const };

const apps: FastifyInstance[] = [];
const closers: (() => Promise<void>)[] = [];
const spawned: ChildProcess[] = [];
after(async () => {
  for (const a of apps) await a.close();
  for (const c of closers) await c();
  await stopChildren(spawned);
});

const reference = async (prompt: string, maxTokens: number): Promise<number[]> => (await generate("nonsi", syntheticRuntime({ pair }), { prompt: tokenizer.encode(prompt), maxTokens }).result).tokens;

async function clusterFile(spec: ClusterSpec): Promise<string> {
  const file = join(await tempDir("degraded"), "cluster.json");
  await writeFile(file, JSON.stringify(spec));
  return file;
}

/** A server over a cluster, in this process; `log` collects the cluster's lines. */
async function serveCluster(spec: ClusterSpec): Promise<{ url: string; service: Service; log: string[]; poolLog: PoolEvent[] }> {
  const log: string[] = [];
  const backend = await clusterBackend(spec, "cluster file", { log: (line) => log.push(line), waitForTargets: true });
  closers.push(() => backend.close());
  const metrics = new ServeMetrics();
  const service = await Service.open({ backend, sp: spec.targets.length, profile: NO_LATENCY, maxConcurrent: 16, maxQueue: 16, metrics });
  // The server keeps no event log; its pool's events are heard as they happen.
  const poolLog: PoolEvent[] = [];
  service.runtime.events.listen((e) => void (isPoolEvent(e) && poolLog.push(e)));
  const app = buildServer({ slot: { service }, metrics, modelId: "dsi", algo: "dsi", lookahead: 3, defaultMaxTokens: 16 });
  apps.push(app);
  return { url: await app.listen({ host: "127.0.0.1", port: 0 }), service, log, poolLog };
}

async function complete(url: string, prompt: string, maxTokens: number, dsi: Record<string, unknown> = {}): Promise<{ status: number; text: string; body: Record<string, unknown> }> {
  const res = await fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "dsi", prompt, max_tokens: maxTokens, temperature: 0, ...(Object.keys(dsi).length > 0 ? { dsi } : {}) }),
  });
  const body = (await res.json()) as Record<string, unknown>;
  const text = res.status === 200 ? (body.choices as { text: string }[])[0].text : "";
  return { status: res.status, text, body };
}

const health = async (url: string): Promise<{ status: number; body: { status: string; reason?: string; targets?: { live: number; configured: number } } }> => {
  const res = await fetch(`${url}/health`);
  return { status: res.status, body: (await res.json()) as { status: string; reason?: string; targets?: { live: number; configured: number } } };
};

test("generate --cluster with a target worker down at start: says so, gives non-SI's tokens, adds the worker when it answers", { timeout: 60_000 }, async () => {
  // Long enough (about 5 s) for the missing worker to start and be found while it runs.
  const up = await Promise.all([0, 1].map(() => startWorker(["--listen", "127.0.0.1:0", ...SPEC, "--latency", "60/1"])));
  const down = await freeAddress();
  const file = await clusterFile({ drafter: DRAFTER, targets: [...up.map((w) => ({ address: w.address })), { address: down }], timeouts: { connect: 1, call: 10 } });
  const child = spawn(process.execPath, [CLI, "generate", "--cluster", file, "--prompt", "the", "--max-tokens", "200", "--lookahead", "3", "--json"], { stdio: ["ignore", "pipe", "pipe"] });
  spawned.push(child);
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  assert.ok(await eventually(() => /did not answer/.test(stderr) || child.exitCode !== null, 15_000), stderr);
  // The missing worker comes up while the generation runs.
  const late = await startWorker(["--listen", down, ...SPEC, "--latency", "60/1"]);
  const code = await new Promise<number | null>((r) => (child.exitCode !== null ? r(child.exitCode) : child.once("exit", r)));
  assert.equal(code, 0, stderr);
  assert.match(stderr, new RegExp(`^dsi: cluster file .*: 1 of 3 target workers did not answer \\(worker ${down.replace(/\./g, "\\.")}: cannot connect \\(ECONNREFUSED\\).*\\); going on with 2`, "m"));
  assert.match(stderr, new RegExp(`worker ${down.replace(/\./g, "\\.")} answered: added|target target@${down.replace(/\./g, "\\.")} is back in the pool`), `the late worker joined: ${stderr}`);
  const out = JSON.parse(stdout);
  assert.deepEqual(out.completions[0].tokens, await reference("the", 200));
  assert.equal(out.config.sp, 3);
  await stopChildren([late.child, ...up.map((w) => w.child)]);
});

test("generate --cluster with no target worker answering: exit 2, one line naming each address and why", { timeout: 30_000 }, async () => {
  const [a, b] = [await freeAddress(), await freeAddress()];
  const file = await clusterFile({ drafter: DRAFTER, targets: [{ address: a }, { address: b }], timeouts: { connect: 1 } });
  const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [CLI, "generate", "--cluster", file, "--max-tokens", "4"], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("exit", (code) => resolve({ code, stderr }));
  });
  assert.equal(r.code, 2, r.stderr);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, r.stderr);
  for (const address of [a, b]) assert.ok(lines[0].includes(`worker ${address}: cannot connect (ECONNREFUSED)`), lines[0]);
  assert.match(lines[0], /^error: cluster file .*cluster\.json: no target worker answers: /);
});

test("serve with a target worker down at start: degraded (/health, /metrics), non-SI's outputs; the worker starts and joins", { timeout: 60_000 }, async () => {
  const up = await Promise.all([0, 1].map(() => startWorker(["--listen", "127.0.0.1:0", ...SPEC, "--latency", "10/1"])));
  const down = await freeAddress();
  const { url, service, log } = await serveCluster({ drafter: DRAFTER, targets: [...up.map((w) => ({ address: w.address })), { address: down }], timeouts: { connect: 1, call: 10 } });
  assert.match(log[0], new RegExp(`1 of 3 target workers did not answer \\(worker ${down.replace(/\./g, "\\.")}: cannot connect`));

  const h = await health(url);
  assert.equal(h.status, 200);
  assert.equal(h.body.status, "degraded");
  assert.deepEqual(h.body.targets, { live: 2, configured: 3 });
  assert.match(h.body.reason!, new RegExp(`1 of 3 target instances not serving: target worker\\(s\\) not answering: ${down.replace(/\./g, "\\.")} \\(cannot connect \\(ECONNREFUSED\\)`));
  const metrics = await (await fetch(`${url}/metrics`)).text();
  assert.match(metrics, /^dsi_target_instances_configured 3$/m);
  assert.match(metrics, /^dsi_target_instances_live 2$/m);

  const prompts = ["the", "abc", "hello world", "zz top", "a b c", "quiet"];
  const expected = await Promise.all(prompts.map((p) => reference(p, 16)));
  const round = async (): Promise<void> => {
    const got = await Promise.all(prompts.map((p) => complete(url, p, 16)));
    got.forEach((g, i) => {
      assert.equal(g.status, 200, JSON.stringify(g.body));
      assert.deepEqual(tokenizer.encode(g.text), expected[i], prompts[i]);
    });
  };
  await round();

  const late = await startWorker(["--listen", down, ...SPEC, "--latency", "10/1"]);
  assert.ok(await eventually(async () => (await health(url)).body.status === "ok", 15_000), JSON.stringify((await health(url)).body));
  assert.deepEqual((await health(url)).body.targets, { live: 3, configured: 3 });
  assert.ok(log.some((l) => l.includes(`worker ${down} answered: added`) || l.includes(`target@${down} is back in the pool`)), log.join("\n"));
  await round();
  await round();
  const calls = Number(new RegExp(`dsi_worker_calls_total\\{worker="${down.replace(/\./g, "\\.")}"\\} (\\d+)`).exec(await (await fetch(`${url}/metrics`)).text())?.[1] ?? 0);
  assert.ok(calls > 0, "the added worker got work");
  assert.match(await (await fetch(`${url}/metrics`)).text(), /^dsi_target_instances_live 3$/m);
  assert.equal(service.runtime.pool.alive, 3);
  await stopChildren([late.child, ...up.map((w) => w.child)]);
});

test("dsi serve --cluster with no target worker answering: 503 naming each address and why, then serves once one starts", { timeout: 60_000 }, async () => {
  const [a, b] = [await freeAddress(), await freeAddress()];
  const file = await clusterFile({ drafter: DRAFTER, targets: [{ address: a }, { address: b }], timeouts: { connect: 1, call: 10 } });
  const child = spawn(process.execPath, [CLI, "serve", "--cluster", file, "--port", "0", "--max-tokens", "12"], { stdio: ["ignore", "pipe", "pipe"] });
  spawned.push(child);
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  assert.ok(await eventually(() => /ready on/.test(stdout) || child.exitCode !== null, 20_000), stdout + stderr);
  const url = /ready on (\S+)/.exec(stdout)![1];
  assert.match(stderr, /2 of 2 target workers did not answer .*; waiting for them/);

  const h = await health(url);
  assert.equal(h.status, 503);
  assert.equal(h.body.status, "unavailable");
  for (const address of [a, b]) assert.ok(h.body.reason!.includes(`${address} (cannot connect (ECONNREFUSED)`), h.body.reason);
  const refused = await complete(url, "the", 12);
  assert.equal(refused.status, 503);
  const message = (refused.body.error as { message: string }).message;
  for (const address of [a, b]) assert.ok(message.includes(address), message);

  const late = await startWorker(["--listen", a, ...SPEC]);
  assert.ok(await eventually(async () => (await health(url)).status === 200, 15_000), JSON.stringify((await health(url)).body));
  const h2 = await health(url);
  assert.equal(h2.body.status, "degraded");
  assert.deepEqual(h2.body.targets, { live: 1, configured: 2 });
  const served = await complete(url, "the", 12);
  assert.equal(served.status, 200, JSON.stringify(served.body));
  assert.deepEqual(tokenizer.encode(served.text), await reference("the", 12));
  await stopChildren([child, late.child]);
});

test("a worker paused (SIGSTOP) past the call deadline is retired at the deadline, no request waits longer, and it rejoins after SIGCONT", { timeout: 90_000 }, async () => {
  const workers = await Promise.all([0, 1].map(() => startWorker(["--listen", "127.0.0.1:0", ...SPEC, "--latency", "20/1"])));
  const DEADLINE_MS = 1000;
  const { url, poolLog } = await serveCluster({ drafter: DRAFTER, targets: workers.map((w) => ({ address: w.address })), timeouts: { connect: 1, call: DEADLINE_MS / 1000 } });
  const prompts = ["the", "abc", "hello"];
  const expected = new Map(await Promise.all(prompts.map(async (p) => [p, await reference(p, 16)] as const)));
  const victim = workers[1].child;
  const durations: { start: number; ms: number }[] = [];
  let failures = 0;
  let stop = false;
  const client = async (prompt: string): Promise<void> => {
    while (!stop) {
      const t0 = performance.now();
      const r = await complete(url, prompt, 16, { sp: 2 });
      durations.push({ start: t0, ms: performance.now() - t0 });
      if (r.status !== 200 || JSON.stringify(tokenizer.encode(r.text)) !== JSON.stringify(expected.get(prompt))) failures++;
    }
  };
  const clients = prompts.map((p) => client(p));
  let stoppedAt = 0;
  try {
    await new Promise((r) => setTimeout(r, 1000));
    stoppedAt = performance.now();
    victim.kill("SIGSTOP");
    // Paused for five deadlines: a request that waited for it would show.
    await new Promise((r) => setTimeout(r, 5 * DEADLINE_MS));
    const paused = await health(url);
    assert.equal(paused.body.status, "degraded", JSON.stringify(paused.body));
  } finally {
    victim.kill("SIGCONT");
  }
  const retire = poolLog.find((e) => e.type === "retire");
  assert.ok(retire, "the paused worker was retired");
  assert.equal(retire.instance, 1);
  assert.match(retire.why!, /no answer within 1000 ms \(the call's deadline\)/);
  assert.ok(await eventually(() => poolLog.some((e) => e.type === "rejoin" && e.instance === 1), 15_000), "the worker rejoined after SIGCONT");
  assert.ok(await eventually(async () => (await health(url)).body.status === "ok", 10_000));
  await new Promise((r) => setTimeout(r, 1000));
  stop = true;
  await Promise.all(clients);
  assert.equal(failures, 0, "every response was non-SI's");
  const longest = Math.max(...durations.map((d) => d.ms));
  const before = Math.max(...durations.filter((d) => d.start + d.ms < stoppedAt).map((d) => d.ms));
  // The one that met the pause waited the deadline, then ran on the other worker beside the others.
  assert.ok(longest < DEADLINE_MS + 2000, `longest request ${longest.toFixed(0)} ms (before the pause: ${before.toFixed(0)} ms; pause ${5 * DEADLINE_MS} ms)`);
  assert.ok(durations.filter((d) => d.start > stoppedAt + DEADLINE_MS && d.start < stoppedAt + 5 * DEADLINE_MS).length > 0, "requests were served during the pause");
  await stopChildren(workers.map((w) => w.child));
});
