/**
 * When a llama context's next decode goes (decode-gate.ts): it waits, once the running decode
 * has ended, for the sequences that decode carried to ask again, at most a tenth of a decode.
 * node-llama-cpp's schedule is played here by a fake one: `dispatch` sends what is queued.
 */
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { test } from "node:test";
import { DecodeGate } from "../../src/models/decode-gate.js";

/** A context that runs one decode at a time for `ms`, taking every sequence queued when it starts, as node-llama-cpp's does. */
function fakeContext(gate: DecodeGate, ms: number) {
  let queued: object[] = [];
  let scheduled = false;
  const decodes: object[][] = [];
  let running = Promise.resolve();
  const dispatch = (): void => {
    scheduled = false;
    running = running.then(async () => {
      const batch = queued;
      queued = [];
      if (batch.length === 0) return;
      decodes.push(batch);
      await sleep(ms);
      for (const q of batch) (q as { done: () => void }).done();
    });
  };
  return {
    decodes,
    /** A sequence's evaluation: queued, decoded, returned. */
    evaluate(sequence: object): Promise<void> {
      gate.queued(sequence);
      return new Promise<void>((resolve) => {
        queued.push(Object.assign(sequence, { done: resolve }));
        if (!scheduled) {
          scheduled = true;
          gate.schedule(dispatch);
        }
      }).finally(() => gate.returned(sequence));
    },
  };
}

test("decode gate: a sequence that asks while a decode runs waits for the sequences of that decode to ask again, so decodes carry both instead of taking turns", async () => {
  const gate = new DecodeGate();
  const ctx = fakeContext(gate, 20);
  const [a, b] = [{ name: "a" }, { name: "b" }];
  const loop = async (q: object, startMs: number): Promise<void> => {
    await sleep(startMs);
    for (let i = 0; i < 4; i++) {
      await ctx.evaluate(q);
      await sleep(1); // the generation's own work before it asks again
    }
  };
  await Promise.all([loop(a, 0), loop(b, 5)]);
  const names = ctx.decodes.map((d) => d.map((q) => (q as { name: string }).name).sort().join(""));
  // a alone, then (once a's decode is known to last ~20 ms) b waits for a: together from then on.
  assert.ok(names.filter((n) => n === "ab").length >= 3, `decodes: ${names.join(" ")}`);
  assert.ok(names.length <= 5, `decodes: ${names.join(" ")} (taking turns would be 8)`);
  assert.ok(gate.gathers >= 1);
});
