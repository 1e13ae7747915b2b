/** Lossless greedy: SI and DSI equal non-SI token for token. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { SyntheticPair } from "../../src/models/synthetic.js";
import { profile, run } from "../helpers/run.js";

// (L, SP, target ms, drafter ms). SP=1; SP below ceil(t/(L*c)) (queueing); SP at and above it;
// slow drafters (c close to t) and fast ones.
const CONFIGS: [number, number, number, number][] = [
  [1, 1, 10, 1],
  [3, 1, 10, 2],
  [3, 2, 10, 1], // needs ceil(10/3)=4: queueing
  [5, 2, 10, 1], // needs 2
  [2, 3, 10, 4],
  [4, 7, 10, 0.5], // needs 5
  [10, 4, 10, 9],
];

test("greedy: si and dsi equal nonsi over 200 seeds and several (L, SP)", async () => {
  let compared = 0;
  for (let seed = 0; seed < 200; seed++) {
    const pair = new SyntheticPair({ vocab: 16, seed, agreement: (seed % 11) / 10 });
    const reference = await run("nonsi", pair, { maxTokens: 24 });
    assert.equal(reference.tokens.length, 24);
    const [L, sp, t, c] = CONFIGS[seed % CONFIGS.length];
    const [L2, sp2, t2, c2] = CONFIGS[(seed + 3) % CONFIGS.length];
    for (const [algo, lookahead, n, tm, dm] of [
      ["si", L, 1, t, c],
      ["dsi", L, sp, t, c],
      ["dsi", L2, sp2, t2, c2],
    ] as const) {
      const r = await run(algo, pair, { maxTokens: 24, lookahead, sp: n, profile: profile(tm, dm) });
      assert.deepEqual(r.tokens, reference.tokens, `${algo} L=${lookahead} SP=${n} seed=${seed}`);
      compared++;
    }
  }
  assert.equal(compared, 600);
});

test("greedy: dsi on the real clock (zero latency) equals nonsi", async () => {
  for (let seed = 0; seed < 20; seed++) {
    const pair = new SyntheticPair({ vocab: 32, seed, agreement: 0.6 });
    const reference = await run("nonsi", pair, { maxTokens: 40, clock: "real", profile: profile(0, 0) });
    const r = await run("dsi", pair, { maxTokens: 40, clock: "real", profile: profile(0, 0), sp: 3, lookahead: 4 });
    assert.deepEqual(r.tokens, reference.tokens);
  }
});

test("greedy: acceptance 0 and 1 are reached by the agreement knob", async () => {
  const low = await run("si", new SyntheticPair({ agreement: 0, seed: 5 }), { maxTokens: 100 });
  const high = await run("si", new SyntheticPair({ agreement: 1, seed: 5 }), { maxTokens: 100 });
  assert.equal(low.stats.acceptanceRate, 0);
  assert.equal(high.stats.acceptanceRate, 1);
  const mid = await run("si", new SyntheticPair({ agreement: 0.5, seed: 5 }), { maxTokens: 400, lookahead: 1 });
  assert.ok(Math.abs(mid.stats.acceptanceRate - 0.5) < 0.08, `acceptance ${mid.stats.acceptanceRate}`);
});
