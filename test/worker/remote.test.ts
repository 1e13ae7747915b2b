/**
 * Target instances in worker processes (`dsi worker`, real child processes on loopback): the
 * engine's output through them equals in-process non-SI, a call sends only the tokens the
 * worker does not hold, and workers refuse to serve beyond loopback without authentication.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { generate } from "../../src/algorithms/generate.js";
import { RemoteInstance } from "../../src/models/remote/client.js";
import { assembleRuntime, syntheticRuntime } from "../../src/models/runtime.js";
import { SyntheticPair } from "../../src/models/synthetic.js";
import { profile } from "../helpers/run.js";
import { dsi as run, stopChildren } from "../helpers/processes.js";
import { tempDir } from "../helpers/temp.js";
import { assertFirstTwoTokensFollow, targetJoint } from "../helpers/chi-square.js";

const CLI = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
const SPEC = ["--vocab", "16", "--model-seed", "5", "--agreement", "0.7"];
const pair = new SyntheticPair({ vocab: 16, seed: 5, agreement: 0.7 });
const children: ChildProcess[] = [];
const remotes: RemoteInstance[] = [];

/** Starts a worker process; resolves with its address once it listens. */
function startWorker(...extra: string[]): Promise<string> {
  const child = spawn(process.execPath, [CLI, "worker", "--listen", "127.0.0.1:0", ...SPEC, ...extra], { stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /listening on (\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.once("exit", (code) => reject(new Error(`worker exited with ${code}: ${out}`)));
  });
}

before(async () => {
  const addresses = await Promise.all([startWorker(), startWorker(), startWorker()]);
  for (const a of addresses) remotes.push(await RemoteInstance.connect(a));
  slow = await RemoteInstance.connect(await startWorker("--latency", "2000/1"));
});

/** A worker whose every evaluation takes 2 s (an emulated slow device). */
let slow: RemoteInstance;

after(async () => {
  for (const r of [...remotes, slow]) r.close();
  await stopChildren(children);
  assert.ok(children.every((c) => c.exitCode === 0 || c.signalCode !== null), "workers stop on SIGTERM");
});

function remoteRuntime(sp: number) {
  return assembleRuntime({
    clock: "real",
    drafter: pair.instance("drafter"),
    target: (i) => remotes[i],
    vocabSize: remotes[0].vocabSize,
    eosToken: remotes[0].eosToken,
    sp,
    // The drafter 10x faster than the target, as in the paper's pairs, on top of the compute.
    profile: profile(4, 0.4),
  });
}

test("workers report what they serve", () => {
  assert.equal(remotes.length, 3);
  for (const r of remotes) {
    assert.equal(r.vocabSize, 16);
    assert.equal(r.label, `target@${r.address}`, "labelled with the address it bound");
  }
});

test("DSI and SI with three target workers equal in-process non-SI, greedy, on several prompts", async () => {
  for (const [i, prompt] of [[1, 2, 3], [4], [9, 9, 9, 9, 2], [15, 0], [7, 3, 11]].entries()) {
    const o = { prompt, maxTokens: 40, seed: i };
    const reference = (await generate("nonsi", syntheticRuntime({ pair }), o).result).tokens;
    const dsi = await generate("dsi", remoteRuntime(3), { ...o, lookahead: 3 }).result;
    assert.deepEqual(dsi.tokens, reference, `dsi, prompt ${prompt}`);
    assert.ok(dsi.stats.preemptions > 0 || dsi.stats.rejected === 0);
    const si = await generate("si", remoteRuntime(1), { ...o, lookahead: 4 }).result;
    assert.deepEqual(si.tokens, reference, `si, prompt ${prompt}`);
  }
});

test("a call sends only the tokens the worker does not hold: bytes per call do not grow with the context", async () => {
  const r = remotes[0];
  const before = r.tokensSent;
  const prompt = [1, 2, 3, 4, 5, 6, 7, 8];
  const out = await generate("nonsi", remoteRuntime(1), { prompt, maxTokens: 200 }).result;
  assert.equal(out.tokens.length, 200);
  // The first call sends the prompt (or the part the worker does not hold); each later call
  // one new token.
  const sent = r.tokensSent - before;
  assert.ok(sent <= prompt.length + 200, `sent ${sent} tokens for 200 calls`);
});

/** `dsi ARGS` in this process. */
const dsi = (...args: string[]) => run(args);

test("generate --cluster: DSI over the cluster's target workers prints non-SI's tokens", async () => {
  const dir = await tempDir("cluster");
  const file = join(dir, "cluster.json");
  await writeFile(file, JSON.stringify({ drafter: { backend: "synthetic", vocab: 16, modelSeed: 5, agreement: 0.7 }, targets: remotes.map((r) => ({ address: r.address })) }));
  const viaCluster = await dsi("generate", "--cluster", file, "--max-tokens", "30", "--lookahead", "3", "--json");
  assert.equal(viaCluster.code, 0, viaCluster.stderr);
  const out = JSON.parse(viaCluster.stdout);
  assert.equal(out.config.sp, 3, "SP is the number of targets");
  assert.match(out.config.backend, /^cluster: synthetic drafter here, 3 target worker\(s\)/);
  const local = JSON.parse((await dsi("generate", "--algo", "nonsi", ...SPEC, "--max-tokens", "30", "--json")).stdout);
  assert.deepEqual(out.completions[0].tokens, local.completions[0].tokens);
});

test("bad cluster files: one clear line naming the file and the problem, exit 2", async () => {
  const dir = await tempDir("cluster-bad");
  const good = { drafter: { backend: "synthetic", vocab: 16 }, targets: [{ address: remotes[0].address }] };
  const cases: [string, unknown, RegExp][] = [
    ["missing", { drafter: good.drafter }, /targets: Invalid input: expected array, received undefined/],
    ["wrong-type", { ...good, targets: [{ address: 7001 }] }, /targets\[0\]\.address: Invalid input: expected string, received number/],
    ["unknown-field", { ...good, extra: 1 }, /\(top level\): Unrecognized key: "extra"/],
    ["unreachable", { ...good, targets: [{ address: "127.0.0.1:1" }] }, /worker 127\.0\.0\.1:1: /],
    ["vocabulary", { ...good, drafter: { backend: "synthetic", vocab: 8 } }, /vocabularies differ: drafter 8, targets 127\.0\.0\.1:\d+ 16/],
    ["not-json", "{ drafter", /not JSON/],
    ["latency", { ...good, drafter: { backend: "synthetic", latency: "fast" } }, /drafter\.latency: unknown latency profile/],
    ["probs", { ...good, probs: "float8" }, /probs: Invalid option: expected one of "float32"\|"float16"/],
    ["remote-drafter", { ...good, drafter: { backend: "remote" } }, /drafter\.address: Invalid input: expected string, received undefined/],
    ["short-token", { ...good, targets: [{ address: remotes[0].address, token: "abc" }] }, /targets\[0\]\.token: Too small/],
  ];
  for (const [name, content, message] of cases) {
    const file = join(dir, `${name}.json`);
    await writeFile(file, typeof content === "string" ? content : JSON.stringify(content));
    const r = await dsi("generate", "--cluster", file, "--max-tokens", "4");
    assert.equal(r.code, 2, `${name}: ${r.stderr}`);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], new RegExp(`cluster file ${file.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}`), name);
    assert.match(lines[0], message, name);
  }
  // YAML: by the file's extension; parse errors say where.
  const yaml = join(dir, "bad.yaml");
  await writeFile(yaml, "drafter: { backend: synthetic\ntargets: [");
  const y = await dsi("generate", "--cluster", yaml, "--max-tokens", "4");
  assert.equal(y.code, 2);
  assert.match(y.stderr.trim(), /^error: cluster file .*bad\.yaml: not YAML \(.*line \d+/);

  const flag = await dsi("generate", "--cluster", join(dir, "missing.json"), "--sp", "2");
  assert.equal(flag.code, 2);
  assert.match(flag.stderr, /--sp does not apply with --cluster/);
});

