/**
 * `dsi cluster` (workers started, written to a cluster file, restarted, stopped with no child
 * left behind, also when the cluster process is killed) and a restarted worker rejoining a
 * running pool.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { access, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { generate } from "../../src/algorithms/generate.js";
import { workerLaunch, type ClusterFlags } from "../../src/cli/cluster.js";
import { resolveProfile } from "../../src/models/latency.js";
import { RemoteInstance } from "../../src/models/remote/client.js";
import { loadClusterFile } from "../../src/models/remote/cluster.js";
import { assembleRuntime, syntheticRuntime } from "../../src/models/runtime.js";
import { SyntheticPair } from "../../src/models/synthetic.js";
import { alive, CLI, dsi, dsiProcess, eventually, startWorker, stopChildren } from "../helpers/processes.js";
import { pairFiles, SMALL_PAIR } from "../helpers/gguf-models.js";
import { tempDir } from "../helpers/temp.js";

// Whole-context models (history all): every test here checks outputs through faults, and only
// then does an evaluation on a wrong prefix change an output (test/worker/faults.test.ts).
const SPEC = ["--vocab", "16", "--model-seed", "5", "--agreement", "0.7", "--history", "all"];
const pair = new SyntheticPair({ vocab: 16, seed: 5, agreement: 0.7, context: "all" });

interface Cluster {
  child: ChildProcess;
  file: string;
  pids: number[];
  stderr: () => string;
}

/** Starts `dsi cluster` and waits until it printed the cluster file. */
async function startCluster(args: string[], env: Record<string, string> = {}): Promise<Cluster> {
  const dir = await tempDir("dsi-cluster");
  const file = join(dir, "cluster.yaml");
  const child = spawn(process.execPath, [CLI, "cluster", ...SPEC, "--out", file, ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const up = await eventually(() => /target worker\(s\) up/.test(stderr) || child.exitCode !== null, 20_000);
  assert.ok(up && child.exitCode === null, `dsi cluster did not come up: ${stderr}`);
  const pids = [...stderr.matchAll(/target-\d+ pid (\d+)/g)].map((m) => Number(m[1]));
  return { child, file, pids, stderr: () => stderr };
}

function exited(child: ChildProcess): Promise<number | null> {
  return child.exitCode !== null ? Promise.resolve(child.exitCode) : new Promise((r) => child.once("exit", (code) => r(code)));
}

test("dsi cluster: starts the workers, writes the cluster file, restarts a dead worker at its address, and SIGTERM leaves no child behind", { timeout: 60_000 }, async () => {
  const c = await startCluster(["--targets", "3", "--latency", "5/1"]);
  const spec = await loadClusterFile(c.file);
  try {
    assert.equal(c.pids.length, 3);
    assert.equal(spec.targets.length, 3);
    assert.deepEqual(spec.drafter, { backend: "synthetic", vocab: 16, agreement: 0.7, history: "all", modelSeed: 5, latency: "5/1" });

    const reference = JSON.parse((await dsi(["generate", "--algo", "nonsi", ...SPEC, "--max-tokens", "24", "--json"])).stdout).completions[0].tokens;
    const run = async (): Promise<number[]> => {
      const r = await dsi(["generate", "--cluster", c.file, "--max-tokens", "24", "--lookahead", "3", "--json"]);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout).completions[0].tokens;
    };
    assert.deepEqual(await run(), reference);

    // A worker killed: the cluster starts it again at the same address.
    process.kill(c.pids[1], "SIGKILL");
    assert.ok(await eventually(() => /target-1 is back at /.test(c.stderr()), 15_000), c.stderr());
    assert.match(c.stderr(), new RegExp(`target-1 is back at ${spec.targets[1].address.replace(/\./g, "\\.")}`));
    assert.deepEqual(await run(), reference);
  } finally {
    c.child.kill("SIGTERM");
  }
  const t0 = performance.now();
  assert.equal(await exited(c.child), 0, c.stderr());
  assert.ok(performance.now() - t0 < 3000, `stopping took ${performance.now() - t0} ms (the workers needed SIGKILL)`);
  assert.ok(c.pids.every((pid) => !alive(pid)), "every worker stopped");
  assert.match(c.stderr(), /stopping the workers/);
  await assert.rejects(access(c.file), "the cluster file is removed with the workers");
  // The restarted worker (a new pid) is gone too: nothing listens at the cluster's addresses.
  await assert.rejects(RemoteInstance.connect(spec.targets[1].address, { connectTimeoutMs: 500 }));
});

test("kill -9 of dsi cluster: its workers stop on their own (their standard input closes)", { timeout: 30_000 }, async () => {
  const c = await startCluster(["--targets", "2"]);
  assert.ok(c.pids.every(alive));
  c.child.kill("SIGKILL");
  await exited(c.child);
  assert.ok(await eventually(() => c.pids.every((pid) => !alive(pid)), 5000), "workers still running after their cluster was killed");
});

test("dsi cluster with DSI_TOKEN: its workers require the token; generate with it works, without it is refused", { timeout: 30_000 }, async () => {
  const token = "cluster-token-0123456789abcdef";
  const c = await startCluster(["--targets", "2"], { DSI_TOKEN: token });
  try {
    const ok = await dsi(["generate", "--cluster", c.file, "--max-tokens", "8"], { DSI_TOKEN: token });
    assert.equal(ok.code, 0, ok.stderr);
    const refused = await dsi(["generate", "--cluster", c.file, "--max-tokens", "8"], { DSI_TOKEN: "" });
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /refused: missing or wrong token/);
  } finally {
    c.child.kill("SIGTERM");
    await exited(c.child);
  }
});

