/**
 * DSI: speculation parallelism. The drafter drafts continuously; windows of up to L drafts go
 * to target instances leased from the shared pool (at most SP, the pool's size) while
 * drafting goes on. This file is the machinery; what to dispatch and when is decided by the
 * named rules (rules.ts: frontier, slack, guard) and the queue policy (queue.ts: windows,
 * drafter lead, pool claims).
 *
 * Life cycle of a generation:
 * - `pump()` runs whenever something changes (a draft, a result, a freed instance, a slack
 *   timer) and dispatches every task the rules allow, one lease per task.
 * - Results arrive in any order and are applied in position order (`apply()`): a finished
 *   task is applied when the frontier reaches its window. Its last output decides the first
 *   draft of the next window (early rejection).
 * - Epochs: a rejection at p commits the corrected token and opens a new epoch: every task in
 *   flight is preempted (each one either covers only decided positions or was conditioned on
 *   the rejected draft), all drafts are dropped, and drafting restarts from p+1. The same
 *   happens when the frontier passes the drafter (the target decided a position before it was
 *   drafted). A task remembers its epoch; a result from an older epoch is never applied.
 * - Preempted work is aborted; a backend that cannot abort keeps its instance leased until it
 *   returns (soft preemption), and the result is dropped.
 */
import { InstanceLostError, TokenView } from "../../core/instance.js";
import type { Draft, PositionOutput } from "../../core/verify.js";
import { AbortError, isAbortError, PREEMPTED } from "../../runtime/abort.js";
import type { Claim, Lease } from "../../runtime/pool.js";
import type { RunContext } from "../context.js";
import type { LookaheadDecision } from "../lookahead.js";
import { claimOf, drafterLeadLimit, WindowQueue, type TaskPlan } from "./queue.js";
import { draftsFitting, frontierRule, guardRule, slackRule, type FrontierView, type TaskInView } from "./rules.js";

interface Task extends TaskInView {
  id: number;
  lease: Lease;
  epoch: number;
  controller: AbortController;
  /** Running (in `running`), done (its outputs wait in `done` until applied), or preempted. */
  state: "running" | "done" | "preempted";
  outputs?: PositionOutput[];
}

const end = (t: Task): number => t.start + t.drafts;

export async function runDsi(ctx: RunContext): Promise<void> {
  await new DsiRun(ctx).run();
}

class DsiRun {
  /** Drafts at positions f, f+1, ... of the current epoch. */
  private drafts: Draft[] = [];
  private epoch = 0;
  private readonly queue: WindowQueue;
  private readonly running = new Set<Task>();
  /** Finished tasks waiting for the frontier to reach their window. */
  private done: Task[] = [];
  private readonly settling = new Set<Promise<unknown>>();
  private taskIds = 0;
  /** Aborts the drafter's evaluations of the current epoch; replaced once used. */
  private drafterController = new AbortController();
  /** Whether the drafter is evaluating now. */
  private drafting = false;
  private wakeDrafter: (() => void) | undefined;
  private finished = false;
  private firstCommitAt: number | undefined;
  private slackTimer: AbortController | undefined;
  /** A lease the pool handed over after a wait, not used yet. */
  private spareLease: Lease | undefined;
  /** The claim waiting in the pool, if any. */
  private claim: { kind: Claim; controller: AbortController } | undefined;
  private failure: unknown;
  private resolveRun!: () => void;
  private readonly finishedPromise = new Promise<void>((r) => (this.resolveRun = r));
  /** What the rules see, refreshed in place before each question (`view`): pump runs often. */
  private readonly frontierView: FrontierView;
  /** The controller's decision the view was made with: committed when a task goes out. */
  private viewDecision: LookaheadDecision | undefined;

  constructor(private readonly ctx: RunContext) {
    this.queue = new WindowQueue(ctx.seq.length);
    this.frontierView = {
      now: 0,
      frontier: 0,
      draftsReady: 0,
      lookahead: 0,
      patient: true,
      lastDraftable: 0,
      freeInstances: 0,
      sharedPasses: false,
      homeRoom: Infinity,
      running: this.running,
      done: this.done,
      costs: ctx.rt.learned.costs,
      nonSiCommitAt: (p) => this.nonSiCommitAt(p),
    };
  }

  /**
   * The lookahead controller's decision for a task dispatched now (fixed, or its choice given
   * the instances this generation can use now: those it holds, preempted tasks' included, as
   * they come back at once, and the free ones it may take). Side-effect free: the decision is
   * committed in `dispatch`, with the task it went out with.
   */
  private decision(): LookaheadDecision {
    const instances = Math.min(this.ctx.opts.sp, this.ctx.member.leases + this.ctx.member.available());
    return this.ctx.lookahead.plan(Math.max(1, instances));
  }

