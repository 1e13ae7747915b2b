/** The shared target pool: lazy creation, priorities between claims, cancellation, errors. */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ModelInstance } from "../../src/core/instance.js";
import { SyntheticPair } from "../../src/models/synthetic.js";
import { VirtualClock } from "../../src/runtime/clock.js";
import { EventLog } from "../../src/runtime/events.js";
import { TargetPool, type Lease } from "../../src/runtime/pool.js";

const pair = new SyntheticPair({ vocab: 16 });

/** A pool of `size` instances of `sequences` sequences each, whose passes carry `freePositions` at the cost of one. */
function sequencePool(size: number, sequences: number, freePositions?: number): TargetPool {
  return new TargetPool({ size, sequences, vocabSize: 16, eosToken: undefined, ...(freePositions !== undefined ? { freePositions } : {}), create: (i) => pair.instance("target", `target-${i}`) });
}

function pool(size: number, made: number[] = [], factory?: (i: number) => ModelInstance | Promise<ModelInstance>, events?: EventLog): TargetPool {
  return new TargetPool({
    size,
    vocabSize: 16,
    eosToken: undefined,
    events,
    create:
      factory ??
      ((i) => {
        made.push(i);
        return pair.instance("target", `target-${i}`);
      }),
  });
}

test("instances are created lazily, only when that many are busy at once", () => {
  const made: number[] = [];
  const p = pool(1024, made);
  const m = p.join();
  assert.equal(p.created, 0);
  assert.equal(m.available(), 1024);
  const a = m.tryAcquire("frontier")!;
  a.release();
  const b = m.tryAcquire("frontier")!;
  assert.equal(b.index, 0, "the released instance is reused");
  const c = m.tryAcquire("window")!;
  assert.equal(c.index, 1);
  assert.deepEqual(made, [0, 1]);
  assert.equal(p.created, 2);
  b.release();
  c.release();
});

test("reserve: windows never take the instance another generation's frontier may need", () => {
  const p = pool(2);
  const [a, b] = [p.join(), p.join()];
  const frontier = a.tryAcquire("frontier")!;
  assert.equal(a.available(), 0, "one instance is free, and it is b's reserve");
  assert.equal(a.tryAcquire("window"), undefined);
  const bf = b.tryAcquire("frontier")!;
  assert.equal(bf.index, 1);
  bf.release();
  b.leave();
  const w = a.tryAcquire("window")!;
  assert.equal(w.index, 1, "once b has left, a may speculate on it");
  frontier.release();
  w.release();
});

test("waiting claims: each generation's own frontier first, then windows; first come first served within a kind", async () => {
  const p = pool(1);
  const [a, b, c] = [p.join(), p.join(), p.join()];
  const held = a.tryAcquire("frontier")!;
  const order: string[] = [];
  const take = (name: string, m: typeof a, claim: "frontier" | "window"): Promise<void> =>
    m.acquire(claim).then((l) => {
      order.push(name);
      // Hold each lease a moment, so that the next grant happens on this release.
      setImmediate(() => l.release());
    });
  const all = [take("b-window", b, "window"), take("c-window", c, "window"), take("c-frontier", c, "frontier"), take("b-frontier", b, "frontier")];
  held.release();
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(order, ["c-frontier", "b-frontier"], "windows wait while others may need their frontier");
  a.leave();
  c.leave();
  await all[0];
  assert.deepEqual(order, ["c-frontier", "b-frontier", "b-window"], "b may speculate once nobody else may need a frontier");
  b.leave();
  await Promise.all(all);
  assert.deepEqual(order, ["c-frontier", "b-frontier", "b-window", "c-window"]);
});

test("an aborted claim is withdrawn and rejects with an AbortError; the instance goes to the next", async () => {
  const p = pool(1);
  const m = p.join();
  const held = m.tryAcquire("frontier")!;
  const controller = new AbortController();
  const withdrawn = m.acquire("frontier", controller.signal);
  const next = m.acquire("window");
  controller.abort();
  await assert.rejects(withdrawn, (err: Error) => err.name === "AbortError");
  held.release();
  const lease = await next;
  assert.equal(lease.index, 0);
  lease.release();
  await assert.rejects(m.acquire("frontier", AbortSignal.abort()), (err: Error) => err.name === "AbortError");
});

