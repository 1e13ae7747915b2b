/** Clocks: the deterministic virtual clock and the real clock's cancellation. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { getEventListeners } from "node:events";
import { describe, test } from "node:test";
import { AbortError, isAbortError } from "../../src/runtime/abort.js";
import { makeClock, RealClock, VirtualClock } from "../../src/runtime/clock.js";

const macrotask = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function microtaskHops(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await null;
}

const isAbort = (err: unknown): boolean => {
  assert.ok(err instanceof Error, "rejects with an Error");
  assert.equal(err.name, "AbortError");
  return true;
};

describe("VirtualClock", () => {
  test("starts at time 0 and is virtual", () => {
    const clock = new VirtualClock();
    assert.equal(clock.now(), 0);
    assert.equal(clock.kind, "virtual");
    assert.equal(clock.pending(), 0);
  });

  test("a sleep advances time by exactly its length, and now() reads the wake time in continuations", async () => {
    const clock = new VirtualClock();
    await clock.sleep(7);
    assert.equal(clock.now(), 7);
    // Further microtask work does not advance time.
    await microtaskHops(50);
    await (async () => {
      await null;
      assert.equal(clock.now(), 7);
    })();
    assert.equal(clock.now(), 7);
    await clock.sleep(2.5);
    assert.equal(clock.now(), 9.5);
  });

  test("sleeps wake in time order, not in the order they were started", async () => {
    const clock = new VirtualClock();
    const log: string[] = [];
    const sleeper = async (name: string, ms: number): Promise<void> => {
      await clock.sleep(ms);
      log.push(`${name}@${clock.now()}`);
    };
    await Promise.all([sleeper("a", 30), sleeper("b", 10), sleeper("c", 20), sleeper("d", 5)]);
    assert.deepEqual(log, ["d@5", "b@10", "c@20", "a@30"]);
    assert.equal(clock.now(), 30);
  });

  test("sleepers due at the same instant wake in the order they went to sleep (FIFO)", async () => {
    const clock = new VirtualClock();
    const log: string[] = [];
    const tasks = [
      (async () => {
        await clock.sleep(10);
        log.push(`x@${clock.now()}`);
      })(),
      (async () => {
        // Goes to sleep for t=10 at t=4, after x and z registered theirs at t=0.
        await clock.sleep(4);
        await clock.sleep(6);
        log.push(`y@${clock.now()}`);
      })(),
      (async () => {
        await clock.sleep(10);
        log.push(`z@${clock.now()}`);
      })(),
    ];
    await Promise.all(tasks);
    assert.deepEqual(log, ["x@10", "z@10", "y@10"]);
  });

  test("sleep(0) and negative sleeps wake at the current time, FIFO", async () => {
    const clock = new VirtualClock();
    await clock.sleep(3);
    const log: string[] = [];
    await Promise.all([
      clock.sleep(0).then(() => log.push(`a@${clock.now()}`)),
      clock.sleep(-5).then(() => log.push(`b@${clock.now()}`)),
      clock.sleep(0).then(() => log.push(`c@${clock.now()}`)),
    ]);
    assert.deepEqual(log, ["a@3", "b@3", "c@3"]);
  });

  test("time does not advance while continuations are still runnable", async () => {
    const clock = new VirtualClock();
    const log: string[] = [];
    await Promise.all([
      (async () => {
        await clock.sleep(10);
        log.push(`long@${clock.now()}`);
      })(),
      (async () => {
        // Long microtask chain before going to sleep: the 10 ms sleeper must not be woken meanwhile.
        await microtaskHops(1000);
        log.push(`busy@${clock.now()}`);
        await clock.sleep(5);
        log.push(`short@${clock.now()}`);
      })(),
    ]);
    assert.deepEqual(log, ["busy@0", "short@5", "long@10"]);
  });

  async function threeLoops(): Promise<{ log: string[]; end: number }> {
    const clock = new VirtualClock();
    const log: string[] = [];
    const loop = async (name: string, ms: number, rounds: number, hops: number): Promise<void> => {
      for (let i = 0; i < rounds; i++) {
        await clock.sleep(ms);
        await microtaskHops(hops); // unequal amounts of non-clock work per wake
        log.push(`${name}@${clock.now()}`);
      }
    };
    await Promise.all([loop("A", 3, 7, 0), loop("B", 5, 4, 3), loop("C", 7, 3, 10)]);
    return { log, end: clock.now() };
  }

  test("concurrent loops interleave deterministically, as computed by hand", async () => {
    const first = await threeLoops();
    const second = await threeLoops();
    assert.deepEqual(first, second);
    // Ties: at 15, B went to sleep at 10 and A at 12 -> B first; at 21, C went to sleep at 14 and A at 18 -> C first.
    const expected = ["A@3", "B@5", "A@6", "C@7", "A@9", "B@10", "A@12", "C@14", "B@15", "A@15", "A@18", "B@20", "C@21", "A@21"];
    assert.deepEqual(first.log, expected);
    assert.equal(first.end, 21);
  });

  test("background sleeps advance time like any other, in order with the others", async () => {
    // (A foreground sleeper waits last: background sleepers alone keep no process alive.)
    const clock = new VirtualClock();
    const order: string[] = [];
    await Promise.all([
      clock.sleep(10, undefined, { background: true }).then(() => order.push(`probe at ${clock.now()}`)),
      clock.sleep(5).then(() => order.push(`step at ${clock.now()}`)),
      clock.sleep(20).then(() => order.push(`step at ${clock.now()}`)),
    ]);
    assert.deepEqual(order, ["step at 5", "probe at 10", "step at 20"]);
  });

  test("pending() counts the sleepers still waiting", async () => {
    const clock = new VirtualClock();
    const ac = new AbortController();
    const a = clock.sleep(10);
    const b = clock.sleep(20, ac.signal);
    const c = clock.sleep(30);
    assert.equal(clock.pending(), 3);
    const bRejected = assert.rejects(b, isAbort);
    ac.abort();
    assert.equal(clock.pending(), 2);
    await bRejected;
    await a;
    assert.equal(clock.pending(), 1);
    await c;
    assert.equal(clock.pending(), 0);
    assert.equal(clock.now(), 30);
  });

  test("aborting a sleep rejects with an AbortError and does not advance time to its wake time", async () => {
    const clock = new VirtualClock();
    const ac = new AbortController();
    const aborted = clock.sleep(100, ac.signal);
    const rejected = assert.rejects(aborted, isAbort);
    await clock.sleep(10);
    ac.abort();
    await rejected;
    assert.equal(clock.now(), 10);
    await clock.sleep(5);
    assert.equal(clock.now(), 15);
    // Let any pending wake-ups run: the cancelled sleeper must not move time to 100.
    for (let i = 0; i < 5; i++) await macrotask();
    assert.equal(clock.now(), 15);
    assert.equal(clock.pending(), 0);
  });

  test("aborting the only sleeper leaves the time where it was", async () => {
    const clock = new VirtualClock();
    const ac = new AbortController();
    const rejected = assert.rejects(clock.sleep(50, ac.signal), isAbort);
    ac.abort();
    await rejected;
    for (let i = 0; i < 5; i++) await macrotask();
    assert.equal(clock.now(), 0);
    assert.equal(clock.pending(), 0);
  });

  test("the rejection is delivered at the abort time, before later sleepers wake", async () => {
    const clock = new VirtualClock();
    const ac = new AbortController();
    const log: string[] = [];
    const victim = clock.sleep(100, ac.signal).then(
      () => log.push("victim woke"),
      (err: unknown) => log.push(`victim ${(err as Error).name}@${clock.now()}`),
    );
    const killer = (async () => {
      await clock.sleep(20);
      ac.abort();
    })();
    const other = clock.sleep(40).then(() => log.push(`other@${clock.now()}`));
    await Promise.all([victim, killer, other]);
    assert.deepEqual(log, ["victim AbortError@20", "other@40"]);
  });

  test("an already aborted signal rejects immediately without registering a sleeper", async () => {
    const clock = new VirtualClock();
    const ac = new AbortController();
    ac.abort();
    const p = clock.sleep(10, ac.signal);
    assert.equal(clock.pending(), 0);
    await assert.rejects(p, isAbort);
    assert.equal(clock.now(), 0);
  });

  test("the abort reason is kept when it is an AbortError, replaced by an AbortError otherwise", async () => {
    const clock = new VirtualClock();
    const own = new AbortError("stop");
    const ac1 = new AbortController();
    const p1 = clock.sleep(10, ac1.signal);
    ac1.abort(own);
    await assert.rejects(p1, (err) => err === own);

    const ac2 = new AbortController();
    const p2 = clock.sleep(10, ac2.signal);
    ac2.abort(new Error("boom"));
    await assert.rejects(p2, (err) => {
      assert.ok(err instanceof AbortError);
      assert.ok(isAbortError(err));
      return true;
    });
  });

  test("aborting after the sleep has woken has no effect", async () => {
    const clock = new VirtualClock();
    const ac = new AbortController();
    await clock.sleep(5, ac.signal);
    ac.abort();
    await clock.sleep(1, new AbortController().signal);
    assert.equal(clock.now(), 6);
    assert.equal(clock.pending(), 0);
  });

  test("a woken sleeper removes its abort listener", async () => {
    const clock = new VirtualClock();
    const ac = new AbortController();
    const p = clock.sleep(5, ac.signal);
    assert.equal(getEventListeners(ac.signal, "abort").length, 1);
    await p;
    assert.equal(getEventListeners(ac.signal, "abort").length, 0);
    // The signal can be reused for many sleeps without accumulating listeners.
    for (let i = 0; i < 20; i++) await clock.sleep(1, ac.signal);
    assert.equal(getEventListeners(ac.signal, "abort").length, 0);
  });

  test("separate clocks are independent", async () => {
    const a = new VirtualClock();
    const b = new VirtualClock();
    await Promise.all([a.sleep(10), b.sleep(3)]);
    assert.equal(a.now(), 10);
    assert.equal(b.now(), 3);
  });
});

describe("RealClock", () => {
  test("is real, starts at 0 on its first reading, and now() is non-decreasing", () => {
    const clock = new RealClock();
    assert.equal(clock.kind, "real");
    let last = clock.now();
    assert.equal(last, 0, "the first reading is the origin");
    for (let i = 0; i < 1000; i++) {
      const t = clock.now();
      assert.ok(t >= last);
      last = t;
    }
  });

  test("sleep(0) and negative sleeps resolve without waiting for a timer", async () => {
    const clock = new RealClock();
    // A timer scheduled first fires only after the sleeps if they waited for one.
    let timerFired = false;
    const timer = setTimeout(() => (timerFired = true), 0);
    await clock.sleep(0);
    await clock.sleep(-10);
    await clock.sleep(0, new AbortController().signal);
    await clock.sleep(Number.NaN); // (a bad cost: no deadline that would hold up others' wake-ups)
    assert.equal(timerFired, false);
    clearTimeout(timer);
  });

  test("a short sleep resolves no earlier than asked", async () => {
    const clock = new RealClock();
    const t0 = clock.now();
    await clock.sleep(5);
    // Node's timers never fire early (they may fire late on a busy machine: no upper bound).
    assert.ok(clock.now() - t0 >= 4.5, `woke after ${clock.now() - t0} ms`);
  });

  test("aborting a sleep rejects with an AbortError", async () => {
    const clock = new RealClock();
    const ac = new AbortController();
    const p = clock.sleep(60_000, ac.signal);
    setImmediate(() => ac.abort());
    await assert.rejects(p, isAbort);
  });

  test("an already aborted signal rejects, even for sleep(0)", async () => {
    const clock = new RealClock();
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(clock.sleep(60_000, ac.signal), isAbort);
    await assert.rejects(clock.sleep(0, ac.signal), isAbort);
  });

  test("sleeps wake in the order of their deadlines, each no earlier than asked", async () => {
    const clock = new RealClock();
    /**
     * Starts sleeps of `ms` (busy for `holdMs` after the calls, so that those due by then wake
     * in one turn), and checks each woke no earlier than asked and after every sleep due surely
     * before it: a deadline lies between its call's start and end plus `ms` (the process may be
     * held up between two calls, so call order alone does not order deadlines).
     */
    const check = async (list: number[], holdMs: number): Promise<void> => {
      const sleeps: { ms: number; from: number; to: number; woke: number; done: Promise<void> }[] = [];
      const woke: number[] = [];
      for (const ms of list) {
        const from = clock.now();
        const done = clock.sleep(ms);
        const s = { ms, from: from + ms, to: clock.now() + ms, woke: 0, done };
        sleeps.push(s);
        void done.then(() => {
          s.woke = clock.now();
          woke.push(ms);
        });
      }
      const end = performance.now() + holdMs;
      while (performance.now() < end); // (held up: the event loop runs no turn meanwhile)
      await Promise.all(sleeps.map((s) => s.done));
      await null; // (each sleep's own continuation has run)
      for (const s of sleeps) assert.ok(s.woke >= s.from, `${s.ms} ms woke at ${s.woke.toFixed(3)}, before ${s.from.toFixed(3)}`);
      for (const a of sleeps) {
        for (const b of sleeps) {
          if (a.to < b.from) assert.ok(woke.indexOf(a.ms) < woke.indexOf(b.ms), `${a.ms} ms (due by ${a.to.toFixed(3)}) woke after ${b.ms} ms (due from ${b.from.toFixed(3)}): ${woke.join(", ")}`);
        }
      }
    };
    // All due in the first turn after an 8 ms hold-up: they wake sorted, not in call order.
    await check([6, 2.5, 1, 4, 1.5], 8);
    // On the clock's timer (more than 3 ms away), re-armed for an earlier deadline twice.
    await check([40, 12, 6], 0);
    // Spinning (1 ms) and then the timer for the rest.
    await check([30, 1, 15], 0);
  });

  test("a sleep aborted while it spins rejects, the others spinning with it still wake, and a woken sleep keeps no abort listener", async () => {
    const clock = new RealClock();
    const [aborted, kept] = [new AbortController(), new AbortController()];
    // (A sleep of 3 ms or less spins from its call on: aborted at once, it is aborted spinning.)
    const gone = clock.sleep(2.5, aborted.signal);
    const stays = clock.sleep(2.5, kept.signal);
    aborted.abort();
    await assert.rejects(gone, isAbort);
    await stays;
    assert.equal(getEventListeners(kept.signal, "abort").length, 0);
  });

  test("a sleep aborted on the clock's timer leaves no timer behind, and the next sleep's timer still wakes it", async () => {
    const clock = new RealClock();
    const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
    const before = timers();
    const early = new AbortController();
    const long = clock.sleep(50, early.signal);
    early.abort();
    await assert.rejects(long, isAbort);
    assert.equal(timers(), before, "the aborted sleep's timer is gone");
    // The earliest of two aborted: the other still wakes, no earlier than asked.
    const first = new AbortController();
    const t0 = clock.now();
    const [a, b] = [clock.sleep(50, first.signal), clock.sleep(60)];
    first.abort();
    await assert.rejects(a, isAbort);
    await b;
    assert.ok(clock.now() - t0 >= 60, `woke after ${(clock.now() - t0).toFixed(3)} ms`);
    assert.equal(timers(), before);
  });

  test("a non-AbortError reason becomes an AbortError; an AbortError reason is kept", async () => {
    const clock = new RealClock();
    const ac = new AbortController();
    const p = clock.sleep(60_000, ac.signal);
    setImmediate(() => ac.abort(new Error("boom")));
    await assert.rejects(p, (err) => err instanceof AbortError);

    const own = new AbortError("mine");
    const ac2 = new AbortController();
    const p2 = clock.sleep(60_000, ac2.signal);
    setImmediate(() => ac2.abort(own));
    await assert.rejects(p2, (err) => err === own);
  });
});