  /** How far the drafter may run ahead of the frontier (queue.ts). */
  private get leadLimit(): number {
    const { lookahead, probing } = this.decision();
    return drafterLeadLimit({ lookahead, sp: this.ctx.opts.sp, probing });
  }

  private get f(): number {
    return this.ctx.seq.length;
  }

  /** The drafter is gone (InstanceLostError): no more drafts; the frontier rule alone is non-SI. */
  private drafterLost = false;

  /**
   * Where prompt lookup (alone) last found nothing to draft: the frontier, the epoch and the
   * drafts then. Until one of them changes no draft will come, so the rules do not wait for one.
   */
  private noMatch: { f: number; epoch: number; drafts: number } | undefined;

  private get stalled(): boolean {
    const n = this.noMatch;
    return n !== undefined && n.f === this.f && n.epoch === this.epoch && n.drafts === this.drafts.length;
  }

  /** One past the last position worth drafting (see queue.ts); without a drafter (or a match), what is drafted. */
  private get lastDraftable(): number {
    return this.drafterLost || this.stalled ? this.f + this.drafts.length : this.ctx.limitPos - 1;
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
      // Leave no evaluation running behind us: instances go back to the pool settled.
      while (this.settling.size > 0) await Promise.all([...this.settling]);
      if (this.failure !== undefined) throw this.failure;
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  // ---- drafter ----

  private draftTokens(n = this.drafts.length): number[] {
    return this.drafts.slice(0, n).map((d) => d.token);
  }

  private async draftLoop(): Promise<void> {
    const { ctx } = this;
    const { rt } = ctx;
    while (!this.finished) {
      const pos = this.f + this.drafts.length;
      if (this.drafts.length >= this.leadLimit || pos >= this.lastDraftable || this.stalled) {
        await new Promise<void>((r) => (this.wakeDrafter = r));
        continue;
      }
      const epoch = this.epoch;
      if (this.drafterController.signal.aborted) this.drafterController = new AbortController();
      const controller = this.drafterController;
      this.drafting = true;
      let draft: Draft | undefined;
      try {
        draft = await ctx.nextDraft(ctx.view(this.draftTokens()), pos, controller.signal, () => rt.events.emit({ type: "draft-start", pos, epoch }));
      } catch (err) {
        // Only an abort we asked for is a preemption. A lost drafter ends drafting, not the
        // generation (the target alone decides every position); any other failure ends it.
        if (isAbortError(err) && (controller.signal.aborted || this.finished)) rt.events.emit({ type: "draft-preempt", pos, epoch });
        else if (err instanceof InstanceLostError) {
          rt.events.emit({ type: "drafter-lost", error: err.message });
          this.drafterLost = true;
          this.pump();
          return;
        } else this.fail(err);
        continue;
      } finally {
        this.drafting = false;
      }
      if (this.finished) break;
      if (epoch !== this.epoch || pos !== this.f + this.drafts.length) {
        // The backend could not abort; the draft's prefix is gone.
        rt.events.emit({ type: "draft-preempt", pos, epoch });
        continue;
      }
      if (!draft) {
        // Prompt lookup found no match: nothing to draft until the context changes.
        this.noMatch = { f: this.f, epoch, drafts: this.drafts.length };
        this.pump();
        continue;
      }
      rt.events.emit({ type: "draft-done", pos, token: draft.token, epoch, source: draft.source ?? "model" });
      this.drafts.push(draft);
      this.pump();
    }
  }

  private notifyDrafter(): void {
    const wake = this.wakeDrafter;
    this.wakeDrafter = undefined;
    wake?.();
  }

  private restartDrafter(): void {
    if (this.drafting) {
      this.ctx.stats.preemptions++;
      this.drafterController.abort(PREEMPTED);
    }
    this.notifyDrafter();
  }

  // ---- scheduling ----

  private view(): FrontierView {
    const v = this.frontierView;
    v.now = this.ctx.rt.clock.now();
    v.frontier = this.f;
    v.draftsReady = this.drafts.length;
    const decision = this.decision();
    this.viewDecision = decision;
    v.lookahead = decision.lookahead;
    v.patient = decision.patient;
    v.lastDraftable = this.lastDraftable;
    // (Only the slack rule reads it, for a frontier task, which any spare lease suits. Before, a
    // spare lease counted only where a window could use it: a generation whose home it shares
    // with another's had "no free instance", never waited for drafts and made plain steps.)
    v.freeInstances = this.ctx.member.available() + (this.spareLease ? 1 : 0);
    // (A frontier task goes on the spare lease where one is held, else home. But where the
    // slack rule waits, the spare goes back and the task goes later, home most likely: its
    // passes count as shared if they are there or at home. Before, only home was read; the
    // virtual-time figures did not move.)
    v.sharedPasses = this.ctx.member.homeShared() || (this.spareLease !== undefined && this.ctx.member.shared(this.spareLease));
    v.homeRoom = this.spareLease ? this.ctx.member.room(this.spareLease) : this.ctx.member.homeRoom();
    v.done = this.done; // replaced, not changed in place, by apply and newEpoch
    return v;
  }

  /**
   * How long a task's pass may wait before it starts for its first output to commit no later
   * than non-SI would (`EvalRequest.mayWaitMs`): the pass's quickest recent cost before
   * non-SI's commit; 0 while either estimate is unknown.
   */
  private mayWaitMs(plan: TaskPlan): number {
    const commitBy = this.nonSiCommitAt(plan.start);
    const cost = this.ctx.rt.learned.costs.quickestMs(plan.drafts) ?? this.ctx.rt.learned.costs.slowestMs(plan.drafts);
    return commitBy !== undefined && cost !== undefined ? Math.max(0, commitBy - cost - this.ctx.rt.clock.now()) : 0;
  }

  /**
   * When non-SI would commit position p, at the earliest: one quickest recent one-token pass
   * per token after the first commit (or after the start, before it). Undefined while no
   * one-token pass has been observed lately (rules.ts says why a lower estimate).
   */
  private nonSiCommitAt(p: number): number | undefined {
    const fastest = this.ctx.rt.learned.costs.stepMs();
    if (fastest === undefined) return undefined;
    const n = p - this.ctx.opts.prompt.length; // tokens non-SI commits before p
    return this.firstCommitAt !== undefined ? this.firstCommitAt + n * fastest : this.ctx.startedAt + (n + 1) * fastest;
  }

  /** The next task the rules want, a time to wait for (slack rule), or nothing. */
  private nextTask(): TaskPlan | number | undefined {
    const v = this.view();
    const frontier = frontierRule(v);
    if (frontier) return slackRule(v, frontier) ?? frontier;
    return guardRule(v) ?? this.queue.next(v.frontier, v.frontier + v.draftsReady, v.lookahead, v.lastDraftable);
  }

  /** Dispatches every task the rules allow right now. */
  private pump(): void {
    while (!this.finished) {
      const next = this.nextTask();
      if (next === undefined) break;
      if (typeof next === "number") {
        this.armSlackTimer(next);
        break;
      }
      const lease = this.lease(claimOf(next));
      if (!lease) return; // a claim waits in the pool; pump runs again when it is served
      this.dispatch(lease, next);
    }
    // Nothing to run on a lease the pool handed over: give it back for others.
    const spare = this.spareLease;
    this.spareLease = undefined;
    spare?.release();
  }

  /** A lease at once (a spare one, or a free instance), or undefined after placing a claim. */
  private lease(kind: Claim): Lease | undefined {
    const spare = this.spareLease;
    const member = this.ctx.member;
    if (spare) {
      this.spareLease = undefined;
      if (member.suits(spare, kind)) return spare;
      // (Granted for a frontier task, it lies beside another generation's: no window goes there.)
      spare.release();
    }
    const now = this.claim ? undefined : member.tryAcquire(kind);
    if (now) return now;
    if (this.claim && (this.claim.kind === kind || this.claim.kind === "frontier")) return undefined;
    // No claim yet, or a window claim that now has to decide the frontier: claim anew.
    this.claim?.controller.abort(PREEMPTED);
    const claim = { kind, controller: new AbortController() };
    this.claim = claim;
    member.acquire(kind, claim.controller.signal).then(
      (lease) => {
        if (this.claim === claim) this.claim = undefined;
        if (this.finished) return lease.release();
        this.spareLease = lease;
        this.pump();
      },
      (err: unknown) => {
        if (this.claim === claim) this.claim = undefined;
        if (!isAbortError(err)) this.fail(err);
      },
    );
    return undefined;
  }

  /** Wakes the dispatcher at `until` (one timer at a time; cancelled by any dispatch). */
  private armSlackTimer(until: number): void {
    this.cancelSlackTimer();
    const timer = new AbortController();
    this.slackTimer = timer;
    const clock = this.ctx.rt.clock;
    clock.sleep(until - clock.now(), timer.signal).then(
      () => {
        if (this.slackTimer === timer) this.slackTimer = undefined;
        this.pump();
      },
      () => undefined,
    );
  }

  private cancelSlackTimer(): void {
    this.slackTimer?.abort(PREEMPTED);
    this.slackTimer = undefined;
  }

  private dispatch(lease: Lease, wanted: TaskPlan): void {
    const { ctx } = this;
    // (Drafts only where they fit a pass other generations share: `PoolMember.room`.)
    const plan = { ...wanted, drafts: draftsFitting(wanted.drafts, ctx.member.room(lease)) };
    const off = plan.start - this.f;
    const task: Task = {
      id: this.taskIds++,
      lease,
      epoch: this.epoch,
      start: plan.start,
      drafts: plan.drafts,
      controller: new AbortController(),
      state: "running",
      startedAt: ctx.rt.clock.now(),
    };
    this.cancelSlackTimer();
    this.running.add(task);
    this.queue.dispatched(plan);
    ctx.lookahead.commit(this.viewDecision ?? this.decision(), plan.drafts);
    const tokens = this.draftTokens(off + plan.drafts);
    ctx.rt.events.emit({
      type: "dispatch",
      task: task.id,
      instance: lease.index,
      start: plan.start,
      drafts: tokens.slice(off),
      frontier: this.f,
      prefixDrafts: tokens.slice(0, off),
      epoch: task.epoch,
      ...(plan.rule === "guard" ? { guard: true as const } : {}),
    });
    const req = ctx.request(new TokenView(ctx.seq, this.f, tokens), plan.start, "target");
    req.mayWaitMs = this.mayWaitMs(plan);
    // Whatever happens in the handlers (a verifier or backend that throws) fails the
    // generation; `p` itself never rejects.
    const p = ctx
      .verify(lease, req, task.controller.signal)
      .then(
        (outputs) => this.onTaskDone(task, outputs),
        (err) => this.onTaskFailed(task, err),
      )
      .catch((err: unknown) => this.fail(err));
    this.settling.add(p);
    void p.then(() => this.settling.delete(p));
  }

  private onTaskDone(task: Task, outputs: PositionOutput[]): void {
    task.lease.release();
    if (task.state === "preempted" || task.epoch !== this.epoch || this.finished) {
      this.pump(); // soft preemption: the result is dropped, the instance is free again
      return;
    }
    task.state = "done";
    task.outputs = outputs;
    this.running.delete(task);
    this.ctx.rt.events.emit({ type: "task-done", task: task.id, instance: task.lease.index });
    this.done.push(task);
    this.apply();
    this.pump();
  }

  private onTaskFailed(task: Task, err: unknown): void {
    if (err instanceof InstanceLostError) {
      // The instance is gone: retire it; the task's positions are uncovered again, so the
      // rules dispatch that work to another instance (the frontier rule at the latest).
      this.ctx.rt.events.emit({ type: "task-lost", task: task.id, instance: task.lease.index, error: err.message });
      task.lease.retire(err.message);
      if (task.state === "running") {
        task.state = "preempted";
        this.running.delete(task);
        this.queue.rewind(task.start);
      }
      this.pump();
      return;
    }
    task.lease.release();
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
    this.ctx.rt.events.emit({ type: "task-preempt", task: task.id, instance: task.lease.index, reason });
    task.controller.abort(PREEMPTED);
  }

  // ---- applying results in position order ----

  private apply(): void {
    const { ctx } = this;
    while (!this.finished) {
      const f = this.f;
      let task: Task | undefined;
      for (const t of this.done) {
        if (t.epoch === this.epoch && t.start <= f && f <= end(t) && (!task || end(t) > end(task))) task = t;
      }
      if (!task) break;
      this.done.splice(this.done.indexOf(task), 1);
      for (let p = f; p <= end(task); p++) {
        const draft = this.drafts[0]; // the draft at p, if drafted (before end(task): one the task verified)
        const d = ctx.decide(task.outputs![p - task.start], draft, p);
        if (draft) ctx.decided(p - task.start, d.accepted, draft.source);
        this.firstCommitAt ??= ctx.rt.clock.now();
        if (d.accepted) {
          this.drafts.shift();
          if (ctx.commit(d.token, task.id, this.epoch, "accepted")) return this.finish();
          continue;
        }
        // Rejected, or the target got here before the drafter: new epoch from p+1.
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
    this.queue.reset(this.f);
    for (const t of [...this.running]) this.preempt(t, "rejected");
    this.restartDrafter();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.cancelSlackTimer();
    this.claim?.controller.abort(PREEMPTED);
    const spare = this.spareLease;
    this.spareLease = undefined;
    spare?.release();
    for (const t of [...this.running]) this.preempt(t, "finished");
    this.drafterController.abort(PREEMPTED);
    this.notifyDrafter();
    this.resolveRun();
  }

  private fail(err: unknown): void {
    if (this.finished) return;
    this.failure = err;
    this.finish();
  }
}
