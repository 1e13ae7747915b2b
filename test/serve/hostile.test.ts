/**
 * `dsi serve` under hostile clients, each with the request that found the defect: a body
 * that stops arriving, a silent connection, errors raised before a route (bad URL, headers
 * too large, conflicting framing, no Host, bad JSON, wrong content type, body too large),
 * `Connection: close` on a stream, and prompts of megabytes, which must neither be tokenized
 * when they cannot fit nor hold up `/health` while they are tokenized.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { connect } from "node:net";
import { after, test } from "node:test";
import OpenAI from "openai";
import type { FastifyInstance } from "fastify";
import { llamaBackend, syntheticBackend, type Backend, type Tokenizer } from "../../src/models/backend.js";
import { resolveProfile } from "../../src/models/latency.js";
import { SyntheticTokenizer } from "../../src/models/synthetic.js";
import { ServeMetrics } from "../../src/serve/metrics.js";
import { maxTokenBytes } from "../../src/serve/prompt.js";
import { buildServer, type ServerOptions } from "../../src/serve/server.js";
import { Service } from "../../src/serve/service.js";
import { pairFiles, SMALL_PAIR } from "../helpers/gguf-models.js";
import { CLI, dsi, eventually, stopChildren } from "../helpers/processes.js";

const SPEC = { vocab: 32, seed: 3, agreement: 0.7 };
const servers: FastifyInstance[] = [];
const children: ChildProcess[] = [];
const backends: Backend[] = [];
after(async () => {
  for (const s of servers) await s.close();
  await stopChildren(children);
  for (const b of backends) await b.close();
});

/** A server in this process on a free port; its port and URL. */
async function serve(o: { backend?: Backend; latency?: string } & Partial<ServerOptions> = {}) {
  const metrics = new ServeMetrics();
  const service = await Service.open({ backend: o.backend ?? syntheticBackend(SPEC), sp: 2, profile: resolveProfile(o.latency ?? "none")!, maxConcurrent: 8, maxQueue: 8, metrics });
  const app = buildServer({ slot: { service }, metrics, modelId: "dsi", algo: "dsi", lookahead: 4, defaultMaxTokens: 16, ...o });
  const url = await app.listen({ host: "127.0.0.1", port: 0 });
  servers.push(app);
  return { url, port: (app.server.address() as { port: number }).port };
}

interface RawResult {
  /** Everything the server sent. */
  text: string;
  /** Whether the server closed the connection within the wait. */
  closed: boolean;
  /** Milliseconds from the first byte sent to the close (or the end of the wait). */
  ms: number;
}

/**
 * Sends `chunks` on a raw TCP connection, then reads until the server closes it or `waitMs`
 * pass; or, unless `untilClose`, until a whole response with a Content-Length has come.
 */
function raw(port: number, chunks: string[], waitMs: number, untilClose = false): Promise<RawResult> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const socket = connect(port, "127.0.0.1");
    let text = "";
    const done = (closed: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closed, ms: performance.now() - t0 });
    };
    const timer = setTimeout(() => done(false), waitMs);
    socket.on("data", (d: Buffer) => {
      text += d.toString();
      const head = text.indexOf("\r\n\r\n");
      const length = /\r\ncontent-length: (\d+)\r\n/i.exec(text.slice(0, head + 2));
      if (!untilClose && head >= 0 && length && Buffer.byteLength(text.slice(head + 4)) >= Number(length[1])) done(false);
    });
    socket.on("error", () => undefined);
    socket.on("close", () => done(true));
    for (const c of chunks) socket.write(c);
  });
}

/** The status and JSON body of a raw response with a Content-Length. */
function response(r: RawResult): { status: number; headers: string; body: unknown } {
  const m = /^HTTP\/1\.1 (\d{3}) [^\r]*\r\n([\s\S]*?)\r\n\r\n([\s\S]*)$/.exec(r.text);
  assert.ok(m, `an HTTP response: ${JSON.stringify(r.text.slice(0, 300))}`);
  return { status: Number(m[1]), headers: m[2].toLowerCase(), body: JSON.parse(m[3]) as unknown };
}

/** Asserts an OpenAI error body: exactly {error: {message, type, param, code}}. */
function assertOpenAiError(body: unknown, want: { type?: string; param?: string | null; code?: string | null; message?: RegExp }): void {
  const b = body as { error: { message: string; type: string; param: string | null; code: string | null } };
  assert.deepEqual(Object.keys(b), ["error"], JSON.stringify(body));
  assert.deepEqual(Object.keys(b.error).sort(), ["code", "message", "param", "type"], JSON.stringify(body));
  assert.equal(typeof b.error.message, "string");
  assert.ok(b.error.message.length > 0);
  assert.equal(b.error.type, want.type ?? "invalid_request_error", JSON.stringify(body));
  if (want.param !== undefined) assert.equal(b.error.param, want.param, JSON.stringify(body));
  if (want.code !== undefined) assert.equal(b.error.code, want.code, JSON.stringify(body));
  if (want.message) assert.match(b.error.message, want.message);
}