test("distributions through a worker equal the in-process ones to float32 precision; sampled tokens match", async () => {
  const local = pair.instance("target");
  const sampling = { temperature: 0.8, topK: 0, topP: 1 };
  for (const tokens of [[1, 2, 3], [5, 5, 9, 14, 2, 7], [0]]) {
    const req = { tokens, from: Math.max(1, tokens.length - 3), sampling, seed: 11, stream: 1 };
    const [mine, theirs] = [await local.evaluate({ ...req, mode: "dist" }), await remotes[1].evaluate({ ...req, mode: "dist" })];
    assert.equal(theirs.length, mine.length);
    mine.forEach((m, i) => m.probs!.forEach((p, k) => assert.ok(Math.abs(p - theirs[i].probs![k]) <= 1e-7 * Math.max(p, 1e-30) + 1e-12, `position ${i} token ${k}`)));
    assert.deepEqual(await remotes[1].evaluate({ ...req, mode: "sample" }), await local.evaluate({ ...req, mode: "sample" }));
  }
});

/** The target's exact joint distribution of the first two tokens after [3, 1] (vocabulary 16: 256 cells). */
function firstTwoTokens() {
  const sampling = { temperature: 1, topK: 0, topP: 1 };
  const prompt = [3, 1];
  const V = 16;
  return { sampling, prompt, V, exact: targetJoint(pair, prompt, 2, sampling) };
}

