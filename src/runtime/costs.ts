/**
 * Observed costs: target tasks by the number of drafts they verified, and drafter steps. The
 * runtime owns one (`Runtime.learned`), so what one generation learned about the instances
 * serves the next from its first token (DSI's slack and guard rules and the adaptive lookahead read it).
 * Prefill tasks (an instance's first read of a generation's context) cost what the context's
 * length makes them cost, not what a step costs: they are kept out of the means and of the
 * rules' estimates, where they only stand in for a size not seen lately, in the direction
 * that keeps the rules' bounds (see each estimate). The means are kept per condition
 * (`Condition`: alone, or beside the drafter or another task), because on a shared device the
 * condition, as much as the window's size, decides what a task costs.
 *
 * The rules' estimates are recent extremes, not all-time ones: the quickest or slowest of the
 * last `RECENT_TASKS` tasks of a size. A recent min (max) follows a change in the safe
 * direction at once (a quicker step, a slower window) and forgets an outlier (a slow spell,
 * a misclassified task) after `RECENT_TASKS` tasks of its size, or `RECENT_HORIZON` tasks of
 * any size: on a long-running runtime nothing that happened once decides the rules for good.
 *
 * Past the process (models/learned-store.ts), only the means and the acceptance are kept
 * (`snapshotLearned`), and restored as a prior (`learnedFromSnapshot`): the recent extremes
 * the rules read are this process's own.
 */

/**
 * Weight of a new observation in the running means: the last few observations dominate, so
 * the means follow a machine that gets busier or quieter within a handful of tasks.
 */
const MEAN_WEIGHT = 0.25;

/** The bounds per size read the last this many tasks of that size... */
export const RECENT_TASKS = 16;
/** ...seen within the last this many tasks of any size (a size not used lately is unknown again). */
export const RECENT_HORIZON = 256;

/**
 * Weight of the first fresh observation against a restored mean (`TaskCosts.restore`): the
 * restored figure counts as one observation, then fades like any older one (below 10% of the
 * mean after 8 fresh observations), so a machine that changed since is followed at once.
 */
const RESTORED_MEAN_WEIGHT = 0.5;

/** A running mean that follows recent values (exponentially weighted). */
export class RunningMean {
  value: number | undefined;
  /** Whether `value` was restored and not observed since. */
  private restored = false;
  observe(x: number): void {
    const w = this.value === undefined ? 1 : this.restored ? RESTORED_MEAN_WEIGHT : MEAN_WEIGHT;
    this.value = this.value === undefined ? x : this.value + w * (x - this.value);
    this.restored = false;
  }
  restore(x: number | null): void {
    this.value = x ?? undefined;
    this.restored = x !== null;
  }
}

/** The last `RECENT_TASKS` durations of one size, each with its stamp (tasks observed when it was seen). */
class Recent {
  private readonly ms: number[] = [];
  private readonly at: number[] = [];
  private next = 0;
  observe(ms: number, at: number): void {
    this.ms[this.next] = ms;
    this.at[this.next] = at;
    this.next = (this.next + 1) % RECENT_TASKS;
  }
  /** The smallest (`sign` 1) or largest (`sign` -1) duration stamped after `since`; undefined if none. */
  extreme(since: number, sign: 1 | -1): number | undefined {
    let best: number | undefined;
    this.ms.forEach((ms, i) => {
      if (this.at[i] > since && (best === undefined || sign * ms < sign * best)) best = ms;
    });
    return best;
  }
}

/**
 * Where a task ran: `alone` (nothing else of the runtime ran beside it: on a shared CPU, at
 * full speed) or `beside` something (the drafter, another target task). On instances that
 * share a device the two differ (a 6-token window on a 2-core CPU: 18 ms alone, 46 ms beside
 * the drafter); on separate devices they agree. SI's tasks run alone, DSI's windows beside the
 * drafter and each other: each plan reads the costs of the condition its tasks run in.
 */
export type Condition = "alone" | "beside";

