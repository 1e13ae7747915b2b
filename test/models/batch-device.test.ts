/**
 * Modelled multi-sequence instances (batch-device.ts), in virtual time: passes asked for
 * together share one pass whose cost the batch model sets; and whole generations sharing an
 * instance's passes keep their outputs while the instance serves more of them per second.
 */
import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { test } from "node:test";
import { generate } from "../../src/algorithms/generate.js";
import { BatchDevice } from "../../src/models/batch-device.js";
import { passMs, resolveProfile, withBatchCost, type ModelLatency } from "../../src/models/latency.js";
import { syntheticRuntime } from "../../src/models/runtime.js";
import { SyntheticPair } from "../../src/models/synthetic.js";
import type { SharedDevice } from "../../src/models/shared-device.js";
import { VirtualClock } from "../../src/runtime/clock.js";

const CPU: ModelLatency = { ttftMs: 10, tpotMs: 10, perExtraPositionMs: 4 };

test("a batch device: passes asked for in the same instant share one pass costing what their tokens cost together; later ones wait for the next", async () => {
  const clock = new VirtualClock();
  const d = new BatchDevice(clock, CPU);
  const ends: number[] = [];
  const ask = (outputs: number) => d.pass({ outputs, read: outputs, first: false }).then(() => ends.push(clock.now()));
  // 1 + 3 + 1 positions together: 10 + 4 x 4 = 26 ms.
  const first = [ask(1), ask(3), ask(1)];
  await Promise.resolve();
  // Asked while that pass runs (at 5 ms): the next pass, alone: 10 ms after the first ends.
  const late = clock.sleep(5).then(() => ask(1));
  await Promise.all([...first, late]);
  assert.deepEqual(ends, [26, 26, 26, 36]);
  assert.equal(d.cost([{ outputs: 5, read: 5, first: false }]), passMs(CPU, 5, 5));
  assert.deepEqual([d.passes, d.shares], [2, 4]);
});

test("a batch device: two sequences out of step come into step, the next pass waiting for the one the last pass carried (at most a tenth of a step); without that they would take turns", async () => {
  const clock = new VirtualClock();
  const d = new BatchDevice(clock, CPU);
  const [a, b] = [{}, {}];
  /** A sequence asking for 4 one-token passes in a row, `gap` ms after each result (its generation's own work). */
  const run = async (sequence: object, start: number, gap: number): Promise<number[]> => {
    const ends: number[] = [];
    await clock.sleep(start);
    for (let i = 0; i < 4; i++) {
      await d.pass({ outputs: 1, read: 1, first: false, sequence });
      ends.push(clock.now());
      await clock.sleep(gap);
    }
    return ends;
  };
  // b asks 1 ms after a's first pass started; a asks again 0.5 ms after each result.
  const [endsA, endsB] = await Promise.all([run(a, 0, 0.5), run(b, 1, 0.5)]);
  // a alone (0-10); b's pass waits for a to ask again (10.5), then both share every pass (14
  // ms: two tokens); b's last waits 1 ms for a, which is done, and goes alone.
  assert.deepEqual(endsA, [10, 24.5, 39, 53.5]);
  assert.deepEqual(endsB, [24.5, 39, 53.5, 65]);
  assert.equal(d.passes, 5, "taking turns: 8");
  // A sequence that does not come back (its generation waits for drafts) holds the pass at most a tenth of a step.
  const e = new BatchDevice(clock, CPU);
  const t0 = clock.now();
  await e.pass({ outputs: 1, read: 1, first: false, sequence: a });
  await e.pass({ outputs: 1, read: 1, first: false, sequence: b });
  assert.equal(clock.now() - t0, 10 + 1 + 10, "b's pass waited 1 ms for a, which did not come");
  // Everyone waiting leaves during the gather: no pass runs for no one.
  const passes = e.passes;
  const gone = new AbortController();
  const left = e.pass({ outputs: 1, read: 1, first: false, sequence: a }, gone.signal); // the pass waits for b
  await clock.sleep(0.5);
  gone.abort();
  await assert.rejects(left);
  await clock.sleep(20);
  assert.equal(e.passes, passes, "before, an empty pass ran, costing a step");
});