test("asynchronous factories: a waiting claim gets the instance once made; a failure reaches the first waiting claim", async () => {
  let calls = 0;
  const p = pool(2, [], async (i) => {
    calls++;
    if (calls === 1) throw new Error("no device");
    return pair.instance("target", `target-${i}`);
  });
  const m = p.join();
  await assert.rejects(m.acquire("frontier"), /no device/);
  assert.equal(m.tryAcquire("frontier"), undefined, "an asynchronous instance is never ready at once");
  const lease: Lease = await m.acquire("frontier");
  assert.equal(p.created, 1);
  lease.release();
});

test("affinity: a member gets the instance it used last, else one no live member used last, else any idle one before a new one", () => {
  const made: number[] = [];
  const p = pool(3, made);
  const [a, b, c] = [p.join(), p.join(), p.join()];
  const leases = [a, b, c].map((m) => m.tryAcquire("frontier")!);
  assert.deepEqual(leases.map((l) => l.index), [0, 1, 2]);
  for (const l of leases) l.release();
  // Served in another order, each gets its own instance back (its cache holds its sequence).
  const again = [c, a, b].map((m) => m.tryAcquire("frontier")!);
  assert.deepEqual(again.map((l) => l.index), [2, 0, 1]);
  for (const l of again) l.release();
  c.leave();
  const d = p.join();
  assert.equal(d.tryAcquire("frontier")!.index, 2, "the instance of a member that left");
  const q = pool(2, made);
  const [x, y] = [q.join(), q.join()];
  x.tryAcquire("frontier")!.release();
  assert.equal(y.tryAcquire("frontier")!.index, 0, "x's idle instance, rather than making another");
  assert.equal(q.created, 1);
});

test("an instance with another vocabulary, or a lease released twice, is an error", () => {
  const p = pool(2, [], () => new SyntheticPair({ vocab: 8 }).instance("target"));
  assert.throws(() => p.join().tryAcquire("frontier"), /vocabulary of 8/);
  const m = pool(1).join();
  const lease = m.tryAcquire("frontier")!;
  lease.release();
  assert.throws(() => lease.release(), /released twice/);
  assert.throws(() => pool(0), /pool size/);
  assert.throws(() => pool(1025), /pool size/);
});

test("the event log records every lease and release in order, with the member", () => {
  const events = new EventLog(() => 0);
  const p = pool(2, [], undefined, events);
  const m = p.join();
  const a = m.tryAcquire("frontier")!;
  const b = m.tryAcquire("window")!;
  a.release();
  b.release();
  assert.deepEqual(events.events, [
    { t: 0, type: "lease", instance: 0, member: 0 },
    { t: 0, type: "lease", instance: 1, member: 0 },
    { t: 0, type: "release", instance: 0, member: 0 },
    { t: 0, type: "release", instance: 1, member: 0 },
  ]);
});

test("admission: at most one running generation per live instance; the others wait in order, or leave when aborted", async () => {
  const p = pool(2);
  const [a, b, c, d] = [p.join(), p.join(), p.join(), p.join()];
  assert.deepEqual([a.admitted, b.admitted, c.admitted, d.admitted], [true, true, false, false]);
  assert.equal(p.queuedMembers, 2);
  const order: string[] = [];
  const cWaits = c.admission().then(() => order.push("c"));
  const abort = new AbortController();
  const dWaits = d.admission(abort.signal);
  abort.abort();
  await assert.rejects(dWaits, { name: "AbortError" });
  d.leave();
  assert.equal(p.queuedMembers, 1);
  // Running generations lease as before; the queued one gets nothing until one ends.
  const fa = a.tryAcquire("frontier")!;
  const fb = b.tryAcquire("frontier")!;
  assert.deepEqual([fa.index, fb.index].sort(), [0, 1]);
  fa.release();
  fb.release();
  b.leave();
  await cWaits;
  assert.deepEqual(order, ["c"]);
  assert.equal(p.runningMembers, 2);
  const e = p.join();
  assert.equal(e.admitted, false);
  a.leave();
  await e.admission();
});