export class TaskCosts {
  /** Recent durations per number of drafts (prefill kept out): what DSI's slack and guard rules read. */
  private readonly recentBySize: Recent[] = [];
  /** Recent prefill tasks per number of drafts: an upper estimate where no other task was seen lately. */
  private readonly prefillBySize: Recent[] = [];
  /** Recent mean duration per number of drafts, by condition (alone[0]: what a non-SI step costs). */
  private readonly means: Record<Condition, RunningMean[]> = { alone: [], beside: [] };
  /** Tasks observed (prefill kept out), and how many there were when a one-token task last ran alone. */
  private tasks = 0;
  private soloAt = 0;
  /** Every task observed, prefill included: the clock of `RECENT_HORIZON`. */
  private stamp = 0;
  private readonly drafter: Record<Condition, RunningMean> = { alone: new RunningMean(), beside: new RunningMean() };
  /** Recent mean of the other sequences' tasks that shared a task's instance (prefill kept out): the load. */
  private readonly sharing = new RunningMean();
  /** Changes with every observation (readers cache what they derive from the costs). */
  version = 0;

  /**
   * Records a task with `drafts` drafts that took `ms`. `kind`: `prefill` when the instance
   * first read the generation's context (a prompt's worth of positions: kept out of the
   * means and of the rules' estimates, where it only stands in for a size not seen lately),
   * else the condition it ran in (`alone`: nothing else of the runtime ran beside it).
   * `sharers`: tasks of other sequences that shared the instance's compute meanwhile (a
   * batching device's pass, or a llama context's turns): each waited for this task's tokens.
   */
  observe(drafts: number, ms: number, kind: "prefill" | Condition = "beside", sharers = 0): void {
    this.version++;
    this.stamp++;
    if (kind === "prefill") {
      (this.prefillBySize[drafts] ??= new Recent()).observe(ms, this.stamp);
      return;
    }
    this.tasks++;
    this.sharing.observe(sharers);
    (this.means[kind][drafts] ??= new RunningMean()).observe(ms);
    (this.recentBySize[drafts] ??= new Recent()).observe(ms, this.stamp);
    if (kind === "alone" && drafts === 0) this.soloAt = this.tasks;
  }

  /** Records one drafter step (one drafted position, not a prefill) that took `ms`, alone or beside a target task. */
  observeDraft(ms: number, where: Condition = "alone"): void {
    this.version++;
    this.drafter[where].observe(ms);
  }

  /**
   * The quickest of the recent tasks with exactly `drafts` drafts (the last `RECENT_TASKS` of
   * that size within the last `RECENT_HORIZON` tasks), prefill kept out; undefined if none.
   */
  quickestMs(drafts: number): number | undefined {
    return this.recentBySize[drafts]?.extreme(this.stamp - RECENT_HORIZON, 1);
  }

  /**
   * A lower estimate of non-SI's step now (the slack rule's deadline): the quickest recent
   * one-token pass. Before one was seen lately (a fresh runtime: every first task of a generation
   * on an instance is a prefill), the quickest recent one-token prefill, if it was no slower
   * than every recent task of any size: with flat costs a step exactly, else off by at most
   * what a window costs more than a step (as the rules allow for what was not observed yet).
   * A long prompt's prefill costs more than a window and never stands in.
   */
  stepMs(): number | undefined {
    const step = this.quickestMs(0);
    if (step !== undefined) return step;
    const since = this.stamp - RECENT_HORIZON;
    const prefill = this.prefillBySize[0]?.extreme(since, 1);
    if (prefill === undefined) return undefined;
    let quickest: number | undefined;
    for (const r of this.recentBySize) {
      const ms = r?.extreme(since, 1);
      if (ms !== undefined) quickest = Math.min(quickest ?? ms, ms);
    }
    // (Within rounding: durations are differences of clock readings.)
    return quickest !== undefined && prefill <= quickest * (1 + 1e-9) ? prefill : undefined;
  }

  /**
   * An upper estimate of a task with `drafts` drafts now: the slowest of the recent ones (as
   * `quickestMs`), else the quickest recent prefill task of that size (it read at least what
   * such a task reads: a short prompt's costs about as much, a long one's only more); undefined
   * if neither was seen lately.
   */
  slowestMs(drafts: number): number | undefined {
    const since = this.stamp - RECENT_HORIZON;
    return this.recentBySize[drafts]?.extreme(since, -1) ?? this.prefillBySize[drafts]?.extreme(since, 1);
  }

  /** The recent mean duration of tasks with exactly `drafts` drafts that ran `where`; undefined if none was seen. */
  meanMs(drafts: number, where: Condition): number | undefined {
    return this.means[where][drafts]?.value;
  }

  /** The recent mean duration of one-token tasks that ran alone (non-SI's step); undefined before any. */
  soloMs(): number | undefined {
    return this.meanMs(0, "alone");
  }

