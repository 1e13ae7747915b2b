/**
 * Clocks. The engine is written once against `Clock`; the real clock serves traffic, the
 * virtual one runs the same orchestration in simulated time, deterministically.
 */
import { setImmediate as nextTurn, setTimeout as delay } from "node:timers/promises";
import { abortReason } from "./abort.js";

export interface Clock {
  readonly kind: "real" | "virtual";
  /** Milliseconds since the clock's origin. */
  now(): number;
  /**
   * Resolves after `ms`; rejects with an AbortError as soon as `signal` aborts. A
   * `background` sleep (a periodic probe) never keeps the process alive on its own, and the
   * real clock does not spend CPU making it punctual.
   */
  sleep(ms: number, signal?: AbortSignal, options?: SleepOptions): Promise<void>;
}

/**
 * Resolves once every continuation runnable now has run: on a virtual clock at the end of
 * this instant (`sleep(0)`), on the real clock at the event loop's next check phase
 * (`RealClock.sleep(0)` returns at once, and a promise alone would not let other chains of
 * continuations finish).
 */
export function afterThisInstant(clock: Clock): Promise<void> {
  return clock.kind === "virtual" ? clock.sleep(0) : nextTurn();
}

export interface SleepOptions {
  background?: boolean;
  /** The real clock need not be punctual (it spins through the last ms otherwise): a wait bounded for efficiency, not timing. */
  coarse?: boolean;
}

export class RealClock implements Clock {
  readonly kind = "real" as const;
  /** Set by the first reading, so a clock made before set-up work starts at 0 with the run. */
  private origin: number | undefined;
  /** The punctual sleeps waiting, woken by the clock's one timer or its loop of event-loop turns. */
  private readonly pending = new Set<PendingSleep>();
  private timer: NodeJS.Timeout | undefined;
  /** When the timer fires (performance.now()'s scale; Infinity: none armed). */
  private timerAt = Infinity;
  private spinner: NodeJS.Immediate | undefined;

  now(): number {
    const t = performance.now();
    this.origin ??= t;
    return t - this.origin;
  }

  /**
   * Timers wake 1-2 ms late (whole milliseconds, a busy event loop), which is most of a 2.5 ms
   * drafter pass and several percent of a target pass when `sleep` emulates a device. So the
   * clock's timer is set SPIN_MS before the earliest deadline and the rest is waited out in
   * event-loop turns (I/O still runs between them), at the price of CPU while a sleep is that
   * close. One timer and one loop of turns serve every sleep, which wakes in the order of the
   * deadlines: a loop per sleep, each turn a promise with its own abort listener, cost more CPU
   * than the engine's own work when 16 emulated sequences slept at once, and passes ended later
   * for it. (With a timer per sleep, one whose timer fired late could also wake after a later
   * deadline already spinning.)
   */
  sleep(ms: number, signal?: AbortSignal, options?: SleepOptions): Promise<void> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    if (!(ms > 0)) return Promise.resolve(); // (NaN too: a NaN deadline would hold up every sleep's wake-up)
    if (options?.background || options?.coarse) return this.timerSleep(ms, signal, options.background ?? false);
    return new Promise<void>((resolve, reject) => {
      const s: PendingSleep = { deadline: performance.now() + ms, resolve };
      if (signal) {
        const onAbort = (): void => {
          this.pending.delete(s);
          if (!this.spinner) this.disarm(); // (its timer may have been this sleep's)
          this.arm();
          reject(abortReason(signal));
        };
        signal.addEventListener("abort", onAbort, { once: true });
        s.resolve = () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        };
      }
      this.pending.add(s);
      this.arm();
    });
  }

  /** A plain timer: a background sleep keeps no process alive, a coarse one need not be punctual. */
  private async timerSleep(ms: number, signal: AbortSignal | undefined, background: boolean): Promise<void> {
    try {
      await delay(ms, undefined, { signal, ref: !background });
    } catch (err) {
      if (signal?.aborted) throw abortReason(signal);
      throw err;
    }
  }

  /** Wakes the clock in time for the earliest pending sleep: by the timer until SPIN_MS before it, then turn by turn. */
  private arm(): void {
    if (this.spinner) return; // (every turn looks again)
    let earliest = Infinity;
    for (const s of this.pending) earliest = Math.min(earliest, s.deadline);
    if (earliest === Infinity) return this.disarm();
    const wakeAt = earliest - SPIN_MS;
    if (wakeAt - performance.now() <= 1) {
      this.disarm();
      this.spinner = setImmediate(this.turn);
    } else if (wakeAt < this.timerAt) {
      // (A timer armed for sooner stays: it wakes, finds nothing due, and arms this one.)
      this.disarm();
      this.timerAt = wakeAt;
      this.timer = setTimeout(this.onTimer, wakeAt - performance.now());
    }
  }

  private disarm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.timerAt = Infinity;
    this.turn();
  };

  /** After the timer, and each event-loop turn of the spin: wakes the sleeps now due, earliest deadline first. */
  private readonly turn = (): void => {
    this.spinner = undefined;
    const now = performance.now();
    let due: PendingSleep[] | undefined;
    for (const s of this.pending) if (s.deadline <= now) (due ??= []).push(s);
    try {
      if (due) {
        due.sort((a, b) => a.deadline - b.deadline);
        for (const s of due) {
          this.pending.delete(s);
          s.resolve();
        }
      }
    } finally {
      this.arm();
    }
  };
}

