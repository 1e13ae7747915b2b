/**
 * DSI: speculation parallelism. The drafter drafts continuously; windows of up to L
 * drafts go to free target instances (at most SP at once) while drafting goes on.
 *
 * Scheduling (DESIGN.md, "DSI scheduling"):
 * - Frontier rule: whenever no running or finished-but-unapplied task covers the first
 *   undecided position f (at the start, after every rejection, and whenever the frontier
 *   passes every window in flight), a task goes out on f at once with whatever drafts are
 *   ready there, possibly none. So every position is decided at most one target latency
 *   after it became the frontier: never slower than non-SI.
 * - Guard: when the observed costs say a window covering the frontier will finish later
 *   than a fresh one-token pass (verification cost growing with the window), a free
 *   instance takes a one-token task on the frontier. Never fires with flat costs.
 * - Otherwise a full window of L drafts goes out as soon as it is drafted and an instance
 *   is free. Queue policy: windows wait FIFO in position order while all SP instances are
 *   busy (the earliest window is the one every later window depends on), and the drafter
 *   pauses once it is L*(SP+1)+1 drafts ahead of the frontier (SP windows in flight, one
 *   ready, and the draft that the last window's final output decides), since drafts
 *   further out could not be verified before those are.
 * - Results arrive in any order and are applied in position order: a finished task is
 *   applied when the frontier reaches its window. Its last output decides the first draft
 *   of the next window (early rejection).
 * - A rejection at p commits the corrected token, preempts every task in flight (each one
 *   either covers only decided positions or was conditioned on the rejected draft), drops
 *   all drafts, and restarts drafting from p+1. The same happens when the frontier passes
 *   the drafter (the target decided a position before it was drafted). Tasks that only
 *   cover decided positions are preempted as useless. Preempted work is aborted; a backend
 *   that cannot abort keeps its instance busy until it returns, and the result is dropped.
 */
import { draftFromOutput, type Draft, type PositionOutput } from "../core/verify.js";
import { AbortError, isAbortError } from "../runtime/abort.js";
import type { RunContext } from "./context.js";

interface Task {
  id: number;
  slot: number;
  epoch: number;
  /** First draft position; outputs cover start..start+drafts.length. */
  start: number;
  drafts: Draft[];
  controller: AbortController;
  state: "running" | "done" | "preempted";
  outputs?: PositionOutput[];
  startedAt: number;
}

const end = (t: Task): number => t.start + t.drafts.length;

export async function runDsi(ctx: RunContext): Promise<void> {
  await new DsiRun(ctx).run();
}

class DsiRun {
  /** Committed tokens followed by the current drafts; the first `seq.length` are committed. */
  private readonly work: number[];
  /** Drafts at positions f, f+1, ...; drafts[i].token === work[f + i]. */
  private drafts: Draft[] = [];
  private epoch = 0;
  /** Where the next window starts: just past the last dispatched window. */
  private nextWindowStart: number;
  private readonly busy: boolean[];
  private readonly running = new Set<Task>();
  /** Finished tasks waiting for the frontier to reach their window. */
  private done: Task[] = [];
  private readonly settling = new Set<Promise<unknown>>();
  private taskIds = 0;
  private drafterController: AbortController | undefined;
  private wakeDrafter: (() => void) | undefined;
  private finished = false;
  /** Cost estimates from finished target tasks, for the slack and guard rules. */
  private fastestTaskMs = Infinity;
  private slowestWindowMs = 0;
  /** Slowest observed duration of a task by its number of drafts. */
  private readonly slowestBySize: number[] = [];
  private firstCommitAt: number | undefined;
  private waitTimer: AbortController | undefined;
  private failure: unknown;
  private resolveRun!: () => void;
  private readonly finishedPromise = new Promise<void>((r) => (this.resolveRun = r));

  constructor(private readonly ctx: RunContext) {
    this.work = ctx.seq.slice();
    this.nextWindowStart = ctx.seq.length;
    this.busy = new Array<boolean>(ctx.opts.sp).fill(false);
  }

