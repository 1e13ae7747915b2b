/**
 * The worker protocol itself (in-process workers on loopback, fast): the generated types match
 * proto/worker.proto; a call costs O(drafts) on both sides (the client does not read the
 * committed tokens it sent before, the worker hands its instance a view, not a copy); a reply's
 * held/heldHash and a cancelled call leave the client in step with the worker without a
 * refused call; float32 distributions arrive as views, bit for bit the worker's.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join, relative } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Server, ServerCredentials, status } from "@grpc/grpc-js";
import { TokenView, type EvalRequest, type ModelInstance } from "../../src/core/instance.js";
import { GREEDY } from "../../src/core/sampling.js";
import type { PositionOutput } from "../../src/core/verify.js";
import { encodeProbs, LOAD_OPTIONS, modeFromWire, workerDefinition, type ModelWorkerHandlers } from "../../src/models/remote/protocol.js";
import { SyntheticPair } from "../../src/models/synthetic.js";
import { HeldSequence } from "../../src/worker/server.js";
import { tempDir } from "../helpers/temp.js";
import { connect, worker as serveIn } from "../helpers/in-process-workers.js";
import { CountingView } from "../helpers/counting-view.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
// Whole-context models: an evaluation on a wrong prefix shows in its outputs.
const pair = new SyntheticPair({ vocab: 16, seed: 5, agreement: 0.7, context: "all" });
const local = pair.instance("target");
const servers: Server[] = [];
after(() => {
  for (const s of servers) s.forceShutdown();
});

/** A worker serving `instance` (default: the local synthetic target). */
const worker = (instance: ModelInstance = local) => serveIn(instance);
const req = (tokens: EvalRequest["tokens"], from = tokens.length, mode: EvalRequest["mode"] = "greedy"): EvalRequest => ({
  tokens,
  from,
  mode,
  sampling: mode === "greedy" ? GREEDY : { temperature: 0.9, topK: 0, topP: 1 },
  seed: 3,
  stream: 1,
});

test("the generated protocol types are what `npm run proto:types` makes from proto/worker.proto now", async () => {
  const pkg = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> };
  const [bin, ...args] = pkg.scripts["proto:types"].split(" ");
  assert.equal(bin, "proto-loader-gen-types");
  // The types describe the objects the loader makes only when both map messages alike.
  assert.equal(args.includes("--keepCase"), LOAD_OPTIONS.keepCase);
  assert.equal(args.includes("--defaults"), LOAD_OPTIONS.defaults);
  assert.ok(args.includes(`--longs=${LOAD_OPTIONS.longs.name}`) && args.includes(`--enums=${LOAD_OPTIONS.enums.name}`), args.join(" "));
  const out = args.indexOf("-O") + 1;
  const committed = join(ROOT, args[out]);
  const fresh = await tempDir("proto-types");
  args[out] = fresh;
  const script = createRequire(import.meta.url).resolve(`@grpc/proto-loader/build/bin/${bin}.js`);
  await promisify(execFile)(process.execPath, [script, ...args], { cwd: ROOT });
  const files = async (dir: string): Promise<string[]> => (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name))).sort();
  const names = await files(fresh);
  assert.deepEqual(await files(committed), names, "the same files");
  for (const name of names) assert.equal(await readFile(join(committed, name), "utf8"), await readFile(join(fresh, name), "utf8"), `${name} is out of date: run npm run proto:types`);
});