describe("background sleeps", () => {
  /**
   * In a child process, 1000 sleeps of a minute one after the other on `clock` (a probe's
   * loop): how many woke before the process ended.
   */
  const sleepsInChild = async (clock: "RealClock" | "VirtualClock", background: boolean): Promise<number> => {
    const module = new URL("../../src/runtime/clock.js", import.meta.url).href;
    // (No top-level await: a process that ends with one pending exits with code 13.)
    const script = [
      "let woke = 0;",
      "process.on('exit', () => console.log(woke));",
      `import(${JSON.stringify(module)}).then(async ({ ${clock} }) => {`,
      `  const clock = new ${clock}();`,
      `  for (let i = 0; i < 1000; i++) { await clock.sleep(60000, undefined, { background: ${background} }); woke++; }`,
      "});",
    ].join("\n");
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ["--input-type=module", "-e", script], { timeout: 20_000 }, (err, out) => (err ? reject(err) : resolve(out))),
    );
    return Number(stdout);
  };

  test("keep no process alive on their own, on either clock (foreground virtual ones do)", { timeout: 60_000 }, async () => {
    assert.equal(await sleepsInChild("RealClock", true), 0, "the real clock's process ended at once");
    const virtual = await sleepsInChild("VirtualClock", true);
    assert.ok(virtual < 1000, `the virtual clock's process ended after ${virtual} of 1000 sleeps`);
    assert.equal(await sleepsInChild("VirtualClock", false), 1000);
  });

  test("a real background sleep resolves after its time and rejects when aborted", async () => {
    const clock = new RealClock();
    const alive = setTimeout(() => undefined, 10_000); // the sleep alone would not keep the test running
    // After its time, told by order rather than by a wall clock (timers may fire a loop's
    // staleness early against performance.now()): a 15 ms timer set at the same moment fires first.
    const order: string[] = [];
    const shorter = new Promise<void>((resolve) => setTimeout(() => resolve(void order.push("15 ms timer")), 15));
    await clock.sleep(30, undefined, { background: true });
    order.push("30 ms background sleep");
    await shorter;
    assert.deepEqual(order, ["15 ms timer", "30 ms background sleep"]);
    const ac = new AbortController();
    const p = clock.sleep(60_000, ac.signal, { background: true });
    setImmediate(() => ac.abort());
    await assert.rejects(p, isAbort);
    clearTimeout(alive);
  });
});

describe("makeClock", () => {
  test("builds the requested kind", () => {
    assert.ok(makeClock("real") instanceof RealClock);
    assert.ok(makeClock("virtual") instanceof VirtualClock);
  });
});