test("no instance left: queued generations and claims fail, unless a lost instance may come back within the grace", async () => {
  // Instances that cannot come back: at once.
  const p = pool(1);
  const [a, b] = [p.join(), p.join()];
  const lease = await a.acquire("frontier");
  const waiting = b.admission();
  lease.retire("gone");
  await assert.rejects(waiting, { name: "NoInstanceError" });
  // One that is restarting: a claim waits and gets it when it rejoins.
  let back = false;
  const inst = Object.assign(pair.instance("target", "restarting"), { probe: async () => back });
  const q = new TargetPool({ size: 1, vocabSize: 16, eosToken: undefined, create: () => inst, reviveIntervalMs: 20, rejoinGraceMs: 2000 });
  const m = q.join();
  (await m.acquire("frontier")).retire("worker died");
  const claim = m.acquire("frontier");
  setTimeout(() => (back = true), 100);
  const again = await claim;
  assert.equal(again.instance, inst);
  again.release();
  // Past the grace, the claim fails naming the loss.
  const r = new TargetPool({ size: 1, vocabSize: 16, eosToken: undefined, create: () => Object.assign(pair.instance("target", "t"), { probe: async () => false }), reviveIntervalMs: 20, rejoinGraceMs: 150 });
  const n = r.join();
  (await n.acquire("frontier")).retire("worker died");
  await assert.rejects(n.acquire("frontier"), /no target instance left: t: worker died/);
  r.close();
  q.close();
});

test("sequences: the pool leases S sequences per instance, admits one generation per sequence, spreads a generation's leases over instances, and keeps each on its sequence", () => {
  const made: number[] = [];
  const p = new TargetPool({
    size: 2,
    sequences: 4,
    vocabSize: 16,
    eosToken: undefined,
    create: (i) => {
      made.push(i);
      return pair.instance("target", `target-${i}`);
    },
  });
  assert.equal(p.alive, 8, "2 instances x 4 sequences");
  assert.deepEqual([p.instanceOf(3), p.instanceOf(4), p.instanceOf(7)], [0, 1, 1]);
  // One generation with SP 2: its two tasks go to two instances, not two sequences of one.
  const a = p.join();
  assert.equal(a.limit, 2, "a generation's default limit is the instances (SP), not the sequences");
  const a1 = a.tryAcquire("frontier")!;
  const a2 = a.tryAcquire("window")!;
  assert.deepEqual([p.instanceOf(a1.index), p.instanceOf(a2.index)], [0, 1]);
  assert.equal(a.tryAcquire("window"), undefined, "at its limit");
  // Eight generations run at once (one per sequence); a ninth waits for admission.
  const members = [a, ...Array.from({ length: 7 }, () => p.join(1))];
  assert.ok(members.every((m) => m.admitted));
  assert.equal(p.join(1).admitted, false);
  a1.release();
  a2.release();
  // The others make the sequences they need, spread over both instances (fewest busy first).
  const leases = members.slice(1).map((m) => m.tryAcquire("frontier")!);
  assert.equal(new Set(leases.map((l) => l.index)).size, 7);
  const busy = [0, 1].map((i) => p.busyOn(i));
  assert.ok(busy[0] + busy[1] === 7 && Math.abs(busy[0] - busy[1]) <= 1, `busy per instance ${busy}`);
  for (const l of leases) l.release();
  // Affinity: each member gets its own sequence back (its cache holds its tokens).
  const again = members.slice(1).map((m) => m.tryAcquire("frontier")!);
  assert.deepEqual(
    again.map((l) => l.index),
    leases.map((l) => l.index),
  );
  assert.equal(made.length, 8);
});

test("sequences: speculation takes only compute no other generation uses or comes back to (its home), passes that take tokens freely or not; a generation's own frontier goes anywhere", () => {
  const make = (freely: boolean): TargetPool => sequencePool(2, 4, freely ? 32 : 1);
  for (const freely of [false, true]) {
    const p = make(freely);
    const [a, b] = [p.join(), p.join()];
    const a1 = a.tryAcquire("frontier")!;
    const b1 = b.tryAcquire("frontier")!;
    assert.notEqual(p.instanceOf(a1.index), p.instanceOf(b1.index), "two generations' frontiers spread over the instances");
    // Each instance is the other generation's home: no window, no second frontier task.
    assert.equal(a.available(), 0);
    assert.equal(a.tryAcquire("window"), undefined, "a window would slow b's task, or its next one");
    assert.equal(a.tryAcquire("frontier"), undefined, "a second frontier task too");
    // b's task ends, but b's next frontier task comes back there: still no window for a.
    b1.release();
    assert.equal(a.tryAcquire("window"), undefined, `b waits for its next draft there (passes ${freely ? "" : "not "}free)`);
    // b's frontier is served at once (a generation's first frontier claim goes first), at home.
    const b2 = b.tryAcquire("frontier")!;
    assert.equal(b2.index, b1.index, "a frontier task goes home");
    b2.release();
    // b ends: its instance is spare for a's window.
    b.leave();
    const a2 = a.tryAcquire("window")!;
    assert.equal(p.instanceOf(a2.index), p.instanceOf(b1.index));
    assert.equal(a.tryAcquire("window"), undefined, "a holds a sequence on every instance");
    for (const l of [a1, a2]) l.release();
  }
});