  /**
   * The load: how many other sequences' tasks recently shared a task's instance (0 before any
   * task, and on instances of one sequence). Each of them pays for the tokens a task adds to
   * the instance's work, which is what the adaptive lookahead charges a window for under load.
   * Not kept past the process: a load is this process's own.
   */
  sharers(): number {
    return this.sharing.value ?? 0;
  }

  /** Tasks observed since a one-token task last ran alone (how stale `soloMs` is). */
  tasksSinceSolo(): number {
    return this.tasks - this.soloAt;
  }

  /** The recent mean duration of one drafter step that ran `where`; undefined before any. */
  drafterMs(where: Condition): number | undefined {
    return this.drafter[where].value;
  }

  /** The means (per condition and size, drafter step) as plain JSON. */
  snapshot(): CostsSnapshot {
    const table = (means: RunningMean[]): (number | null)[] => Array.from({ length: means.length }, (_, k) => means[k]?.value ?? null);
    return {
      aloneMsByDrafts: table(this.means.alone),
      besideMsByDrafts: table(this.means.beside),
      drafterAloneMs: this.drafter.alone.value ?? null,
      drafterBesideMs: this.drafter.beside.value ?? null,
    };
  }

  /**
   * Starts from an earlier process's means, as a prior (`RESTORED_MEAN_WEIGHT`). Only the
   * means: the rules' recent extremes stay empty (a mean is no bound; each generation's first
   * tasks fill them), and the plain step counts as fresh (`tasksSinceSolo` 0).
   */
  restore(s: CostsSnapshot): void {
    this.version++;
    const fill = (means: RunningMean[], table: (number | null)[]): void =>
      table.forEach((ms, k) => {
        if (ms !== null) (means[k] ??= new RunningMean()).restore(ms);
      });
    fill(this.means.alone, s.aloneMsByDrafts);
    fill(this.means.beside, s.besideMsByDrafts);
    this.soloAt = this.tasks;
    this.drafter.alone.restore(s.drafterAloneMs);
    this.drafter.beside.restore(s.drafterBesideMs);
  }

  /**
   * Expected (pessimistic) duration of a task with `drafts` drafts: `slowestMs` of that size,
   * else linear from the one-token cost with the steepest slope seen lately; undefined while
   * neither a one-token task nor a larger one has been seen lately.
   */
  estimateMs(drafts: number): number | undefined {
    const seen = this.slowestMs(drafts);
    if (seen !== undefined) return seen;
    const single = this.slowestMs(0);
    if (single === undefined) return undefined;
    let slope: number | undefined;
    const sizes = Math.max(this.recentBySize.length, this.prefillBySize.length);
    for (let k = 1; k < sizes; k++) {
      const ms = this.slowestMs(k);
      if (ms !== undefined) slope = Math.max(slope ?? 0, (ms - single) / k);
    }
    return slope === undefined ? undefined : single + slope * drafts;
  }
}

/**
 * Decided drafts as discounted counts: each new one counts 1, and every earlier one `discount`
 * times less per draft decided since (the last ~1/(1-discount) drafts make the rate).
 */
export class DiscountedCounts {
  accepted = 0;
  decided = 0;
  constructor(private readonly discount: number) {}

  observe(accepted: boolean): void {
    this.accepted = this.accepted * this.discount + (accepted ? 1 : 0);
    this.decided = this.decided * this.discount + 1;
  }

  /** Keeps only `share` of the evidence (the rate stays, its weight shrinks). */
  fade(share: number): void {
    this.accepted *= share;
    this.decided *= share;
  }

  /** Takes over another's counts (keeping this one's discount). */
  restartFrom(other: DiscountedCounts): void {
    this.accepted = other.accepted;
    this.decided = other.decided;
  }
}

/** Drafts' worth of evidence a restored acceptance keeps (`AcceptanceMemory.restore`). */
export const RESTORED_DRAFTS = 10;

/**
 * The acceptance of drafts seen on this runtime, over many windows (discount 0.99 per draft):
 * each generation's own estimate starts from it, so a generation does not learn from nothing
 * what the previous ones already saw of this drafter and target.
 */
export class AcceptanceMemory {
  private readonly counts = new DiscountedCounts(0.99);

  observe(accepted: boolean): void {
    this.counts.observe(accepted);
  }

  /** The discounted counts as plain JSON. */
  snapshot(): { accepted: number; decided: number } {
    return { accepted: this.counts.accepted, decided: this.counts.decided };
  }

