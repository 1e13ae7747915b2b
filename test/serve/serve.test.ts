/**
 * `dsi serve` driven by the official `openai` client: completions, chat and streaming equal
 * the engine's non-SI output; bad requests get OpenAI-shaped errors naming the parameter;
 * API key, queue limits, client disconnects, concurrency and shutdown.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import OpenAI, { APIError } from "openai";
import type { FastifyInstance } from "fastify";
import { generate } from "../../src/algorithms/generate.js";
import type { SamplingParams } from "../../src/core/sampling.js";
import { syntheticBackend } from "../../src/models/backend.js";
import { resolveProfile } from "../../src/models/latency.js";
import { syntheticRuntime } from "../../src/models/runtime.js";
import { SyntheticPair, SyntheticTokenizer } from "../../src/models/synthetic.js";
import { ServeMetrics } from "../../src/serve/metrics.js";
import { renderChat } from "../../src/serve/openai.js";
import { buildServer, type ServerOptions } from "../../src/serve/server.js";
import { Service } from "../../src/serve/service.js";
import { CLI, eventually } from "../helpers/processes.js";

const SPEC = { vocab: 32, seed: 3, agreement: 0.7 };
const pair = new SyntheticPair(SPEC);
const tokenizer = new SyntheticTokenizer(SPEC.vocab);
const servers: FastifyInstance[] = [];

/** A server on a free port over the synthetic pair, with `latency` per evaluation (real clock). */
async function serve(o: { latency?: string; apiKey?: string; maxConcurrent?: number; maxQueue?: number; sp?: number; drafting?: ServerOptions["drafting"]; streamStallMs?: number } = {}) {
  const metrics = new ServeMetrics();
  const service = await Service.open({
    backend: syntheticBackend(SPEC),
    sp: o.sp ?? 3,
    profile: resolveProfile(o.latency ?? "none")!,
    maxConcurrent: o.maxConcurrent ?? 64,
    maxQueue: o.maxQueue ?? 256,
    metrics,
  });
  const app = buildServer({ slot: { service }, metrics, modelId: "dsi", apiKey: o.apiKey, algo: "dsi", lookahead: 4, drafting: o.drafting, defaultMaxTokens: 16, streamStallMs: o.streamStallMs });
  const url = await app.listen({ host: "127.0.0.1", port: 0 });
  servers.push(app);
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: o.apiKey ?? "none", maxRetries: 0 });
  return { url, client, service, app };
}

let main: Awaited<ReturnType<typeof serve>>;
before(async () => {
  main = await serve({ latency: "2/0.2" });
});
after(async () => {
  for (const s of servers) await s.close();
});

/** Non-SI's text for a prompt, in process (greedy unless `sampling` says otherwise). */
async function reference(text: string, maxTokens: number, seed = 0, sampling?: SamplingParams): Promise<string> {
  const r = await generate("nonsi", syntheticRuntime({ pair }), { prompt: tokenizer.encode(text), maxTokens, seed, sampling }).result;
  return tokenizer.decode(r.tokens);
}

