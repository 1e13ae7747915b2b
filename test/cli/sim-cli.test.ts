/** The simulator's commands as a user meets them: simulate, heatmap, table, plan. */
import "../helpers/isolated-cache.js";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";

import { join } from "node:path";
import { test } from "node:test";
import { tempDir } from "../helpers/temp.js";
import { dsi as run } from "../helpers/cli.js";


/** `dsi ARGS` in this process (main, with its output captured). */
const dsi = (...args: string[]) => run(args);

test("simulate --json: the documented shape, speedups consistent with the means", async () => {
  for (const extra of [[], ["--engine", "--max-tokens", "60", "--repeats", "4"]]) {
    const r = await dsi("simulate", "--latency", "10/2", "--acceptance", "0.7", "--lookahead", "3", "--json", ...extra);
    assert.equal(r.code, 0, r.stderr);
    const o = JSON.parse(r.stdout);
    for (const k of ["nonsi", "si", "dsi"]) assert.ok(Number.isFinite(o[k].mean) && o[k].std >= 0, k);
    assert.ok(Math.abs(o.speedups.si_over_nonsi - o.nonsi.mean / o.si.mean) < 1e-9);
    assert.ok(Math.abs(o.speedups.dsi_over_si - o.si.mean / o.dsi.mean) < 1e-9);
    assert.ok(Math.abs(o.speedups.dsi_over_nonsi - o.nonsi.mean / o.dsi.mean) < 1e-9);
    assert.ok(Math.abs(o.speedups.dsi_over_best - Math.min(o.si.mean, o.nonsi.mean) / o.dsi.mean) < 1e-9);
    assert.ok(o.dsi.mean <= o.si.mean && o.dsi.mean <= o.nonsi.mean);
  }
});

const BAD: [string[], RegExp][] = [
  [["simulate", "--acceptance", "1.5"], /--acceptance.*\[0, 1\]/],
  [["simulate", "--acceptance", "-0.1"], /--acceptance.*\[0, 1\]/],
  [["simulate", "--latency", "10/0"], /--latency: needs 0 < drafter <= target latency/],
  [["simulate", "--latency", "10/12"], /--latency: needs 0 < drafter <= target latency/],
  [["simulate", "--lookahead", "0"], /--lookahead.*1\.\.1024/],
  [["simulate", "--engine", "--copy", "1.5"], /--copy.*\[0, 1\]/],
  [["simulate", "--copy", "0.5"], /--copy: the time-unit model .* has nothing to copy; add --engine/],
  [["simulate", "--draft", "ngram"], /--draft: the time-unit model .* has no context to look up; add --engine/],
  [["simulate", "--engine", "--draft", "lookup"], /--draft.*must be one of model, ngram, ngram\+model/],
  // The simulator reproduces fixed-lookahead experiments: auto is not one of them.
  [["simulate", "--lookahead", "auto"], /--lookahead.*must be an integer in 1\.\.1024/],
  [["simulate", "--latency", "10/1", "--lookahead", "2", "--sp", "2"], /--sp: the time-unit model needs SP >= ceil\(1\/\(L\*c\)\) = 5.*--engine/],
  [["heatmap", "--ndim", "1"], /--ndim.*2\.\.100/],
  [["heatmap", "--sp", "0"], /--sp.*1..1024/],
  [["plan", "--latency", "10/12", "--acceptance", "0.5"], /--latency: needs 0 < drafter <= target latency/],
  [["plan", "--latency", "10/2", "--acceptance", "2"], /--acceptance.*\[0, 1\]/],
  [["plan", "--acceptance", "0.5"], /required option '--latency <profile>' not specified/],
  [["plan", "--latency", "10/2"], /--acceptance: give the pair's acceptance rate/],
  [["table", "--repeats", "0"], /--repeats.*1\.\.100000/],
  [["table", "--json", "--markdown"], /--json.*cannot be used with.*--markdown/],
  [["simulate", "--latency", "1/0.0000001"], /--latency: .* would need .* target instances; give --sp/],
  [["demo", "--backend", "synthetic", "--latency", "bogus"], /--latency: unknown latency profile; allowed: none/],
  [["generate", "--sp", "100000000"], /--sp.*1\.\.1024/],
  [["heatmap", "--out", "/dev/null/x", "--ndim", "2", "--max-tokens", "5", "--repeats", "1", "--no-progress"], /cannot write or read \/dev\/null\/x \(ENOTDIR\)/],
  // Node's recursive mkdir spun forever at 100% CPU on these; now they fail at once.
  [["heatmap", "--out", "/proc/x", "--ndim", "2", "--max-tokens", "5", "--repeats", "1", "--no-progress"], /cannot write or read \/proc\/x \(ENOENT\)/],
  [["make-model", "--out", "/proc/x", "--weights", "random", "--layers", "1", "--drafter-layers", "1"], /cannot write or read \/proc\/x \(ENOENT\)/],
];

for (const [args, message] of BAD) {
  test(`bad input: ${args.join(" ")} -> exit 2, one line`, { timeout: 30_000 }, async () => {
    const r = await dsi(...args);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], message);
  });
}

