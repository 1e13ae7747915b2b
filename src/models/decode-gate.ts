/**
 * Holds the evaluations of a llama context's sequences so that one decode carries every busy
 * sequence, as a modelled instance's passes gather theirs (batch-device.ts): node-llama-cpp puts
 * what is queued in one event-loop turn into one decode, and sends what was queued while a
 * decode ran straight into the next one, without asking anyone. So a sequence that asked a
 * moment after a decode started went alone in the next, while the sequences of that decode,
 * asking again a moment after it ended, waited for it in turn: sequences out of step stayed out
 * of step, and each decode carried half of them.
 *
 * The gate lets evaluations into the context only together: while released ones run, newcomers
 * wait; when the last released one ends, the next release waits for the sequences whose
 * one-token steps it carried to ask again (a plain step's generation asks again at once; one
 * that verified a window drafts first), at most `GATHER_SHARE` of a recent decode, and never
 * longer than any of those waiting may wait (`EvalRequest.mayWaitMs`: DSI's task that must
 * start now to keep its bound goes at once); what it waits for is the batch device's
 * (`Gathering`). Measured through `dsi serve` (2 targets x 8 sequences, default GGUF pair, one
 * thread each), paired runs, tokens/s: non-SI +9-47%, SI +14-84%, DSI -3% to +30% at 4, 8 and
 * 16 streams; waiting for every sequence, SI's windows lost up to 13% at 4.
 */
import { abortReason } from "../runtime/abort.js";
import { afterThisInstant, RealClock, type Clock } from "../runtime/clock.js";
import { RunningMean } from "../runtime/costs.js";
import { GATHER_SHARE, Gathering } from "./gathering.js";

interface Waiter {
  sequence: object;
  /** A one-token step: its sequence is expected back at once. */
  step: boolean;
  /** The latest it should go in (the call's time plus `mayWaitMs`). */
  startBy: number;
  go: () => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

export class DecodeGate {
  /** Released evaluations still running. */
  private out = 0;
  private releasing = false;
  private releasedAt = 0;
  /** Running mean of a release's time to its last evaluation's end, ms (the gather's bound is a share of it). */
  private readonly decodeMs = new RunningMean();
  /** The sequences of the last release: all of them, and (in `gathering`) those of one-token steps, waited for. */
  private releasedLast = new Set<object>();
  /** The evaluations waiting, and the sequences the next release waits for. */
  private readonly gathering: Gathering<Waiter>;
  /** Releases so far, and the evaluations they let in (for tests and stats). */
  releases = 0;
  released = 0;

  constructor(private readonly clock: Clock = new RealClock()) {
    this.gathering = new Gathering(clock);
  }

  /**
   * Resolves when the sequence's evaluation may go into the context, with the call to make when
   * it has ended (once); `step`: it evaluates one token (a plain step). Rejects when `signal`
   * aborts first (the evaluation leaves the queue).
   */
  turn(sequence: object, step: boolean, startBy = Infinity, signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    return new Promise<() => void>((resolve, reject) => {
      let ended = false;
      const w: Waiter = {
        sequence,
        step,
        startBy,
        signal,
        go: () =>
          resolve(() => {
            if (ended) return;
            ended = true;
            this.ended();
          }),
      };
      // (Once released, the evaluation is the caller's: its abort is the caller's to handle.)
      this.gathering.enqueue(w, (reason, waiting) => {
        if (waiting) reject(reason);
      });
      this.schedule();
    });
  }

  private ended(): void {
    if (--this.out > 0) return;
    this.decodeMs.observe(this.clock.now() - this.releasedAt);
    this.schedule();
  }

  private schedule(): void {
    if (this.out > 0 || this.releasing || this.gathering.size === 0) return;
    this.releasing = true;
    void this.release();
  }

  /** The gate's clock (a caller turns `EvalRequest.mayWaitMs` into `turn`'s `startBy` on it as its call arrives). */
  now(): number {
    return this.clock.now();
  }

  /** Waits for the last release's sequences (bounded, see above), then lets everyone waiting in. */
  private async release(): Promise<void> {
    try {
      const bound = GATHER_SHARE * (this.decodeMs.value ?? 0);
      const end = this.clock.now() + bound;
      // (Those that come straight back do so in this instant's continuations: after them,
      // windows' sequences too, which are not waited for past it. On the real clock that is
      // the event loop's next turn, not free: when every sequence of the last release is back
      // it goes at once, or a lone stream's steps would wait for it, 7% of a 5.5 ms step
      // through the server. The same on the virtual clock, which only tests run the gate on:
      // before, it always waited out the instant there, so the tests timed another gate.)
      if (this.releasedLast.size === 0 || !this.gathering.back(this.releasedLast)) await afterThisInstant(this.clock);
      // (No one waiting any more: nothing to hold. No need to be punctual: a real clock's short
      // sleeps would spin on the main thread.)
      if (!this.gathering.back()) await this.gathering.wait(() => (this.gathering.size === 0 ? -Infinity : Math.min(end, this.gathering.startBy())), { coarse: true });
    } finally {
      const batch = this.gathering.take();
      this.releasedLast = new Set(batch.map((w) => w.sequence));
      this.gathering.passed(batch.filter((w) => w.step).map((w) => w.sequence));
      this.out += batch.length;
      this.releasedAt = this.clock.now();
      this.releasing = false;
      if (batch.length > 0) {
        this.releases++;
        this.released += batch.length;
      }
      for (const w of batch) {
        this.gathering.settled(w);
        w.go();
      }
    }
  }
}