test("the client reads only the tokens beyond the committed ones it sent before: a call costs O(drafts), not O(context)", async () => {
  const r = await connect((await worker()).address);
  let state = 7;
  const next = (): number => (state = (state * 1103515245 + 12345) % 2 ** 31) % 16;
  const committed = Array.from({ length: 3000 }, next);
  let before = committed.length;
  for (let call = 0; call < 30; call++) {
    const drafts = [next(), next(), next()];
    const view = new CountingView(committed, committed.length, drafts);
    const sent = r.tokensSent;
    const out = await r.evaluate(req(view, committed.length - 1));
    assert.deepEqual(out, await local.evaluate(req([...committed, ...drafts], committed.length - 1)), `call ${call}`);
    const grown = committed.length - before;
    if (call > 0) {
      // What was committed since the last call and the new drafts: compared once, sent once.
      assert.ok(view.reads <= 2 * (grown + drafts.length) + 2, `call ${call}: read ${view.reads} tokens (${grown} committed since, ${drafts.length} drafts)`);
      assert.ok(r.tokensSent - sent <= grown + drafts.length, `call ${call}: sent ${r.tokensSent - sent}`);
    }
    before = committed.length;
    // Some drafts accepted, then the target's token.
    committed.push(...drafts.slice(0, call % 4), next());
  }
  // Another sequence (a plain array) is compared token by token, and sends only what differs.
  const other = [...committed.slice(0, 100), (committed[100] + 1) % 16, 2, 3];
  const sent = r.tokensSent;
  assert.deepEqual(await r.evaluate(req(other, 101)), await local.evaluate(req(other, 101)));
  assert.equal(r.tokensSent - sent, 3);
  assert.equal(r.resends, 0);
});

test("the worker hands its instance views of what it holds, not copies; each stays valid after later calls", async () => {
  const seen: { view: TokenView; tokens: number[] }[] = [];
  const recording: ModelInstance = {
    label: "recording",
    vocabSize: 16,
    eosToken: undefined,
    evaluate(r: EvalRequest, signal?: AbortSignal): Promise<PositionOutput[]> {
      assert.ok(r.tokens instanceof TokenView);
      seen.push({ view: r.tokens, tokens: r.tokens.slice() });
      return local.evaluate(r, signal);
    },
  };
  const client = await connect((await worker(recording)).address);
  const seq = [4, 1, 5, 9, 2, 6];
  const calls: number[][] = [];
  for (let i = 0; i < 8; i++) {
    const tokens = [...seq, i % 16, (i * 5) % 16];
    calls.push(tokens);
    assert.deepEqual(await client.evaluate(req(tokens, seq.length)), await local.evaluate(req(tokens, seq.length)));
    seq.push(tokens[seq.length]); // one token committed per call
  }
  // Another sequence: the worker keeps less than it made stable.
  calls.push([4, 1, 3]);
  await client.evaluate(req([4, 1, 3], 2));
  assert.equal(seen.length, calls.length);
  seen.forEach((s, i) => {
    assert.deepEqual(s.tokens, calls[i], `call ${i} saw the request's sequence`);
    assert.deepEqual(s.view.slice(), s.tokens, `call ${i}'s view reads the same after the later calls`);
  });
  // Calls on one growing sequence share the held array: nothing was copied.
  for (let i = 2; i < 8; i++) assert.equal(seen[i].view.base, seen[1].view.base, `call ${i}`);
  assert.notEqual(seen[8].view.base, seen[7].view.base, "a shorter prefix starts a new array");
});

/**
 * A worker that keeps only the first `keeps` tokens of each sequence after answering (a worker
 * short of memory, say) and says so in held/heldHash, or says nothing (both 0) when `silent`.
 * It refuses, as the protocol says, a request whose prefix it does not hold.
 */
async function forgetfulWorker(keeps: number, silent = false): Promise<{ address: string; keeps: number[]; refused: number }> {
  const held = new HeldSequence();
  const seen = { address: "", keeps: [] as number[], refused: 0 };
  const handlers: ModelWorkerHandlers = {
    Info: (_call, cb) => cb(null, { label: "forgetful", vocabSize: 16, eosToken: -1, backend: "synthetic", contextSize: 0, evalChunk: 0 }),
    Stats: (_call, cb) => cb(null, {}),
    Evaluate: (call, cb) => {
      const r = call.request;
      seen.keeps.push(r.keep);
      if (r.keep > held.length || held.hash(r.keep) !== r.keepHash) {
        seen.refused++;
        return cb({ code: status.FAILED_PRECONDITION, details: "not held" });
      }
      held.apply(r.keep, r.append);
      const tokens = held.view();
      void local.evaluate({ tokens, from: r.from, mode: modeFromWire(r.mode)!, sampling: r.sampling!, seed: r.seed, stream: r.stream }).then((outputs) => {
        const kept = Math.min(keeps, held.length);
        held.apply(kept, []);
        const probs = modeFromWire(r.mode) === "dist" ? encodeProbs(outputs, 16, r.probsFormat) : Buffer.alloc(0);
        cb(null, { tokens: outputs.map((o) => o.token), probs, held: silent ? 0 : kept, heldHash: silent ? 0 : held.hash(kept) });
      });
    },
  };
  const server = new Server();
  servers.push(server);
  server.addService(workerDefinition(), handlers);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  seen.address = `127.0.0.1:${port}`;
  return seen;
}