  /**
   * Starts from an earlier process's counts, weighing at most `RESTORED_DRAFTS` drafts: the
   * rate stays, and the fresh drafts of this process decide it after a few windows.
   */
  restore(s: { accepted: number; decided: number }): void {
    const share = s.decided > RESTORED_DRAFTS ? RESTORED_DRAFTS / s.decided : 1;
    this.counts.accepted = s.accepted * share;
    this.counts.decided = s.decided * share;
  }

  /** The long-run acceptance (with one draft's worth of 0.5 as its own prior); undefined before any draft was decided. */
  rate(): number | undefined {
    const { accepted, decided } = this.counts;
    return decided > 0 ? (accepted + 0.5) / (decided + 1) : undefined;
  }
}

/**
 * What generations learn about a runtime's instances: task costs and acceptance. The runtime
 * owns it (`Runtime.learned`); a runtime built over the same instances as an earlier one may
 * start from the earlier one's (`RuntimeParts.learned`), so the adaptive lookahead needs no
 * cold start for each.
 */
export interface Learned {
  costs: TaskCosts;
  /** The drafter model's drafts. */
  acceptance: AcceptanceMemory;
  /**
   * Prompt lookup's proposals, measured on committed positions (shadow evaluation): how much
   * the recent outputs copied their contexts. A workload's, not the models', so it is a weaker
   * prior; still the best guess for the next request of a server that summarises or edits.
   */
  lookupAcceptance: AcceptanceMemory;
}

export function newLearned(): Learned {
  return { costs: new TaskCosts(), acceptance: new AcceptanceMemory(), lookupAcceptance: new AcceptanceMemory() };
}

/** `TaskCosts.snapshot`: recent means in milliseconds, null where none was seen. */
export interface CostsSnapshot {
  /** Target tasks that ran alone, per number of drafts verified (index 0: non-SI's step), prefill kept out. */
  aloneMsByDrafts: (number | null)[];
  /** Target tasks that ran beside something else of the runtime (the drafter, another task). */
  besideMsByDrafts: (number | null)[];
  /** One drafter step, alone and beside a target task. */
  drafterAloneMs: number | null;
  drafterBesideMs: number | null;
}

/**
 * What a `Learned` keeps past its process (learned-store.ts writes it), as plain JSON: the
 * means the adaptive lookahead reads and the long-run acceptance's discounted counts.
 */
export interface LearnedSnapshot {
  costs: CostsSnapshot;
  acceptance: { accepted: number; decided: number };
  /** Absent in files written before prompt lookup's acceptance was kept. */
  lookupAcceptance?: { accepted: number; decided: number };
}

export function snapshotLearned(l: Learned): LearnedSnapshot {
  return { costs: l.costs.snapshot(), acceptance: l.acceptance.snapshot(), lookupAcceptance: l.lookupAcceptance.snapshot() };
}

/**
 * A fresh `Learned` that starts from a snapshot as its prior: each restored mean counts as one
 * observation against the first fresh one, the acceptance as at most `RESTORED_DRAFTS` drafts.
 */
export function learnedFromSnapshot(s: LearnedSnapshot): Learned {
  const l = newLearned();
  l.costs.restore(s.costs);
  l.acceptance.restore(s.acceptance);
  if (s.lookupAcceptance) l.lookupAcceptance.restore(s.lookupAcceptance);
  return l;
}

/** Whether `x` is a well-formed snapshot (a file's contents are checked before they are trusted). */
export function isLearnedSnapshot(x: unknown): x is LearnedSnapshot {
  const ms = (v: unknown): boolean => v === null || (typeof v === "number" && Number.isFinite(v) && v >= 0);
  const table = (v: unknown): boolean => Array.isArray(v) && v.length <= 4096 && v.every(ms);
  const count = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v) && v >= 0;
  const s = x as LearnedSnapshot | null;
  const counts = (c: unknown): boolean => {
    const v = c as { accepted: unknown; decided: unknown } | null;
    return typeof v === "object" && v !== null && count(v.accepted) && count(v.decided) && v.accepted <= v.decided;
  };
  return (
    typeof s === "object" &&
    s !== null &&
    typeof s.costs === "object" &&
    s.costs !== null &&
    table(s.costs.aloneMsByDrafts) &&
    table(s.costs.besideMsByDrafts) &&
    ms(s.costs.drafterAloneMs) &&
    ms(s.costs.drafterBesideMs) &&
    counts(s.acceptance) &&
    (s.lookupAcceptance === undefined || counts(s.lookupAcceptance))
  );
}
