/**
 * Workers with several sequences (`dsi worker --sequences S`): each sequence holds its own
 * tokens and cache, calls name theirs, a cluster file's `sequences` makes the pool lease them,
 * and with a worker killed mid-run every generation still gets non-SI's tokens.
 */
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { generate } from "../../src/algorithms/generate.js";
import { TokenView, type ModelInstance } from "../../src/core/instance.js";
import { GREEDY } from "../../src/core/sampling.js";
import { PROFILES } from "../../src/models/latency.js";
import { RemoteInstance, WorkerError } from "../../src/models/remote/client.js";
import { clusterBackend, loadClusterFile } from "../../src/models/remote/cluster.js";
import { syntheticRuntime } from "../../src/models/runtime.js";
import { SyntheticPair } from "../../src/models/synthetic.js";
import { makeClock } from "../../src/runtime/clock.js";
import { serveWorker } from "../../src/worker/server.js";
import { freeAddress, startWorker, stopChildren } from "../helpers/processes.js";
import { tempDir } from "../helpers/temp.js";

const SPEC = ["--vocab", "16", "--model-seed", "5", "--agreement", "0.7", "--history", "all"];
const pair = new SyntheticPair({ vocab: 16, seed: 5, agreement: 0.7, context: "all" });

test("a worker's sequences: each holds its own tokens (no resends when calls alternate), Info says how many, and a sequence it does not serve is refused", async () => {
  const worker = await serveWorker({ instances: [0, 1].map((j) => pair.instance("target", `t/${j}`)), listen: "127.0.0.1:0", backend: "synthetic", role: "target" });
  const [a, b] = await Promise.all([0, 1].map((sequence) => RemoteInstance.connect(worker.address, { sequence })));
  const outside = await RemoteInstance.connect(worker.address, { sequence: 2 });
  try {
    assert.deepEqual([a.sequences, b.sequences], [2, 2]);
    assert.match(b.label, /\/1$/);
    const local = pair.instance("target", "local");
    const one = [1, 2, 3, 4, 5];
    const two = [9, 8, 7, 6];
    for (let n = 0; n < 4; n++) {
      // Alternating between two sequences: each call sends only its own new token.
      one.push(n);
      two.push(n);
      for (const [remote, seq] of [[a, one], [b, two]] as const) {
        const req = { tokens: new TokenView(seq, seq.length), from: seq.length, mode: "greedy" as const, sampling: GREEDY, seed: 0, stream: 0 };
        assert.deepEqual(await remote.evaluate(req), await local.evaluate(req));
      }
    }
    assert.equal(a.tokensSent, 5 + 4 - 1 + 1, "the first call sends the sequence, each later one its new token");
    assert.equal(b.tokensSent, 4 + 4);
    assert.deepEqual([a.resends, b.resends], [0, 0]);
    await assert.rejects(outside.evaluate({ tokens: [1, 2], from: 2, mode: "greedy", sampling: GREEDY, seed: 0, stream: 0 }), /sequence 2 is outside 0\.\.1 \(this worker serves 2\)/);
    // A lost instance (a worker restarted with fewer sequences), not the caller's bad request:
    // the pool retires it instead of failing every request sent there.
    await assert.rejects(outside.evaluate({ tokens: [1, 2], from: 2, mode: "greedy", sampling: GREEDY, seed: 0, stream: 0 }), WorkerError);
    // A probe (a lost instance coming back, a worker that joins late) refuses it as well.
    await assert.rejects(outside.probe(), /serves 2 sequence\(s\), not sequence 2/);
    assert.equal(await b.probe(), true);
  } finally {
    for (const r of [a, b, outside]) r.close();
    await worker.close();
  }
});

test("two 4-sequence workers, a cluster file with sequences 4: 8 concurrent generations run at once; kill -9 of one worker mid-run, and every output is non-SI's", { timeout: 60_000 }, async () => {
  const workers = await Promise.all([0, 1].map(() => startWorker(["--listen", "127.0.0.1:0", ...SPEC, "--latency", "5/1", "--sequences", "4"])));
  const dir = await tempDir("sequences");
  const file = join(dir, "cluster.json");
  await writeFile(file, JSON.stringify({ drafter: { backend: "synthetic", vocab: 16, agreement: 0.7, history: "all", modelSeed: 5, latency: "5/1" }, targets: workers.map((w) => ({ address: w.address })), sequences: 4 }));
  const backend = await clusterBackend(await loadClusterFile(file), file);
  try {
    assert.match(backend.describe(), /2 target worker\(s\) of 4 sequences/);
    const rt = await backend.runtime(makeClock("real"), 2, PROFILES.get("none")!, { events: true });
    const options = (i: number) => ({ prompt: [1 + i, 2, 3], maxTokens: 40, seed: i });
    const reference = await Promise.all(Array.from({ length: 8 }, (_, i) => generate("nonsi", syntheticRuntime({ pair }), options(i)).result));
    const runs = Array.from({ length: 8 }, (_, i) => generate(i % 2 ? "dsi" : "si", rt, { ...options(i), lookahead: 3 }).result);
    // Every generation admitted at once (8 sequences), then one worker dies under them.
    assert.equal(rt.pool.runningMembers, 8);
    await new Promise((r) => setTimeout(r, 60));
    workers[0].child.kill("SIGKILL");
    const results = await Promise.all(runs);
    results.forEach((r, i) => assert.deepEqual(r.tokens, reference[i].tokens, `generation ${i}`));
    assert.ok(rt.events.events.some((e) => e.type === "retire"), "the dead worker's sequences were retired");
    rt.close();
  } finally {
    await backend.close();
    await stopChildren(workers.map((w) => w.child));
  }
});

