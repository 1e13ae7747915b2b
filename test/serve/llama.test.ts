/**
 * `dsi serve` over a generated GGUF pair given by URL (a loopback HTTP server): downloaded
 * once into the cache, greedy completions equal `dsi generate` with the same settings, and a
 * prompt plus max_tokens over the context is `context_length_exceeded`.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createReadStream, readdirSync, statSync, type Stats } from "node:fs";
import { createServer, type Server } from "node:http";
import { availableParallelism } from "node:os";
import { basename, dirname, join } from "node:path";
import { after, before, test } from "node:test";
import OpenAI, { APIError } from "openai";
import { generate } from "../../src/algorithms/generate.js";
import { LlamaPair } from "../../src/models/llama.js";
import { assembleRuntime } from "../../src/models/runtime.js";
import { pairFiles, SMALL_PAIR } from "../helpers/gguf-models.js";
import { CLI, dsi, eventually, stopChildren } from "../helpers/processes.js";
import { tempDir } from "../helpers/temp.js";

let files: { target: string; drafter: string };
let http: Server;
let base: string;
/** GET requests per file (the resolver also opens GETs to read a file's name and size). */
const gets = new Map<string, number>();
let cache: string;
const children: ChildProcess[] = [];

before(async () => {
  files = await pairFiles("small", SMALL_PAIR);
  cache = await tempDir("serve-cache");
  const dir = dirname(files.target);
  http = createServer((req, res) => {
    const name = basename(req.url ?? "");
    const path = join(dir, name);
    try {
      const size = statSync(path).size;
      res.writeHead(200, { "content-length": size, "content-type": "application/octet-stream" });
      if (req.method === "HEAD") return res.end();
      gets.set(name, (gets.get(name) ?? 0) + 1);
      createReadStream(path).pipe(res);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
  const address = http.address() as { port: number };
  base = `http://127.0.0.1:${address.port}`;
});

after(async () => {
  await stopChildren(children);
  http.close();
});

const pick = (s: Stats) => ({ size: s.size, mtimeMs: s.mtimeMs, ino: s.ino });

/** Starts `dsi serve` on the pair by URL; resolves with its URL once ready. */
async function serve(): Promise<{ url: string; child: ChildProcess; out: () => string }> {
  const child = spawn(process.execPath, [CLI, "serve", "--backend", "llama", "--target", `${base}/${basename(files.target)}`, "--drafter", `${base}/${basename(files.drafter)}`, "--port", "0", "--sp", "2"], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, DSI_CACHE_DIR: cache },
  });
  children.push(child);
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  assert.ok(await eventually(() => /ready on (\S+)/.test(out) || child.exitCode !== null, 60_000), out);
  assert.equal(child.exitCode, null, out);
  return { url: /ready on (\S+)/.exec(out)![1], child, out: () => out };
}

test("models by URL: downloaded once; greedy completions equal dsi generate; context_length_exceeded", { timeout: 120_000 }, async () => {
  const first = await serve();
  const client = new OpenAI({ baseURL: `${first.url}/v1`, apiKey: "none", maxRetries: 0 });
  const prompt = "the quick brown fox";
  const r = await client.completions.create({ model: "dsi", prompt, max_tokens: 20, temperature: 0, seed: 3 });
  const cli = await dsi(["generate", "--backend", "llama", "--target", files.target, "--drafter", files.drafter, "--prompt", prompt, "--max-tokens", "20", "--seed", "3", "--json"]);
  assert.equal(cli.code, 0, cli.stderr);
  assert.equal(r.choices[0].text, JSON.parse(cli.stdout).completions[0].text);

  let streamed = "";
  for await (const chunk of await client.completions.create({ model: "dsi", prompt, max_tokens: 20, temperature: 0, stream: true })) streamed += chunk.choices[0]?.text ?? "";
  assert.equal(streamed, r.choices[0].text);
  const chat = await client.chat.completions.create({ model: "dsi", messages: [{ role: "user", content: "hello" }], max_tokens: 8, temperature: 0 });
  assert.equal(typeof chat.choices[0].message.content, "string");

  await assert.rejects(client.completions.create({ model: "dsi", prompt, max_tokens: SMALL_PAIR.target.context }), (err: unknown) => {
    assert.ok(err instanceof APIError);
    assert.equal(err.status, 400);
    assert.equal(err.code, "context_length_exceeded");
    assert.equal(err.param, "prompt");
    return true;
  });

  first.child.kill("SIGTERM");
  assert.equal(await new Promise((r) => first.child.once("exit", r)), 0, first.out());
  // The files are in the cache, equal to the served ones; a second server uses them as they are.
  const cached = (): { name: string; size: number; mtimeMs: number; ino: number }[] =>
    readdirSync(join(cache, "models"))
      .sort()
      .map((name) => ({ name, ...pick(statSync(join(cache, "models", name))) }));
  const before = cached();
  assert.deepEqual(
    before.map((f) => [f.name, f.size]),
    [
      [basename(files.drafter), statSync(files.drafter).size],
      [basename(files.target), statSync(files.target).size],
    ],
  );
  assert.ok(gets.get(basename(files.target))! >= 1);
  const second = await serve();
  assert.deepEqual(cached(), before, "not downloaded again");
  second.child.kill("SIGTERM");
});

test("chat with the GGUF's own template (ChatML here): the prompt is the template's, the reply non-SI's", { timeout: 120_000 }, async () => {
  const chatml =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
  const chatFiles = await pairFiles("chatml", { ...SMALL_PAIR, chatTemplate: chatml });
  const messages = [
    { role: "system" as const, content: "be brief" },
    { role: "user" as const, content: "hello" },
  ];
  const pair = await LlamaPair.load({ ...chatFiles, threads: 1, gpu: false });
  let expected: string;
  let promptTokens: number;
  try {
    const tokens = (await pair.chatTokens(messages))!;
    assert.match(pair.decode(tokens), /<\|im_start\|>system\nbe brief ?<\|im_end\|>\n<\|im_start\|>user\nhello ?<\|im_end\|>\n<\|im_start\|>assistant\n$/);
    promptTokens = tokens.length;
    const drafter = await pair.instance("drafter", "drafter");
    const target = await pair.instance("target", "target");
    const rt = assembleRuntime({ clock: "real", drafter, target: () => target, vocabSize: pair.vocabSize, eosToken: pair.eosToken, sp: 1 });
    expected = pair.decode((await generate("nonsi", rt, { prompt: tokens, maxTokens: 10 }).result).tokens);
  } finally {
    await pair.dispose();
  }
  const child = spawn(process.execPath, [CLI, "serve", "--backend", "llama", "--target", chatFiles.target, "--drafter", chatFiles.drafter, "--port", "0"], { stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  assert.ok(await eventually(() => /ready on (\S+)/.test(out), 60_000), out);
  const client = new OpenAI({ baseURL: `${/ready on (\S+)/.exec(out)![1]}/v1`, apiKey: "none", maxRetries: 0 });
  const r = await client.chat.completions.create({ model: "dsi", messages, max_tokens: 10, temperature: 0 });
  assert.equal(r.usage?.prompt_tokens, promptTokens);
  assert.equal(r.choices[0].message.content, expected);
});

test("dsi serve with a target alone (--draft ngram): one target instance per core, as its --help says (before, one core was kept for a drafter that does not exist)", async () => {
  const child = spawn(process.execPath, [CLI, "serve", "--backend", "llama", "--target", files.target, "--draft", "ngram", "--port", "0"], { stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  assert.ok(await eventually(() => /ready on (\S+)/.test(out), 60_000), out);
  const health = (await (await fetch(`${/ready on (\S+)/.exec(out)![1]}/health`)).json()) as { targets: { configured: number } };
  assert.equal(health.targets.configured, Math.max(1, Math.min(8, availableParallelism())));
});