test("a batch device: a pass is held for the sequences of the one before no later than a waiting call must start (startBy: its evaluation's call plus mayWaitMs); those that come straight back, in the same instant, still join", async () => {
  const clock = new VirtualClock();
  const [a, b, c] = [{}, {}, {}];
  /** Both sequences in one pass; then b asks again at once (it may wait `mayWaitMs`, or any time), a 0.5 ms later. */
  const after = async (mayWaitMs: number | undefined): Promise<{ a: number; b: number }> => {
    const d = new BatchDevice(clock, CPU);
    await Promise.all([d.pass({ outputs: 1, read: 1, first: false, sequence: a }), d.pass({ outputs: 1, read: 1, first: false, sequence: b })]);
    const t0 = clock.now();
    const bEnd = d.pass({ outputs: 1, read: 1, first: false, sequence: b, ...(mayWaitMs !== undefined ? { startBy: clock.now() + mayWaitMs } : {}) }).then(() => clock.now() - t0);
    const aEnd = clock.sleep(0.5).then(() => d.pass({ outputs: 1, read: 1, first: false, sequence: a })).then(() => clock.now() - t0);
    return { a: await aEnd, b: await bEnd };
  };
  assert.deepEqual(await after(undefined), { a: 0.5 + 14, b: 0.5 + 14 }, "without a bound b waits for a: one pass of two tokens");
  // (a's own pass then waits its 1 ms for b, which does not come back.)
  assert.deepEqual(await after(0), { a: 10 + 1 + 10, b: 10 }, "b's pass may not wait: it goes alone, a takes the next");
  assert.deepEqual(await after(0.25), { a: 0.25 + 10 + 1 + 10, b: 0.25 + 10 }, "held until b must start at the latest");
  // Two sequences that come straight back, through chains of continuations of any length,
  // join a pass that may not wait: the first to ask does not cut the instant short.
  const d = new BatchDevice(clock, CPU);
  await Promise.all([a, b, c].map((sequence) => d.pass({ outputs: 1, read: 1, first: false, sequence })));
  const t0 = clock.now();
  const later = async (sequence: object, hops: number): Promise<void> => {
    for (let i = 0; i < hops; i++) await Promise.resolve();
    await d.pass({ outputs: 1, read: 1, first: false, sequence });
  };
  await Promise.all([d.pass({ outputs: 1, read: 1, first: false, sequence: b, startBy: clock.now() }), later(a, 1), later(c, 20)]);
  assert.equal(clock.now() - t0, 18, "one pass of all three");
});

test("a batch device: a call aborted while it waits leaves the batch (it costs nothing); one aborted while its pass runs returns at once, the others at the pass's end", async () => {
  const clock = new VirtualClock();
  const d = new BatchDevice(clock, CPU);
  const waiting = new AbortController();
  const running = new AbortController();
  const ends: string[] = [];
  const ask = (name: string, outputs: number, signal?: AbortSignal) =>
    d.pass({ outputs, read: outputs, first: false }, signal).then(
      () => ends.push(`${name} ${clock.now()}`),
      (err: Error) => ends.push(`${name} ${err.name} ${clock.now()}`),
    );
  const a = ask("a", 1, running.signal);
  const b = ask("b", 1);
  // c asks while a and b's pass runs, then gives up before the next pass starts.
  const c = clock.sleep(2).then(() => {
    const p = ask("c", 8, waiting.signal);
    waiting.abort();
    return p;
  });
  const stop = clock.sleep(4).then(() => running.abort());
  await Promise.all([a, b, c, stop]);
  // a and b: 10 + 4 = 14 ms; a returns at 4 ms when aborted; c never runs (no second pass).
  assert.deepEqual(ends, ["c AbortError 2", "a AbortError 4", "b 14"]);
  assert.equal(d.passes, 1);
});

