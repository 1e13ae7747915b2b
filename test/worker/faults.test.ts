/**
 * What a worker's failure means (in-process workers on loopback, fast): Info says what a
 * client must check; a request the worker refuses (a token outside the vocabulary, a bad
 * `from`, a sequence longer than the context) or an error of its model fails that request and
 * leaves the instance in the pool, in every algorithm; only a worker that cannot be reached is
 * lost. And why fault tests use the whole-context synthetic model: a short history cannot see
 * an evaluation on a wrong prefix.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ServiceError } from "@grpc/grpc-js";
import { generate } from "../../src/algorithms/generate.js";
import { InstanceLostError, InvalidRequestError, type EvalRequest, type ModelInstance } from "../../src/core/instance.js";
import { GREEDY } from "../../src/core/sampling.js";
import type { PositionOutput } from "../../src/core/verify.js";
import { WorkerCallError, WorkerError } from "../../src/models/remote/client.js";
import { HASH_START, hashStep, workerClient, type EvaluateReply__Output, type EvaluateRequest } from "../../src/models/remote/protocol.js";
import { assembleRuntime, syntheticRuntime } from "../../src/models/runtime.js";
import { SyntheticPair } from "../../src/models/synthetic.js";
import { profile } from "../helpers/run.js";
import { connect, worker } from "../helpers/in-process-workers.js";

const pair = new SyntheticPair({ vocab: 16, seed: 5, agreement: 0.7, context: "all" });

/**
 * The synthetic target behind a model that refuses sequences longer than `limit` (as llama.cpp
 * does past its context; Info does not say so, so the client cannot check first) and fails
 * (a plain Error) on a sequence that starts with token 13.
 */
class Picky implements ModelInstance {
  readonly label = "picky";
  readonly vocabSize = 16;
  readonly eosToken = undefined;
  private readonly inner = pair.instance("target");
  constructor(private readonly limit: number) {}
  evaluate(req: EvalRequest, signal?: AbortSignal): Promise<PositionOutput[]> {
    if (req.tokens.length > this.limit) return Promise.reject(new InvalidRequestError(`the sequence (${req.tokens.length} tokens) does not fit the model context of ${this.limit} tokens`));
    if (req.tokens.at(0) === 13) return Promise.reject(new Error("the model failed (a test fault)"));
    return this.inner.evaluate(req, signal);
  }
}


const req = (tokens: number[], from = tokens.length): EvalRequest => ({ tokens, from, mode: "greedy", sampling: GREEDY, seed: 0, stream: 1 });
const local = pair.instance("target");

test("Info says what a client must check: vocabulary, EOS, context size, eval chunk, backend", async () => {
  const limited = await connect((await worker(pair.instance("target"), { contextSize: 40, evalChunk: 8 })).address);
  assert.equal(limited.vocabSize, 16);
  assert.equal(limited.eosToken, undefined);
  assert.equal(limited.contextSize, 40);
  assert.equal(limited.evalChunk, 8);
  assert.equal(limited.backend, "synthetic");
  const plain = await connect((await worker(pair.instance("target"))).address);
  assert.equal(plain.contextSize, undefined, "0 on the wire: unlimited");
  assert.equal(plain.evalChunk, undefined, "0 on the wire: not applicable");
});