  private get f(): number {
    return this.ctx.seq.length;
  }

  async run(): Promise<void> {
    const signal = this.ctx.opts.signal;
    const onAbort = (): void => this.fail(new AbortError());
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      if (signal?.aborted) throw new AbortError();
      if (this.ctx.committer.remaining <= 0) return;
      this.pump();
      const drafting = this.draftLoop().catch((err: unknown) => this.fail(err));
      await this.finishedPromise;
      await drafting;
      // Leave no evaluation running behind us: instances are reused by the next request.
      while (this.settling.size > 0) await Promise.all([...this.settling]);
      if (this.failure !== undefined) throw this.failure;
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  // ---- drafter ----

  private async draftLoop(): Promise<void> {
    const { ctx } = this;
    const { rt, opts } = ctx;
    const maxAhead = opts.lookahead * (opts.sp + 1) + 1;
    while (!this.finished) {
      const pos = this.f + this.drafts.length;
      if (this.drafts.length >= maxAhead || pos >= ctx.limitPos) {
        await new Promise<void>((r) => (this.wakeDrafter = r));
        continue;
      }
      const epoch = this.epoch;
      const controller = new AbortController();
      this.drafterController = controller;
      rt.events.emit({ type: "draft-start", pos, epoch });
      let out: PositionOutput;
      try {
        [out] = await rt.drafter.evaluate(ctx.request(this.work.slice(0, pos), pos, "drafter"), controller.signal);
      } catch (err) {
        // Only an abort we asked for is a preemption; any other failure ends the generation.
        if (isAbortError(err) && (controller.signal.aborted || this.finished)) rt.events.emit({ type: "draft-preempt", pos, epoch });
        else this.fail(err);
        continue;
      } finally {
        this.drafterController = undefined;
      }
      if (this.finished) break;
      if (epoch !== this.epoch || pos !== this.f + this.drafts.length) {
        // The backend could not abort; the draft's prefix is gone.
        rt.events.emit({ type: "draft-preempt", pos, epoch });
        continue;
      }
      const draft = draftFromOutput(opts.verify, out, opts.seed, pos);
      ctx.stats.drafted++;
      rt.events.emit({ type: "draft-done", pos, token: draft.token, epoch });
      this.drafts.push(draft);
      this.work.push(draft.token);
      this.pump();
    }
  }

  private notifyDrafter(): void {
    const wake = this.wakeDrafter;
    this.wakeDrafter = undefined;
    wake?.();
  }

  private restartDrafter(): void {
    if (this.drafterController) {
      this.ctx.stats.preemptions++;
      this.drafterController.abort();
    }
    this.notifyDrafter();
  }

  // ---- targets ----

  /** Dispatches every task the rules allow right now. */
  private pump(): void {
    const { opts } = this.ctx;
    while (!this.finished) {
      const slot = this.busy.indexOf(false);
      if (slot < 0) return;
      const f = this.f;
      let start: number;
      let k: number;
      if (!this.covers(f)) {
        start = f;
        k = Math.min(opts.lookahead, this.drafts.length);
        if (k < opts.lookahead && this.busy.filter((b) => !b).length === 1 && f + this.drafts.length < this.ctx.limitPos) {
          const until = this.holdFrontierUntil(f);
          if (until !== undefined && this.ctx.rt.clock.now() < until - 1e-9) {
            this.armWait(until);
            return;
          }
        }
      } else if (this.frontierAtRisk(f)) {
        this.dispatch(slot, f, 0, true);
        continue;
      } else {
        start = Math.max(this.nextWindowStart, f);
        const ready = f + this.drafts.length - start;
        const drafterDone = start + ready >= this.ctx.limitPos;
        if (ready >= opts.lookahead) k = opts.lookahead;
        else if (ready > 0 && drafterDone) k = ready;
        else return;
      }
      this.dispatch(slot, start, k);
    }
  }

  /**
   * The latest time a task on frontier position f may start and still finish no later than
   * non-SI would commit f; undefined while the costs are not known yet.
   */
  private holdFrontierUntil(f: number): number | undefined {
    if (this.firstCommitAt === undefined || this.slowestWindowMs === 0 || !Number.isFinite(this.fastestTaskMs)) return undefined;
    const n = f - this.ctx.opts.prompt.length; // tokens non-SI commits after its first one
    return this.firstCommitAt + n * this.fastestTaskMs - this.slowestWindowMs;
  }

  /**
   * Guard rule: when verification costs grow with the window, a window covering the frontier
   * can finish later than a fresh one-token pass would. If the observed costs say so, a free
   * instance takes a one-token task on the frontier, so the position is still decided at
   * non-SI's pace. With flat costs (the paper's setting) this never fires; costs not yet
   * observed count as flat.
   */
  private frontierAtRisk(f: number): boolean {
    const single = this.slowestBySize[0];
    if (single === undefined) return false;
    let finish = Infinity;
    for (const t of this.done) if (t.start <= f && f <= end(t)) return false;
    for (const t of this.running) {
      if (t.start > f || f > end(t)) continue;
      const cost = this.costOf(t.drafts.length);
      if (cost === undefined) return false;
      finish = Math.min(finish, t.startedAt + cost);
    }
    return finish > this.ctx.rt.clock.now() + single + 1e-9;
  }

  /** Expected duration of a task with k drafts: observed, else linear from the steepest observed size. */
  private costOf(k: number): number | undefined {
    const seen = this.slowestBySize[k];
    if (seen !== undefined) return seen;
    const single = this.slowestBySize[0];
    if (single === undefined) return undefined;
    let slope: number | undefined;
    this.slowestBySize.forEach((ms, j) => {
      if (j > 0 && ms !== undefined) slope = Math.max(slope ?? 0, (ms - single) / j);
    });
    return slope === undefined ? undefined : single + slope * k;
  }

  /** Wakes the dispatcher at `until` (one timer at a time; cancelled by any dispatch). */
  private armWait(until: number): void {
    this.cancelWait();
    const timer = new AbortController();
    this.waitTimer = timer;
    const clock = this.ctx.rt.clock;
    clock.sleep(until - clock.now(), timer.signal).then(
      () => {
        if (this.waitTimer === timer) this.waitTimer = undefined;
        this.pump();
      },
      () => undefined,
    );
  }

  private cancelWait(): void {
    this.waitTimer?.abort();
    this.waitTimer = undefined;
  }

  /** Whether some running or finished task has an output at position p. */
  private covers(p: number): boolean {
    for (const t of this.running) if (t.start <= p && p <= end(t)) return true;
    for (const t of this.done) if (t.start <= p && p <= end(t)) return true;
    return false;
  }

  /** `guard`: an extra one-token frontier task; windows continue where they were. */
  private dispatch(slot: number, start: number, k: number, guard = false): void {
    const { ctx } = this;
    const off = start - this.f;
    const task: Task = {
      id: this.taskIds++,
      slot,
      epoch: this.epoch,
      start,
      drafts: this.drafts.slice(off, off + k),
      controller: new AbortController(),
      state: "running",
      startedAt: ctx.rt.clock.now(),
    };
    this.cancelWait();
    this.busy[slot] = true;
    this.running.add(task);
    if (!guard) this.nextWindowStart = start + k;
    ctx.rt.events.emit({
      type: "dispatch",
      task: task.id,
      instance: slot,
      start,
      drafts: this.work.slice(start, start + k),
      frontier: this.f,
      prefixDrafts: this.work.slice(this.f, start),
      epoch: task.epoch,
      ...(guard ? { guard: true as const } : {}),
    });
    const req = ctx.request(this.work.slice(0, start + k), start, "target");
    // Whatever happens in the handlers (a verifier or backend that throws) fails the
    // generation; `p` itself never rejects.
    const p = ctx
      .verify(ctx.rt.targets[slot], req, task.controller.signal)
      .then(
        (outputs) => this.onTaskDone(task, outputs),
        (err) => this.onTaskFailed(task, err),
      )
      .catch((err: unknown) => this.fail(err));
    this.settling.add(p);
    void p.then(() => this.settling.delete(p));
  }

  private onTaskDone(task: Task, outputs: PositionOutput[]): void {
    this.busy[task.slot] = false;
    if (task.state === "preempted" || this.finished) {
      this.pump(); // soft preemption: the result is dropped, the instance is free again
      return;
    }
    const ms = this.ctx.rt.clock.now() - task.startedAt;
    this.fastestTaskMs = Math.min(this.fastestTaskMs, ms);
    if (task.drafts.length === this.ctx.opts.lookahead) this.slowestWindowMs = Math.max(this.slowestWindowMs, ms);
    this.slowestBySize[task.drafts.length] = Math.max(this.slowestBySize[task.drafts.length] ?? 0, ms);
    task.state = "done";
    task.outputs = outputs;
    this.running.delete(task);
    this.ctx.rt.events.emit({ type: "task-done", task: task.id, instance: task.slot });
    this.done.push(task);
    this.apply();
    this.pump();
  }

  private onTaskFailed(task: Task, err: unknown): void {
    this.busy[task.slot] = false;
    if (task.state === "preempted" && isAbortError(err)) {
      this.pump();
      return;
    }
    this.fail(err);
  }

  private preempt(task: Task, reason: "rejected" | "useless" | "finished"): void {
    if (task.state !== "running") return;
    task.state = "preempted";
    this.running.delete(task);
    this.ctx.stats.preemptions++;
    this.ctx.rt.events.emit({ type: "task-preempt", task: task.id, instance: task.slot, reason });
    task.controller.abort();
  }

  // ---- applying results in position order ----

  private apply(): void {
    const { ctx } = this;
    const { stats } = ctx;
    while (!this.finished) {
      const f = this.f;
      let task: Task | undefined;
      for (const t of this.done) if (t.start <= f && f <= end(t) && (!task || end(t) > end(task))) task = t;
      if (!task) break;
      this.done.splice(this.done.indexOf(task), 1);
      for (let p = f; p <= end(task); p++) {
        const draft = this.drafts[0]; // the draft at p, if drafted; for p < end(task) it is task.drafts[p - start]
        const d = ctx.decide(task.outputs![p - task.start], draft, p);
        if (draft) {
          if (d.accepted) stats.accepted++;
          else stats.rejected++;
        }
        this.firstCommitAt ??= ctx.rt.clock.now();
        if (d.accepted) {
          this.drafts.shift();
          if (ctx.commit(d.token, task.id, this.epoch, "accepted")) return this.finish();
          continue;
        }
        // Rejected, or the target got here before the drafter: new epoch from p+1.
        this.work.length = p;
        this.work.push(d.token);
        if (ctx.commit(d.token, task.id, this.epoch, draft ? "rejected" : "target")) return this.finish();
        this.newEpoch();
        break;
      }
    }
    for (const t of this.running) if (end(t) < this.f) this.preempt(t, "useless");
    this.done = this.done.filter((t) => end(t) >= this.f);
    this.notifyDrafter();
  }

  private newEpoch(): void {
    this.epoch++;
    this.drafts = [];
    this.done = [];
    this.nextWindowStart = this.f;
    for (const t of [...this.running]) this.preempt(t, "rejected");
    this.restartDrafter();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.cancelWait();
    for (const t of [...this.running]) this.preempt(t, "finished");
    this.drafterController?.abort();
    this.notifyDrafter();
    this.resolveRun();
  }

  private fail(err: unknown): void {
    if (this.finished) return;
    this.failure = err;
    this.finish();
  }
}
