/** `--copy` reaches the copying synthetic model from every face: generate, worker, cluster files, dsi cluster, simulate. */
import "../helpers/isolated-cache.js";
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { drafterEntry, workerLaunch, type ClusterFlags } from "../../src/cli/cluster.js";
import { argmax } from "../../src/core/sampling.js";
import { resolveProfile } from "../../src/models/latency.js";
import { ClusterError, loadClusterFile } from "../../src/models/remote/cluster.js";
import { SyntheticPair, SyntheticTokenizer } from "../../src/models/synthetic.js";
import { dsi, startWorker } from "../helpers/processes.js";
import { tempDir } from "../helpers/temp.js";

const PROMPT = "the cat sat on the mat. the cat sat on the mat. the";
const PHRASE = new SyntheticTokenizer(32).encode(PROMPT);

/** The target's greedy tokens after the prompt. */
function greedy(pair: SyntheticPair, n: number): number[] {
  const t = [...PHRASE];
  for (let i = 0; i < n; i++) t.push(argmax(pair.targetLogits(t, t.length)));
  return t.slice(PHRASE.length);
}

test("generate --copy: every algorithm prints the copying target's greedy output, and the header names the copy", async () => {
  const copying = greedy(new SyntheticPair({ copy: 0.9 }), 40);
  assert.notDeepEqual(copying, greedy(new SyntheticPair({}), 40));
  for (const algo of [["--algo", "nonsi"], ["--algo", "si", "--lookahead", "3"], ["--algo", "dsi", "--lookahead", "3", "--sp", "3"]]) {
    const r = await dsi(["generate", ...algo, "--copy", "0.9", "--prompt", PROMPT, "--max-tokens", "40", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(out.completions[0].tokens, copying, algo[1]);
    assert.match(out.config.backend, /agreement 0\.7, copy 0\.9, model seed 1\)/);
  }
  const plain = JSON.parse((await dsi(["generate", "--algo", "nonsi", "--max-tokens", "4", "--json"])).stdout);
  assert.doesNotMatch(plain.config.backend, /copy/, "copy 0 is not mentioned");
});

test("--copy is the synthetic backend's: worker and cluster with llama refuse it", async () => {
  for (const command of ["worker", "cluster"]) {
    const r = await dsi([command, "--backend", "llama", "--copy", "0.5"]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`--copy applies to ${command} --backend synthetic, not llama`));
  }
});

test("worker --copy and a cluster file's synthetic drafter copy: the cluster prints the copying output, and its drafter follows the copies", { timeout: 60_000 }, async () => {
  const { address } = await startWorker(["--listen", "127.0.0.1:0", "--copy", "0.9"]);
  const dir = await tempDir("copy-cluster");
  const acceptance = async (drafter: Record<string, unknown>): Promise<number> => {
    const file = join(dir, `cluster-${Object.keys(drafter).length}.json`);
    await writeFile(file, JSON.stringify({ drafter: { backend: "synthetic", ...drafter }, targets: [{ address }] }));
    const r = await dsi(["generate", "--cluster", file, "--algo", "si", "--lookahead", "3", "--prompt", PROMPT, "--max-tokens", "60", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(out.completions[0].tokens, greedy(new SyntheticPair({ copy: 0.9 }), 60), "the worker's target copies");
    return out.stats.acceptanceRate;
  };
  const [following, blind] = [await acceptance({ copy: 0.9 }), await acceptance({})];
  // The drafter agrees with its own target 0.7 of the time; one that does not copy misses most copies.
  assert.ok(following > 0.55 && blind < following - 0.25, `acceptance ${following} with the drafter's copy, ${blind} without`);
});

test("cluster files: a synthetic drafter's copy is in [0, 1]", async () => {
  const dir = await tempDir("copy-schema");
  const file = join(dir, "c.yaml");
  await writeFile(file, "drafter: { backend: synthetic, copy: 0.4 }\ntargets:\n  - address: 127.0.0.1:7001\n");
  assert.deepEqual((await loadClusterFile(file)).drafter, { backend: "synthetic", copy: 0.4 });
  await writeFile(file, "drafter: { backend: synthetic, copy: 1.5 }\ntargets:\n  - address: 127.0.0.1:7001\n");
  await assert.rejects(loadClusterFile(file), (err: Error) => err instanceof ClusterError && /drafter\.copy: Too big: expected number to be <=1/.test(err.message));
});

test("dsi cluster --copy: its workers start with --copy, and the file it writes gives the drafter the same copy", () => {
  const f: ClusterFlags = { backend: "synthetic", threads: 1, gpu: false, synthetic: { vocab: 16, copy: 0.9 }, targets: 2, latency: resolveProfile("5/1")!, out: "c.json", startTimeout: 60, sequences: 1 };
  const { args } = workerLaunch(f, {});
  assert.deepEqual(args.slice(args.indexOf("--copy"), args.indexOf("--copy") + 2), ["--copy", "0.9"]);
  assert.deepEqual(drafterEntry(f), { backend: "synthetic", vocab: 16, agreement: undefined, history: undefined, modelSeed: undefined, copy: 0.9, latency: "5/1" });
  assert.ok(!("copy" in drafterEntry({ ...f, synthetic: { vocab: 16, copy: 0 } })), "a cluster that does not copy writes the file it wrote before");
});

test("simulate --engine --copy: the configuration says so and the engine's target copies (other paths, other times)", async () => {
  const run = async (...extra: string[]) => {
    const r = await dsi(["simulate", "--engine", "--latency", "10/2", "--acceptance", "0.7", "--lookahead", "3", "--max-tokens", "80", "--repeats", "3", "--json", ...extra]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout);
  };
  const [plain, copying] = [await run(), await run("--copy", "0.9")];
  assert.equal(copying.config.copy, 0.9);
  assert.ok(!("copy" in plain.config));
  assert.notDeepEqual([copying.si.mean, copying.dsi.mean], [plain.si.mean, plain.dsi.mean]);
  const text = await dsi(["simulate", "--engine", "--copy", "0.5", "--max-tokens", "20", "--repeats", "1"]);
  assert.match(text.stdout, /^engine \(virtual clock\): c=0\.1 a=0\.8 copy=0\.5 L=5/);
});

test("simulate --engine --draft: prompt lookup where the target copies gives SI and DSI more than the drafter alone", async () => {
  const run = async (...extra: string[]) => {
    const r = await dsi(["simulate", "--engine", "--latency", "10/2", "--acceptance", "0.7", "--lookahead", "3", "--max-tokens", "120", "--repeats", "3", "--copy", "0.9", "--json", ...extra]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout);
  };
  const [model, both] = [await run(), await run("--draft", "ngram+model")];
  assert.equal(both.config.draft, "ngram+model");
  assert.ok(!("draft" in model.config));
  assert.ok(both.dsi.mean < model.dsi.mean && both.si.mean < model.si.mean, `DSI ${both.dsi.mean} vs ${model.dsi.mean}, SI ${both.si.mean} vs ${model.si.mean}`);
  assert.equal(both.nonsi.mean, model.nonsi.mean, "non-SI drafts nothing");
});