test("the worker refuses bad requests (INVALID_ARGUMENT, OUT_OF_RANGE) and keeps what it held", async () => {
  const w = await worker(pair.instance("target"), { contextSize: 8 });
  const client = workerClient(w.address);
  const call = (m: EvaluateRequest): Promise<EvaluateReply__Output> =>
    new Promise((resolve, reject) =>
      client.evaluate({ keep: 0, append: [], keepHash: HASH_START, from: 0, mode: "GREEDY", sampling: GREEDY, seed: 0, stream: 1, probsFormat: "FLOAT32", ...m }, (err, res) => (err ? reject(err) : resolve(res!))),
    );
  try {
    const held = [1, 2, 3];
    const hash = held.reduce(hashStep, HASH_START);
    const first = await call({ append: held, from: 3 });
    assert.equal(first.held, 3);
    const refusals: [EvaluateRequest, number, RegExp][] = [
      [{ append: [99], from: 4 }, 3, /token 99 is outside the vocabulary of 16/],
      [{ append: [4], from: 9 }, 3, /from 9 is outside 1\.\.4/],
      // A mode from a newer client: an enum number this worker does not know.
      [{ append: [4], from: 4, mode: 7 as unknown as EvaluateRequest["mode"] }, 3, /unknown output mode 7/],
      [{ append: [4, 5, 6, 7, 8, 9], from: 9 }, 11, /the sequence \(9 tokens\) plus the token it predicts exceeds the model context of 8 tokens/],
      // Full is too long: the token it predicts must fit too.
      [{ append: [4, 5, 6, 7, 8], from: 8 }, 11, /the sequence \(8 tokens\) plus the token it predicts exceeds the model context of 8 tokens/],
    ];
    for (const [m, code, message] of refusals) {
      await assert.rejects(call({ keep: 3, keepHash: hash, ...m }), (err: ServiceError) => {
        assert.equal(err.code, code, err.details);
        assert.match(err.details, message);
        return true;
      });
    }
    // Nothing of the refused requests was applied: the worker still holds [1, 2, 3].
    const next = await call({ keep: 3, keepHash: hash, append: [4], from: 4 });
    assert.deepEqual(next.tokens, (await local.evaluate(req([1, 2, 3, 4]))).map((o) => o.token));
  } finally {
    client.close();
  }
});

test("a refused request and a model's error fail the request, not the instance; only an unreachable worker is lost", async () => {
  const w = await worker(new Picky(10));
  const r = await connect(w.address);
  const good = [2, 7, 1, 5];
  const expect = async (tokens: number[]): Promise<void> => assert.deepEqual(await r.evaluate(req(tokens, 1)), await local.evaluate(req(tokens, 1)));
  await expect(good);
  await assert.rejects(r.evaluate(req([...good, 1, 2, 3, 4, 5, 6, 7, 8], 5)), (err: Error) => {
    assert.ok(err instanceof InvalidRequestError && !(err instanceof InstanceLostError), `${err.name}: ${err.message}`);
    assert.equal(err.message, `worker ${w.address} refused the request: the sequence (12 tokens) does not fit the model context of 10 tokens`);
    return true;
  });
  await expect([...good, 9]);
  await assert.rejects(r.evaluate(req([13, 1, 2], 1)), (err: Error) => {
    assert.ok(err instanceof WorkerCallError && !(err instanceof InstanceLostError), `${err.name}: ${err.message}`);
    assert.match(err.message, /its model failed: the model failed \(a test fault\)/);
    return true;
  });
  // After each failure the client and the worker still agree on what it holds.
  await expect([...good, 9, 3]);
  await expect([13 - 1, 1, 2]);

  // What Info says the worker takes is checked before sending: no round trip.
  const limited = await worker(pair.instance("target"), { contextSize: 10 });
  const l = await connect(limited.address);
  await assert.rejects(l.evaluate(req(Array.from({ length: 10 }, (_, i) => i))), (err: Error) => err instanceof InvalidRequestError && /the sequence \(10 tokens\) plus the token it predicts exceeds the model context of 10 tokens/.test(err.message));
  await assert.rejects(l.evaluate(req([1, 99, 2])), (err: Error) => err instanceof InvalidRequestError && /token 99 at position 1 is outside the vocabulary of 16/.test(err.message));
  assert.equal(limited.counters.calls, 0, "nothing was sent");

  // A worker that stopped is lost.
  await w.close();
  await assert.rejects(r.evaluate(req([...good, 9, 3, 4])), (err: Error) => err instanceof WorkerError && err instanceof InstanceLostError);
});

