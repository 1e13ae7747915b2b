/**
 * Faults on real kernels: llama workers on a generated GGUF pair (random weights, near ties
 * everywhere, so an output read on a context built another way would show). A worker killed
 * and restarted mid-generation re-reads the whole context at once; a chaos loop kills, restarts
 * and pauses workers while generations run. Every output must be non-SI's, token for token.
 * The soak runs DSI_SOAK_SECONDS (default 5; at least 3 generations) in `npm test`; bench/faults.ts runs it longer.
 */
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { generate } from "../../src/algorithms/generate.js";
import type { AlgorithmName, Lookahead } from "../../src/algorithms/options.js";
import { GREEDY } from "../../src/core/sampling.js";
import { llamaBackend, type Backend } from "../../src/models/backend.js";
import { PROFILES } from "../../src/models/latency.js";
import { clusterBackend } from "../../src/models/remote/cluster.js";
import { makeClock } from "../../src/runtime/clock.js";
import { isPoolEvent, type PoolEvent } from "../../src/runtime/events.js";
import { chaosLoop, type ChaosSlot } from "../helpers/chaos.js";
import { LONG_PAIR, pairFiles } from "../helpers/gguf-models.js";
import { startWorker } from "../helpers/processes.js";

const PROMPTS = ["the quick brown fox", "once upon a time", "speculative decoding", "to be or not to be"];
const TOKENS = 160;
/** Per target evaluation: slow enough that a kill lands mid-generation. */
const WORKER_LATENCY = "12/1";

let files: { target: string; drafter: string };
/** The target's eval chunk as this process's self-test found it (workers report theirs). */
let localChunk: number | undefined;
/** Non-SI's tokens per prompt, computed in this process. */
const reference = new Map<string, number[]>();

async function tokensOf(backend: Backend, algo: AlgorithmName, prompt: string, lookahead: Lookahead | undefined, sp: number, log?: PoolEvent[]): Promise<{ tokens: number[]; lost: number }> {
  const rt = await backend.runtime(makeClock("real"), sp, PROFILES.get("none")!);
  if (log) rt.events.listen((e) => void (isPoolEvent(e) && log.push(e)));
  const gen = generate(algo, rt, { prompt: backend.tokenizer.encode(prompt), maxTokens: TOKENS, sampling: GREEDY, verify: "greedy", seed: 0, ...(algo === "nonsi" ? {} : { lookahead }) });
  const result = await gen.result;
  return { tokens: result.tokens, lost: rt.events.events.filter((e) => e.type === "task-lost").length };
}

before(async () => {
  files = await pairFiles("long", LONG_PAIR);
  const local = await llamaBackend({ ...files, threads: 1, gpu: false });
  try {
    localChunk = local.evalChunk?.target?.chunk;
    for (const p of PROMPTS) reference.set(p, (await tokensOf(local, "nonsi", p, undefined, 1)).tokens);
  } finally {
    await local.close();
  }
});

const workerArgs = (address: string): string[] => ["--backend", "llama", "--model", files.target, "--listen", address, "--latency", WORKER_LATENCY];

/** Target workers and a cluster over them (drafter in this process); short deadlines so a pause is a loss. */
async function cluster(n: number, callTimeoutS: number): Promise<{ slots: ChaosSlot[]; backend: Backend; log: string[] }> {
  const slots: ChaosSlot[] = [];
  for (let i = 0; i < n; i++) {
    const w = await startWorker(workerArgs("127.0.0.1:0"));
    slots.push({ address: w.address, child: w.child });
  }
  const log: string[] = [];
  const backend = await clusterBackend(
    { drafter: { backend: "llama", model: files.drafter, latency: WORKER_LATENCY }, targets: slots.map((s) => ({ address: s.address })), timeouts: { call: callTimeoutS } },
    "test cluster",
    { log: (l) => log.push(l) },
  );
  return { slots, backend, log };
}

const restart = async (address: string): Promise<ChildProcess> => (await startWorker(workerArgs(address))).child;

describe("llama workers under faults", () => {
  const open: Backend[] = [];
  after(async () => {
    for (const b of open) await b.close();
  });

  test("a worker killed and restarted mid-generation: the output is non-SI's, and the restarted worker served again", async () => {
    const { slots, backend } = await cluster(2, 30);
    open.push(backend);
    // Workers report their eval chunk in Info: the same kernels found the same size.
    assert.deepEqual(backend.evalChunk?.target, { chunk: localChunk, source: "worker" });
    for (const [i, prompt] of PROMPTS.slice(0, 2).entries()) {
      const poolLog: PoolEvent[] = [];
      const running = tokensOf(backend, "dsi", prompt, 3, 2, poolLog);
      // Kill once the generation is under way, start it again at once at the same address.
      await new Promise((r) => setTimeout(r, 400));
      const victim = slots[i % 2];
      victim.child!.kill("SIGKILL");
      await new Promise((r) => victim.child!.once("exit", r));
      victim.child = await restart(victim.address);
      const { tokens, lost } = await running;
      assert.deepEqual(tokens, reference.get(prompt), `prompt ${JSON.stringify(prompt)}`);
      assert.ok(lost >= 1, "the kill landed mid-generation");
      const rejoined = poolLog.some((e) => e.type === "rejoin");
      const leasedAfter = poolLog.findIndex((e) => e.type === "rejoin");
      if (rejoined) assert.ok(poolLog.slice(leasedAfter).some((e) => e.type === "lease" && e.instance === poolLog[leasedAfter].instance), "the restarted worker was leased after it rejoined");
    }
    // The next generation uses both (the restarted one re-reads its context from nothing).
    assert.deepEqual((await tokensOf(backend, "dsi", PROMPTS[2], "auto", 2)).tokens, reference.get(PROMPTS[2]));
  });

  test("soak: kills, restarts and pauses at random moments; every output is non-SI's", async (t) => {
    const seconds = Number(process.env.DSI_SOAK_SECONDS ?? 5);
    const { slots, backend, log } = await cluster(3, 1.5);
    open.push(backend);
    const stop = new AbortController();
    const chaos = chaosLoop({ slots, restart, seed: 17, gapMs: [300, 1200], downMs: [0, 800], pauseShare: 0.2, pauseMs: 2500 }, stop.signal);
    const end = performance.now() + seconds * 1000;
    let runs = 0;
    let redispatched = 0;
    const combos: [AlgorithmName, Lookahead][] = [
      ["dsi", 3],
      ["dsi", "auto"],
      ["si", 4],
    ];
    try {
      while (performance.now() < end || runs < 3) {
        const prompt = PROMPTS[runs % PROMPTS.length];
        const [algo, lookahead] = combos[runs % combos.length];
        const { tokens, lost } = await tokensOf(backend, algo, prompt, lookahead, slots.length);
        assert.deepEqual(tokens, reference.get(prompt), `run ${runs}: ${algo} L=${lookahead} on ${JSON.stringify(prompt)}`);
        redispatched += lost;
        runs++;
      }
    } finally {
      stop.abort();
    }
    const counts = await chaos;
    t.diagnostic(`soak ${seconds} s: ${runs} generations, ${counts.kills} kills, ${counts.restarts} restarts, ${counts.pauses} pauses, ${redispatched} tasks dispatched again`);
    assert.ok(counts.kills + counts.pauses >= 2, `the chaos loop acted (${JSON.stringify(counts)})`);
    assert.ok(redispatched >= 1, "some work was lost and dispatched again");
    t.diagnostic(log.join("\n"));
  });
});
