/** TokenStream: push-to-pull bridge between the engine and a consumer. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { TokenStream } from "../../src/runtime/token-stream.js";

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of stream) out.push(x);
  return out;
}

/** Settles-by-now probe: the state of a promise after pending microtasks and one macrotask. */
async function state<T>(p: Promise<T>): Promise<"pending" | "fulfilled" | "rejected"> {
  let s: "pending" | "fulfilled" | "rejected" = "pending";
  p.then(
    () => (s = "fulfilled"),
    () => (s = "rejected"),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return s;
}

describe("TokenStream", () => {
  test("items pushed before the consumer starts are delivered in order", async () => {
    const s = new TokenStream<number>();
    s.push(1);
    s.push(2);
    s.push(3);
    s.end();
    assert.deepEqual(await collect(s), [1, 2, 3]);
  });

  test("a waiting consumer receives an item pushed later", async () => {
    const s = new TokenStream<string>();
    const it = s[Symbol.asyncIterator]();
    const next = it.next();
    assert.equal(await state(next), "pending");
    s.push("a");
    assert.deepEqual(await next, { value: "a", done: false });
  });

  test("interleaved pushes and waits deliver every item once, in order", async () => {
    const s = new TokenStream<number>();
    const consumer = collect(s);
    for (let i = 0; i < 5; i++) {
      s.push(i);
      await null;
      s.push(100 + i);
      await new Promise((resolve) => setImmediate(resolve));
    }
    s.end();
    assert.deepEqual(await consumer, [0, 100, 1, 101, 2, 102, 3, 103, 4, 104]);
  });

  test("end() finishes a waiting consumer", async () => {
    const s = new TokenStream<number>();
    const it = s[Symbol.asyncIterator]();
    const next = it.next();
    assert.equal(await state(next), "pending");
    s.end();
    assert.deepEqual(await next, { value: undefined, done: true });
  });

  test("end() after buffered items: items first, then done, and done stays done", async () => {
    const s = new TokenStream<number>();
    s.push(7);
    s.end();
    const it = s[Symbol.asyncIterator]();
    assert.deepEqual(await it.next(), { value: 7, done: false });
    assert.deepEqual(await it.next(), { value: undefined, done: true });
    assert.deepEqual(await it.next(), { value: undefined, done: true });
  });

  test("end(error) rejects a waiting consumer", async () => {
    const s = new TokenStream<number>();
    const it = s[Symbol.asyncIterator]();
    const next = it.next();
    const boom = new Error("boom");
    s.end(boom);
    await assert.rejects(next, (err) => err === boom);
  });

  test("end(error) after buffered items: items first, then the error, on every later next()", async () => {
    const s = new TokenStream<number>();
    const boom = new Error("late");
    s.push(1);
    s.push(2);
    s.end(boom);
    const it = s[Symbol.asyncIterator]();
    assert.deepEqual(await it.next(), { value: 1, done: false });
    assert.deepEqual(await it.next(), { value: 2, done: false });
    await assert.rejects(it.next(), (err) => err === boom);
    await assert.rejects(it.next(), (err) => err === boom);
  });

  test("for-await over a failed stream throws the error after the delivered items", async () => {
    const s = new TokenStream<number>();
    const boom = new Error("fail");
    const seen: number[] = [];
    const consumer = (async () => {
      for await (const x of s) seen.push(x);
    })();
    s.push(1);
    await new Promise((resolve) => setImmediate(resolve));
    s.push(2);
    s.end(boom);
    await assert.rejects(consumer, (err) => err === boom);
    assert.deepEqual(seen, [1, 2]);
  });

  test("only the first end() counts", async () => {
    const s = new TokenStream<number>();
    s.end();
    s.end(new Error("ignored"));
    assert.deepEqual(await collect(s), []);

    const t = new TokenStream<number>();
    const boom = new Error("first");
    t.end(boom);
    t.end();
    await assert.rejects(collect(t), (err) => err === boom);
  });

  test("two next() calls issued before any push both resolve, in order", async () => {
      const s = new TokenStream<number>();
      const it = s[Symbol.asyncIterator]();
      const first = it.next();
      const second = it.next();
      s.push(1);
      s.push(2);
      assert.equal(await state(first), "fulfilled");
      assert.deepEqual(await first, { value: 1, done: false });
      assert.deepEqual(await second, { value: 2, done: false });
  });
});
