/** The latency wrapper on the virtual clock: TTFT, then TPOT, plus a per-position cost, plus prefill for long reads; aborts at once. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { GREEDY } from "../../src/core/sampling.js";
import { flatLatency, PREFILL_TOKENS_PER_STEP, resolveProfile, withLatency } from "../../src/models/latency.js";
import { SyntheticPair } from "../../src/models/synthetic.js";
import { VirtualClock } from "../../src/runtime/clock.js";

const req = (n: number) => ({ tokens: [1, 2, 3, 4, 5, 6, 7, 8].slice(0, n), from: 2, mode: "greedy" as const, sampling: GREEDY, seed: 0, stream: 1 });

test("the first evaluation costs TTFT, later ones TPOT plus the per-position cost", async () => {
  const clock = new VirtualClock();
  const inner = new SyntheticPair({ vocab: 16 }).instance("target");
  const inst = withLatency(inner, clock, { ttftMs: 50, tpotMs: 10, perExtraPositionMs: 2 });
  await inst.evaluate(req(2)); // one position
  assert.equal(clock.now(), 50);
  await inst.evaluate(req(2));
  assert.equal(clock.now(), 60);
  const outs = await inst.evaluate(req(6)); // five positions: 10 + 4 * 2
  assert.equal(outs.length, 5);
  assert.equal(clock.now(), 78);
  assert.deepEqual(outs, await inner.evaluate(req(6)), "the wrapper changes time, not outputs");
});

test("aborting during the modelled time rejects at once, without advancing the clock further", async () => {
  const clock = new VirtualClock();
  const inst = withLatency(new SyntheticPair({ vocab: 16 }).instance("target"), clock, { ttftMs: 100, tpotMs: 100, perExtraPositionMs: 0 });
  const ac = new AbortController();
  const p = inst.evaluate(req(2), ac.signal);
  setImmediate(() => ac.abort());
  await assert.rejects(p, (err: Error) => err.name === "AbortError");
  assert.ok(clock.now() < 100);
});

test("profiles: the paper's pairs by name or alias, TARGET/DRAFTER in ms, none adds nothing", () => {
  const vicuna = resolveProfile("vicuna-7b/vicuna-68m")!;
  assert.equal(vicuna.name, "vicuna-7b/vicuna-68m:cnn-dm");
  assert.equal(vicuna.target.tpotMs, vicuna.target.ttftMs, "the paper reports TPOT only");
  assert.deepEqual(resolveProfile("30/3")!.drafter, { ttftMs: 3, tpotMs: 3, perExtraPositionMs: 0 });
  assert.equal(resolveProfile("gpt-5/tiny"), undefined);
  const inner = new SyntheticPair().instance("target");
  assert.equal(withLatency(inner, new VirtualClock(), resolveProfile("none")!.target), inner);
});

test("prefill: a pass costs the larger of its step and the tokens it reads that the instance's cache lacks", async () => {
  const clock = new VirtualClock();
  const inst = withLatency(new SyntheticPair({ vocab: 16 }).instance("target"), clock, flatLatency(10));
  const perToken = 10 / PREFILL_TOKENS_PER_STEP;
  const long = Array.from({ length: 2000 }, (_, i) => i % 16);
  const at = async (tokens: number[], from = tokens.length): Promise<number> => {
    const t0 = clock.now();
    await inst.evaluate({ tokens, from, mode: "greedy", sampling: GREEDY, seed: 0, stream: 1 });
    return clock.now() - t0;
  };
  assert.equal(await at(long), 2000 * perToken, "a 2,000-token prompt: about 8 steps");
  assert.ok(2000 * perToken > 7 * 10);
  assert.equal(await at([...long, 3]), 10, "then a step");
  assert.equal(await at([...long, 3, 4, 5, 6]), 10, "a window, or a short catch-up, rides along in a step");
  const other = long.map((t) => (t + 1) % 16);
  assert.equal(await at(other), 2000 * perToken, "another sequence (an instance that switches generations) is read again");
  assert.equal(await at([...other.slice(0, 1000), ...long.slice(0, 1000)]), 1000 * perToken, "past the common prefix only");
  assert.equal(await at([...other.slice(0, 1000), ...long.slice(0, 1000)]), 10, "a repeated request reads its last token");
  const flat = withLatency(new SyntheticPair({ vocab: 16 }).instance("target"), clock, { ...flatLatency(10), prefillPerTokenMs: 0 });
  const t0 = clock.now();
  await flat.evaluate({ tokens: long, from: 2000, mode: "greedy", sampling: GREEDY, seed: 0, stream: 1 });
  assert.equal(clock.now() - t0, 10, "prefillPerTokenMs 0: the old flat first call");
});
