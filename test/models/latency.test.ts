/** The latency wrapper on the virtual clock: TTFT, then TPOT, plus a per-position cost; aborts at once. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { GREEDY } from "../../src/core/sampling.js";
import { resolveProfile, withLatency } from "../../src/models/latency.js";
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
