/**
 * The health of a pool's instances: which were lost and why, whether a lost one may come back
 * (it has `probe`: a worker that is restarting), asking it on a timer until it does, and how
 * long claims wait for one to rejoin when none is left. Every timer runs on the runtime's
 * clock, so rejoins are testable in virtual time; probes are background sleeps (they keep no
 * process alive on their own). The pool decides what a loss or a return means for its claims (runtime/pool.ts).
 */
import type { ModelInstance } from "../core/instance.js";
import type { Clock } from "./clock.js";

/**
 * Times closer than this to the grace's end are its end: the grace timer sleeps `end - now`,
 * and a virtual clock's `now + (end - now)` can fall a rounding short of `end` (a loss at
 * 3670.084 ms woke at 8670.083999999999), where the timer, set again for 0 ms, woke at the
 * same instant forever.
 */
const GRACE_EPSILON_MS = 1e-6;

/** Every instance of the pool was lost: the message lists them and why. */
export class NoInstanceError extends Error {
  override readonly name = "NoInstanceError";
}

export interface InstanceHealthOptions {
  clock: Clock;
  /** How often a lost instance that can come back is asked whether it serves again, ms. */
  reviveIntervalMs: number;
  /** How long claims wait for a lost instance to rejoin once none is left, ms. */
  rejoinGraceMs: number;
  /** A lost instance answered again: it serves as before, same index. */
  onReturn: (index: number) => void;
  /** Whether claims must now fail may have changed: nothing can come back any more, or the grace ended. */
  onHopeChanged: () => void;
}

export class InstanceHealth {
  /** Why each lost instance was lost ("label: why"), by index, for the error when none is left. */
  private readonly losses = new Map<number, string>();
  /** Lost instances being probed (they may come back). */
  private readonly returning = new Set<number>();
  /** When the last live instance was lost: the rejoin grace counts from here. */
  private noneSince = 0;
  /** Cancels every probe (close). */
  private readonly closing = new AbortController();
  /** Cancels the grace timer (a rejoin, close). */
  private grace: AbortController | undefined;

  constructor(private readonly o: InstanceHealthOptions) {}

  get closed(): boolean {
    return this.closing.signal.aborted;
  }

  /** Stops asking lost instances whether they are back, and the grace timer. Idempotent. */
  close(): void {
    this.closing.abort();
    this.cancelGraceEnd();
  }

  /** Instance `index` was lost (`why`); `lastAlive`: it was the pool's last live instance. */
  lost(index: number, instance: ModelInstance, why: string, lastAlive: boolean): void {
    this.losses.set(index, `${instance.label}: ${why}`);
    if (lastAlive) this.noneSince = this.o.clock.now();
    if (instance.probe && !this.closed) {
      this.returning.add(index);
      void this.probe(index, instance.probe.bind(instance));
    }
  }

  /**
   * With no live instance: whether claims must fail now (nothing can come back, the runtime
   * closed, or the rejoin grace is over) rather than wait for a lost instance to rejoin.
   */
  hopeless(): boolean {
    return this.returning.size === 0 || this.closed || this.o.clock.now() - this.noneSince >= this.o.rejoinGraceMs - GRACE_EPSILON_MS;
  }

  /**
   * Calls `onHopeChanged` when the rejoin grace ends (one timer at a time; cancelled by a
   * rejoin). Claims wait on it: unlike the probes, it keeps the process alive.
   */
  awaitGraceEnd(): void {
    if (this.grace !== undefined || this.closed) return;
    const grace = new AbortController();
    this.grace = grace;
    this.o.clock.sleep(this.noneSince + this.o.rejoinGraceMs - this.o.clock.now(), grace.signal).then(
      () => {
        if (this.grace === grace) this.grace = undefined;
        this.o.onHopeChanged();
      },
      () => undefined,
    );
  }

  /** Cancels the grace timer: claims failed already, or an instance is back. */
  cancelGraceEnd(): void {
    this.grace?.abort();
    this.grace = undefined;
  }

  /** The error for claims once no instance is left. */
  noneLeft(): NoInstanceError {
    return new NoInstanceError(`no target instance left: ${[...this.losses.values()].join("; ")}`);
  }

  /** Asks a lost instance every `reviveIntervalMs` whether it serves again, until it does, fails, or the runtime closes. */
  private async probe(index: number, probe: () => Promise<boolean>): Promise<void> {
    const signal = this.closing.signal;
    for (;;) {
      try {
        await this.o.clock.sleep(this.o.reviveIntervalMs, signal, { background: true });
      } catch {
        return; // closed
      }
      let back: boolean;
      try {
        back = await probe();
      } catch {
        // It will not come back: stays lost, and claims stop waiting for it.
        this.returning.delete(index);
        this.o.onHopeChanged();
        return;
      }
      if (this.closed) return;
      if (!back) continue;
      this.returning.delete(index);
      this.losses.delete(index);
      this.cancelGraceEnd();
      this.o.onReturn(index);
      return;
    }
  }
}