test("heatmap: CSV, SVG with four panels, PNG; model and engine", async () => {
  for (const extra of [[], ["--engine", "--max-tokens", "12", "--repeats", "1", "--ndim", "2"]]) {
    const out = await tempDir("heatmap");
    const r = await dsi("heatmap", "--ndim", "4", "--max-tokens", "40", "--repeats", "2", "--out", out, "--no-progress", ...extra);
    assert.equal(r.code, 0, r.stderr);
    const csv = (await readFile(join(out, "heatmap.csv"), "utf8")).trim().split("\n");
    assert.match(csv[0], /^c,a,nonsi,si,siLookahead,dsi,dsiLookahead,dsiSp,nonsiOverSi,siOverDsi,nonsiOverDsi,bestOverDsi$/);
    const n = extra.length ? 9 : 25;
    assert.ok(csv.length - 1 <= n && csv.length - 1 >= n - 6, `${csv.length - 1} rows`);
    const svg = await readFile(join(out, "heatmap.svg"), "utf8");
    for (const title of ["1. non-SI / SI", "2. SI / DSI", "3. non-SI / DSI", "4. min(SI, non-SI) / DSI"]) assert.ok(svg.includes(title), title);
    const png = await readFile(join(out, "heatmap.png"));
    assert.equal(png.subarray(1, 4).toString("latin1"), "PNG");
  }
});

test("table --json: the ten pairs with SI and DSI at lookahead 1, 5, 10 and the paper's figure", async () => {
  const r = await dsi("table", "--max-tokens", "12", "--repeats", "2", "--json");
  assert.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout);
  assert.equal(rows.length, 10);
  for (const row of rows) {
    assert.deepEqual(Object.keys(row.si), ["1", "5", "10"]);
    assert.deepEqual(Object.keys(row.dsi), ["1", "7"]);
    assert.ok(row.bestVsBest > 0 && row.paper > 1);
    assert.ok(Math.abs(row.sameLookahead["5"] - row.si["5"] / row.dsi["7"]["5"]) < 1e-9);
  }
});

test("plan --json: one row per target count, the best is the fastest, the knee is no larger", async () => {
  const r = await dsi("plan", "--latency", "30/3", "--acceptance", "0.7", "--max-sp", "3", "--max-lookahead", "4", "--max-tokens", "30", "--repeats", "3", "--json");
  assert.equal(r.code, 0, r.stderr);
  const p = JSON.parse(r.stdout);
  assert.deepEqual(
    p.bySp.map((x: { sp: number }) => x.sp),
    [1, 2, 3],
  );
  for (const row of p.bySp) assert.ok(p.best.msPerToken <= row.msPerToken + 1e-9);
  assert.ok(p.knee.sp <= p.best.sp);
  assert.ok(p.best.speedupOverNonSi > 1);
});