test("completions and chat, streamed and not, greedy: non-SI's text; usage and dsi stats", async () => {
  const { client } = main;
  const want = await reference("the cat", 24);
  const r = await client.completions.create({ model: "dsi", prompt: "the cat", max_tokens: 24, temperature: 0 });
  assert.equal(r.choices[0].text, want);
  assert.equal(r.choices[0].finish_reason, "length");
  assert.deepEqual(r.usage, { prompt_tokens: 7, completion_tokens: 24, total_tokens: 31 });
  const stats = (r as unknown as { dsi: { algo: string; drafted: number; accepted: number } }).dsi;
  assert.equal(stats.algo, "dsi");
  assert.ok(stats.drafted > 0 && stats.accepted <= stats.drafted);

  let streamed = "";
  let usage: unknown;
  const s = await client.completions.create({ model: "dsi", prompt: "the cat", max_tokens: 24, temperature: 0, stream: true, stream_options: { include_usage: true } });
  for await (const chunk of s) {
    streamed += chunk.choices[0]?.text ?? "";
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(streamed, want);
  assert.deepEqual(usage, { prompt_tokens: 7, completion_tokens: 24, total_tokens: 31 });

  const messages = [{ role: "system" as const, content: "be brief" }, { role: "user" as const, content: "hi there" }];
  const wantChat = await reference(renderChat(messages, true), 12);
  const c = await client.chat.completions.create({ model: "dsi", messages, max_completion_tokens: 12, temperature: 0 });
  assert.equal(c.choices[0].message.content, wantChat);
  assert.equal(c.choices[0].message.role, "assistant");
  let chat = "";
  const cs = await client.chat.completions.create({ model: "dsi", messages, max_tokens: 12, temperature: 0, stream: true });
  for await (const chunk of cs) chat += chunk.choices[0]?.delta?.content ?? "";
  assert.equal(chat, wantChat);

  // dsi.sp caps the instances a request's generation holds at once.
  const capped = await client.completions.create({ model: "dsi", prompt: "the cat", max_tokens: 24, temperature: 0, dsi: { sp: 1 } } as never);
  assert.equal((capped as OpenAI.Completion).choices[0].text, want);
  assert.equal((capped as unknown as { dsi: { sp: number } }).dsi.sp, 1);

  // Every algorithm, chosen per request, gives the same greedy text; n choices each get it.
  for (const algo of ["nonsi", "si", "dsi"]) {
    const x = await client.completions.create({ model: "dsi", prompt: "the cat", max_tokens: 24, temperature: 0, n: 2, dsi: { algo } } as never);
    assert.deepEqual(
      (x as OpenAI.Completion).choices.map((ch) => [ch.index, ch.text]),
      [
        [0, want],
        [1, want],
      ],
    );
  }
  const models = await client.models.list();
  assert.deepEqual(
    models.data.map((m) => m.id),
    ["dsi"],
  );
});

test("bad requests: status, type, code and the parameter named; the server keeps serving", async () => {
  const { url } = main;
  const post = async (path: string, body: unknown, headers: Record<string, string> = { "content-type": "application/json" }) => {
    const res = await fetch(`${url}${path}`, { method: "POST", headers, body: typeof body === "string" ? body : JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as { error: { message: string; type: string; param: string | null; code: string | null } } };
  };
  const ok = { model: "dsi", prompt: "the", max_tokens: 4 };
  const cases: [string, unknown, number, string | null, string | null][] = [
    ["/v1/completions", { ...ok, temperature: -1 }, 400, "temperature", null],
    ["/v1/completions", { ...ok, top_p: 0 }, 400, "top_p", null],
    ["/v1/completions", { ...ok, max_tokens: -3 }, 400, "max_tokens", null],
    ["/v1/completions", { ...ok, n: 0 }, 400, "n", null],
    ["/v1/completions", { ...ok, seed: 1.5 }, 400, "seed", null],
    ["/v1/completions", { ...ok, stop: ["a", "b", "c", "d", "e"] }, 400, "stop", null],
    ["/v1/completions", { ...ok, logprobs: 2 }, 400, "logprobs", "unsupported_parameter"],
    ["/v1/completions", { ...ok, prompt: "the ~" }, 400, "prompt", null],
    ["/v1/completions", { ...ok, prompt: undefined }, 400, "prompt", null],
    ["/v1/completions", { ...ok, model: "gpt-4" }, 404, "model", "model_not_found"],
    ["/v1/completions", { ...ok, stream_options: { include_usage: true } }, 400, "stream_options", null],
    ["/v1/completions", { ...ok, dsi: { algo: "fast" } }, 400, "dsi.algo", null],
    ["/v1/completions", { ...ok, dsi: { algo: "nonsi", lookahead: 3 } }, 400, "dsi.lookahead", null],
    ["/v1/completions", { ...ok, dsi: { lookahead: "fast" } }, 400, "dsi.lookahead", null],
    ["/v1/completions", { ...ok, dsi: { lookahead: 0 } }, 400, "dsi.lookahead", null],
    ["/v1/completions", { ...ok, dsi: { sp: 4 } }, 400, "dsi.sp", null],
    ["/v1/completions", { ...ok, dsi: { algo: "si", sp: 2 } }, 400, "dsi.sp", null],
    ["/v1/completions", { ...ok, dsi: { spp: 2 } }, 400, "dsi.spp", "unsupported_parameter"],
    ["/v1/completions", { ...ok, dsi: { verify: "greedy" }, temperature: 0.7 }, 400, "dsi.verify", null],
    ["/v1/completions", "{ not json", 400, "body", null],
    ["/v1/chat/completions", { model: "dsi", messages: [] }, 400, "messages", null],
    ["/v1/chat/completions", { model: "dsi", messages: [{ role: "robot", content: "x" }] }, 400, "messages.0.role", null],
    ["/v1/chat/completions", { model: "dsi", messages: [{ role: "user", content: "hi" }], max_tokens: 2, max_completion_tokens: 2 }, 400, "max_tokens", null],
    ["/v1/chat/completions", { model: "dsi", messages: [{ role: "user", content: "hi", name: "bob" }] }, 400, "messages.0.name", "unsupported_parameter"],
  ];
  for (const [path, body, status, param, code] of cases) {
    const r = await post(path, body);
    assert.equal(r.status, status, `${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error.param, param, JSON.stringify(body));
    assert.equal(r.body.error.type, "invalid_request_error");
    assert.equal(r.body.error.code, code, JSON.stringify(body));
    assert.ok(r.body.error.message.length > 0);
  }
  // Integers out of range name the real range (zod's "<= 9007199254740991" was the message
  // for 1e20), and max_tokens is bounded on every backend (--max-tokens-limit, default 4096).
  for (const [path, body, param, range] of [
    ["/v1/completions", { ...ok, seed: 1e20 }, "seed", "0..4294967295"],
    ["/v1/completions", { ...ok, seed: 2 ** 32 }, "seed", "0..4294967295"],
    ["/v1/completions", { ...ok, max_tokens: 1e6 }, "max_tokens", "0..4096 (this server's --max-tokens-limit)"],
    ["/v1/completions", { ...ok, max_tokens: 4097 }, "max_tokens", "0..4096 (this server's --max-tokens-limit)"],
    ["/v1/chat/completions", { model: "dsi", messages: [{ role: "user", content: "hi" }], max_completion_tokens: 1e6 }, "max_completion_tokens", "0..4096 (this server's --max-tokens-limit)"],
    ["/v1/completions", { ...ok, n: 1e20 }, "n", "1..16"],
    ["/v1/completions", { ...ok, dsi: { sp: 1e20 } }, "dsi.sp", "1..1024"],
  ] as [string, unknown, string, string][]) {
    const r = await post(path, body);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.equal(r.body.error.param, param);
    assert.equal(r.body.error.message, `${param}: must be an integer in ${range}`);
  }
  const after = await main.client.completions.create({ model: "dsi", prompt: "the", max_tokens: 4, temperature: 0 });
  assert.equal(after.choices[0].text, await reference("the", 4));
  // The adaptive lookahead by name; the response reports the windows it sent.
  const res = await fetch(`${url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ ...ok, temperature: 0, dsi: { lookahead: "auto" } }) });
  const auto = (await res.json()) as { choices: { text: string }[]; dsi: { lookahead: unknown; windows: number[]; probes: number } };
  assert.equal(res.status, 200);
  assert.equal(auto.choices[0].text, await reference("the", 4));
  assert.equal(auto.dsi.lookahead, "auto");
  assert.ok(auto.dsi.windows.reduce((a, n) => a + n, 0) > 0 && Number.isInteger(auto.dsi.probes), JSON.stringify(auto.dsi));
});

test("per-choice seeds: distinct within a request, no wrap at 2^32, none shared with a neighbouring seed; n = 1 keeps its output", async () => {
  const sampling = { temperature: 1, topK: 0, topP: 1 };
  const sampled = async (seed: number, n: number): Promise<string[]> => {
    const r = await main.client.completions.create({ model: "dsi", prompt: "the", max_tokens: 24, temperature: 1, seed, n, dsi: { algo: "nonsi" } } as never);
    return (r as OpenAI.Completion).choices.map((c) => c.text);
  };
  // The audit's request. Before: choice i used seed + i, which wrapped at 2^32, so seed
  // 2^32-1's choices 1 and 2 were seed 0's choices 0 and 1.
  const top = await sampled(2 ** 32 - 1, 3);
  const zero = await sampled(0, 2);
  assert.notEqual(top[1], zero[0]);
  assert.notEqual(top[2], zero[1]);
  assert.equal(new Set([...top, ...zero]).size, 5);
  // Nor did it take a wrap: seed s's choice 1 was seed s+1's choice 0.
  const five = await sampled(5, 2);
  const six = await sampled(6, 1);
  assert.notEqual(five[1], six[0]);
  // Choice 0 (so every n = 1 request) is the seed's own output, as before.
  assert.equal(six[0], await reference("the", 24, 6, sampling));
  assert.equal(five[0], await reference("the", 24, 5, sampling));
  assert.equal(zero[0], await reference("the", 24, 0, sampling));
  assert.equal(top[0], await reference("the", 24, 2 ** 32 - 1, sampling));
});

test("an API key: 401 without it or with another; health and metrics stay open", async () => {
  const key = "sk-test-0123456789abcdef";
  const { url, client } = await serve({ apiKey: key });
  const r = await client.completions.create({ model: "dsi", prompt: "the", max_tokens: 3, temperature: 0 });
  assert.equal(r.choices[0].text.length > 0, true);
  for (const headers of [{}, { authorization: "Bearer wrong-key-0123456789" }] as Record<string, string>[]) {
    const res = await fetch(`${url}/v1/models`, { headers });
    assert.equal(res.status, 401);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, "invalid_api_key");
  }
  // The route as matched is checked, not the raw URL: a percent-encoded path is no way around it.
  const encoded = await fetch(`${url}/%761/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "dsi", prompt: "the", max_tokens: 2 }) });
  assert.equal(encoded.status, 401);
  assert.equal((await fetch(`${url}/health`)).status, 200);
  assert.equal((await fetch(`${url}/metrics`)).status, 200);
});

test("a full queue: 429 with Retry-After; the running request is unharmed", async () => {
  const { client } = await serve({ latency: "100/1", maxConcurrent: 1, maxQueue: 0, sp: 1 });
  // More choices than could ever be admitted at once is the request's fault: 400, not 429.
  await assert.rejects(client.completions.create({ model: "dsi", prompt: "the", max_tokens: 4, n: 2 }), (err: unknown) => err instanceof APIError && err.status === 400 && err.param === "n");
  const running = client.completions.create({ model: "dsi", prompt: "the", max_tokens: 4, temperature: 0 });
  await new Promise((r) => setTimeout(r, 50));
  await assert.rejects(client.completions.create({ model: "dsi", prompt: "the", max_tokens: 4, temperature: 0 }), (err: unknown) => {
    assert.ok(err instanceof APIError);
    assert.equal(err.status, 429);
    assert.equal(err.headers?.get("retry-after"), "1");
    assert.equal((err.error as { type: string }).type, "rate_limit_error");
    return true;
  });
  assert.equal((await running).choices[0].text, await reference("the", 4));
});

/** A metric's value in the Prometheus text format. */
/** A metric's value: the series named, or without labels given, the sum of all its series (NaN if none). */
async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const lines = text.split("\n").filter((l) => l.startsWith(`${name} `) || (!name.includes("{") && l.startsWith(`${name}{`)));
  return lines.length > 0 ? lines.reduce((a, l) => a + Number(l.split(" ").at(-1)), 0) : NaN;
}

test("a client that disconnects mid-stream: within a second no generation runs and no instance is busy", async () => {
  const { url, client } = await serve({ latency: "20/2" });
  const s = await client.completions.create({ model: "dsi", prompt: "the", max_tokens: 500, temperature: 0, stream: true });
  let chunks = 0;
  for await (const _ of s) {
    // The generation runs when the client leaves (else "none runs" below would hold anyway).
    if (++chunks === 3) assert.equal(await metric(url, "dsi_active_generations"), 1);
    if (chunks === 3) break; // leaving the loop aborts the request
  }
  const t0 = performance.now();
  // Polled past the second, so that the time, not the poll's own limit, is what is asserted.
  const stopped = await eventually(async () => (await metric(url, "dsi_active_generations")) === 0 && (await metric(url, "dsi_busy_target_instances")) === 0, 5000);
  const ms = performance.now() - t0;
  assert.ok(stopped, "the generation still runs 5 s after its client left");
  assert.ok(ms < 1000, `the generation ran ${ms.toFixed(0)} ms after its client left`);
});

test("aborted requests, streamed and not: 499 in dsi_requests_total, their prompt and generated tokens counted", async () => {
  const { url, client } = await serve({ latency: "20/2" });
  // Not streamed: the client gives up once the generation has decided drafts (so committed tokens).
  const gone = new AbortController();
  const pending = fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "dsi", prompt: "the", max_tokens: 500, temperature: 0 }),
    signal: gone.signal,
  });
  assert.ok(await eventually(async () => (await metric(url, "dsi_spec_decode_num_draft_tokens_total")) > 0, 5000), "no draft decided");
  gone.abort();
  await assert.rejects(pending);
  assert.ok(await eventually(async () => (await metric(url, 'dsi_requests_total{endpoint="/v1/completions",status="499"}')) === 1, 2000), "no 499 for the request");
  assert.ok(await eventually(async () => (await metric(url, "dsi_active_generations")) === 0, 2000));
  const decided = await metric(url, "dsi_spec_decode_num_draft_tokens_total");
  // Each decided draft committed a token (the draft or the target's); none held back (no stop).
  assert.ok((await metric(url, "dsi_generation_tokens_total")) >= decided, "the aborted generation's tokens are not counted");
  assert.equal(await metric(url, "dsi_prompt_tokens_total"), 3);

  // Streamed, chat: the client leaves after some text (one character per synthetic token).
  const messages = [{ role: "user" as const, content: "hi" }];
  const before = await metric(url, "dsi_generation_tokens_total");
  const s = await client.chat.completions.create({ model: "dsi", messages, max_tokens: 500, temperature: 0, stream: true });
  let text = "";
  for await (const chunk of s) {
    text += chunk.choices[0]?.delta?.content ?? "";
    if (text.length >= 3) break;
  }
  assert.ok(await eventually(async () => (await metric(url, 'dsi_requests_total{endpoint="/v1/chat/completions",status="499"}')) === 1, 2000), "no 499 for the stream");
  assert.ok(await eventually(async () => (await metric(url, "dsi_active_generations")) === 0, 2000));
  assert.ok((await metric(url, "dsi_generation_tokens_total")) - before >= text.length, "the stream's tokens are not counted");
  assert.equal(await metric(url, "dsi_prompt_tokens_total"), 3 + renderChat(messages, true).length);
  // Neither is counted as answered.
  assert.ok(Number.isNaN(await metric(url, 'dsi_requests_total{endpoint="/v1/completions",status="200"}')));
  assert.ok(Number.isNaN(await metric(url, 'dsi_requests_total{endpoint="/v1/chat/completions",status="200"}')));
});

test("n = 16, streamed and not, choices queued: no MaxListenersExceededWarning (one abort listener per request)", async () => {
  const warnings: Error[] = [];
  const onWarning = (w: Error): void => void warnings.push(w);
  process.on("warning", onWarning);
  try {
    // 4 run, 12 wait: the waiting choices listen for the abort too.
    const { client } = await serve({ maxConcurrent: 4, maxQueue: 16 });
    const r = await client.completions.create({ model: "dsi", prompt: "the", max_tokens: 4, temperature: 0, n: 16 });
    assert.equal(r.choices.length, 16);
    const s = await client.completions.create({ model: "dsi", prompt: "the", max_tokens: 4, temperature: 0, n: 16, stream: true });
    const texts: string[] = Array(16).fill("");
    for await (const chunk of s) for (const c of chunk.choices) texts[c.index] += c.text;
    assert.deepEqual(texts, Array(16).fill(await reference("the", 4)));
    await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
  } finally {
    process.off("warning", onWarning);
  }
  assert.deepEqual(
    warnings.map((w) => `${w.name}: ${w.message}`),
    [],
  );
});

test("drain: returns when the last generation ends, long before its grace; later requests get 503", async () => {
  const { client, service } = await serve({ latency: "20/2" });
  const running = client.completions.create({ model: "dsi", prompt: "the", max_tokens: 8, temperature: 0 });
  assert.ok(await eventually(() => service.activeCount === 1, 2000));
  const t0 = performance.now();
  await service.drain(60_000);
  const ms = performance.now() - t0;
  assert.equal(service.activeCount, 0);
  assert.ok(ms < 5000, `drain took ${ms.toFixed(0)} ms`);
  assert.equal((await running).choices[0].text, await reference("the", 8));
  await assert.rejects(client.completions.create({ model: "dsi", prompt: "the", max_tokens: 2 }), (err: unknown) => err instanceof APIError && err.status === 503);
});

test("null for an optional field is \"not given\", as in OpenAI's API (its Python client sends None so)", async () => {
  const { url } = main;
  const nulls = { temperature: null, top_p: null, top_k: null, seed: null, n: null, stop: null, max_tokens: null, stream: null, stream_options: null };
  const res = await fetch(`${url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "dsi", prompt: "the cat", ...nulls }) });
  const body = (await res.json()) as { choices: { text: string }[]; usage: { completion_tokens: number } };
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.equal(body.choices.length, 1, "n: null is one choice");
  assert.equal(body.usage.completion_tokens, 16, "max_tokens: null is the server's default");
  // Greedy with the rest null: the same text as greedy with them left out.
  const greedy = await fetch(`${url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "dsi", prompt: "the cat", ...nulls, temperature: 0 }) });
  assert.equal(((await greedy.json()) as { choices: { text: string }[] }).choices[0].text, await reference("the cat", 16));
});

test("while the server closes, a request on a connection kept alive gets the draining answers in the API's shape (not fastify's own 503)", async () => {
  const { url, service, app } = await serve({ latency: "20/2" });
  const { hostname, port } = new URL(url);
  // One connection, its requests pipelined: the second is read after the first's response,
  // while the server closes (a request on an idle connection would find it closed).
  const socket = connect(Number(port), hostname);
  let received = "";
  socket.on("data", (d: Buffer) => (received += d.toString()));
  const post = JSON.stringify({ model: "dsi", prompt: "the", max_tokens: 40, temperature: 0 });
  try {
    await new Promise<void>((resolve) => socket.once("connect", resolve));
    socket.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(post)}\r\n\r\n${post}`);
    assert.ok(await eventually(() => service.activeCount === 1, 2000));
    // As dsi serve stops: drain, then close (which waits for the running request).
    const drained = service.drain(10_000);
    const closed = app.close();
    socket.write("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    assert.ok(await eventually(() => responses(received).length === 2, 10_000), received);
    const [done, health] = responses(received);
    assert.equal(done.status, 200);
    assert.equal((done.json.choices as { text: string }[])[0].text, await reference("the", 40));
    assert.equal(health.status, 503, received);
    assert.equal(health.json.status, "unavailable");
    await drained;
    await closed;
  } finally {
    socket.destroy();
  }
});