test("dsi cluster: bad input is one line and exit 2; a worker that cannot start is named", async () => {
  const none = await dsi(["cluster", ...SPEC]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /--targets: give the number of target workers/);
  const twice = await dsi(["cluster", "--backend", "llama", "--gpus", "0,0"]);
  assert.equal(twice.code, 2);
  assert.match(twice.stderr, /a device id is listed twice/);
  const gpusSynthetic = await dsi(["cluster", "--gpus", "0,1"]);
  assert.equal(gpusSynthetic.code, 2);
  assert.match(gpusSynthetic.stderr, /--gpus applies to cluster --backend llama, not synthetic/);
  const dir = await tempDir("cluster-bad");
  const missing = join(dir, "missing.gguf");
  const bad = await dsiProcess(["cluster", "--backend", "llama", "--target", missing, "--drafter", missing, "--targets", "2", "--out", join(dir, "c.json")]);
  assert.equal(bad.code, 2, bad.stderr);
  const last = bad.stderr.trim().split("\n").at(-1)!;
  assert.match(last, /^error: target-\d exited \(code 2\) before it listened: .*missing\.gguf/);
  await assert.rejects(access(join(dir, "c.json")), "no cluster file for a cluster that never started");
});

test("workers of dsi cluster --gpus: one device each, round robin, as CUDA_VISIBLE_DEVICES", () => {
  const f: ClusterFlags = {
    backend: "llama",
    target: "/m/t.gguf",
    drafter: "/m/d.gguf",
    threads: 2,
    gpu: false,
    synthetic: {},
    targets: 3,
    gpus: [2, 5],
    latency: resolveProfile("none")!,
    out: "c.json",
    startTimeout: 60,
    sequences: 1,
  };
  const launches = [0, 1, 2].map((i) => workerLaunch(f, { gpu: f.gpus![i % 2] }));
  assert.ok(!launches[0].args.includes("--sequences"), "one sequence: the worker's default");
  const four = workerLaunch({ ...f, sequences: 4 }, {}).args;
  assert.deepEqual(four.slice(four.indexOf("--sequences"), four.indexOf("--sequences") + 2), ["--sequences", "4"]);
  assert.deepEqual(
    launches.map((l) => l.env.CUDA_VISIBLE_DEVICES),
    ["2", "5", "2"],
  );
  for (const l of launches) {
    assert.ok(l.args.includes("--gpu") && l.args.includes("--exit-on-stdin-close"));
    assert.deepEqual(l.args.slice(l.args.indexOf("--model"), l.args.indexOf("--model") + 2), ["--model", "/m/t.gguf"]);
  }
  assert.deepEqual(workerLaunch({ ...f, gpus: undefined }, {}).env, {}, "no devices given: the environment is left alone");
  assert.ok(!workerLaunch({ ...f, gpus: undefined }, {}).args.includes("--gpu"));
});

