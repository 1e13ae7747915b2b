/**
 * DSI's rules for the frontier (the first undecided position f), each a pure function of
 * what the scheduler sees now. The scheduler (run.ts) asks them, in this order, whenever
 * something changes (a draft, a result, a freed instance, a timer):
 *
 * 1. Frontier rule: when no running or finished task has an output at f (at the start, after
 *    every rejection, when f passes every window in flight), a task goes out on f with the
 *    drafts ready there (up to L, possibly none), unless the slack rule holds it.
 * 2. Slack rule: when that task would take the last free instance and carries fewer than L
 *    drafts while more can come, it waits for a fuller window, but only as long as it still
 *    finishes by the time non-SI would commit f. With one instance this makes DSI do SI's
 *    work with drafting overlapped, without losing the non-SI bound. Where other generations
 *    share the instance's passes, a task that waits may miss the pass starting now and wait
 *    for it first: it keeps the time of two windows. The adaptive lookahead
 *    may turn it off (`patient`): where sending the drafts made during the last task at once
 *    pays more than waiting for a full window.
 * 3. Guard rule: when f is covered only by running windows that the observed costs say will
 *    finish later than a fresh one-token pass would, a free instance takes a one-token task
 *    on f (the windows go on). It never fires with flat costs; costs not yet observed count
 *    as flat.
 * 4. Otherwise the window rule of the queue policy (queue.ts) applies.
 *
 * Costs (runtime/costs.ts): the rules read recent extremes per size on the runtime (the last 16
 * tasks of a size, within the last 256 tasks), not all-time ones, and leave prefill tasks
 * out, so one long prompt, a slow spell or a size not used lately does not stay in them.
 * - Slack: a window sent at `until` must finish by non-SI's commit time of f, so it needs a
 *   lower estimate of non-SI's step (`stepMs`: the quickest recent one-token pass) and an
 *   upper one of the window (`slowestMs(L)`: the slowest recent full window). A recent min
 *   and max follow a change in the safe direction at once (a quicker step, a slower window)
 *   and forget an outlier after 16 tasks of its size. Either unknown: no waiting (DESIGN.md's
 *   frontier rule). On a fresh pool a short prompt's one-token prefill stands in for the step
 *   when it is no slower than any window (flat costs: exactly a step); a long prompt's never.
 * - Guard: compares two upper estimates, the slowest recent of each size (a covering window,
 *   a fresh one-token pass), like against like, so it fires on windows that cost more than
 *   passes and not on noise. For a size not seen lately the quickest recent prefill of that
 *   size stands in (it costs at least such a task: for a window the guard fires sooner, for
 *   the pass later, never on a cost nothing showed).
 *
 * Together: never slower than non-SI (exactly with flat costs, within the cost of what was
 * not observed yet otherwise); with SP >= ceil(target / (L * drafter)) never slower than SI
 * in expectation.
 */
import type { TaskCosts } from "../../runtime/costs.js";
import type { TaskPlan } from "./queue.js";

/** Times closer than this are equal (virtual times are sums of floating-point costs). */
export const TIME_EPSILON_MS = 1e-9;

/** A task in flight or finished but not applied yet, as the rules see it. */
export interface TaskInView {
  start: number;
  drafts: number;
  startedAt: number;
}

/** What the rules see of a generation at one instant. */
export interface FrontierView {
  now: number;
  frontier: number;
  /** Drafts ready at frontier, frontier+1, ... */
  draftsReady: number;
  lookahead: number;
  /** Whether a short frontier task may wait for more drafts (the lookahead policy's say). */
  patient: boolean;
  /** One past the last position worth drafting (see queue.ts). */
  lastDraftable: number;
  /** Instances this generation could take right now. */
  freeInstances: number;
  /**
   * Whether other generations' tasks share the passes of the instance a frontier task goes to
   * (its home, or the spare lease the generation holds; `PoolMember.shared`): one sent after a
   * pass there started waits for that pass first.
   */
  sharedPasses: boolean;
  /**
   * Positions a frontier task may carry (drafts + 1) in passes other generations share where it
   * goes, the spare lease the generation holds or else its home (`PoolMember.room`, `homeRoom`;
   * unbounded where none does): the rules neither plan nor wait for more.
   */
  homeRoom: number;
  /** Tasks evaluating now. */
  running: Iterable<TaskInView>;
  /** Tasks finished whose outputs are not applied yet (the frontier has not reached them). */
  done: Iterable<TaskInView>;
  costs: TaskCosts;
  /** When non-SI would commit position p, by the observed costs; undefined while unknown. */
  nonSiCommitAt(p: number): number | undefined;
}

const covers = (t: TaskInView, p: number): boolean => t.start <= p && p <= t.start + t.drafts;

/** At most `drafts` drafts, and no more than a pass with room for `room` positions carries beside its first (`PoolMember.room`). */
export function draftsFitting(drafts: number, room: number): number {
  return Math.max(0, Math.min(drafts, room - 1));
}

/** Frontier rule: the task on f when nothing covers it; undefined when something does. */
export function frontierRule(v: FrontierView): TaskPlan | undefined {
  for (const t of v.running) if (covers(t, v.frontier)) return undefined;
  for (const t of v.done) if (covers(t, v.frontier)) return undefined;
  return { start: v.frontier, drafts: draftsFitting(Math.min(v.lookahead, v.draftsReady), v.homeRoom), rule: "frontier" };
}

/** Slack rule: until when a short frontier task may wait for more drafts; undefined: go now. */
export function slackRule(v: FrontierView, plan: TaskPlan): number | undefined {
  if (!v.patient || plan.drafts >= draftsFitting(v.lookahead, v.homeRoom) || v.freeInstances !== 1) return undefined;
  if (v.frontier + v.draftsReady >= v.lastDraftable) return undefined; // no more drafts will come
  const window = v.costs.slowestMs(v.lookahead);
  const deadline = v.nonSiCommitAt(v.frontier);
  if (window === undefined || deadline === undefined) return undefined;
  // (Where passes are shared, waiting may miss the one that starts now: another goes first.)
  const until = deadline - window * (v.sharedPasses ? 2 : 1);
  return v.now < until - TIME_EPSILON_MS ? until : undefined;
}

/** Guard rule: a one-token task on f when the windows covering it will finish too late. */
export function guardRule(v: FrontierView): TaskPlan | undefined {
  const single = v.costs.slowestMs(0);
  if (single === undefined) return undefined;
  for (const t of v.done) if (covers(t, v.frontier)) return undefined; // f is decided as soon as it is applied
  let finish = Infinity;
  for (const t of v.running) {
    if (!covers(t, v.frontier)) continue;
    const cost = v.costs.estimateMs(t.drafts);
    if (cost === undefined) return undefined;
    finish = Math.min(finish, t.startedAt + cost);
  }
  return finish > v.now + single + TIME_EPSILON_MS ? { start: v.frontier, drafts: 0, rule: "guard" } : undefined;
}
