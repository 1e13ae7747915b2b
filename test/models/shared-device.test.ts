/** A modelled shared device: passes slow each other down while they overlap (processor sharing). */
import assert from "node:assert/strict";
import { test } from "node:test";
import { SharedDevice } from "../../src/models/shared-device.js";
import { VirtualClock } from "../../src/runtime/clock.js";

test("passes that overlap run 1 + contention × others times slower, and speed up when one ends", async () => {
  const clock = new VirtualClock();
  const device = new SharedDevice(clock, 1.5);
  const ends: Record<string, number> = {};
  const pass = (name: string, ms: number, at = 0): Promise<void> =>
    clock.sleep(at).then(() => device.run(ms).then(() => void (ends[name] = clock.now())));
  await pass("alone", 10);
  assert.equal(ends.alone, 10, "alone: its own time");
  // From 10: a 10 ms pass and a 4 ms one at 1/2.5 speed; the short one ends after 10 ms, the
  // long one has 6 ms of work left and does it alone.
  await Promise.all([pass("long", 10), pass("short", 4)]);
  assert.deepEqual([ends.short - 10, ends.long - 10], [10, 16]);
  // Three at once, one joining later: each change of company changes everyone's speed.
  const start = clock.now();
  await Promise.all([pass("a", 10), pass("b", 10), pass("c", 2, 5)]);
  // 0..5: two at 1/2.5 (2 ms done each); then three at 1/4: c's 2 ms take 8 (a, b do 2 more);
  // then a and b have 6 ms left at 1/2.5: 15 ms more.
  assert.deepEqual([ends.a - start, ends.b - start, ends.c - start], [28, 28, 13]);
  assert.equal(device.running, 0);
});

test("an aborted pass leaves the device at once; the others go on at the speed of those left", async () => {
  const clock = new VirtualClock();
  const device = new SharedDevice(clock, 1);
  const stop = new AbortController();
  const aborted = device.run(100, stop.signal).catch((err: Error) => err.name);
  const other = device.run(10).then(() => clock.now());
  await clock.sleep(4); // the other has done 2 ms of its 10
  stop.abort();
  assert.equal(await aborted, "AbortError");
  assert.equal(await other, 12, "8 ms left, alone from 4 ms on");
  assert.equal(device.running, 0);
});
