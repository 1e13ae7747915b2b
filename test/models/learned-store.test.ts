/**
 * What a runtime learned, kept past its process (models/learned-store.ts): save and load,
 * unreadable files ignored with a warning, writers at once, and the llama backend's use of it.
 */
import "../helpers/isolated-cache.js";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { test } from "node:test";
import { generate } from "../../src/algorithms/generate.js";
import { llamaBackend, syntheticBackend } from "../../src/models/backend.js";
import { ServeMetrics } from "../../src/serve/metrics.js";
import { Service } from "../../src/serve/service.js";
import { LEARNED_FILE_VERSION, openLearnedStore } from "../../src/models/learned-store.js";
import { NO_LATENCY } from "../../src/models/latency.js";
import { RealClock } from "../../src/runtime/clock.js";
import { newLearned, snapshotLearned, type Learned } from "../../src/runtime/costs.js";
import { dsi } from "../helpers/cli.js";
import { pairFiles, SMALL_PAIR } from "../helpers/gguf-models.js";
import { tempDir } from "../helpers/temp.js";

const IDENTITY = { backend: "test", target: "t", drafter: "d", threads: 1 };

function learnedSample(): Learned {
  const l = newLearned();
  l.costs.observe(0, 12);
  l.costs.observe(3, 20);
  l.costs.observe(0, 11, "alone");
  l.costs.observeDraft(2);
  for (let i = 0; i < 30; i++) l.acceptance.observe(i % 3 !== 0);
  return l;
}

function storeIn(dir: string, identity: Record<string, unknown> = IDENTITY) {
  const warnings: string[] = [];
  return { store: openLearnedStore({ dir, identity, warn: (m) => warnings.push(m) }), warnings };
}

test("save, then load in a new store of the same identity: the same estimates; another identity has its own file", async () => {
  const dir = await tempDir("learned");
  const { store, warnings } = storeIn(dir);
  assert.equal(await store.load(), undefined, "no file yet: a cold start, no warning");
  const l = learnedSample();
  await store.save(l);
  const again = storeIn(dir);
  assert.equal(again.store.path, store.path);
  const loaded = await again.store.load();
  assert.ok(loaded);
  for (const where of ["alone", "beside"] as const) {
    for (const k of [0, 1, 3]) assert.equal(loaded.costs.meanMs(k, where), l.costs.meanMs(k, where));
    assert.equal(loaded.costs.drafterMs(where), l.costs.drafterMs(where));
  }
  assert.equal(loaded.costs.soloMs(), l.costs.soloMs());
  assert.ok(Math.abs(loaded.acceptance.rate()! - l.acceptance.rate()!) < 0.05);
  const other = storeIn(dir, { ...IDENTITY, threads: 2 });
  assert.notEqual(other.store.path, store.path);
  assert.equal(await other.store.load(), undefined);
  assert.deepEqual([...warnings, ...again.warnings, ...other.warnings], []);
  const file = JSON.parse(await readFile(store.path, "utf8"));
  assert.equal(file.version, LEARNED_FILE_VERSION);
  assert.deepEqual(file.identity, IDENTITY);
  assert.deepEqual(await readdir(join(dir, "learned")), [basename(store.path)], "one file, no temporary file left");
});

test("a corrupt, truncated, older, future-version or malformed file is ignored with a warning (a cold start)", async () => {
  const dir = await tempDir("learned");
  const { store } = storeIn(dir);
  await store.save(learnedSample());
  const whole = await readFile(store.path, "utf8");
  const future = JSON.stringify({ ...JSON.parse(whole), version: LEARNED_FILE_VERSION + 1 });
  const older = JSON.stringify({ ...JSON.parse(whole), version: LEARNED_FILE_VERSION - 1 });
  const malformed = JSON.stringify({ ...JSON.parse(whole), learned: { costs: { aloneMsByDrafts: ["x"] } } });
  for (const [name, text, why] of [
    ["corrupt", "\u0000\u0001garbage{", /not valid JSON/],
    ["truncated", whole.slice(0, Math.floor(whole.length / 2)), /not valid JSON/],
    ["future version", future, new RegExp(`version ${LEARNED_FILE_VERSION + 1}`)],
    ["older version", older, /written by an earlier dsi/],
    ["malformed", malformed, /no valid learned costs/],
    ["not an object", "[1, 2]", /not a learned-costs file/],
  ] as const) {
    await writeFile(store.path, text);
    const { store: s, warnings } = storeIn(dir);
    assert.equal(await s.load(), undefined, name);
    assert.equal(warnings.length, 1, `${name}: ${warnings}`);
    assert.match(warnings[0], why, name);
  }
  // A cold start then saves over it: the next load reads again.
  await store.save(learnedSample());
  assert.ok(await storeIn(dir).store.load());
});

