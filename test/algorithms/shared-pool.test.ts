/**
 * Concurrent generations on one target pool (virtual clock): each keeps its lossless output,
 * no instance runs two tasks at once, and the pool's reserve keeps every generation's frontier
 * at non-SI's pace.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { generate } from "../../src/algorithms/generate.js";
import type { Completion } from "../../src/algorithms/options.js";
import { flatLatency } from "../../src/models/latency.js";
import { syntheticRuntime } from "../../src/models/runtime.js";
import { SyntheticPair } from "../../src/models/synthetic.js";
import { VirtualClock } from "../../src/runtime/clock.js";
import { EventLog, type EngineEvent } from "../../src/runtime/events.js";
import { profile } from "../helpers/run.js";

const PROFILE = profile(10, 1);

function options(i: number) {
  return { prompt: [1, 2, (3 + i) % 16], maxTokens: 30, lookahead: 3, seed: i };
}

/** Runs generation i alone on a runtime of its own. */
async function solo(pair: SyntheticPair, i: number, algo: "dsi" | "nonsi", sp: number): Promise<Completion & { events: EngineEvent[] }> {
  const rt = syntheticRuntime({ pair, profile: PROFILE, sp });
  const o = options(i);
  const r = await generate(algo, rt, algo === "nonsi" ? { ...o, lookahead: undefined } : o).result;
  return { ...r, events: rt.events.events };
}

type LeaseEvent = Extract<EngineEvent, { type: "lease" | "release" }>;

/** The pool's leases and releases in a runtime's event log. */
function leases(events: readonly EngineEvent[]): LeaseEvent[] {
  return events.filter((e): e is LeaseEvent => e.type === "lease" || e.type === "release");
}

/** Checks from the pool's leases that every instance alternates lease, release. */
function assertOneTaskPerInstance(log: readonly LeaseEvent[]): void {
  const busy = new Map<number, number>();
  for (const e of log) {
    if (e.type === "lease") {
      assert.ok(!busy.has(e.instance), `instance ${e.instance} leased to member ${e.member} while member ${busy.get(e.instance)} holds it`);
      busy.set(e.instance, e.member);
    } else {
      assert.equal(busy.get(e.instance), e.member, `instance ${e.instance} released by a member that does not hold it`);
      busy.delete(e.instance);
    }
  }
  assert.equal(busy.size, 0, "every lease was released");
}

for (const n of [2, 8]) {
  test(`${n} concurrent DSI generations on one pool each equal their solo greedy output; one task per instance`, async () => {
    const pair = new SyntheticPair({ vocab: 16, seed: 5, agreement: 0.7 });
    const sp = n + 2;
    const clock = new VirtualClock();
    // The pool records its leases in the runtime's log, each generation its events in its own.
    const shared = syntheticRuntime({ pair, profile: PROFILE, sp, clock });
    const logs = Array.from({ length: n }, () => new EventLog(() => clock.now()));
    const gens = logs.map((events, i) => generate("dsi", { ...shared, events }, options(i)));
    const results = await Promise.all(gens.map((g) => g.result));
    for (let i = 0; i < n; i++) {
      const alone = await solo(pair, i, "nonsi", 1);
      assert.deepEqual(results[i].tokens, alone.tokens, `generation ${i}`);
      // The pool's reserve: each generation's frontier is never held up by another's windows,
      // so every position is committed no later than non-SI alone would commit it.
      const commits = logs[i].events.filter((e) => e.type === "commit");
      const nonsiCommits = alone.events.filter((e) => e.type === "commit");
      commits.forEach((e, k) => assert.ok(e.t <= nonsiCommits[k].t + 1e-9, `generation ${i} position ${k}: ${e.t} > non-SI ${nonsiCommits[k].t}`));
    }
    assertOneTaskPerInstance(leases(shared.events.events));
    assert.ok(leases(shared.events.events).filter((e) => e.type === "lease").length > 30 * n / 3, "the generations used the pool");
    assert.ok(shared.pool.created <= sp);
    // The generations really overlapped: all of them finished in less than their time one after another.
    const total = results.reduce((t, r) => t + r.stats.timeMs, 0);
    assert.ok(clock.now() < total / 1.5, `${clock.now()} ms for ${total} ms of generations`);
  });
}

