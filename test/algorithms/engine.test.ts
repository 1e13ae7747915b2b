/** Engine behaviour shared by all algorithms: streaming, stop conditions, cancellation, option checks. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { generate } from "../../src/algorithms/generate.js";
import { ALGORITHMS, OptionError, type AlgorithmName, type GenerateOptions } from "../../src/algorithms/options.js";
import { syntheticRuntime } from "../../src/models/runtime.js";
import { TargetPool } from "../../src/runtime/pool.js";
import { GREEDY } from "../../src/core/sampling.js";
import { SyntheticPair, SyntheticTokenizer } from "../../src/models/synthetic.js";
import { profile, run } from "../helpers/run.js";

const base = (algo: AlgorithmName, o: Partial<GenerateOptions> = {}): GenerateOptions => ({
  prompt: [1, 2, 3],
  maxTokens: 40,
  sampling: GREEDY,
  verify: "greedy",
  seed: 0,
  ...(algo === "nonsi" ? {} : { lookahead: 3 }),
  ...o,
});

test("streaming: iterated tokens equal the result's tokens, for every algorithm", async () => {
  const pair = new SyntheticPair({ seed: 4 });
  for (const algo of ALGORITHMS) {
    const rt = syntheticRuntime({ pair, profile: profile(10, 2), sp: 3 });
    const gen = generate(algo, rt, base(algo));
    const streamed: number[] = [];
    for await (const t of gen) streamed.push(t);
    const { tokens, finishReason } = await gen.result;
    assert.deepEqual(streamed, tokens);
    assert.equal(tokens.length, 40);
    assert.equal(finishReason, "length");
  }
});

test("EOS ends the generation and is not part of the output, identically for every algorithm", async () => {
  // Find a model seed whose greedy continuation hits token 0 within 40 tokens, then make 0 the EOS.
  let found = false;
  for (let seed = 0; seed < 50 && !found; seed++) {
    const plain = await run("nonsi", new SyntheticPair({ vocab: 8, seed }), { maxTokens: 40 });
    const at = plain.tokens.indexOf(0);
    if (at < 1) continue;
    found = true;
    const pair = new SyntheticPair({ vocab: 8, seed, eosToken: 0 });
    for (const algo of ALGORITHMS) {
      const r = await run(algo, pair, { maxTokens: 40, sp: 3 });
      assert.equal(r.finishReason, "eos", algo);
      assert.deepEqual(r.tokens, plain.tokens.slice(0, at), algo);
    }
    const ignored = await run("dsi", pair, { maxTokens: 40, sp: 3, stopAtEos: false });
    assert.deepEqual(ignored.tokens, plain.tokens);
  }
  assert.ok(found);
});

test("stop sequences: output ends before the sequence; streamed tokens never include it", async () => {
  const pair = new SyntheticPair({ vocab: 8, seed: 2 });
  const plain = await run("nonsi", pair, { maxTokens: 40 });
  const stop = plain.tokens.slice(20, 23);
  const at = plain.tokens.findIndex((_, i) => stop.every((t, j) => plain.tokens[i + j] === t));
  for (const algo of ALGORITHMS) {
    const rt = syntheticRuntime({ pair, profile: profile(10, 2), sp: 3 });
    // A partial match of the stop sequence is held back and then released.
    const gen = generate(algo, rt, base(algo, { stop: [stop, [stop[0], 99]] }));
    const streamed: number[] = [];
    for await (const t of gen) streamed.push(t);
    const r = await gen.result;
    assert.equal(r.finishReason, "stop");
    assert.deepEqual(r.tokens, plain.tokens.slice(0, at));
    assert.deepEqual(streamed, r.tokens);
  }
});

test("maxTokens 0 returns at once; maxTokens 1 is one target pass", async () => {
  const pair = new SyntheticPair();
  for (const algo of ALGORITHMS) {
    const zero = await run(algo, pair, { maxTokens: 0, sp: 2 });
    assert.deepEqual(zero.tokens, []);
    assert.equal(zero.stats.timeMs, 0);
    const one = await run(algo, pair, { maxTokens: 1, sp: 2, profile: profile(10, 2) });
    assert.equal(one.tokens.length, 1);
    assert.equal(one.stats.timeMs, 10);
  }
});

test("cancellation: aborting the request rejects with an AbortError and leaves nothing running", async () => {
  const pair = new SyntheticPair();
  for (const algo of ALGORITHMS) {
    const controller = new AbortController();
    const rt = syntheticRuntime({ pair, profile: profile(10, 2), sp: 3, clock: "real" });
    const gen = generate(algo, rt, base(algo, { maxTokens: 1000, signal: controller.signal }));
    const seen: number[] = [];
    await assert.rejects(
      (async () => {
        for await (const t of gen) {
          seen.push(t);
          if (seen.length === 3) controller.abort();
        }
      })(),
      (err: Error) => err.name === "AbortError",
    );
    await assert.rejects(gen.result, (err: Error) => err.name === "AbortError");
    assert.ok(seen.length >= 3 && seen.length < 1000);
  }
});

test("bad options throw an OptionError naming the option", () => {
  const rt = syntheticRuntime({ pair: new SyntheticPair(), sp: 2 });
  const cases: [Partial<GenerateOptions>, string][] = [
    [{ lookahead: 0 }, "lookahead"],
    [{ maxTokens: -1 }, "maxTokens"],
    [{ sampling: { temperature: -1, topK: 0, topP: 1 } }, "temperature"],
    [{ sampling: { temperature: 1, topK: 0, topP: 0 }, verify: "rejection" }, "topP"],
    [{ sampling: { temperature: 1, topK: 0, topP: 1 }, verify: "greedy" }, "verify"],
    [{ verify: "match" }, "verify"],
    [{ prompt: [] }, "prompt"],
    [{ prompt: [99] }, "prompt"],
  ];
  for (const [o, option] of cases) {
    assert.throws(
      () => generate("dsi", rt, base("dsi", o)),
      (err: unknown) => err instanceof OptionError && err.option === option,
      JSON.stringify(o),
    );
  }
  const mismatched = { ...rt, drafter: new SyntheticPair({ vocab: 16 }).instance("drafter") };
  assert.throws(() => generate("si", mismatched, base("si")), (err: unknown) => err instanceof OptionError && err.option === "drafter");
  // A lookahead means nothing to non-SI: refused, not ignored.
  assert.throws(() => generate("nonsi", rt, base("nonsi", { lookahead: 3 })), (err: unknown) => err instanceof OptionError && err.option === "lookahead");
  // Only the prompt is required.
  assert.doesNotThrow(() => generate("nonsi", rt, { prompt: [1] }));
  assert.throws(() => syntheticRuntime({ pair: new SyntheticPair(), sp: 0 }), /pool size/);
});

test("stats: counts are consistent", async () => {
  const pair = new SyntheticPair({ agreement: 0.6, seed: 8 });
  for (const algo of ALGORITHMS) {
    const r = await run(algo, pair, { maxTokens: 60, sp: 3, profile: profile(10, 2) });
    const s = r.stats;
    assert.equal(s.tokens, 60);
    if (algo === "nonsi") assert.deepEqual([s.drafted, s.accepted, s.rejected], [0, 0, 0], "non-SI drafts nothing");
    else assert.ok(s.accepted + s.rejected <= s.drafted, `${algo}: ${s.accepted} + ${s.rejected} decided of ${s.drafted} drafted`);
    assert.ok(s.accepted <= 60);
    if (algo === "nonsi") assert.equal(s.verifications, 60);
    assert.equal(s.clock, "virtual");
    assert.ok(s.ttftMs > 0 && s.ttftMs <= s.timeMs);
    assert.ok(s.targetBusyMs > 0);
    assert.equal(s.verifications, r.events.filter((e) => e.type === "dispatch").length);
  }
});

test("failures end the generation: a throwing verifier, a failing target, a drafter's stray AbortError", { timeout: 10_000 }, async () => {
  const pair = new SyntheticPair({ agreement: 0.7 });
  for (const algo of ["si", "dsi"] as const) {
    const rt = syntheticRuntime({ pair, profile: profile(10, 1), sp: 2 });
    const boom = (): never => {
      throw new Error("verifier boom");
    };
    await assert.rejects(generate(algo, rt, base(algo, { verifier: boom })).result, /verifier boom/);
  }
  for (const algo of ALGORITHMS) {
    const rt = syntheticRuntime({ pair, profile: profile(10, 1), sp: 2 });
    let calls = 0;
    const inner = pair.instance("target");
    const flaky = { label: inner.label, vocabSize: inner.vocabSize, eosToken: inner.eosToken, evaluate: (req: never, signal?: AbortSignal) => (++calls > 3 ? Promise.reject(new Error("device lost")) : inner.evaluate(req, signal)) };
    await assert.rejects(generate(algo, { ...rt, pool: TargetPool.of([flaky, flaky]) }, base(algo)).result, /device lost/);
  }
  for (const algo of ["si", "dsi"] as const) {
    const rt = syntheticRuntime({ pair, profile: profile(10, 1), sp: 2 });
    const closed = { ...rt.drafter, label: "drafter", vocabSize: rt.drafter!.vocabSize, eosToken: undefined, evaluate: () => Promise.reject(Object.assign(new Error("backend closed"), { name: "AbortError" })) };
    await assert.rejects(generate(algo, { ...rt, drafter: closed }, base(algo)).result, /backend closed/);
  }
});

test("text stop sequences: matched on decoded text across token boundaries, held back while partial", async () => {
  const pair = new SyntheticPair({ vocab: 8, seed: 2 });
  const tok = new SyntheticTokenizer(8);
  const plain = await run("nonsi", pair, { maxTokens: 40 });
  const text = tok.decode(plain.tokens);
  const stop = text.slice(20, 23);
  const at = text.indexOf(stop);
  for (const algo of ALGORITHMS) {
    const rt = syntheticRuntime({ pair, profile: profile(10, 2), sp: 3 });
    const gen = generate(algo, rt, base(algo, { stopText: { strings: [stop, "zzzz"], decode: (t) => tok.decode(t) } }));
    const streamed: number[] = [];
    for await (const t of gen) streamed.push(t);
    const r = await gen.result;
    assert.equal(r.finishReason, "stop");
    assert.equal(tok.decode(r.tokens), text.slice(0, at));
    assert.deepEqual(streamed, r.tokens);
  }
});
