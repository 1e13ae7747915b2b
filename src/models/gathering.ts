/**
 * What a device that batches its sequences' evaluations waits for before the next pass: the
 * sequences the last pass carried, each expected to ask again, for a bounded time. Shared by a
 * modelled instance's passes (batch-device.ts) and a llama context's decode gate
 * (decode-gate.ts), which differ in whom they expect back and how long they wait.
 */
import type { Clock, SleepOptions } from "../runtime/clock.js";

/** The longest a pass waits for the sequences of the pass before it, as a share of a step (or of a recent decode). */
export const GATHER_SHARE = 0.1;

export class Gathering {
  /** The sequences expected back, and those that asked since the last pass went out. */
  private expected = new Set<object>();
  private asked = new Set<object>();
  /** Wakes a wait: someone asked (everyone may be back, or a sooner deadline came). */
  private wake: (() => void) | undefined;

  constructor(private readonly clock: Clock) {}

  /** A pass went out: these sequences are expected back, and no one has asked since. */
  passed(expected: Iterable<object>): void {
    this.expected = new Set(expected);
    this.asked = new Set();
  }

  /** A call came (from `sequence`, if it names one): a wait looks again. */
  arrived(sequence?: object): void {
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
      this.wake = () => wake.abort();
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
