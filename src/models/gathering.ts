/**
 * What a device that batches its sequences' evaluations waits for before the next pass: the
 * calls waiting to go in, and the sequences the last pass carried, each expected to ask again,
 * for a bounded time. Shared by a modelled instance's passes (batch-device.ts) and a llama
 * context's decode gate (decode-gate.ts), which differ in whom they expect back, how long they
 * wait and what a call's abort means once a pass took it.
 */
import { abortReason, PREEMPTED } from "../runtime/abort.js";
import type { Clock, SleepOptions } from "../runtime/clock.js";

/** The longest a pass waits for the sequences of the pass before it, as a share of a step (or of a recent decode). */
export const GATHER_SHARE = 0.1;

/** A call waiting for a pass. */
export interface Waiting {
  /** The sequence asking (an object that stands for it), if it names one. */
  sequence?: object;
  /** The latest its pass should start (its call plus `EvalRequest.mayWaitMs`): no pass is held for others past it. */
  startBy: number;
  signal?: AbortSignal;
  /** Set by `enqueue`: what the signal's abort runs. */
  onAbort?: () => void;
}

export class Gathering<W extends Waiting> {
  /** The calls waiting for the next pass, in their order. */
  private queue: W[] = [];
  /** The sequences expected back, and those that asked since the last pass went out. */
  private expected = new Set<object>();
  private asked = new Set<object>();
  /** Wakes a wait: someone asked (everyone may be back, or a sooner deadline came). */
  private wake: (() => void) | undefined;

  constructor(private readonly clock: Clock) {}

  /**
   * Queues a call (its sequence has asked: a wait looks again). Its signal's abort while it
   * waits takes it out and calls `aborted(reason, true)`; once a pass took it (`take`), until
   * `settled`, `aborted(reason, false)`.
   */
  enqueue(w: W, aborted: (reason: Error, waiting: boolean) => void): void {
    const signal = w.signal;
    if (signal) {
      w.onAbort = () => {
        const at = this.queue.indexOf(w);
        if (at >= 0) this.queue.splice(at, 1);
        aborted(abortReason(signal), at >= 0);
      };
      signal.addEventListener("abort", w.onAbort, { once: true });
    }
    this.queue.push(w);
    this.arrived(w.sequence);
  }

  /** Calls waiting now. */
  get size(): number {
    return this.queue.length;
  }

  /** Every call waiting, out of the queue, for a pass (their aborts still reach them until `settled`). */
  take(): W[] {
    const batch = this.queue;
    this.queue = [];
    return batch;
  }

  /** The call's pass is over: its signal no longer concerns the device. */
  settled(w: W): void {
    if (w.signal && w.onAbort) w.signal.removeEventListener("abort", w.onAbort);
  }

  /** The latest the next pass may start for the calls waiting (Infinity: none is bounded or none waits). */
  startBy(): number {
    let at = Infinity;
    for (const w of this.queue) at = Math.min(at, w.startBy);
    return at;
  }

  /** A pass went out: these sequences are expected back, and no one has asked since. */
  passed(expected: Iterable<object>): void {
    this.expected = new Set(expected);
    this.asked = new Set();
  }

  /** A call came (from `sequence`, if it names one): a wait looks again. */
  private arrived(sequence?: object): void {
    if (sequence) this.asked.add(sequence);
    this.wake?.();
  }

  /** Whether every sequence of `of` (default: those expected) has asked since the last pass. */
  back(of: Iterable<object> = this.expected): boolean {
    for (const q of of) if (!this.asked.has(q)) return false;
    return true;
  }

  /**
   * Until every expected sequence is back or `until()` has passed, looked at again whenever a
   * call arrives (a waiting call may bring a sooner deadline).
   */
  async wait(until: () => number, options?: SleepOptions): Promise<void> {
    while (!this.back()) {
      const at = until();
      if (at <= this.clock.now()) return;
      const wake = new AbortController();
      this.wake = () => wake.abort(PREEMPTED);
      try {
        await this.clock.sleep(at - this.clock.now(), wake.signal, options);
      } catch {
        // (Someone asked: look again.)
      } finally {
        this.wake = undefined;
      }
    }
  }
}