/** The complete HTTP/1.1 responses (with a Content-Length) in `text`, in order. */
function responses(text: string): { status: number; json: Record<string, unknown> }[] {
  const out: { status: number; json: Record<string, unknown> }[] = [];
  let at = 0;
  for (;;) {
    const end = text.indexOf("\r\n\r\n", at);
    if (end < 0) return out;
    const head = text.slice(at, end);
    const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? NaN);
    // (Bodies here are ASCII JSON: characters are bytes.)
    if (!(end + 4 + length <= text.length)) return out;
    out.push({ status: Number(head.split(" ")[1]), json: JSON.parse(text.slice(end + 4, end + 4 + length)) as Record<string, unknown> });
    at = end + 4 + length;
  }
}

test("a streaming client that stops reading: its connection goes once the stream has not drained for the stall limit, and its generation stops", async () => {
  // (On a Unix socket, whose buffers hold a few hundred kB, not the megabytes of loopback TCP's.
  // 4 choices of 4096 tokens at 1 ms a step: 4 s; the buffers are full after a few hundred.)
  const dir = mkdtempSync(join(tmpdir(), "dsi-stall-"));
  const path = join(dir, "serve.sock");
  const metrics = new ServeMetrics();
  const service = await Service.open({ backend: syntheticBackend(SPEC), sp: 1, profile: resolveProfile("1/1")!, maxConcurrent: 64, maxQueue: 256, metrics });
  const app = buildServer({ slot: { service }, metrics, modelId: "dsi", algo: "nonsi", lookahead: 4, defaultMaxTokens: 16, streamStallMs: 300 });
  const connections = (): Promise<number> => new Promise((resolve, reject) => app.server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
  await app.listen({ path });
  const socket = connect(path);
  try {
    await new Promise<void>((resolve) => socket.once("connect", resolve));
    const body = JSON.stringify({ model: "dsi", prompt: "the", max_tokens: 4096, n: 4, temperature: 0, stream: true });
    socket.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    socket.pause(); // never reads (so it never sees the server's end either): the buffers fill
    socket.on("error", () => undefined);
    assert.ok(await eventually(() => service.activeCount === 4, 2000), "the generations started");
    const t0 = performance.now();
    assert.ok(await eventually(async () => (await connections()) === 0 && service.activeCount === 0, 10_000), "the server still holds the connection, or a generation runs");
    const ms = performance.now() - t0;
    assert.ok(ms < 3000, `the connection went after ${ms.toFixed(0)} ms (the generations alone take 4 s)`);
  } finally {
    socket.destroy();
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("chat on a synthetic vocabulary served under another backend name (a cluster's): the plain template", async () => {
  const metrics = new ServeMetrics();
  const service = await Service.open({ backend: { ...syntheticBackend(SPEC), name: "cluster" }, sp: 2, profile: resolveProfile("none")!, maxConcurrent: 4, maxQueue: 4, metrics });
  const app = buildServer({ slot: { service }, metrics, modelId: "dsi", algo: "dsi", lookahead: 4, defaultMaxTokens: 16 });
  servers.push(app);
  const client = new OpenAI({ baseURL: `${await app.listen({ host: "127.0.0.1", port: 0 })}/v1`, apiKey: "none", maxRetries: 0 });
  const messages = [{ role: "user" as const, content: "hi there" }];
  const c = await client.chat.completions.create({ model: "dsi", messages, max_tokens: 8, temperature: 0 });
  assert.equal(c.choices[0].message.content, await reference(renderChat(messages, true), 8));
});

test("50 concurrent streaming requests: each gets its solo output, none lost, none mixed", { timeout: 60_000 }, async () => {
  const prompts = Array.from({ length: 50 }, (_, i) => `the ${"abcdefghij"[i % 10]}${"klmnopqrst"[Math.floor(i / 10)]}`);
  const wants = await Promise.all(prompts.map((p) => reference(p, 12)));
  const got = await Promise.all(
    prompts.map(async (prompt) => {
      let text = "";
      const s = await main.client.completions.create({ model: "dsi", prompt, max_tokens: 12, temperature: 0, stream: true });
      for await (const chunk of s) text += chunk.choices[0]?.text ?? "";
      return text;
    }),
  );
  assert.deepEqual(got, wants);
});

test("SIGTERM during a stream: dsi serve finishes it within the deadline and exits", { timeout: 30_000 }, async () => {
  const child = spawn(process.execPath, [CLI, "serve", "--port", "0", "--latency", "30/3", "--shutdown-timeout", "1", "--vocab", "32"], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  assert.ok(await eventually(() => /ready on (\S+)/.test(out), 10_000), out);
  const url = /ready on (\S+)/.exec(out)![1];
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "none", maxRetries: 0 });
  const s = await client.completions.create({ model: "dsi", prompt: "the", max_tokens: 1000, temperature: 0, stream: true });
  let text = "";
  let signalled = 0;
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  try {
    for await (const chunk of s) {
      text += chunk.choices[0]?.text ?? "";
      if (!signalled && text.length >= 3) {
        signalled = performance.now();
        child.kill("SIGTERM");
      }
    }
  } catch {
    // The stream may end with an error event: what matters is that it ends.
  }
  assert.ok(signalled > 0, out);
  assert.equal(await exited, 0, out);
  assert.ok(performance.now() - signalled < 5000, `took ${performance.now() - signalled} ms`);
  assert.ok(text.length < 1000, "the stream was cut at the deadline, not run to the end");
});

test("while the models load: /health and the endpoints answer 503, then serve", async () => {
  const metrics = new ServeMetrics();
  const slot: { service?: Service } = {};
  const app = buildServer({ slot, metrics, modelId: "dsi", algo: "dsi", lookahead: 4, defaultMaxTokens: 16 });
  const url = await app.listen({ host: "127.0.0.1", port: 0 });
  servers.push(app);
  const health = await fetch(`${url}/health`);
  assert.equal(health.status, 503);
  assert.deepEqual(await health.json(), { status: "loading" });
  const early = await fetch(`${url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "dsi", prompt: "the" }) });
  assert.equal(early.status, 503);
  assert.equal(((await early.json()) as { error: { code: string } }).error.code, "loading");
  slot.service = await Service.open({ backend: syntheticBackend(SPEC), sp: 2, profile: resolveProfile("none")!, maxConcurrent: 4, maxQueue: 4, metrics });
  assert.equal((await fetch(`${url}/health`)).status, 200);
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "none", maxRetries: 0 });
  assert.equal((await client.completions.create({ model: "dsi", prompt: "the", max_tokens: 5, temperature: 0 })).choices[0].text, await reference("the", 5));
});

test("metrics: requests by status, tokens, drafts verified and made, accepted drafts per window position, verification latency", async () => {
  const text = await (await fetch(`${main.url}/metrics`)).text();
  for (const name of [
    'dsi_requests_total{endpoint="/v1/completions",status="200"}',
    'dsi_requests_total{endpoint="/v1/completions",status="400"}',
    "dsi_prompt_tokens_total",
    "dsi_generation_tokens_total",
    'dsi_spec_decode_num_draft_tokens_total{source="model"}',
    'dsi_spec_decode_num_accepted_tokens_total{source="model"}',
    "dsi_drafted_tokens_total",
    'dsi_spec_decode_num_accepted_tokens_per_pos_total{position="0",source="model"}',
    "dsi_preempted_windows_total",
    "dsi_verification_duration_seconds_count",
    "dsi_time_to_first_token_seconds_count",
    "dsi_active_generations",
    "dsi_busy_target_instances",
    "dsi_queue_length",
  ]) {
    const line = text.split("\n").find((l) => l.startsWith(`${name} `));
    assert.ok(line, `${name} in /metrics`);
  }
  // A metric's value: the sum of its series (by source, where it has one).
  const value = (name: string): number =>
    text
      .split("\n")
      .filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
      .reduce((a, l) => a + Number(l.split(" ").at(-1)), 0);
  assert.ok(value("dsi_spec_decode_num_accepted_tokens_total") > 0);
  // Per position, the accepted drafts add up to all accepted drafts.
  const perPos = text.split("\n").filter((l) => l.startsWith("dsi_spec_decode_num_accepted_tokens_per_pos_total{"));
  assert.equal(
    perPos.reduce((a, l) => a + Number(l.split(" ")[1]), 0),
    value("dsi_spec_decode_num_accepted_tokens_total"),
  );
  assert.ok(value("dsi_spec_decode_num_accepted_tokens_total") <= value("dsi_spec_decode_num_draft_tokens_total"));
  // vLLM's meaning: drafts verified, of which some were rejected (agreement 0.7); drafts made
  // include ones never verified, so at least as many.
  assert.ok(value("dsi_spec_decode_num_accepted_tokens_total") < value("dsi_spec_decode_num_draft_tokens_total"));
  assert.ok(value("dsi_drafted_tokens_total") >= value("dsi_spec_decode_num_draft_tokens_total"));
});

test("metrics: draft tokens are the drafts verified, as the responses' dsi stats count them (accepted + rejected)", async () => {
  const { url, client } = await serve();
  const stats = { drafted: 0, accepted: 0, rejected: 0 };
  for (const algo of ["si", "dsi"]) {
    const r = await client.completions.create({ model: "dsi", prompt: "the cat", max_tokens: 24, temperature: 0, n: 2, dsi: { algo } } as never);
    const d = (r as unknown as { dsi: typeof stats }).dsi;
    for (const k of ["drafted", "accepted", "rejected"] as const) stats[k] += d[k];
  }
  assert.ok(stats.rejected > 0 && stats.drafted > stats.accepted + stats.rejected, JSON.stringify(stats));
  assert.equal(await metric(url, "dsi_spec_decode_num_draft_tokens_total"), stats.accepted + stats.rejected);
  assert.equal(await metric(url, "dsi_spec_decode_num_accepted_tokens_total"), stats.accepted);
  assert.equal(await metric(url, "dsi_drafted_tokens_total"), stats.drafted);
});

test("prompt lookup per request (dsi.draft): the response says so, /metrics counts its drafts under source=\"ngram\"", async () => {
  const { url, client } = await serve();
  const r = await client.completions.create({ model: "dsi", prompt: "abcabcabcabcabc", max_tokens: 24, temperature: 0, dsi: { algo: "dsi", draft: "ngram", ngram_min: 1, lookahead: 3 } } as never);
  const d = (r as unknown as { dsi: { draft: string; accepted: number; rejected: number } }).dsi;
  assert.equal(d.draft, "ngram");
  const ngram = await metric(url, 'dsi_spec_decode_num_draft_tokens_total{source="ngram"}');
  assert.equal(ngram, d.accepted + d.rejected);
  assert.ok(ngram > 0, "lookup drafted on a prompt that repeats itself");
  assert.ok(Number.isNaN(await metric(url, 'dsi_spec_decode_num_draft_tokens_total{source="model"}')), "the drafter model drafted nothing");
  const bad = await fetch(`${url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "dsi", prompt: "a", dsi: { ngram_max: 3 } }) });
  assert.equal(bad.status, 400);
  assert.match(((await bad.json()) as { error: { message: string } }).error.message, /dsi\.ngram_max applies to dsi\.draft ngram and ngram\+model/);
  // The server's default (dsi serve --draft ngram --ngram-min 1): requests that do not say take it.
  const lookup = await serve({ drafting: { draft: "ngram", ngramMin: 1, ngramMax: 5 } });
  const byDefault = await lookup.client.completions.create({ model: "dsi", prompt: "abcabcabcabcabc", max_tokens: 24, temperature: 0 });
  assert.equal((byDefault as unknown as { dsi: { draft: string } }).dsi.draft, "ngram");
  assert.ok((await metric(lookup.url, 'dsi_spec_decode_num_draft_tokens_total{source="ngram"}')) > 0);
  const tooLong = await fetch(`${lookup.url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "dsi", prompt: "a", dsi: { ngram_min: 6 } }) });
  assert.match(((await tooLong.json()) as { error: { message: string } }).error.message, /dsi\.ngram_min \(6\) must not exceed dsi\.ngram_max \(5\)/);
});

test("dsi serve refuses a non-loopback host without an API key", async () => {
  const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const c = spawn(process.execPath, [CLI, "serve", "--host", "0.0.0.0"], { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, DSI_API_KEY: "" } });
    let stderr = "";
    c.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    c.once("exit", (code) => resolve({ code, stderr }));
  });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--host: 0\.0\.0\.0 is not a loopback address; a server reachable from other hosts needs an API key/);
});

test("/health and the instance gauges count instances, not sequences: an instance that lost a sequence is not live", async () => {
  const metrics = new ServeMetrics();
  const service = await Service.open({ backend: syntheticBackend(SPEC, { sequences: 4 }), sp: 2, profile: resolveProfile("none")!, maxConcurrent: 8, maxQueue: 8, metrics });
  try {
    assert.deepEqual((await service.health()).targets, { live: 2, configured: 2 });
    // One sequence lost (its siblings, not made yet, stay): 7 of 8 sequences serve, on both instances.
    const member = service.runtime.pool.join();
    const lease = await member.acquire("frontier");
    lease.retire("device lost");
    member.leave();
    assert.equal(service.runtime.pool.alive, 7);
    const h = await service.health();
    assert.equal(h.status, "degraded");
    assert.deepEqual(h.targets, { live: 1, configured: 2 });
    assert.match(h.reason!, /^1 of 2 target instances not serving \(1 of them serving some of their sequences\)$/);
    const scrape = await metrics.registry.metrics();
    assert.match(scrape, /^dsi_target_instances_live 1$/m);
    assert.match(scrape, /^dsi_target_instances_configured 2$/m);
  } finally {
    await service.drain(0);
    service.runtime.close();
  }
});