test("a lone generation on a shared pool has exactly the timings of a runtime of its own", async () => {
  const pair = new SyntheticPair({ vocab: 16, seed: 3, agreement: 0.6 });
  const alone = await solo(pair, 0, "dsi", 4);
  const shared = syntheticRuntime({ pair, profile: PROFILE, sp: 4 });
  // An earlier generation on the same pool, finished: the pool now knows the task costs, which
  // with flat costs changes nothing (the slack and guard rules only act on differences).
  await generate("si", shared, options(1)).result;
  shared.events.events.length = 0;
  const again = await generate("dsi", shared, options(0)).result;
  assert.deepEqual(again.tokens, alone.tokens);
  assert.equal(again.stats.timeMs, alone.stats.timeMs);
  const times = (ev: readonly EngineEvent[]) => ev.filter((e) => e.type === "commit").map((e) => e.t - ev[0].t);
  assert.deepEqual(times(shared.events.events), times(alone.events));
});

test("with growing verification costs, the pool's observed costs arm the guard rule from a generation's first token", async () => {
  // 10 ms per pass plus 8 ms per extra position: a window of 5 drafts costs 42 ms. Every draft
  // is accepted, so after the first frontier task the frontier sits in the first window. A
  // fresh pool knows no window cost and takes that window on trust (slower than non-SI for a
  // few positions); a pool that has seen the costs sends a guard task beside it at once.
  const prof = { name: "growing", target: { ttftMs: 10, tpotMs: 10, perExtraPositionMs: 8 }, drafter: flatLatency(0.5) };
  const pair = new SyntheticPair({ vocab: 16, seed: 2, agreement: 1 });
  const o = { prompt: [1, 2, 3], maxTokens: 12, lookahead: 5, seed: 0 };
  const nonsiRt = syntheticRuntime({ pair, profile: prof });
  await generate("nonsi", nonsiRt, { ...o, lookahead: undefined }).result;
  const nonsiCommits = nonsiRt.events.events.filter((e) => e.type === "commit").map((e) => e.t);
  const rt = syntheticRuntime({ pair, profile: prof, sp: 3 });
  const commitsOf = async (): Promise<{ late: number; guards: number }> => {
    rt.events.events.length = 0;
    const start = rt.clock.now();
    await generate("dsi", rt, o).result;
    const commits = rt.events.events.filter((e) => e.type === "commit").map((e) => e.t - start);
    return {
      late: commits.filter((t, k) => t > nonsiCommits[k] + 1e-9).length,
      guards: rt.events.events.filter((e) => e.type === "dispatch" && e.guard && e.t - start <= 10 + 1e-9).length,
    };
  };
  const first = await commitsOf();
  const second = await commitsOf();
  assert.ok(first.late > 0 && first.guards === 0, `fresh pool: ${JSON.stringify(first)}`);
  assert.equal(second.late, 0, "every position committed no later than non-SI");
  assert.ok(second.guards >= 1, "a guard task beside the first window");
});

test("maxInstances caps one generation's instances: never more leases at once, same output", async () => {
  const pair = new SyntheticPair({ vocab: 16, seed: 4, agreement: 0.8 });
  for (const cap of [1, 2, 3]) {
    const rt = syntheticRuntime({ pair, profile: PROFILE, sp: 6 });
    const others = [1, 2].map((i) => generate("dsi", rt, options(i)));
    const capped = generate("dsi", rt, { ...options(0), maxInstances: cap });
    const [r] = await Promise.all([capped.result, ...others.map((g) => g.result)]);
    assert.deepEqual(r.tokens, (await solo(pair, 0, "nonsi", 1)).tokens);
    // Member 2 is the capped generation (joined third).
    let held = 0;
    let most = 0;
    for (const e of leases(rt.events.events)) {
      if (e.member !== 2) continue;
      held += e.type === "lease" ? 1 : e.type === "release" ? -1 : 0;
      most = Math.max(most, held);
    }
    assert.ok(most <= cap && most >= 1, `cap ${cap}: held ${most} at once`);
    assertOneTaskPerInstance(leases(rt.events.events));
  }
  const rt = syntheticRuntime({ pair, profile: PROFILE, sp: 2 });
  assert.throws(() => generate("dsi", rt, { ...options(0), maxInstances: 3 }), /maxInstances must be an integer in 1\.\.2/);
  assert.throws(() => generate("si", rt, { ...options(0), maxInstances: 1 }), /maxInstances applies to dsi/);
});
