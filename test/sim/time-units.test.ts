/** The time-unit model: the paper's properties per repeat, and agreement with the engine. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Rng } from "../../src/core/random.js";
import type { simulateEngine } from "../../src/sim/engine.js";
import { offThread } from "../helpers/off-thread.js";
import { AcceptanceDraws, dsiTime, nonSiTime, siTime, simulateTimeUnits, spNeeded } from "../../src/sim/time-units.js";

const ENGINE = new URL("../../src/sim/engine.js", import.meta.url);

test("model: per repeat with the same draws, DSI <= non-SI and within its bounds; DSI <= SI in the mean", () => {
  const rng = new Rng(7);
  let repeats = 0;
  let siWins = 0;
  let worst = 1;
  for (let i = 0; i < 300; i++) {
    const cfg = { c: 0.01 + 0.99 * rng.next(), a: rng.next() < 0.1 ? Math.round(rng.next()) : rng.next(), L: 1 + Math.floor(rng.next() * 12), tokens: 1 + Math.floor(rng.next() * 300) };
    let siSum = 0;
    let dsiSum = 0;
    for (let r = 0; r < 10; r++) {
      const si = siTime(cfg, new AcceptanceDraws(cfg.a, cfg.L, i, r));
      const dsi = dsiTime(cfg, new AcceptanceDraws(cfg.a, cfg.L, i, r));
      const nonsi = nonSiTime(cfg);
      assert.ok(dsi.time <= nonsi + 1e-9, `${JSON.stringify(cfg)}: dsi ${dsi.time} > nonsi ${nonsi}`);
      // Lower bound: every accepted draft was drafted (c each, in sequence) and every run
      // needs one target pass; upper bound: per run, its non-SI time or one window of waste.
      assert.ok(dsi.time >= dsi.accepted * cfg.c + dsi.runs - 1e-9, `${JSON.stringify(cfg)}: below the lower bound`);
      assert.ok(dsi.time <= dsi.upper + 1e-9, `${JSON.stringify(cfg)}: above the upper bound`);
      if (dsi.time > si + 1e-9) {
        siWins++;
        worst = Math.max(worst, dsi.time / si);
      }
      siSum += si;
      dsiSum += dsi.time;
      repeats++;
    }
    assert.ok(dsiSum <= siSum + 1e-9, `${JSON.stringify(cfg)}: dsi mean ${dsiSum / 10} > si mean ${siSum / 10}`);
  }
  // Draws are per window, so SI and DSI do not see identical per-token outcomes: SI's bonus
  // token can land where DSI checks a draft and is rejected. Single repeats where SI is
  // faster are therefore possible, but rare and small.
  assert.ok(siWins <= repeats * 0.005, `${siWins} of ${repeats} repeats with SI faster`);
  assert.ok(worst < 1.05, `worst DSI/SI in one repeat ${worst}`);
});

test("model: lookahead 1 meets the paper's expected-time bound t1*p*(N-1) + t2*((1-p)*(N-1)+1)", () => {
  for (const [c, a] of [
    [0.1, 0.6],
    [0.3, 0.9],
    [0.05, 0.3],
  ]) {
    const N = 2000;
    const m = simulateTimeUnits({ c, a, L: 1, tokens: N }, 50, 3);
    const bound = c * a * (N - 1) + ((1 - a) * (N - 1) + 1);
    assert.ok(m.dsi.mean <= bound * 1.01, `c=${c} a=${a}: ${m.dsi.mean} > ${bound}`);
    assert.ok(m.dsi.mean >= bound * 0.95, `c=${c} a=${a}: ${m.dsi.mean} far below ${bound}`);
  }
});

test("model and engine agree: mean times within 3% or 3 standard errors on 34 configurations", async () => {
  const rng = new Rng(99);
  // Exact fractions too (ties in virtual time: a window is drafted the instant a pass ends).
  const fixed: [number, number][] = [
    [0.25, 2],
    [0.125, 4],
    [0.1, 5],
    [0.05, 5],
  ];
  // The configurations first (the same draws in the same order), then the engine's runs side
  // by side on worker threads (see test/helpers/off-thread.ts).
  const configs: { c: number; a: number; L: number; tokens: number; sp: number }[] = [];
  while (configs.length < 34) {
    const [c, L] = fixed[configs.length] ?? [0.02 + 0.98 * rng.next(), 1 + Math.floor(rng.next() * 10)];
    if (L * c >= 1) continue; // the model's regime: full windows, at least two targets
    const a = rng.next();
    configs.push({ c, a, L, tokens: 100, sp: spNeeded(c, L) });
  }
  const REPEATS = 16;
  const engines = await Promise.all(configs.map((cfg, i) => offThread<Awaited<ReturnType<typeof simulateEngine>>>(ENGINE, "simulateEngine", cfg, REPEATS, i)));
  for (const [i, cfg] of configs.entries()) {
    const model = simulateTimeUnits(cfg, 400, i);
    const engine = engines[i];
    for (const algo of ["nonsi", "si", "dsi"] as const) {
      const diff = Math.abs(model[algo].mean - engine[algo].mean);
      const se = Math.sqrt(model[algo].std ** 2 / 400 + engine[algo].std ** 2 / REPEATS);
      assert.ok(diff <= 0.03 * engine[algo].mean || diff <= 3 * se, `${algo} ${JSON.stringify(cfg)}: model ${model[algo].mean} engine ${engine[algo].mean} (se ${se})`);
    }
  }
});
