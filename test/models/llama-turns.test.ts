/**
 * Sequences of a llama context that take turns (several threads per context, or a GPU: their
 * passes are not shared, llama.ts `SharedContext`): they take turns pass by pass, so another
 * sequence's step goes between the chunks of a long read, and a cancelled call leaves the
 * queue at once. Before, a sequence waited for every evaluation queued ahead of it on any
 * sequence of the context, whole, cancelled or not, and held its lease meanwhile.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { GREEDY } from "../../src/core/sampling.js";
import { LlamaPair, type LlamaInstance } from "../../src/models/llama.js";
import { LONG_PAIR, pairFiles } from "../helpers/gguf-models.js";

let pair: LlamaPair;
let sequences: LlamaInstance[];
let alone: LlamaInstance;
before(async () => {
  const files = await pairFiles("long", LONG_PAIR);
  // Two threads: the sequences take turns (a CPU context shares passes only with one thread).
  pair = await LlamaPair.load({ ...files, threads: 2, gpu: false, evalChunk: 32 });
  sequences = await pair.sequences("target", "t", 2);
  [alone] = await pair.sequences("target", "alone", 1);
  assert.equal(sequences[0].sharesPasses, false);
});
after(async () => {
  await pair.dispose();
});

const request = (tokens: number[]) => ({ tokens, from: tokens.length, mode: "greedy" as const, sampling: GREEDY, seed: 0, stream: 0 });
const path = (n: number, salt: number) => Array.from({ length: n }, (_, i) => (i * 37 + salt * 11) % 300);

test("taking turns: a one-token step of another sequence goes between the chunks of a long read, and a cancelled call rejects before that read ends", async () => {
  const order: string[] = [];
  const long = path(480, 1); // 15 chunks of 32
  const reading = sequences[0].evaluate({ ...request(long), from: 1 }).then((out) => (order.push("long read"), out));
  await new Promise((r) => setImmediate(r));
  const controller = new AbortController();
  const cancelled = sequences[1].evaluate(request(path(5, 2)), controller.signal).then(
    () => order.push("cancelled call resolved"),
    (err: Error) => order.push(`cancelled call: ${err.name}`),
  );
  await new Promise((r) => setImmediate(r));
  controller.abort();
  const step = sequences[1].evaluate(request(path(3, 3))).then((out) => (order.push("step"), out));
  const [outs, , stepOut] = await Promise.all([reading, cancelled, step]);
  assert.deepEqual(order, ["cancelled call: AbortError", "step", "long read"]);
  // Exact all the same: what each gives alone.
  assert.deepEqual(stepOut, await alone.evaluate(request(path(3, 3))));
  assert.deepEqual(outs.map((o) => o.token), (await alone.evaluate({ ...request(long), from: 1 })).map((o) => o.token));
});

test("taking turns: a call aborted during its pass rejects once the pass has ended; the sequence's next evaluation and the other's are exact", async () => {
  const long = path(480, 4);
  const controller = new AbortController();
  const reading = sequences[0].evaluate({ ...request(long), from: 1 }, controller.signal);
  await new Promise((r) => setImmediate(r));
  controller.abort();
  await assert.rejects(reading, (err: Error) => err.name === "AbortError");
  // At once: a pass still running would be missing from what the sequence knows it holds.
  const next = sequences[0].evaluate(request([...long.slice(0, 300), 7]));
  const other = sequences[1].evaluate(request(path(40, 5)));
  assert.deepEqual(await next, await alone.evaluate(request([...long.slice(0, 300), 7])));
  assert.deepEqual(await other, await alone.evaluate(request(path(40, 5))));
});
