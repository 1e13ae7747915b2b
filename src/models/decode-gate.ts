/**
 * When a llama context with several sequences sends its next decode (node-llama-cpp's
 * `batching.dispatchSchedule`). node-llama-cpp's own schedule dispatches on the next event-loop
 * turn after an evaluation is queued, and a decode takes what is queued when it starts. The
 * generations of a context's sequences each read their result and ask again a moment apart
 * (the engine's own work, a server's HTTP and SSE). So one that asked while a decode ran went
 * into the next decode alone, and the sequences of the decode before, asking again a moment
 * after it ended, waited for that one: decodes alternated between the sequences instead of
 * carrying them together, and sequences out of step stayed out of step. Here the next decode
 * waits, once the running one has ended, for the sequences it carried to ask again (the gather
 * of `BatchDevice`, the modelled instance that batches), at most `GATHER_SHARE` of a decode's
 * time: a sequence may not come back soon (its generation ended, or waits for drafts).
 *
 * A decode's tokens are evaluated with the same bits whatever shares it (llama.ts,
 * SharedContext): waiting changes when a sequence's tokens go, never what they give.
 */
import { GATHER_SHARE } from "./batch-device.js";

/** The shortest wait worth arming a timer for, ms. */
const MIN_GATHER_MS = 0.2;
/** How long a dispatch waits for a decode whose time is not known yet to end (none of its evaluations returned), ms. */
const UNKNOWN_DECODE_MS = 100;

type Held = { go: () => void; timer?: NodeJS.Timeout };

export class DecodeGate {
  /** The sequences the last decode carried, and those that asked since it was sent. */
  private served = new Set<object>();
  private asked = new Set<object>();
  /** Whether the last decode sent has not ended yet (none of its sequences' evaluations returned), when it was sent, and how long the last one took. */
  private decoding = false;
  private sentAt = 0;
  private lastDecodeMs = 0;
  /** The dispatch waiting (for the running decode to end, then for its sequences), and its time limit. */
  private held: Held | undefined;
  /** Decodes sent, and those that waited for sequences (for tests and stats). */
  dispatches = 0;
  gathers = 0;

  /** `sequence` is about to queue an evaluation. */
  queued(sequence: object): void {
    this.asked.add(sequence);
    if (this.held && !this.decoding && this.allBack()) this.release();
  }

  /** An evaluation of `sequence` returned (or failed). */
  returned(sequence: object): void {
    if (!this.decoding || !this.served.has(sequence)) return;
    // The decode it went in has ended.
    this.decoding = false;
    this.lastDecodeMs = performance.now() - this.sentAt;
    if (this.held) this.wait(this.held);
  }

  /** node-llama-cpp's `dispatchSchedule`: `dispatch` sends the queued evaluations. */
  readonly schedule = (dispatch: () => void): void => {
    const held: Held = {
      go: (): void => {
        this.served = this.asked;
        this.asked = new Set();
        this.decoding = true;
        this.sentAt = performance.now();
        this.dispatches++;
        dispatch();
      },
    };
    this.held = held;
    if (this.decoding) {
      // What is queued while a decode runs goes in the next one anyway: the decision waits for
      // its end (at the latest by twice its usual time, should none of its evaluations return).
      const limit = this.lastDecodeMs > 0 ? this.sentAt + 2 * this.lastDecodeMs - performance.now() : UNKNOWN_DECODE_MS;
      held.timer = setTimeout(() => {
        this.decoding = false;
        this.wait(held);
      }, Math.max(1, limit));
      return;
    }
    this.wait(held);
  };

  /** No decode runs: go once the last one's sequences have asked again, or at the gather's limit. */
  private wait(held: Held): void {
    clearTimeout(held.timer);
    const bound = GATHER_SHARE * this.lastDecodeMs;
    if (this.allBack() || bound < MIN_GATHER_MS) return this.release();
    this.gathers++;
    held.timer = setTimeout(() => this.release(), bound);
  }

  private allBack(): boolean {
    for (const q of this.served) if (!this.asked.has(q)) return false;
    return true;
  }

  private release(): void {
    const held = this.held;
    if (!held) return;
    clearTimeout(held.timer);
    this.held = undefined;
    // As node-llama-cpp's own schedule: the next turn, after whatever queues in this one.
    setImmediate(held.go);
  }
}