const post = (path: string, body: string, headers = "content-type: application/json\r\n"): string =>
  `POST ${path} HTTP/1.1\r\nhost: x\r\n${headers}content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

test("dsi serve --request-timeout/--headers-timeout: a body that stops arriving and a silent connection get 408; generations longer than the timeouts complete", { timeout: 60_000 }, async () => {
  const child = spawn(process.execPath, [CLI, "serve", "--port", "0", "--request-timeout", "1", "--headers-timeout", "1", "--latency", "30/3", "--algo", "nonsi", "--vocab", "32", "--max-tokens-limit", "100"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  assert.ok(await eventually(() => /ready on (\S+)/.test(out), 20_000), out);
  const url = /ready on (\S+)/.exec(out)![1];
  const port = Number(new URL(url).port);

  // The audit's slowloris: the headers and 9 of 1000 body bytes, then silence. Before: no
  // answer after 240 s (fastify's requestTimeout was 0). Generous bound: 1 s plus checks.
  const slow = await raw(port, ['POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"model":'], 8000, true);
  assert.ok(slow.closed, `the connection stays open: ${JSON.stringify(slow.text)}`);
  assert.ok(slow.ms >= 900, `answered after ${slow.ms} ms, before the timeout`);
  const s = response(slow);
  assert.equal(s.status, 408);
  assertOpenAiError(s.body, { param: null, code: "request_timeout", message: /--request-timeout/ });

  // A connection that sends nothing: closed by the header timeout.
  const silent = await raw(port, [], 8000, true);
  assert.ok(silent.closed, "a silent connection stays open");
  assert.equal(response(silent).status, 408);
  // Headers that stop half-way.
  const halfHeaders = await raw(port, ["GET /health HTTP/1.1\r\nhost: x\r\n"], 8000, true);
  assert.ok(halfHeaders.closed);
  assert.equal(response(halfHeaders).status, 408);

  // The request timeout is for receiving the request: a response that takes longer is not cut.
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "none", maxRetries: 0 });
  const t0 = performance.now();
  let streamed = "";
  let finish: string | null = null;
  const st = await client.completions.create({ model: "dsi", prompt: "the", max_tokens: 80, temperature: 0, stream: true });
  for await (const chunk of st) {
    streamed += chunk.choices[0]?.text ?? "";
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.ok(performance.now() - t0 > 1500, `the stream took ${performance.now() - t0} ms: not longer than the timeouts`);
  assert.equal(streamed.length, 80);
  assert.equal(finish, "length");
  const t1 = performance.now();
  const whole = await client.completions.create({ model: "dsi", prompt: "the", max_tokens: 80, temperature: 0 });
  assert.ok(performance.now() - t1 > 1500);
  assert.equal(whole.choices[0].text, streamed);

  // --max-tokens-limit reaches the server.
  const over = await fetch(`${url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "dsi", prompt: "the", max_tokens: 101 }) });
  assert.equal(over.status, 400);
  assertOpenAiError(await over.json(), { param: "max_tokens", message: /0\.\.100 \(this server's --max-tokens-limit\)/ });
});

test("dsi serve refuses timeout and limit flags that contradict each other or are out of range", async () => {
  for (const [args, message] of [
    [["--headers-timeout", "5", "--request-timeout", "2"], /--headers-timeout: 5 s exceeds --request-timeout \(2 s\)/],
    [["--max-tokens", "20", "--max-tokens-limit", "10"], /--max-tokens: 20 exceeds --max-tokens-limit \(10\)/],
    [["--request-timeout", "0"], /--request-timeout.*1\.\.3600/],
    [["--headers-timeout", "1.5"], /--headers-timeout.*integer in 1\.\.3600/],
    [["--max-tokens-limit", "1000001"], /--max-tokens-limit.*1\.\.1000000/],
  ] as [string[], RegExp][]) {
    const r = await dsi(["serve", "--port", "0", ...args]);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
});

test("errors raised before a route handler come back in OpenAI's shape", async () => {
  const { port } = await serve();
  const cases: [string, string[], number, { param?: string | null; code?: string | null; message?: RegExp }][] = [
    ["a bad URL", ["GET /% HTTP/1.1\r\nhost: x\r\n\r\n"], 400, { param: null, code: "invalid_url" }],
    ["headers too large", [`GET /health HTTP/1.1\r\nhost: x\r\nx-big: ${"a".repeat(20_000)}\r\n\r\n`], 431, { param: null, code: "headers_too_large" }],
    [
      "Content-Length and Transfer-Encoding",
      ["POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n"],
      400,
      { param: null, code: "malformed_request", message: /Transfer-Encoding/ },
    ],
    ["no Host", ["GET /health HTTP/1.1\r\n\r\n"], 400, { param: null, code: "malformed_request", message: /Host/ }],
    ["not HTTP", ["HELLO\r\n\r\n"], 400, { param: null, code: "malformed_request" }],
    ["malformed JSON", [post("/v1/completions", '{"model": "dsi", ')], 400, { param: "body", message: /not valid JSON/ }],
    ["an empty JSON body", [post("/v1/completions", "")], 400, { param: "body" }],
    ["a __proto__ key", [post("/v1/completions", '{"__proto__": {"model": "dsi"}}')], 400, { param: "body" }],
    ["text/plain", [post("/v1/completions", "hello", "content-type: text/plain\r\n")], 415, { param: "body", code: "unsupported_media_type", message: /got text\/plain/ }],
    ["no Content-Type", [post("/v1/completions", "{}", "")], 415, { param: "body", code: "unsupported_media_type" }],
    [
      "a body over the limit",
      ["POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 17000000\r\n\r\n{"],
      413,
      { param: "body", code: "request_too_large" },
    ],
    ["a body shorter than its Content-Length", ["POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 4\r\nconnection: close\r\n\r\n{}"], 408, {}],
    ["no such route", ["GET /v2/models HTTP/1.1\r\nhost: x\r\n\r\n"], 404, { param: null, code: "not_found" }],
  ];
  for (const [name, chunks, status, want] of cases) {
    // A generous wait: every case is answered at once, except the short body (the default
    // header and request timeouts apply here: it is answered by the request timeout, so it
    // is given its own server below).
    if (status === 408) continue;
    const r = await raw(port, chunks, 5000);
    const res = response(r);
    assert.equal(res.status, status, `${name}: ${r.text.slice(0, 300)}`);
    assert.match(res.headers, /content-type: application\/json/, name);
    assertOpenAiError(res.body, want);
  }
  // HTTP/1.0 needs no Host.
  const old = response(await raw(port, ["GET /health HTTP/1.0\r\n\r\n"], 5000));
  assert.equal(old.status, 200);
  // The short body, with a short request timeout.
  const short = await serve({ requestTimeoutMs: 500, headersTimeoutMs: 500 });
  const [name, chunks] = cases.find((c) => c[2] === 408)!;
  const r = await raw(short.port, chunks, 5000, true);
  assert.ok(r.closed, name);
  const res = response(r);
  assert.equal(res.status, 408, name);
  assertOpenAiError(res.body, { param: null, code: "request_timeout" });
});

test("a streamed response honours Connection: close: the server closes the socket after [DONE]", async () => {
  const { port } = await serve();
  const body = JSON.stringify({ model: "dsi", prompt: "the", max_tokens: 8, temperature: 0, stream: true });
  // Before: the socket stayed open after [DONE] (the stream's headers said keep-alive).
  const r = await raw(port, [post("/v1/completions", body, "content-type: application/json\r\nconnection: close\r\n")], 5000, true);
  assert.ok(r.closed, `the socket stays open: ${JSON.stringify(r.text.slice(-200))}`);
  assert.match(r.text, /^HTTP\/1\.1 200 /);
  assert.match(r.text, /\r\nconnection: close\r\n/i);
  assert.match(r.text, /data: \[DONE\]\n\n/);
  // Without Connection: close the connection stays open for the next request.
  const kept = await raw(port, [post("/v1/completions", body)], 1000, true);
  assert.match(kept.text, /data: \[DONE\]\n\n/);
  assert.equal(kept.closed, false);
});

test("a model with a context: a prompt of megabytes is refused by its size, never tokenized; /health answers meanwhile", { timeout: 120_000 }, async () => {
  const files = await pairFiles("small", SMALL_PAIR);
  const llama = await llamaBackend({ ...files, threads: 1, gpu: false });
  backends.push(llama);
  /** Lengths of the texts the server tokenized. */
  const seen: number[] = [];
  const tokenizer: Tokenizer = {
    encode: (t) => (seen.push(t.length), llama.tokenizer.encode(t)),
    decode: (t) => llama.tokenizer.decode(t),
    chat: llama.tokenizer.chat,
  };
  const { url } = await serve({ backend: { ...llama, tokenizer } });
  const json = { "content-type": "application/json" };
  const huge = "The capital of France is Paris. ".repeat(10 * 2 ** 15); // 10 MiB
  const big = fetch(`${url}/v1/completions`, { method: "POST", headers: json, body: JSON.stringify({ model: "dsi", prompt: huge, max_tokens: 4 }) });
  const bigChat = fetch(`${url}/v1/chat/completions`, { method: "POST", headers: json, body: JSON.stringify({ model: "dsi", messages: [{ role: "user", content: huge }], max_tokens: 4 }) });
  const health = fetch(`${url}/health`);
  for (const [res, param] of [
    [await big, "prompt"],
    [await bigChat, "messages"],
  ] as const) {
    assert.equal(res.status, 400);
    assertOpenAiError(await res.json(), { param, code: "context_length_exceeded", message: /\(\d{8} bytes, so at least \d+ tokens: no token of this model stands for more than \d+ bytes\)/ });
  }
  assert.equal((await health).status, 200);
  // Before: the whole prompt was tokenized first (5.3 s on the llama server for 10 MB).
  assert.ok(seen.every((n) => n < 1000), `tokenized texts of ${Math.max(...seen)} characters`);
  // A prompt that fits is still served, and one over the context by its tokens is still refused.
  const fits = await fetch(`${url}/v1/completions`, { method: "POST", headers: json, body: JSON.stringify({ model: "dsi", prompt: "The capital of France is", max_tokens: 4, temperature: 0 }) });
  assert.equal(fits.status, 200);
  const over = await fetch(`${url}/v1/completions`, { method: "POST", headers: json, body: JSON.stringify({ model: "dsi", prompt: "The capital of France is Paris. ".repeat(10), max_tokens: 4 }) });
  assert.equal(over.status, 400);
  assertOpenAiError(await over.json(), { code: "context_length_exceeded", message: /tokens\) plus max_tokens/ });
});

test("the size bound never refuses a prompt that fits: tokens >= bytes / maxTokenBytes on the GGUF tokenizer", { timeout: 120_000 }, async () => {
  const files = await pairFiles("small", SMALL_PAIR);
  const llama = await llamaBackend({ ...files, threads: 1, gpu: false });
  backends.push(llama);
  const bound = maxTokenBytes(llama.tokenizer, SMALL_PAIR.target.vocab);
  // Texts of every kind of character the vocabulary meets: its own pieces, spaces, bytes
  // it has no piece for (byte fallback), multi-byte characters.
  const pieces = Array.from({ length: SMALL_PAIR.target.vocab }, (_, id) => llama.tokenizer.decode([id]));
  const alphabet = [...pieces, " ", "  ", "\n", "é", "日本", "🙂", "\u0000", "ab", "the "];
  let seed = 7;
  const next = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
  for (let i = 0; i < 300; i++) {
    let text = "";
    const length = 1 + (next() % 60);
    for (let j = 0; j < length; j++) text += alphabet[next() % alphabet.length];
    const tokens = llama.tokenizer.encode(text).length;
    assert.ok(tokens >= Math.ceil(Buffer.byteLength(text) / bound), `${JSON.stringify(text)}: ${tokens} tokens for ${Buffer.byteLength(text)} bytes, bound ${bound}`);
  }
});

test("a model without a context: /health answers while a prompt of megabytes is tokenized", { timeout: 60_000 }, async () => {
  const events: string[] = [];
  const prompt = "the cat ".repeat(2 ** 20); // 8 MiB of synthetic characters
  let tokenized = 0;
  let health: Promise<void> | undefined;
  let url = "";
  class Watched extends SyntheticTokenizer {
    override encode(text: string): number[] {
      const tokens = super.encode(text);
      if (text.length >= 1000) {
        tokenized += text.length;
        // The server is now tokenizing the big prompt: ask for /health.
        health ??= fetch(`${url}/health`).then((r) => void events.push(`health ${r.status}`));
        if (tokenized === prompt.length) events.push("tokenized");
      }
      return tokens;
    }
  }
  const backend = { ...syntheticBackend(SPEC), tokenizer: new Watched(SPEC.vocab) };
  ({ url } = await serve({ backend }));
  const res = await fetch(`${url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "dsi", prompt, max_tokens: 2, temperature: 0 }) });
  assert.equal(res.status, 200);
  assert.equal(((await res.json()) as { usage: { prompt_tokens: number } }).usage.prompt_tokens, prompt.length);
  await health;
  // Before: one call tokenized the whole prompt, and /health waited for it (1.4 s for 10 MB).
  assert.deepEqual(events, ["health 200", "tokenized"]);
});