test("rejection sampling through target workers matches the target's exact joint distribution (chi-square)", { timeout: 120_000 }, async () => {
  // The first two tokens after the prompt (vocabulary 16: 256 cells), three tokens generated
  // so both checked positions go through rejection sampling.
  const { sampling, prompt, V, exact } = firstTwoTokens();
  // No emulated latency: the distribution is what is tested, and 3000 generations add up.
  const rt = assembleRuntime({ clock: "real", drafter: pair.instance("drafter"), target: (i) => remotes[i], vocabSize: 16, eosToken: undefined, sp: 3 });
  // Three generations at once on the three workers (the pool admits one per instance).
  await assertFirstTwoTokensFollow(exact, V, 3000, (seed) => generate("dsi", rt, { prompt, maxTokens: 3, sampling, verify: "rejection", seed, lookahead: 2 }).result, 3);
});

test("float16 distributions: each probability within float16 rounding of the target's", async () => {
  const half = await RemoteInstance.connect(remotes[1].address, { probs: "float16" });
  try {
    const local = pair.instance("target");
    const sampling = { temperature: 0.8, topK: 0, topP: 1 };
    for (const tokens of [[1, 2, 3], [5, 5, 9, 14, 2, 7]]) {
      const req = { tokens, from: tokens.length - 2, mode: "dist" as const, sampling, seed: 1, stream: 1 };
      const [mine, theirs] = [await local.evaluate(req), await half.evaluate(req)];
      mine.forEach((m, i) => {
        // Relative 2^-11 for normal float16 values, absolute 2^-25 below them; renormalised to sum 1.
        m.probs!.forEach((p, k) => assert.ok(Math.abs(p - theirs[i].probs![k]) <= 2 ** -11 * p * 1.01 + 2 ** -24, `position ${i} token ${k}: ${p} vs ${theirs[i].probs![k]}`));
        assert.ok(Math.abs([...theirs[i].probs!].reduce((a, b) => a + b, 0) - 1) < 1e-12);
      });
    }
  } finally {
    half.close();
  }
});

test("rejection sampling with float16 distributions from the workers passes the same chi-square test", { timeout: 120_000 }, async () => {
  const { sampling, prompt, V, exact } = firstTwoTokens();
  const halves = await Promise.all(remotes.map((r) => RemoteInstance.connect(r.address, { probs: "float16" })));
  try {
    const rt = assembleRuntime({ clock: "real", drafter: pair.instance("drafter"), target: (i) => halves[i], vocabSize: 16, eosToken: undefined, sp: 3 });
    await assertFirstTwoTokensFollow(exact, V, 3000, (seed) => generate("dsi", rt, { prompt, maxTokens: 3, sampling, verify: "rejection", seed, lookahead: 2 }).result, 3);
  } finally {
    for (const h of halves) h.close();
  }
});

test("worker counters: calls, tokens and positions as the client sent them", async () => {
  const r = remotes[2];
  const s0 = await r.stats();
  const sent0 = r.tokensSent;
  let positions = 0;
  const seq = [1, 2, 3];
  for (let i = 0; i < 10; i++) {
    seq.push(i % 16, (i * 3) % 16);
    const from = seq.length - 2;
    positions += (await r.evaluate({ tokens: seq, from, mode: "greedy", sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 0, stream: 1 })).length;
  }
  const s1 = await r.stats();
  assert.equal(s1.calls - s0.calls, 10);
  assert.equal(s1.positionsEvaluated - s0.positionsEvaluated, positions);
  assert.equal(s1.tokensReceived - s0.tokensReceived, r.tokensSent - sent0);
  assert.ok(s1.busySeconds >= s0.busySeconds);
});

test("aborting a call cancels the evaluation on the worker, at once", async () => {
  const s0 = await slow.stats();
  const controller = new AbortController();
  const t0 = performance.now();
  const call = slow.evaluate({ tokens: [1, 2, 3], from: 3, mode: "greedy", sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 0, stream: 1 }, controller.signal);
  setTimeout(() => controller.abort(), 50);
  await assert.rejects(call, (err: Error) => err.name === "AbortError");
  assert.ok(performance.now() - t0 < 1500, "the caller did not wait for the 2 s evaluation");
  // The worker saw the cancellation and stopped its (latency-modelled) evaluation.
  let s1 = await slow.stats();
  for (let i = 0; i < 20 && s1.cancelled === s0.cancelled; i++) s1 = await new Promise((r) => setTimeout(r, 50)).then(() => slow.stats());
  assert.equal(s1.cancelled - s0.cancelled, 1);
  assert.ok(s1.busySeconds - s0.busySeconds < 1.5, `busy ${s1.busySeconds - s0.busySeconds} s`);
  // The next call on the same worker is consistent (the aborted call's tokens are held or resent).
  const out = await slow.evaluate({ tokens: [1, 2, 3, 4], from: 4, mode: "greedy", sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 0, stream: 1 });
  assert.deepEqual(out, await pair.instance("target").evaluate({ tokens: [1, 2, 3, 4], from: 4, mode: "greedy", sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 0, stream: 1 }));
});