test("sequences: a generation's frontier goes back to its home instance, not to its lowest-numbered idle sequence", () => {
  const p = sequencePool(2, 4, 32);
  const [a, other] = [p.join(), p.join()];
  const o1 = other.tryAcquire("frontier")!;
  const a1 = a.tryAcquire("frontier")!;
  assert.notEqual(p.instanceOf(a1.index), p.instanceOf(o1.index));
  other.leave();
  o1.release();
  // a's window on the other instance, then both end: a holds an idle sequence on each instance.
  const a2 = a.tryAcquire("window")!;
  assert.equal(p.instanceOf(a2.index), p.instanceOf(o1.index));
  a1.release();
  a2.release();
  const again = a.tryAcquire("frontier")!;
  assert.equal(again.index, a1.index, "before, the sequence on instance 0 whatever the home");
  again.release();
});

test("sequences: a new generation takes an idle sequence on the least loaded instance, not the first idle one", () => {
  const p = sequencePool(2, 4);
  // Three generations made sequences 0, 4 and 1 (spread over the instances), then ended.
  const gone = Array.from({ length: 3 }, () => p.join(1));
  const made = gone.map((m) => m.tryAcquire("frontier")!);
  assert.deepEqual(made.map((l) => l.index), [0, 4, 1]);
  for (const l of made) l.release();
  for (const m of gone) m.leave();
  // One runs on instance 0; the next goes to instance 1's idle sequence, not to sequence 1.
  const y = p.join(1).tryAcquire("frontier")!;
  assert.equal(p.instanceOf(y.index), 0);
  const z = p.join(1).tryAcquire("frontier")!;
  assert.equal(z.index, 4, "before, the first idle sequence (1, beside the running one)");
  for (const l of [y, z]) l.release();
});

test("sequences: a frontier claim whose home holds the generation's own (preempted) task waits for it there rather than take another generation's home, and is served when that task returns", async () => {
  const p = sequencePool(2, 4);
  const [a, b] = [p.join(), p.join()];
  const a1 = a.tryAcquire("frontier")!;
  const b1 = b.tryAcquire("frontier")!;
  const home = p.instanceOf(a1.index);
  a1.release();
  // a's window at home (its preempted task, say), b's task on the other instance, b's home.
  const window = a.tryAcquire("window")!;
  assert.equal(p.instanceOf(window.index), home);
  b1.release();
  assert.equal(a.tryAcquire("frontier"), undefined, "b's instance is idle, but it is b's home");
  const frontier = a.acquire("frontier");
  window.release();
  assert.equal(p.instanceOf((await frontier).index), home);
});

test("sequences: a lease granted for a generation's frontier where another generation runs or comes back does not suit a window there", () => {
  for (const freePositions of [1, 32]) {
    const p = sequencePool(1, 4, freePositions);
    const [a, b] = [p.join(), p.join()];
    const a1 = a.tryAcquire("frontier")!;
    const b1 = b.tryAcquire("frontier")!;
    assert.equal(p.instanceOf(a1.index), p.instanceOf(b1.index), "one instance: both frontiers on it");
    assert.equal(a.suits(a1, "frontier"), true);
    assert.equal(a.suits(a1, "window"), false, "a window would slow b's task");
    b1.release();
    assert.equal(a.suits(a1, "window"), false, "b's next task comes back here");
    b.leave();
    assert.equal(a.suits(a1, "window"), true, "alone on the instance");
    a1.release();
  }
});