test("a restarted worker rejoins the running pool: the next generation uses it again", { timeout: 60_000 }, async () => {
  const first = await startWorker(["--listen", "127.0.0.1:0", ...SPEC, "--latency", "10/1"]);
  const other = await startWorker(["--listen", "127.0.0.1:0", ...SPEC, "--latency", "10/1"]);
  const targets = await Promise.all([first.address, other.address].map((a) => RemoteInstance.connect(a)));
  try {
    const rt = assembleRuntime({ clock: "real", drafter: pair.instance("drafter"), target: (i) => targets[i], vocabSize: 16, eosToken: undefined, sp: 2 });
    const o = { prompt: [2, 7, 1], maxTokens: 30, seed: 0, lookahead: 3 };
    const reference = (await generate("nonsi", syntheticRuntime({ pair }), { ...o, lookahead: undefined }).result).tokens;

    first.child.kill("SIGKILL");
    await exited(first.child);
    const lost = await generate("dsi", rt, o).result;
    assert.deepEqual(lost.tokens, reference);
    assert.equal(rt.pool.alive, 1, "the dead worker was retired");

    // Started again at the same address: probed, found, back in the pool.
    const again = await startWorker(["--listen", first.address, ...SPEC, "--latency", "10/1"]);
    assert.ok(await eventually(() => rt.pool.alive === 2, 10_000), "the restarted worker did not rejoin");
    assert.ok(rt.events.events.some((e) => e.type === "rejoin" && e.instance === 0));
    const mark = rt.events.events.length;
    const back = await generate("dsi", rt, o).result;
    assert.deepEqual(back.tokens, reference);
    assert.ok(rt.events.events.slice(mark).some((e) => e.type === "dispatch" && e.instance === 0), "the rejoined instance got work");
    await stopChildren([again.child]);
  } finally {
    for (const t of targets) t.close();
  }
});

