/**
 * One modelled instance holding several sequences, in modelled time, as a device that batches
 * them would run them: the passes its sequences ask for while it is idle, in the same instant,
 * go out as one forward pass, and those asked for while a pass runs go out together when it
 * ends (as node-llama-cpp dispatches a context's pending evaluations: llama.ts, SharedContext).
 * A shared pass costs what
 * one pass over all its tokens costs (`passMs` over the summed positions and reads: flat up to
 * the latency's `kneeTokens`, then `perExtraPositionMs` per token), so a batch model decides
 * what batching gains: on a GPU a pass of dozens of tokens costs about one step, on a CPU each
 * token adds ~0.4 of a step.
 *
 * A pass waits a little for the sequences of the pass before it (`gather`): each of them asks
 * again once its generation has read its result. Without it, sequences out of step stayed out
 * of step on a real clock: a request that came a moment after a pass started waited for it and
 * then went alone, while the sequence of that pass, asking again a moment after it ended, waited
 * in turn: passes alternated. Measured through `dsi serve` on the emulated GPU-like pair (4
 * instances x 4 sequences, 8 streams, two generations per instance), non-SI took 75.7 ms per
 * token, two steps.
 *
 * A sequence's call that is aborted while it waits leaves the batch; one aborted while its pass
 * runs returns at once, and the pass runs on for the others (a started decode is not
 * interrupted; its cost stays what its tokens make it), or stops when no one is left to want
 * it (as a modelled instance of one sequence stops at once).
 */
import { abortReason, PREEMPTED } from "../runtime/abort.js";
import { afterThisInstant, type Clock } from "../runtime/clock.js";
import { GATHER_SHARE, Gathering } from "./gathering.js";
import { passMs, type ModelLatency } from "./latency.js";
import type { SharedDevice } from "./shared-device.js";

/** One sequence's share of a pass. */
export interface PassRequest {
  /** Positions it outputs. */
  outputs: number;
  /** Tokens it feeds (its outputs' positions plus what its cache lacked). */
  read: number;
  /** The sequence's first pass (its cost is at least the latency's TTFT). */
  first: boolean;
  /** The sequence asking (an object that stands for it): a pass waits for those of the pass before it. */
  sequence?: object;
  /** The latest its pass should start (the evaluation's call plus `EvalRequest.mayWaitMs`): no pass is held for others past it. */
  startBy?: number;
}

interface Member extends PassRequest {
  startBy: number;
  resolve: () => void;
  reject: (err: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
  /** Its pass stops early when every member has left it. */
  left?: () => void;
}

export class BatchDevice {
  private running = false;
  /** The requests waiting, and the sequences the last pass served, each expected to ask again. */
  private readonly gathering: Gathering<Member>;
  /** Passes run so far, and the sequences' shares they carried (for tests and stats). */
  passes = 0;
  shares = 0;

  constructor(
    private readonly clock: Clock,
    private readonly latency: ModelLatency,
    /** The device the instance shares with the runtime's others (contention), if any. */
    private readonly device?: SharedDevice,
  ) {
    this.gathering = new Gathering(clock);
  }

  /** Modelled duration of one pass carrying `members`. */
  cost(members: readonly PassRequest[]): number {
    const outputs = members.reduce((n, m) => n + m.outputs, 0);
    const read = members.reduce((n, m) => n + Math.max(m.read, m.outputs), 0);
    // A sequence's first pass costs at least its TTFT (warm-up), whatever it shares.
    const first = Math.max(0, ...members.filter((m) => m.first).map((m) => passMs(this.latency, m.outputs, Math.max(m.read, m.outputs), true)));
    return Math.max(passMs(this.latency, outputs, read), first);
  }

  /** Resolves when the pass carrying this request ends; rejects when `signal` aborts first. */
  pass(req: PassRequest, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    return new Promise<void>((resolve, reject) => {
      const m: Member = { ...req, startBy: req.startBy ?? Infinity, resolve, reject, signal };
      this.gathering.enqueue(m, (reason, waiting) => {
        if (!waiting) m.left?.();
        reject(reason);
      });
      if (!this.running) void this.dispatch();
    });
  }

  /**
   * Until every sequence the last pass served has asked again, or `GATHER_SHARE` of a step has
   * gone by (a sequence may not come back: its generation ended, or it waits for drafts), but
   * no longer than any waiting request may wait (`mayWaitMs`): those that come straight back,
   * in the same instant, always join. (Before, a DSI generation at non-SI's pace waited with the
   * others for one that waited for its next draft: each pass started a drafter step late, and
   * its commits fell behind non-SI's by that much per step.)
   */
  private async gather(): Promise<void> {
    const bound = GATHER_SHARE * this.latency.tpotMs;
    if (this.gathering.back() || !(bound > 0)) return;
    const end = this.clock.now() + bound;
    await afterThisInstant(this.clock);
    await this.gathering.wait(() => Math.min(end, this.gathering.startBy()));
  }

  /** Runs passes while requests wait: each takes every request waiting when it starts. */
  private async dispatch(): Promise<void> {
    this.running = true;
    try {
      // Requests of the same instant join the first pass.
      await afterThisInstant(this.clock);
      while (this.gathering.size > 0) {
        await this.gather();
        // (Everyone waiting may have left meanwhile: no pass for no one.)
        if (this.gathering.size === 0) break;
        const batch = this.gathering.take();
        this.passes++;
        this.shares += batch.length;
        const ms = this.cost(batch);
        const unwanted = new AbortController();
        let staying = batch.length;
        for (const m of batch) m.left = () => --staying === 0 && unwanted.abort(PREEMPTED);
        let failed: { err: unknown } | undefined;
        try {
          await (this.device ? this.device.run(ms, unwanted.signal) : this.clock.sleep(ms, unwanted.signal));
        } catch (err) {
          if (!unwanted.signal.aborted) failed = { err };
        }
        const served: object[] = [];
        for (const m of batch) {
          this.gathering.settled(m);
          if (m.signal?.aborted) continue;
          if (failed) m.reject(failed.err);
          else {
            m.resolve();
            if (m.sequence) served.push(m.sequence);
          }
        }
        this.gathering.passed(served);
      }
    } catch (err) {
      // (The clock failed before a pass: whoever waits hears it rather than waiting forever.)
      for (const m of this.gathering.take()) {
        this.gathering.settled(m);
        m.reject(err);
      }
    } finally {
      this.running = false;
    }
  }
}