test("sequences: a new generation's home goes to the instance with the fewest other generations' homes, before the least busy (a sequence to make or an idle one)", () => {
  for (const made of [false, true]) {
    const p = sequencePool(2, 4, 32);
    if (made) {
      // Eight generations made every sequence, then ended: all are idle.
      const gone = Array.from({ length: 8 }, () => p.join(1));
      const leases = gone.map((m) => m.tryAcquire("frontier")!);
      for (const l of leases) l.release();
      for (const m of gone) m.leave();
    }
    const a = p.join();
    const home = a.tryAcquire("frontier")!;
    // a's window runs on the other instance; its frontier task ended (it waits for drafts at home).
    const window = a.tryAcquire("window")!;
    assert.notEqual(p.instanceOf(window.index), p.instanceOf(home.index));
    home.release();
    const b = p.join().tryAcquire("frontier")!;
    assert.equal(p.instanceOf(b.index), p.instanceOf(window.index), `before, a's home: idle, while a window ran on the other instance (sequences made: ${made})`);
    for (const l of [window, b]) l.release();
  }
});

test("sequences: what a task may carry of passes other generations share (room): their tasks' declared positions, and one for each generation at home there", () => {
  const make = (freePositions: number): TargetPool => sequencePool(1, 4, freePositions);
  const p = make(8);
  const [a, b] = [p.join(), p.join()];
  const a1 = a.tryAcquire("frontier")!;
  assert.equal(a.room(a1), Infinity, "alone on the instance");
  assert.equal(a.homeShared(), false);
  const b1 = b.tryAcquire("frontier")!;
  assert.equal(a.room(a1), 8 - 1, "b's task: one position until it says more");
  assert.equal(a.homeShared(), true);
  b1.carry(5);
  assert.equal(a.room(a1), 8 - 5);
  a1.carry(3);
  assert.equal(b.room(b1), 8 - 3, "a's declared positions, not its lease");
  b1.release();
  assert.equal(a.room(a1), 8 - 1, "b's task ended, but its next one comes back here");
  b.leave();
  assert.equal(a.room(a1), Infinity);
  assert.equal(a.homeShared(), false);
  a1.release();
  // Where every extra position is paid for (a CPU), the lookahead prices what a task carries.
  const q = make(1);
  const [c, d] = [q.join(), q.join()];
  const c1 = c.tryAcquire("frontier")!;
  const d1 = d.tryAcquire("frontier")!;
  assert.equal(c.room(c1), Infinity);
  assert.equal(c.homeShared(), true);
  for (const l of [c1, d1]) l.release();
});

test("sequences: a home moved by a lease taken at once serves the window claim waiting for the instance it left", async () => {
  const p = sequencePool(4, 2, 32);
  const [a, b, c] = [p.join(), p.join(), p.join()];
  const [a0, b1, c2] = [a.tryAcquire("frontier")!, b.tryAcquire("frontier")!, c.tryAcquire("frontier")!];
  assert.deepEqual([a0, b1, c2].map((l) => p.instanceOf(l.index)), [0, 1, 2], "three homes");
  const c3 = c.tryAcquire("window")!;
  c3.carry(32); // instance 3's passes are full
  a0.release();
  const aw = a.tryAcquire("window")!;
  assert.equal(p.instanceOf(aw.index), 0, "a's window at home");
  const got: { lease?: Lease } = {};
  void b.acquire("window").then((l) => (got.lease = l));
  await new Promise((r) => setImmediate(r));
  assert.equal(got.lease, undefined, "nowhere for b's window: homes, its own frontier, full passes");
  const af = a.tryAcquire("frontier")!;
  assert.equal(p.instanceOf(af.index), 3, "a's frontier goes to instance 3: a's home moves there");
  await new Promise((r) => setImmediate(r));
  const granted = got.lease as Lease | undefined; // (the assertion above narrowed it)
  assert.ok(granted, "b's window is served at once: instance 0 is no one's home now (before, only at the next release)");
  assert.equal(p.instanceOf(granted.index), 0);
  for (const l of [b1, c2, c3, aw, af, granted]) l.release();
});