test("a worker that holds less than it was sent says so (held, heldHash): the next call starts there, without a refusal", async () => {
  const w = await forgetfulWorker(2);
  const r = await connect(w.address);
  for (const tokens of [[3, 1, 4, 1], [3, 1, 4, 1, 5], [3, 1, 4, 1, 5, 9, 2]]) {
    assert.deepEqual(await r.evaluate(req(tokens, 2)), await local.evaluate(req(tokens, 2)));
  }
  assert.deepEqual(w.keeps, [0, 2, 2], "each call kept what the last reply said the worker holds");
  assert.equal(w.refused, 0);
  assert.equal(r.resends, 0);
  assert.equal(r.resyncs, 3);

  // A worker that says nothing (held 0, the proto default) is taken to hold nothing.
  const quiet = await forgetfulWorker(4, true);
  const q = await connect(quiet.address);
  await q.evaluate(req([3, 1, 4, 1, 5], 5));
  await q.evaluate(req([3, 1, 4, 1, 5, 9], 6));
  assert.deepEqual(quiet.keeps, [0, 0]);
  assert.equal(quiet.refused, 0);
});

/** The synthetic target, held at a gate while `closed`. */
class Gated implements ModelInstance {
  readonly label = "gated";
  readonly vocabSize = 16;
  readonly eosToken = undefined;
  private opened: Promise<void> = Promise.resolve();
  open: () => void = () => undefined;
  close(): void {
    this.opened = new Promise((resolve) => (this.open = resolve));
  }
  async evaluate(r: EvalRequest, signal?: AbortSignal): Promise<PositionOutput[]> {
    await this.opened;
    return local.evaluate(r, signal);
  }
}

test("a call cancelled while it waited on the worker never ran there: the next call starts from what both share, without a refusal", async () => {
  const gated = new Gated();
  const w = await worker(gated);
  const [a, other] = [await connect(w.address), await connect(w.address)];
  await a.evaluate(req([1, 2, 3]));
  gated.close();
  // Another client's call keeps the worker busy (on the same tokens, so the worker still holds a's).
  const busy = other.evaluate(req([1, 2, 3]));
  const controller = new AbortController();
  const cancelled = a.evaluate(req([1, 2, 3, 4, 5]), controller.signal);
  await new Promise((r) => setTimeout(r, 50));
  controller.abort();
  await assert.rejects(cancelled, (err: Error) => err.name === "AbortError");
  const sent = a.tokensSent;
  const last = a.evaluate(req([1, 2, 3, 4, 5, 6], 4));
  await new Promise((r) => setTimeout(r, 50));
  gated.open();
  await busy;
  assert.deepEqual(await last, await local.evaluate(req([1, 2, 3, 4, 5, 6], 4)));
  assert.equal(w.counters.cancelled, 1, "the cancelled call never ran");
  assert.equal(a.resends, 0, "no refusal: the client did not count on the cancelled call's tokens");
  assert.equal(a.tokensSent - sent, 3, "it sent what lies beyond the tokens both calls share");
});

test("float32 distributions arrive as views of the reply, bit for bit the worker's", async () => {
  const r = await connect((await worker()).address);
  const tokens = [5, 5, 9, 14, 2, 7];
  const [mine, theirs] = [await local.evaluate(req(tokens, 3, "dist")), await r.evaluate(req(tokens, 3, "dist"))];
  assert.equal(theirs.length, 4);
  const buffer = theirs[0].probs!.buffer;
  theirs.forEach((t, i) => {
    assert.ok(t.probs instanceof Float32Array, "not copied to float64");
    assert.equal(t.probs.buffer, buffer, "one reply, one buffer");
    assert.deepEqual(Array.from(t.probs), Array.from(mine[i].probs!, Math.fround));
  });
});