test("a batch device: a pass that fails rejects every call it carried, and the next pass runs", async () => {
  const clock = new VirtualClock();
  let fail = true;
  const device = {
    run: async (ms: number, signal?: AbortSignal) => {
      if (fail) throw new Error("device lost");
      await clock.sleep(ms, signal);
    },
  } as unknown as SharedDevice;
  const d = new BatchDevice(clock, CPU, device);
  const ask = () => d.pass({ outputs: 1, read: 1, first: false });
  const results = await Promise.allSettled([ask(), ask()]);
  assert.deepEqual(results.map((r) => (r.status === "rejected" ? (r.reason as Error).message : "ok")), ["device lost", "device lost"]);
  fail = false;
  await ask();
  assert.equal(d.passes, 2);
});

test("a batch device keeps nothing of a call once its pass ended (its signal's listener is gone); a clock that fails before a pass fails the calls waiting", async () => {
  const clock = new VirtualClock();
  const d = new BatchDevice(clock, CPU);
  const kept = new AbortController();
  await d.pass({ outputs: 1, read: 1, first: false }, kept.signal);
  assert.equal(getEventListeners(kept.signal, "abort").length, 0);
  const broken = { kind: "virtual", now: () => 0, sleep: async () => Promise.reject(new Error("clock stopped")) } as unknown as VirtualClock;
  const stuck = new BatchDevice(broken, CPU);
  const signal = new AbortController().signal;
  await assert.rejects(stuck.pass({ outputs: 1, read: 1, first: false }, signal), /clock stopped/);
  assert.equal(getEventListeners(signal, "abort").length, 0);
});

/** Total virtual time of `n` concurrent non-SI generations (30 tokens each) and their outputs. */
async function concurrent(profileName: "cpu" | "gpu", n: number, sequences: number): Promise<{ ms: number; tokens: number[][] }> {
  const pair = new SyntheticPair({ vocab: 32, seed: 3, context: "all" });
  const profile = withBatchCost(resolveProfile("30/3")!, profileName);
  const rt = syntheticRuntime({ pair, profile, sp: 1, sequences });
  const results = await Promise.all(Array.from({ length: n }, (_, i) => generate("nonsi", rt, { prompt: [1, 2, 3 + i], maxTokens: 30 }).result));
  return { ms: rt.clock.now(), tokens: results.map((r) => r.tokens) };
}

test("generations sharing an instance's passes: 8 non-SI generations on 8 sequences finish 2.1x sooner with CPU-like batch costs, 8x with GPU-like ones, each with its tokens alone", async () => {
  const pair = new SyntheticPair({ vocab: 32, seed: 3, context: "all" });
  const alone = await Promise.all(Array.from({ length: 8 }, (_, i) => generate("nonsi", syntheticRuntime({ pair }), { prompt: [1, 2, 3 + i], maxTokens: 30 }).result));
  for (const [model, least] of [["cpu", 2.05], ["gpu", 7.9]] as const) {
    const one = await concurrent(model, 8, 1);
    const eight = await concurrent(model, 8, 8);
    eight.tokens.forEach((t, i) => assert.deepEqual(t, alone[i].tokens, `${model}: generation ${i}`));
    one.tokens.forEach((t, i) => assert.deepEqual(t, alone[i].tokens));
    // One sequence: the pool admits one generation at a time, 8 x 30 steps of 30 ms. Eight: 30
    // shared passes of 8 tokens (CPU-like: 30 + 7 x 12 ms; GPU-like: 30 ms).
    const speedup = one.ms / eight.ms;
    assert.ok(speedup >= least, `${model}: ${one.ms} ms on one sequence, ${eight.ms} ms on eight: ${speedup.toFixed(2)}x`);
  }
});

test("one generation on an instance of 8 sequences: the same timings as on one sequence (SI and DSI, fixed and auto lookahead)", async () => {
  const pair = new SyntheticPair({ vocab: 32, seed: 5, agreement: 0.8 });
  const profile = withBatchCost(resolveProfile("30/3")!, "cpu");
  for (const algo of ["si", "dsi"] as const) {
    for (const lookahead of [3, "auto"] as const) {
      const run = async (sequences: number) => {
        const rt = syntheticRuntime({ pair, profile, sp: 2, sequences });
        return (await generate(algo, rt, { prompt: [1, 2, 3], maxTokens: 60, lookahead }).result).stats.timeMs;
      };
      assert.equal(await run(8), await run(1), `${algo} lookahead ${lookahead}`);
    }
  }
});