test("sequences: while the first waiting claim waits for a sequence being made, a later one whose own idle sequence is free gets it at once, and nothing is made for it", async () => {
  const clock = new VirtualClock();
  const made: number[] = [];
  const p = new TargetPool({
    size: 2,
    sequences: 2,
    vocabSize: 16,
    eosToken: undefined,
    clock,
    create: async (i) => {
      made.push(i);
      if (i !== 0) await clock.sleep(500); // (the first is made at once)
      return pair.instance("target", `target-${i}`);
    },
  });
  const [a, b] = [p.join(), p.join()];
  const first = await b.acquire("frontier");
  first.release(); // idle, holding b's tokens
  const start = clock.now();
  const at: Record<string, number> = {};
  const granted = await Promise.all(
    (["a", "b"] as const).map(async (name) => {
      const lease = await (name === "a" ? a : b).acquire("frontier");
      at[name] = clock.now() - start;
      return lease;
    }),
  );
  assert.equal(granted[1].index, first.index, "b: its own sequence");
  assert.equal(at.b, 0, "b at once (before: when a's sequence was made, 500 ms)");
  assert.equal(at.a, 500, "a on the sequence made for it");
  assert.deepEqual(made, [first.index, granted[0].index], "no sequence made for b");
  for (const l of granted) l.release();
  p.close();
});

test("sequences: a lost sequence takes its instance's idle sequences with it (busy ones fail on their own); each comes back when it answers again", async () => {
  let back = false;
  const q = new TargetPool({
    size: 2,
    sequences: 4,
    vocabSize: 16,
    eosToken: undefined,
    create: (i) => Object.assign(pair.instance("target", `t-${i}`), { probe: async () => back }),
    reviveIntervalMs: 10,
    rejoinGraceMs: 5000,
  });
  const leases = Array.from({ length: 8 }, () => q.join().tryAcquire("frontier")!);
  assert.equal(new Set(leases.map((l) => l.index)).size, 8, "every sequence made and leased");
  const [lost, ...rest] = leases;
  const busy = rest.find((l) => q.instanceOf(l.index) === q.instanceOf(lost.index))!;
  for (const l of rest) if (l !== busy) l.release();
  lost.retire("its worker died");
  assert.equal(q.alive, 8 - 3, "the lost sequence and its instance's two idle ones; the busy one is still out");
  busy.retire("its worker died");
  assert.equal(q.alive, 4);
  back = true;
  for (let waited = 0; q.alive < 8 && waited < 5000; waited += 10) await new Promise((r) => setTimeout(r, 10));
  assert.equal(q.alive, 8, "every sequence answered again");
  q.close();
});

test("sequences: whether others share a lease's passes is read at its instance, not at home", () => {
  const p = sequencePool(2, 4, 8);
  const [a, b, c] = [p.join(), p.join(), p.join()];
  const [a1, b1, c1] = [a.tryAcquire("frontier")!, b.tryAcquire("frontier")!, c.tryAcquire("frontier")!];
  assert.notEqual(p.instanceOf(a1.index), p.instanceOf(b1.index), "homes spread");
  // x shares its home with c; y is alone at home, and leaves.
  const [x, x1, y, y1] = p.instanceOf(c1.index) === p.instanceOf(a1.index) ? [a, a1, b, b1] : [b, b1, a, a1];
  assert.equal(x.homeShared(), true);
  assert.equal(x.shared(x1), true);
  y1.release();
  y.leave();
  // x's window goes to the instance y left: nobody else there, though x's home is shared.
  const x2 = x.tryAcquire("window")!;
  assert.equal(p.instanceOf(x2.index), p.instanceOf(y1.index));
  assert.equal(x.shared(x2), false);
  assert.equal(x.homeShared(), true);
  for (const l of [x1, x2, c1]) l.release();
});

test("sequences: room follows a generation that leaves while its task runs, a lease retired, and ignores a declaration after release", () => {
  const p = sequencePool(1, 4, 8);
  const [a, b] = [p.join(), p.join()];
  const a1 = a.tryAcquire("frontier")!;
  const b1 = b.tryAcquire("frontier")!;
  b1.carry(3);
  assert.equal(a.room(a1), 8 - 3);
  b.leave();
  assert.equal(a.room(a1), 8 - 3, "b's task still runs: its positions still count");
  b1.carry(9);
  assert.equal(a.room(a1), 8 - 9, "below 1: others fill the pass");
  b1.release();
  assert.equal(a.room(a1), Infinity, "b is gone, home and task");
  b1.carry(5);
  assert.equal(a.room(a1), Infinity, "a declaration after release counts for nothing");
  const c = p.join();
  const c1 = c.tryAcquire("frontier")!;
  assert.equal(a.room(a1), 8 - 1);
  c1.retire("its worker died");
  c.leave();
  assert.equal(a.room(a1), Infinity);
  a1.release();
});
