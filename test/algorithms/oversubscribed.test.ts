/**
 * More generations than target instances on one runtime (a server under load), in virtual time
 * with a profile that charges re-reading a context (a CPU-like prefill: a quarter of a step per
 * token). An instance that switches between generations re-reads a whole context; a pool that
 * hands instances from one generation to the next at every step thrashes. Throughput (tokens
 * per second over a run of clients that each send requests back to back) at 5, 8 and 16
 * clients must be at least what 4 clients give on 4 instances, for every algorithm (before the
 * pool admitted at most one generation per instance: 5 clients gave 7% of 4 clients' non-SI
 * throughput, 38% of SI's and 32% of DSI's).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { generate } from "../../src/algorithms/generate.js";
import type { AlgorithmName } from "../../src/algorithms/options.js";
import { flatLatency, type LatencyProfile } from "../../src/models/latency.js";
import { syntheticRuntime } from "../../src/models/runtime.js";
import { SyntheticPair } from "../../src/models/synthetic.js";

const STEP_MS = 20;
const PROFILE: LatencyProfile = { name: "cpu-like", target: { ...flatLatency(STEP_MS), prefillPerTokenMs: STEP_MS / 4 }, drafter: { ...flatLatency(2), prefillPerTokenMs: 0.5 } };
const SP = 4;
/** 4 each: every run is whole rounds of 4 generations (no tail where an instance idles at the end). */
const REQUESTS_PER_CLIENT = 4;
const TOKENS = 48;

/** Tokens per second of virtual time when `clients` clients each run REQUESTS_PER_CLIENT generations back to back on one runtime. */
async function throughput(algo: AlgorithmName, clients: number): Promise<{ perSecond: number; tokens: number[][] }> {
  const pair = new SyntheticPair({ vocab: 16, seed: 5, agreement: 0.7, context: 64 });
  const rt = syntheticRuntime({ pair, profile: PROFILE, sp: SP });
  const start = rt.clock.now();
  let total = 0;
  const outputs: number[][] = [];
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      for (let r = 0; r < REQUESTS_PER_CLIENT; r++) {
        const prompt = Array.from({ length: 40 }, (_, i) => (c * 7 + r * 3 + i * 5) % 16);
        const res = await generate(algo, rt, { prompt, maxTokens: TOKENS, seed: c, ...(algo === "nonsi" ? {} : { lookahead: 3 }) }).result;
        total += res.tokens.length;
        outputs[c * REQUESTS_PER_CLIENT + r] = res.tokens;
      }
    }),
  );
  return { perSecond: (total / (rt.clock.now() - start)) * 1000, tokens: outputs };
}

for (const algo of ["nonsi", "si", "dsi"] as const) {
  test(`${algo}: throughput with 5, 8 and 16 clients on ${SP} instances is at least what ${SP} clients give`, async () => {
    const base = await throughput(algo, SP);
    for (const clients of [5, 8, 16]) {
      const t = await throughput(algo, clients);
      assert.ok(t.perSecond >= base.perSecond * 0.98, `${clients} clients: ${t.perSecond.toFixed(1)} tokens/s, ${SP} clients: ${base.perSecond.toFixed(1)}`);
    }
  });
}
