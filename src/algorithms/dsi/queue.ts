/**
 * DSI's queue policy, all in one place:
 * - windows go out in position order, each starting where the last one ended (the earliest
 *   window is the one every later window depends on), while instances are free; while all
 *   are busy, the ready windows wait, first in position order;
 * - the drafter runs at most `drafterLeadLimit` drafts ahead of the frontier (none while the
 *   lookahead is 0, one window and the draft past it for a probe), and never drafts
 *   the last position the generation can commit (the target decides that one alone);
 * - on the shared pool, frontier and guard tasks claim an instance as `frontier`, windows as
 *   `window` (frontier claims of any generation are served first);
 * - a new epoch (after a rejection) empties the queue: windows restart at the new frontier;
 * - a window lost with its instance (its worker died) is sent again (`rewind`).
 * Changing the policy means changing this file; the greedy, sampling and virtual-time tests
 * say whether losslessness and the bounds still hold.
 */
import type { Claim } from "../../runtime/pool.js";

/**
 * How far the drafter may run ahead of the frontier: SP windows in flight, one ready, and the
 * draft that the last window's final output decides. Drafts further out could not be verified
 * before those are. None while the lookahead is 0 (plain steps). For a probe of the adaptive
 * lookahead, one window and the draft past it: the frontier task running when the probe is
 * chosen decides the first draft, so a lead of one window alone could leave none to probe
 * with; drafting further would only compete with the targets for the machine.
 */
export function drafterLeadLimit({ lookahead, sp, probing }: { lookahead: number; sp: number; probing: boolean }): number {
  if (lookahead === 0) return 0;
  if (probing) return lookahead + 1;
  return lookahead * (sp + 1) + 1;
}

/** A task the rules want dispatched: verify `drafts` drafts placed at positions start.. */
export interface TaskPlan {
  start: number;
  drafts: number;
  /** Which rule asked for it (the event log marks guard tasks). */
  rule: "frontier" | "guard" | "window";
}

/** The pool claim a task makes: frontier and guard tasks decide the frontier. */
export function claimOf(plan: TaskPlan): Claim {
  return plan.rule === "window" ? "window" : "frontier";
}

export class WindowQueue {
  /** Where the next window starts: just past the last dispatched window. */
  private nextStart: number;

  constructor(frontier: number) {
    this.nextStart = frontier;
  }

  /** A new epoch: windows restart at the new frontier. */
  reset(frontier: number): void {
    this.nextStart = frontier;
  }

  /** A window was lost with its instance: the queue sends windows from `start` again. */
  rewind(start: number): void {
    this.nextStart = Math.min(this.nextStart, start);
  }

  /** Records a dispatched frontier task or window (guard tasks leave the queue as it is). */
  dispatched(plan: TaskPlan): void {
    if (plan.rule !== "guard") this.nextStart = plan.start + plan.drafts;
  }

  /**
   * Window rule: the next window once L drafts are ready past its start, or fewer when the
   * drafter has drafted everything the generation can use; undefined while it is not ready
   * and when L is 0 (the adaptive lookahead found that speculation does not pay).
   * `draftedUpTo` is one past the last drafted position, `lastDraftable` one past the last
   * position worth drafting.
   */
  next(frontier: number, draftedUpTo: number, lookahead: number, lastDraftable: number): TaskPlan | undefined {
    if (lookahead === 0) return undefined; // no windows: frontier tasks alone (non-SI)
    const start = Math.max(this.nextStart, frontier);
    const ready = draftedUpTo - start;
    if (ready >= lookahead) return { start, drafts: lookahead, rule: "window" };
    if (ready > 0 && draftedUpTo >= lastDraftable) return { start, drafts: ready, rule: "window" };
    return undefined;
  }
}
