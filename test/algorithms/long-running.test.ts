/**
 * A long-running runtime (as `dsi serve` holds one): what one generation leaves in the pool's
 * observed costs must not change the bounds of the generations after it. A long prompt is a
 * prefill task that costs many steps; the slack and guard rules must not read it as a step or
 * a window cost (virtual time, the latency emulator's prefill cost).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { generate } from "../../src/algorithms/generate.js";
import type { GenerateOptions } from "../../src/algorithms/options.js";
import { flatLatency, type LatencyProfile } from "../../src/models/latency.js";
import { syntheticRuntime } from "../../src/models/runtime.js";
import { SyntheticPair } from "../../src/models/synthetic.js";
import type { Runtime } from "../../src/runtime/runtime.js";

const LONG_PROMPT = Array.from({ length: 2000 }, (_, i) => (i * 7 + 1) % 16);

/** Commit times of a generation on `rt`, from its start. */
async function commitTimes(rt: Runtime, algo: "dsi" | "nonsi", o: GenerateOptions): Promise<{ times: number[]; tokens: number[] }> {
  rt.events.events.length = 0;
  const start = rt.clock.now();
  const r = await generate(algo, rt, algo === "nonsi" ? { ...o, lookahead: undefined, maxInstances: undefined } : o).result;
  return { times: rt.events.events.filter((e) => e.type === "commit").map((e) => e.t - start), tokens: r.tokens };
}

/** Runs a 2,000-token prompt, then 20 ordinary generations on one runtime; checks each against non-SI alone. */
async function serverLike(prof: LatencyProfile, sp: number, options: (i: number) => GenerateOptions): Promise<void> {
  const pair = new SyntheticPair({ vocab: 16, seed: 11, agreement: 0.7 });
  const rt = syntheticRuntime({ pair, profile: prof, sp });
  const long = await generate("dsi", rt, { prompt: LONG_PROMPT, maxTokens: 30, lookahead: 3 }).result;
  // The emulator charges the prompt's prefill: the first token takes several steps.
  assert.ok(long.stats.ttftMs > 5 * prof.target.tpotMs, `ttft ${long.stats.ttftMs}`);
  for (let i = 0; i < 20; i++) {
    const o = options(i);
    const alone = await commitTimes(syntheticRuntime({ pair, profile: prof, sp: 1 }), "nonsi", o);
    const dsi = await commitTimes(rt, "dsi", o);
    assert.deepEqual(dsi.tokens, alone.tokens, `generation ${i}`);
    dsi.times.forEach((t, k) => assert.ok(t <= alone.times[k] + 1e-9, `generation ${i} position ${k}: ${t} > non-SI ${alone.times[k]}`));
  }
}

test("one runtime: after a 2,000-token prompt, 20 DSI generations with growing window costs each commit no later than non-SI alone", async () => {
  // Windows cost 10 ms plus 4 per extra position, so only the guard rule keeps DSI at non-SI's
  // pace; it must read one-token passes at 10 ms, not the long prompt's prefill.
  const prof = { name: "growing", target: { ttftMs: 10, tpotMs: 10, perExtraPositionMs: 4 }, drafter: flatLatency(1) };
  await serverLike(prof, 3, (i) => ({ prompt: [1, 2, i % 16], maxTokens: 30, lookahead: 3 + (i % 3), seed: i }));
});

test("one runtime: after a 2,000-token prompt, 20 DSI generations on one instance each (slack rule) commit no later than non-SI alone and as fast as on a fresh runtime", async () => {
  // A generation that may hold one instance: the slack rule makes DSI wait for full windows
  // while it is ahead of non-SI. It must read the window's cost from windows, not from the
  // long prompt's prefill (which would keep it from ever waiting).
  const prof = { name: "vicuna-like", target: flatLatency(37.7), drafter: flatLatency(2.5) };
  const options = (i: number): GenerateOptions => ({ prompt: [1, 2, i % 16], maxTokens: 40, lookahead: 4, seed: i, maxInstances: 1 });
  await serverLike(prof, 2, options);
  // Same generations after the long prompt, and on a runtime that saw a short one: same times.
  const pair = new SyntheticPair({ vocab: 16, seed: 11, agreement: 0.7 });
  const afterLong = syntheticRuntime({ pair, profile: prof, sp: 2 });
  const afterShort = syntheticRuntime({ pair, profile: prof, sp: 2 });
  await generate("dsi", afterLong, { prompt: LONG_PROMPT, maxTokens: 30, lookahead: 4 }).result;
  await generate("dsi", afterShort, { prompt: LONG_PROMPT.slice(0, 3), maxTokens: 30, lookahead: 4 }).result;
  let long = 0;
  let short = 0;
  for (let i = 0; i < 20; i++) {
    long += (await generate("dsi", afterLong, options(i)).result).stats.timeMs;
    short += (await generate("dsi", afterShort, options(i)).result).stats.timeMs;
  }
  assert.ok(long <= short * 1.001, `after a long prompt ${long / 20} ms per generation, after a short one ${short / 20}`);
});