test("two processes saving the same store 20 times each at once leave a file that loads; a reader meanwhile never meets half a file", async () => {
  const dir = await tempDir("learned");
  const costsModule = new URL("../../src/runtime/costs.js", import.meta.url).href;
  const storeModule = new URL("../../src/models/learned-store.js", import.meta.url).href;
  const script = (n: number): string => `
    const { newLearned } = await import(${JSON.stringify(costsModule)});
    const { openLearnedStore } = await import(${JSON.stringify(storeModule)});
    const store = openLearnedStore({ dir: ${JSON.stringify(dir)}, identity: ${JSON.stringify(IDENTITY)}, warn: (m) => { console.error(m); process.exitCode = 3; } });
    const l = newLearned();
    for (let i = 0; i < 20; i++) {
      for (let k = 0; k < 50; k++) l.costs.observe(k % 6, ${n} * 100 + i + k);
      l.acceptance.observe(i % 2 === 0);
      await store.save(l);
    }`;
  const run = (n: number) =>
    new Promise<void>((resolve, reject) =>
      execFile(process.execPath, ["--input-type=module", "-e", script(n)], (err, _stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve())),
    );
  // A reader meanwhile never meets half a file (a missing one, before the first save, is no warning).
  const reader = storeIn(dir);
  let done = false;
  let reads = 0;
  const writers = Promise.all([run(1), run(2)]).finally(() => (done = true));
  while (!done) {
    await reader.store.load();
    reads++;
  }
  await writers;
  assert.deepEqual(reader.warnings, [], `${reads} reads`);
  const { store, warnings } = storeIn(dir);
  const loaded = await store.load();
  assert.ok(loaded, warnings.join("\n"));
  assert.deepEqual(warnings, []);
  // One writer's last state, whole: the last writer wins.
  const mean = loaded.costs.meanMs(0, "beside")!;
  assert.ok((mean > 100 && mean < 200) || (mean > 200 && mean < 300), `mean ${mean}`);
  assert.equal((await readdir(join(dir, "learned"))).length, 1, "no temporary file left");
});

test("the llama backend keeps what its runtime learned at close; a second backend's runtime starts from it; off, nothing is written", async () => {
  const files = await pairFiles("small", SMALL_PAIR);
  const dir = await tempDir("learned-cache");
  const open = (learnedCache: boolean) => llamaBackend({ ...files, threads: 1, gpu: false, cacheDir: dir, learnedCache });

  const off = await open(false);
  assert.equal(off.learnedCache, undefined);
  const rtOff = await off.runtime(new RealClock(), 1, NO_LATENCY);
  await generate("nonsi", rtOff, { prompt: [1, 2, 3], maxTokens: 4 }).result;
  await off.close();
  assert.deepEqual(await readdir(dir).then((d) => d.filter((f) => f === "learned")), [], "off: no learned folder");

  const first = await open(true);
  const path = first.learnedCache!.pathFor(NO_LATENCY);
  assert.ok(path.startsWith(join(dir, "learned")));
  const rt = await first.runtime(new RealClock(), 2, NO_LATENCY);
  assert.equal(rt.learned.costs.soloMs(), undefined, "the first command on a machine starts cold");
  await generate("dsi", rt, { prompt: [1, 2, 3], maxTokens: 8, lookahead: 2 }).result;
  const measured = snapshotLearned(rt.learned);
  await first.close();
  assert.deepEqual(JSON.parse(await readFile(path, "utf8")).learned, JSON.parse(JSON.stringify(measured)));

  const second = await open(true);
  const rt2 = await second.runtime(new RealClock(), 2, NO_LATENCY);
  assert.deepEqual(snapshotLearned(rt2.learned).costs, snapshotLearned(rt.learned).costs, "starts where the last left off, before any generation");
  assert.ok(snapshotLearned(rt2.learned).costs.besideMsByDrafts.some((ms) => ms !== null), "DSI's windows ran beside each other");
  const slower = { name: "5/1", target: { ...NO_LATENCY.target, tpotMs: 5 }, drafter: NO_LATENCY.drafter };
  assert.notEqual(second.learnedCache!.pathFor(slower), path, "another latency profile is another identity");
  const sharing = await llamaBackend({ ...files, threads: 1, gpu: false, cacheDir: dir, learnedCache: true, sequences: 4 });
  assert.notEqual(sharing.learnedCache!.pathFor(NO_LATENCY), path, "sequences sharing passes are another identity (their costs beside others differ)");
  await sharing.close();
  assert.equal((await second.runtime(new RealClock(), 1, slower)).learned.costs.soloMs(), undefined);
  await second.close();
});