for (const algo of ["nonsi", "si", "dsi"] as const) {
  test(`${algo}: a request the workers refuse fails the generation with that error, releases its instances and retires none`, async () => {
    const workers = await Promise.all([0, 1].map(() => worker(new Picky(10))));
    const targets = await Promise.all(workers.map((w) => connect(w.address)));
    const rt = assembleRuntime({ clock: "real", drafter: pair.instance("drafter"), target: (i) => targets[i], vocabSize: 16, eosToken: undefined, sp: algo === "dsi" ? 2 : 1 });
    const o = { prompt: [2, 7, 1, 5, 9], seed: 0, ...(algo === "nonsi" ? {} : { lookahead: 3 }) };
    // 5 + 9 tokens: the last sequences evaluated hold more than 10.
    await assert.rejects(generate(algo, rt, { ...o, maxTokens: 9 }).result, (err: Error) => err instanceof InvalidRequestError && /refused the request: the sequence \(1[1-3] tokens\) does not fit/.test(err.message));
    assert.equal(rt.pool.alive, rt.pool.size, "no instance retired");
    assert.equal(rt.pool.busy, 0, "every lease released");
    assert.ok(!rt.events.events.some((e) => e.type === "retire"));
    assert.ok(!rt.events.events.some((e) => e.type === "task-lost"));
    // The pool serves the next generation as before.
    const fits = await generate(algo, rt, { ...o, maxTokens: 5 }).result;
    assert.deepEqual(fits.tokens, (await generate("nonsi", syntheticRuntime({ pair }), { prompt: o.prompt, maxTokens: 5 }).result).tokens);
  });
}

/**
 * A target that evaluates on a wrong prefix once the sequence is long enough (its first token
 * changed), as a worker holding a stale sequence would.
 */
function wrongPrefix(inner: ModelInstance): ModelInstance {
  return {
    label: inner.label,
    vocabSize: inner.vocabSize,
    eosToken: inner.eosToken,
    evaluate: (r, signal) => {
      const tokens = r.tokens.slice();
      if (tokens.length > 6) tokens[0] = (tokens[0] + 1) % inner.vocabSize;
      return inner.evaluate({ ...r, tokens }, signal);
    },
  };
}

test("a short history cannot see an evaluation on a wrong prefix; the whole-context mode (history all) does", async () => {
  const o = { prompt: [2, 7, 1], maxTokens: 30, seed: 0 };
  const seen = async (history: number | "all"): Promise<{ direct: boolean; generation: boolean }> => {
    const p = new SyntheticPair({ vocab: 16, seed: 5, agreement: 0.7, context: history });
    // Direct: outputs at positions 3.. after prefixes that differ only in their first token.
    const tokens = [4, 9, 2, 11, 5, 0, 8, 3, 14, 6];
    const other = [5, ...tokens.slice(1)];
    const t = p.instance("target");
    const a = await t.evaluate(req(tokens, 3));
    const b = await t.evaluate(req(other, 3));
    // Through the engine: DSI on a faulty target against non-SI on a sound one.
    const reference = (await generate("nonsi", syntheticRuntime({ pair: p }), o).result).tokens;
    const rt = assembleRuntime({ drafter: p.instance("drafter"), target: () => wrongPrefix(p.instance("target")), vocabSize: 16, eosToken: undefined, sp: 3, profile: profile(10, 1) });
    const faulty = (await generate("dsi", rt, { ...o, lookahead: 3 }).result).tokens;
    return { direct: a.some((x, i) => x.token !== b[i].token), generation: faulty.some((x, i) => x !== reference[i]) };
  };
  assert.deepEqual(await seen(2), { direct: false, generation: false }, "history 2: the wrong prefix is invisible");
  assert.deepEqual(await seen("all"), { direct: true, generation: true }, "history all: the wrong prefix changes the output");
});
