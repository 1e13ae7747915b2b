/**
 * The decode gate of a llama context's target sequences (decode-gate.ts), in virtual time:
 * evaluations go into the context together, a release waits (briefly) for the sequences of
 * the one before, and no longer than a waiting call may wait (`mayWaitMs`).
 */
import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { test } from "node:test";
import { DecodeGate } from "../../src/models/decode-gate.js";
import { RealClock, VirtualClock } from "../../src/runtime/clock.js";

/** One evaluation of `sequence` through the gate, its decode taking `ms`; resolves with its release time. */
async function evaluate(gate: DecodeGate, clock: VirtualClock, sequence: object, ms: number, mayWaitMs?: number, signal?: AbortSignal): Promise<number> {
  const ended = await gate.turn(sequence, true, mayWaitMs === undefined ? Infinity : gate.now() + mayWaitMs, signal);
  const at = clock.now();
  await clock.sleep(ms);
  ended();
  return at;
}

test("a decode gate: evaluations asked for while released ones run go in together when they end, the next release waiting for the sequences of the last (at most a tenth of a decode)", async () => {
  const clock = new VirtualClock();
  const gate = new DecodeGate(clock);
  const [a, b, c] = [{}, {}, {}];
  // a and b together (10 ms); c asks at 4 ms, while they run: it waits for them.
  const first = [evaluate(gate, clock, a, 10), evaluate(gate, clock, b, 10)];
  const late = clock.sleep(4).then(() => evaluate(gate, clock, c, 10));
  assert.deepEqual(await Promise.all(first), [0, 0]);
  // a comes straight back, b 0.5 ms later: the release waits for b (within 1 ms), c goes with them.
  const again = [evaluate(gate, clock, a, 10), clock.sleep(0.5).then(() => evaluate(gate, clock, b, 10))];
  assert.deepEqual([await late, ...(await Promise.all(again))], [10.5, 10.5, 10.5]);
  assert.deepEqual([gate.releases, gate.released], [2, 5]);
  // A sequence that does not come back holds the next release 1 ms at most.
  const alone = await evaluate(gate, clock, a, 10);
  assert.equal(alone, 20.5 + 1);
});

test("a decode gate: a call that must start now (mayWaitMs 0) goes at once; one aborted while it waits leaves the queue; a released one's signal keeps no listener of the gate", async () => {
  const clock = new VirtualClock();
  const gate = new DecodeGate(clock);
  const [a, b] = [{}, {}];
  await Promise.all([evaluate(gate, clock, a, 10), evaluate(gate, clock, b, 10)]);
  const due = await evaluate(gate, clock, a, 10, 0);
  assert.equal(due, 10, "not held for b");
  const gone = new AbortController();
  const left = evaluate(gate, clock, b, 10, undefined, gone.signal);
  gone.abort();
  await assert.rejects(left, { name: "AbortError" });
  const kept = new AbortController();
  assert.equal(await evaluate(gate, clock, a, 10, undefined, kept.signal), 20, "a's own decode ended; b left");
  assert.equal(getEventListeners(kept.signal, "abort").length, 0, "a released call's signal is the caller's again");
});

test("a decode gate: a release waits only for the sequences whose one-token steps the last one carried (one that verified a window drafts first)", async () => {
  const clock = new VirtualClock();
  const gate = new DecodeGate(clock);
  const [a, b] = [{}, {}];
  const window = async (sequence: object): Promise<number> => {
    const ended = await gate.turn(sequence, false);
    const at = clock.now();
    await clock.sleep(10);
    ended();
    return at;
  };
  await Promise.all([evaluate(gate, clock, a, 10), window(b)]);
  // a comes straight back, b (drafting) does not: a's release waits for no one.
  assert.equal(await evaluate(gate, clock, a, 10), 10);
  // Sequences whose windows one release carried, asking again in the same instant, go in together.
  const [c, d] = [{}, {}];
  await Promise.all([window(c), window(d)]);
  const t0 = clock.now();
  const starts = await Promise.all([window(c), Promise.resolve().then(() => window(d))]);
  assert.deepEqual(starts, [t0, t0]);
});

test("a decode gate on the real clock: evaluations asked for in one event-loop turn go in together; a lone sequence back from its step goes at once", async () => {
  const gate = new DecodeGate(new RealClock());
  const [c, d] = [{}, {}];
  const twice = async (first: object, second: object): Promise<void> => {
    const ended = await Promise.all([gate.turn(first, false), Promise.resolve().then(() => gate.turn(second, false))]);
    for (const e of ended) e();
  };
  await twice(c, d);
  assert.deepEqual([gate.releases, gate.released], [1, 2], "the first two, though no release came before");
  await twice(c, d);
  assert.deepEqual([gate.releases, gate.released], [2, 4], "the windows' sequences of one release, back in one turn");
  const lone = new DecodeGate(new RealClock());
  const e = {};
  (await lone.turn(e, true))();
  let released = false;
  const next = lone.turn(e, true).then((ended) => ((released = true), ended));
  assert.equal(released, false);
  await Promise.resolve();
  assert.equal(released, true, "no wait for the event loop's turn");
  (await next)();
});

test("a decode gate on the virtual clock releases as on the real one: a lone sequence back from its step goes at once, not at the instant's end", async () => {
  const clock = new VirtualClock();
  const gate = new DecodeGate(clock);
  const e = {};
  (await gate.turn(e, true))();
  let released = false;
  const next = gate.turn(e, true).then((ended) => ((released = true), ended));
  await Promise.resolve();
  assert.equal(released, true, "released in the asking continuation's microtasks");
  (await next)();
});