test("generate reports where it keeps the learned costs; --no-learned-cache and DSI_LEARNED_CACHE=0 keep nothing; synthetic and --cluster refuse the flag", async () => {
  const files = await pairFiles("small", SMALL_PAIR);
  const args = ["generate", "--backend", "llama", "--target", files.target, "--drafter", files.drafter, "--max-tokens", "3", "--threads", "2", "--json"];
  const learnedDir = join(process.env.DSI_CACHE_DIR!, "learned");
  const list = () => readdir(learnedDir).catch(() => [] as string[]);
  for (const [how, extra, env] of [
    ["flag", ["--no-learned-cache"], {}],
    ["env", [], { DSI_LEARNED_CACHE: "0" }],
  ] as const) {
    const before = await list();
    const r = await dsi([...args, ...extra], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).config.learnedCache, undefined, how);
    assert.deepEqual(await list(), before, `${how}: nothing written`);
  }
  const r = await dsi(args);
  assert.equal(r.code, 0, r.stderr);
  const path = JSON.parse(r.stdout).config.learnedCache as string;
  assert.ok(path.startsWith(learnedDir), path);
  assert.ok(JSON.parse(await readFile(path, "utf8")).learned.costs.aloneMsByDrafts.length > 0);
  const text = await dsi(args.filter((a) => a !== "--json"));
  assert.ok(text.stdout.includes(`learned costs ${path}`), text.stdout);
  const synthetic = await dsi(["generate", "--no-learned-cache"]);
  assert.equal(synthetic.code, 2);
  assert.match(synthetic.stderr, /--no-learned-cache applies to --backend llama/);
  const cluster = await dsi(["generate", "--cluster", "nowhere.json", "--no-learned-cache"]);
  assert.equal(cluster.code, 2);
  assert.match(cluster.stderr, /--no-learned-cache does not apply with --cluster/);
  const demo = await dsi(["demo", "--backend", "synthetic", "--no-learned-cache"]);
  assert.equal(demo.code, 2);
  assert.match(demo.stderr, /--no-learned-cache applies to demo --backend llama/);
});

test("a server saves what its runtime learned when it learned something since, and at drain", async () => {
  let saves = 0;
  const backend = { ...syntheticBackend({ vocab: 16 }), saveLearned: async () => void saves++ };
  const service = await Service.open({ backend, sp: 2, profile: NO_LATENCY, maxConcurrent: 4, maxQueue: 4, metrics: new ServeMetrics() });
  await service.saveLearned();
  assert.equal(saves, 0, "nothing learned yet");
  await service.run({ algo: "dsi", options: { prompt: [1, 2], maxTokens: 4, lookahead: 2 } }, new AbortController().signal);
  await Promise.all([service.saveLearned(), service.saveLearned()]);
  assert.equal(saves, 1, "one save for what was learned, not one per call");
  await service.run({ algo: "nonsi", options: { prompt: [1, 2], maxTokens: 2 } }, new AbortController().signal);
  await service.drain(1000);
  assert.equal(saves, 2, "drain saves what was learned since");
  await backend.close();
});
