/**
 * Lost instances on the runtime's clock: probed every reviveIntervalMs, back in the pool at the
 * probe that finds them, claims failing once the rejoin grace is over; all in virtual time.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { SyntheticPair } from "../../src/models/synthetic.js";
import { VirtualClock } from "../../src/runtime/clock.js";
import { EventLog } from "../../src/runtime/events.js";
import { NoInstanceError, TargetPool } from "../../src/runtime/pool.js";

const pair = new SyntheticPair({ vocab: 16 });

/** A one-instance pool on a virtual clock whose instance answers its probes with `back(now)`. */
function restartingPool(back: (now: number) => boolean) {
  const clock = new VirtualClock();
  const events = new EventLog(() => clock.now());
  const probes: number[] = [];
  const instance = Object.assign(pair.instance("target", "restarting"), {
    probe: async () => {
      probes.push(clock.now());
      return back(clock.now());
    },
  });
  const pool = new TargetPool({ size: 1, vocabSize: 16, eosToken: undefined, create: () => instance, clock, events, reviveIntervalMs: 1000, rejoinGraceMs: 5000 });
  /** The losses and returns the pool recorded, with their times. */
  const health = () => events.events.filter((e) => e.type === "retire" || e.type === "rejoin").map((e) => [e.type, e.t]);
  return { clock, pool, instance, probes, health };
}

test("a lost instance rejoins in virtual time: probed every reviveIntervalMs, the waiting claim served at the probe that finds it", async () => {
  const { clock, pool, instance, probes, health } = restartingPool((now) => now >= 2500);
  const m = pool.join();
  (await m.acquire("frontier")).retire("worker died");
  assert.equal(pool.alive, 0);
  const again = await m.acquire("frontier");
  assert.equal(clock.now(), 3000, "served at the third probe, the first after the restart");
  assert.deepEqual(probes, [1000, 2000, 3000]);
  assert.equal(again.instance, instance);
  assert.equal(pool.alive, 1);
  assert.deepEqual(health(), [
    ["retire", 0],
    ["rejoin", 3000],
  ]);
  again.release();
  pool.close();
});

test("past the rejoin grace, in virtual time, waiting claims and admissions fail naming the loss; probes go on until close", async () => {
  const { clock, pool, probes } = restartingPool(() => false);
  const [a, b] = [pool.join(), pool.join()];
  assert.equal(b.admitted, false);
  (await a.acquire("frontier")).retire("worker died");
  const claim = a.acquire("frontier");
  const admission = b.admission();
  await assert.rejects(claim, (err: Error) => err instanceof NoInstanceError && /no target instance left: restarting: worker died/.test(err.message));
  await assert.rejects(admission, NoInstanceError);
  assert.equal(clock.now(), 5000, "the grace counts from the loss of the last live instance");
  await assert.rejects(a.acquire("frontier"), NoInstanceError, "a claim after the grace fails at once");
  // The instance may still come back later: it is asked until the runtime closes.
  await clock.sleep(2500);
  assert.deepEqual(probes, [1000, 2000, 3000, 4000, 5000, 6000, 7000]);
  pool.close();
  assert.equal(clock.pending(), 0, "close stopped the probes");
});

test("a loss at a time with a fraction: the grace still ends (a virtual time of the loss plus the grace is not always the sum itself)", async () => {
  // (At 3670.084 the grace's timer woke at 8670.083999999999, "4999.999999999999 ms after the
  // loss", which was not the grace yet: the timer was set again for 0 ms, at the same instant,
  // forever.)
  for (const at of [3670.084, 8112.584, 1234.5]) {
    const { clock, pool } = restartingPool(() => false);
    await clock.sleep(at);
    const m = pool.join();
    (await m.acquire("frontier")).retire("worker died");
    await assert.rejects(m.acquire("frontier"), NoInstanceError, `lost at ${at}`);
    assert.ok(Math.abs(clock.now() - (at + 5000)) < 1e-6, `failed at ${clock.now()}`);
    pool.close();
  }
});

test("closing the pool stops the probes and fails the claims that waited for a rejoin", async () => {
  const { clock, pool, probes } = restartingPool(() => false);
  const m = pool.join();
  (await m.acquire("frontier")).retire("worker died");
  const claim = m.acquire("frontier");
  await clock.sleep(1500);
  pool.close();
  await assert.rejects(claim, NoInstanceError);
  assert.equal(clock.now(), 1500);
  assert.deepEqual(probes, [1000]);
  assert.equal(clock.pending(), 0);
});

test("an instance without probe never comes back: claims fail at once, with no timer left behind", async () => {
  const clock = new VirtualClock();
  const pool = new TargetPool({ size: 1, vocabSize: 16, eosToken: undefined, create: () => pair.instance("target", "gone"), clock });
  const m = pool.join();
  (await m.acquire("frontier")).retire("device lost");
  await assert.rejects(m.acquire("frontier"), /no target instance left: gone: device lost/);
  assert.equal(clock.pending(), 0);
});