test("a remote drafter (cluster file backend: remote): same tokens; killed mid-generation, the targets finish alone", { timeout: 60_000 }, async () => {
  const drafterWorker = await startWorker(["--listen", "127.0.0.1:0", "--role", "drafter", ...SPEC, "--latency", "20/4"]);
  const targetWorkers = await Promise.all([0, 1].map(() => startWorker(["--listen", "127.0.0.1:0", ...SPEC, "--latency", "20/4"])));
  const dir = await tempDir("remote-drafter");
  const file = join(dir, "cluster.json");
  await writeFile(file, JSON.stringify({ drafter: { backend: "remote", address: drafterWorker.address }, targets: targetWorkers.map((w) => ({ address: w.address })) }));
  const reference = JSON.parse((await dsi(["generate", "--algo", "nonsi", ...SPEC, "--max-tokens", "20", "--json"])).stdout).completions[0].tokens;
  const r = await dsi(["generate", "--cluster", file, "--max-tokens", "20", "--lookahead", "3", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(out.completions[0].tokens, reference);
  assert.match(out.config.backend, /^cluster: remote drafter at 127\.0\.0\.1:\d+, 2 target worker\(s\)/);
  assert.ok(out.completions[0].stats.drafted > 0);

  const drafter = await RemoteInstance.connect(drafterWorker.address);
  const targets = await Promise.all(targetWorkers.map((w) => RemoteInstance.connect(w.address)));
  try {
    const o = { prompt: [2, 7, 1], maxTokens: 40, seed: 0 };
    const expected = (await generate("nonsi", syntheticRuntime({ pair }), o).result).tokens;
    const rt = assembleRuntime({ clock: "real", drafter, target: (i) => targets[i], vocabSize: 16, eosToken: undefined, sp: 2 });
    const gen = generate("dsi", rt, { ...o, lookahead: 3 });
    setTimeout(() => drafterWorker.child.kill("SIGKILL"), 200);
    const res = await gen.result;
    assert.deepEqual(res.tokens, expected);
    assert.ok(rt.events.events.some((e) => e.type === "drafter-lost"), "the loss is in the log");
    // SI on the same (dead) drafter: every step is a target-only step, same tokens.
    const si = await generate("si", assembleRuntime({ clock: "real", drafter, target: (i) => targets[i], vocabSize: 16, eosToken: undefined, sp: 1 }), { ...o, lookahead: 3 }).result;
    assert.deepEqual(si.tokens, expected);
  } finally {
    drafter.close();
    for (const t of targets) t.close();
  }
});

test("a cluster without a drafter (the targets alone): non-SI and --draft ngram give non-SI's tokens; the drafter model is refused; tokenizer only without a drafter", { timeout: 60_000 }, async () => {
  const workers = await Promise.all([0, 1].map(() => startWorker(["--listen", "127.0.0.1:0", ...SPEC, "--latency", "5/1"])));
  const dir = await tempDir("targets-alone");
  const file = join(dir, "cluster.json");
  await writeFile(file, JSON.stringify({ targets: workers.map((w) => ({ address: w.address })) }));
  const prompt = ["--prompt", "abcabcabcabc", "--max-tokens", "24", "--json"];
  const reference = JSON.parse((await dsi(["generate", "--algo", "nonsi", ...SPEC, ...prompt])).stdout).completions[0].tokens;
  const nonsi = await dsi(["generate", "--cluster", file, "--algo", "nonsi", ...prompt]);
  assert.equal(nonsi.code, 0, nonsi.stderr);
  assert.match(JSON.parse(nonsi.stdout).config.backend, /^cluster: no drafter \(the targets alone/);
  await lookupAloneGivesNonSi(file, prompt, reference);
  const model = await dsi(["generate", "--cluster", file, ...prompt]);
  assert.equal(model.code, 2);
  assert.match(model.stderr, /--draft: draft model needs a drafter model and this runtime has none/);
  await writeFile(file, JSON.stringify({ drafter: { backend: "synthetic", vocab: 16 }, tokenizer: "t.gguf", targets: workers.map((w) => ({ address: w.address })) }));
  const both = await dsi(["generate", "--cluster", file, "--max-tokens", "2"]);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /tokenizer: applies to a cluster without a drafter/);
});

test("dsi cluster --backend llama without --drafter: llama target workers alone, the file names the tokenizer, and --draft ngram gives the target alone's non-SI tokens", { timeout: 120_000 }, async () => {
  const files = await pairFiles("small", SMALL_PAIR);
  const dir = await tempDir("llama-targets-alone");
  const file = join(dir, "cluster.json");
  const child = spawn(process.execPath, [CLI, "cluster", "--backend", "llama", "--target", files.target, "--targets", "2", "--out", file], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  try {
    const up = await eventually(() => /target worker\(s\) up/.test(stderr) || child.exitCode !== null, 90_000);
    assert.ok(up && child.exitCode === null, `dsi cluster did not come up: ${stderr}`);
    const spec = await loadClusterFile(file);
    assert.equal(spec.drafter, undefined);
    assert.equal(spec.tokenizer, files.target);
    const prompt = ["--prompt", "a b c a b c a b c", "--max-tokens", "24", "--json"];
    const alone = await dsi(["generate", "--backend", "llama", "--target", files.target, "--algo", "nonsi", ...prompt]);
    assert.equal(alone.code, 0, alone.stderr);
    const reference = JSON.parse(alone.stdout).completions[0].tokens;
    await lookupAloneGivesNonSi(file, prompt, reference);
  } finally {
    child.kill("SIGTERM");
    await exited(child);
  }
});

/** SI and DSI with prompt lookup alone over a cluster file: non-SI's tokens, drafted by lookup only. */
async function lookupAloneGivesNonSi(file: string, prompt: string[], reference: number[]): Promise<void> {
  for (const algo of ["si", "dsi"]) {
    const r = await dsi(["generate", "--cluster", file, "--algo", algo, "--draft", "ngram", "--ngram-min", "1", "--lookahead", "3", ...prompt]);
    assert.equal(r.code, 0, r.stderr);
    const c = JSON.parse(r.stdout).completions[0];
    assert.deepEqual(c.tokens, reference, algo);
    assert.equal(c.stats.bySource.model.drafted, 0);
    assert.ok(c.stats.bySource.ngram.drafted > 0, JSON.stringify(c.stats.bySource));
  }
}