/** A target whose evaluations take `ms` of wall time each (the synthetic model is instant). */
function slow(instance: ModelInstance, ms: number): ModelInstance {
  return {
    label: instance.label,
    vocabSize: instance.vocabSize,
    eosToken: instance.eosToken,
    evaluate: async (req, signal) => {
      await new Promise((r) => setTimeout(r, ms));
      return instance.evaluate(req, signal);
    },
  };
}

test("a worker's busy time counts sequences evaluating at once once (it was their sum: more than the wall clock)", async () => {
  const worker = await serveWorker({ instances: [0, 1, 2].map((j) => slow(pair.instance("target", `t/${j}`), 150)), listen: "127.0.0.1:0", backend: "synthetic", role: "target" });
  const clients = await Promise.all([0, 1, 2].map((sequence) => RemoteInstance.connect(worker.address, { sequence })));
  try {
    const t0 = performance.now();
    await Promise.all(clients.map((c) => c.evaluate({ tokens: [1, 2, 3], from: 3, mode: "greedy", sampling: GREEDY, seed: 0, stream: 0 })));
    const wall = (performance.now() - t0) / 1000;
    const { busySeconds } = await clients[0].stats();
    assert.ok(busySeconds >= 0.14 && busySeconds <= wall, `busy ${busySeconds.toFixed(3)} s in ${wall.toFixed(3)} s of wall time`);
  } finally {
    for (const c of clients) c.close();
    await worker.close();
  }
});

test("a call aborted between the worker's refusal (it holds other tokens) and the resend is not sent again: it rejects as aborted", async () => {
  const worker = await serveWorker({ instances: [pair.instance("target", "t")], listen: "127.0.0.1:0", backend: "synthetic", role: "target" });
  const [a, b] = await Promise.all([0, 0].map(() => RemoteInstance.connect(worker.address)));
  try {
    const req = (tokens: number[]) => ({ tokens, from: tokens.length, mode: "greedy" as const, sampling: GREEDY, seed: 0, stream: 0 });
    await a.evaluate(req([1, 2, 3]));
    await b.evaluate(req([7, 8])); // the worker now holds b's tokens: a's next call is refused
    const controller = new AbortController();
    const calls: unknown[] = [];
    const client = a as unknown as { call: (...args: unknown[]) => Promise<unknown> };
    const call = client.call.bind(a);
    client.call = (...args: unknown[]) => {
      const sent = call(...args);
      calls.push(args);
      // (Runs before the client's own handler of the refusal: the abort comes in between.)
      if (calls.length === 1) sent.catch(() => controller.abort());
      return sent;
    };
    await assert.rejects(a.evaluate(req([1, 2, 3, 4]), controller.signal), (err: Error) => err.name === "AbortError");
    assert.equal(calls.length, 1, "no resend after the abort");
    const resends = a.resends;
    // And the next call, unaborted, is served (sent whole).
    assert.deepEqual(await a.evaluate(req([1, 2, 3, 4])), await pair.instance("target", "local").evaluate(req([1, 2, 3, 4])));
    assert.equal(a.resends, resends, "sent whole at once: the refusal was not forgotten");
  } finally {
    a.close();
    b.close();
    await worker.close();
  }
});

test("a 3-sequence worker that answers after the cluster started: all its sequences join together, and none fails a task or is retired", { timeout: 30_000 }, async () => {
  const up = await serveWorker({ instances: [0, 1, 2].map((j) => pair.instance("target", `up/${j}`)), listen: "127.0.0.1:0", backend: "synthetic", role: "target" });
  const late = await freeAddress();
  const log: string[] = [];
  const spec = { drafter: { backend: "synthetic" as const, vocab: 16, agreement: 0.7, history: "all" as const, modelSeed: 5 }, targets: [{ address: up.address }, { address: late }], sequences: 3 };
  const backend = await clusterBackend(spec, "cluster file", { log: (line) => log.push(line), probeIntervalMs: 50 });
  let worker: Awaited<ReturnType<typeof serveWorker>> | undefined;
  try {
    worker = await serveWorker({ instances: [0, 1, 2].map((j) => pair.instance("target", `late/${j}`)), listen: late, backend: "synthetic", role: "target" });
    const deadline = Date.now() + 10_000;
    while (!log.some((l) => l.includes(`worker ${late} answered: added`)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(log.some((l) => l.includes(`worker ${late} answered: added`)), log.join("\n"));
    const rt = await backend.runtime(makeClock("real"), 2, PROFILES.get("none")!, { events: true });
    const options = (i: number) => ({ prompt: [1 + i, 2, 3], maxTokens: 24, seed: i });
    const reference = await Promise.all(Array.from({ length: 6 }, (_, i) => generate("nonsi", syntheticRuntime({ pair }), options(i)).result));
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => generate(i % 2 ? "dsi" : "si", rt, { ...options(i), lookahead: 3 }).result));
    results.forEach((r, i) => assert.deepEqual(r.tokens, reference[i].tokens, `generation ${i}`));
    const retired = rt.events.events.filter((e) => e.type === "retire");
    assert.deepEqual(retired, [], "no sequence of the late worker failed a task");
    rt.close();
  } finally {
    await backend.close();
    await worker?.close();
    await up.close();
  }
});