/** A punctual real-clock sleep. */
interface PendingSleep {
  deadline: number;
  resolve: () => void;
}

/** How long before its deadline a real-clock sleep stops trusting the timer. */
const SPIN_MS = 2;

interface Sleeper {
  at: number;
  seq: number;
  resolve: () => void;
  cancelled: boolean;
  background: boolean;
}

/**
 * Deterministic discrete-event clock. Time advances only when every pending task waits on
 * the clock: the next wake-up is delivered from a macrotask (setImmediate), which runs
 * only after all microtasks, i.e. after every runnable continuation has reached its next
 * await. Sleepers due at the same instant wake in the order they went to sleep.
 *
 * Work that waits on anything other than this clock (real I/O, real models) is invisible
 * to it; use the real clock there. Background sleepers advance time like any other, but while
 * only they are left the pending wake-up does not keep the process alive (as the real clock's
 * background timers do not).
 */
export class VirtualClock implements Clock {
  readonly kind = "virtual" as const;
  private t = 0;
  private seq = 0;
  /** Pending sleepers sorted by (at, seq); there are only ever a handful. */
  private queue: Sleeper[] = [];
  /** The pending wake-up, if any. */
  private wakeUp: NodeJS.Immediate | undefined;

  now(): number {
    return this.t;
  }

  sleep(ms: number, signal?: AbortSignal, options?: SleepOptions): Promise<void> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    return new Promise<void>((resolve, reject) => {
      const sleeper: Sleeper = { at: this.t + Math.max(0, ms), seq: this.seq++, resolve, cancelled: false, background: options?.background ?? false };
      if (signal) {
        const onAbort = (): void => {
          sleeper.cancelled = true;
          reject(abortReason(signal));
        };
        signal.addEventListener("abort", onAbort, { once: true });
        sleeper.resolve = () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        };
      }
      this.insert(sleeper);
      this.scheduleWake();
    });
  }

  /** Number of sleepers still waiting (for tests). */
  pending(): number {
    return this.queue.filter((s) => !s.cancelled).length;
  }

  private insert(s: Sleeper): void {
    let i = this.queue.length;
    while (i > 0 && this.queue[i - 1].at > s.at) i--;
    this.queue.splice(i, 0, s);
  }

  private scheduleWake(): void {
    this.wakeUp ??= setImmediate(this.wake);
    if (this.queue.every((s) => s.cancelled || s.background)) this.wakeUp.unref();
    else this.wakeUp.ref();
  }

  private readonly wake = (): void => {
    this.wakeUp = undefined;
    let next = this.queue.shift();
    while (next?.cancelled) next = this.queue.shift();
    if (!next) return;
    this.t = next.at;
    next.resolve();
    if (this.queue.length > 0) this.scheduleWake();
  };
}

export function makeClock(kind: "real" | "virtual"): Clock {
  return kind === "real" ? new RealClock() : new VirtualClock();
}