test("a call past its deadline fails with a message naming the worker", async () => {
  const impatient = await RemoteInstance.connect(slow.address, { callTimeoutMs: 200 });
  try {
    const t0 = performance.now();
    await assert.rejects(
      impatient.evaluate({ tokens: [1, 2], from: 2, mode: "greedy", sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 0, stream: 1 }),
      (err: Error) => err.name === "WorkerError" && err.message === `worker ${slow.address}: no answer within 200 ms (the call's deadline)`,
    );
    assert.ok(performance.now() - t0 < 1500);
  } finally {
    impatient.close();
  }
});

test("a worker that dies: its calls fail with a message naming it, within a few seconds", async () => {
  const address = await startWorker();
  const doomed = await RemoteInstance.connect(address);
  const child = children.at(-1)!;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGKILL");
  await exited;
  const t0 = performance.now();
  await assert.rejects(
    doomed.evaluate({ tokens: [1, 2], from: 2, mode: "greedy", sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 0, stream: 1 }),
    (err: Error) => err.name === "WorkerError" && err.message.startsWith(`worker ${address}: unreachable`),
  );
  assert.ok(performance.now() - t0 < 5000);
  doomed.close();
});

test("kill -9 of a target worker mid-generation: the generation completes with non-SI's tokens; the log shows the re-dispatch", { timeout: 60_000 }, async () => {
  // Whole-context models: an evaluation on a wrong prefix after the re-dispatch would show.
  const whole = new SyntheticPair({ vocab: 16, seed: 5, agreement: 0.7, context: "all" });
  const addresses = await Promise.all([0, 1, 2].map(() => startWorker("--latency", "20/1", "--history", "all")));
  const victims = children.slice(-3);
  const targets = await Promise.all(addresses.map((a) => RemoteInstance.connect(a)));
  try {
    const rt = assembleRuntime({ clock: "real", drafter: whole.instance("drafter"), target: (i) => targets[i], vocabSize: 16, eosToken: undefined, sp: 3, profile: profile(0, 2) });
    const o = { prompt: [2, 7, 1], maxTokens: 60, seed: 0 };
    const reference = (await generate("nonsi", syntheticRuntime({ pair: whole }), o).result).tokens;
    const gen = generate("dsi", rt, { ...o, lookahead: 3 });
    setTimeout(() => victims[1].kill("SIGKILL"), 300);
    const r = await gen.result;
    assert.deepEqual(r.tokens, reference);
    const lost = rt.events.events.filter((e) => e.type === "task-lost");
    assert.ok(lost.length >= 1, "a task was lost with the worker");
    const lostAt = lost[0].t;
    assert.ok(rt.events.events.some((e) => e.type === "dispatch" && e.t >= lostAt && e.instance !== lost[0].instance), "its work went to another instance");
    assert.ok(rt.events.events.every((e) => e.type !== "dispatch" || e.t <= lostAt || e.instance !== lost[0].instance), "the dead instance got no more tasks");
  } finally {
    for (const t of targets) t.close();
  }
});

test("every target worker killed: exit code 1 with a message naming the dead workers, within seconds", { timeout: 60_000 }, async () => {
  const addresses = await Promise.all([startWorker("--latency", "30/1"), startWorker("--latency", "30/1")]);
  const victims = children.slice(-2);
  const dir = await tempDir("cluster-dead");
  const file = join(dir, "cluster.json");
  await writeFile(file, JSON.stringify({ drafter: { backend: "synthetic", vocab: 16, modelSeed: 5, agreement: 0.7 }, targets: addresses.map((address) => ({ address })) }));
  const child = spawn(process.execPath, [CLI, "generate", "--cluster", file, "--max-tokens", "1000", "--lookahead", "3"], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  let t0 = 0;
  child.stdout.on("data", (d: Buffer) => {
    stdout += d.toString();
    // Kill every worker once the generation is under way (text is streaming).
    if (t0 === 0 && /seed 0: "\w{5}/.test(stdout)) {
      t0 = performance.now();
      victims.forEach((v) => v.kill("SIGKILL"));
    }
  });
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  const r = { code, stderr };
  assert.ok(t0 > 0, `the generation never started: ${stdout}${stderr}`);
  assert.equal(r.code, 1, r.stderr);
  const last = r.stderr.trim().split("\n").at(-1)!;
  assert.match(last, /^error: no target instance left: /);
  for (const a of addresses) assert.ok(last.includes(`worker ${a}: unreachable`), `${a} named in: ${last}`);
  assert.ok(performance.now() - t0 < 15_000, `took ${performance.now() - t0} ms`);
});
