/**
 * A target context that fails to be made (out of memory, say) is made again for the next
 * generation: before, the backend kept the rejected promise, and every later generation that
 * needed the instance failed at once for the life of the process.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { generate } from "../../src/algorithms/generate.js";
import { llamaBackend } from "../../src/models/backend.js";
import { PROFILES } from "../../src/models/latency.js";
import { LlamaPair } from "../../src/models/llama.js";
import { makeClock } from "../../src/runtime/clock.js";
import { LONG_PAIR, pairFiles } from "../helpers/gguf-models.js";

test("a target context that failed to be made is made again for the next generation", async () => {
  const files = await pairFiles("long", LONG_PAIR);
  const sequences = LlamaPair.prototype.sequences;
  let targetCalls = 0;
  LlamaPair.prototype.sequences = function (this: LlamaPair, ...args: Parameters<typeof sequences>) {
    if (args[0] === "target" && targetCalls++ === 0) return Promise.reject(new Error("out of memory (injected)"));
    return sequences.apply(this, args);
  };
  const backend = await llamaBackend({ ...files, threads: 1, gpu: false, sequences: 2 });
  try {
    const run = async (): Promise<number[]> => {
      const rt = await backend.runtime(makeClock("real"), 1, PROFILES.get("none")!);
      return (await generate("nonsi", rt, { prompt: backend.tokenizer.encode("hello"), maxTokens: 4 }).result).tokens;
    };
    await assert.rejects(run(), /out of memory \(injected\)/);
    assert.equal((await run()).length, 4, "the next generation made the context and ran");
    assert.equal((await run()).length, 4);
    assert.equal(targetCalls, 2, "one failed attempt, one context made");
  } finally {
    LlamaPair.prototype.sequences = sequences;
    await backend.close();
  }
});
