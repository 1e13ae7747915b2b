/**
 * Observed costs: target tasks by the number of drafts they verified, and drafter steps. The
 * target pool owns one, so what one generation learned about the instances serves the next
 * from its first token (DSI's slack and guard rules and the adaptive lookahead read it).
 */

/**
 * Weight of a new observation in the running means: the last few observations dominate, so
 * the means follow a machine that gets busier or quieter within a handful of tasks.
 */
const MEAN_WEIGHT = 0.25;

/** A running mean that follows recent values (exponentially weighted). */
class RunningMean {
  value: number | undefined;
  observe(x: number): void {
    this.value = this.value === undefined ? x : this.value + MEAN_WEIGHT * (x - this.value);
  }
}

export class TaskCosts {
  /** Fastest task seen, of any size: the pace of non-SI (one forward pass per token). */
  private fastest = Infinity;
  /** Slowest duration seen per number of drafts. */
  private readonly slowestBySize: number[] = [];
  /** Recent mean duration per number of drafts. */
  private readonly meanBySize: RunningMean[] = [];
  /** Recent mean of one-token tasks that ran alone: what a non-SI step costs. */
  private readonly solo = new RunningMean();
  /** Tasks observed, and how many there were when a one-token task last ran alone. */
  private tasks = 0;
  private soloAt = 0;
  private readonly drafter = new RunningMean();
  /** Changes with every observation (readers cache what they derive from the costs). */
  version = 0;

  /**
   * Records a task with `drafts` drafts that took `ms`. `kind`: `prefill` when the instance
   * first read the generation's context (a prompt's worth of positions: kept out of the
   * means), `alone` when nothing else of the generation (no other task, no drafter step) ran
   * beside it, so on a shared CPU it ran at full speed.
   */
  observe(drafts: number, ms: number, kind: "prefill" | "alone" | "shared" = "shared"): void {
    this.version++;
    this.fastest = Math.min(this.fastest, ms);
    this.slowestBySize[drafts] = Math.max(this.slowestBySize[drafts] ?? 0, ms);
    if (kind === "prefill") return;
    (this.meanBySize[drafts] ??= new RunningMean()).observe(ms);
    this.tasks++;
    if (kind === "alone" && drafts === 0) {
      this.solo.observe(ms);
      this.soloAt = this.tasks;
    }
  }

  /** Records one drafter step (one drafted position, not a prefill) that took `ms`. */
  observeDraft(ms: number): void {
    this.version++;
    this.drafter.observe(ms);
  }

  /** The fastest task seen; undefined before any. */
  fastestMs(): number | undefined {
    return Number.isFinite(this.fastest) ? this.fastest : undefined;
  }

  /** The slowest task seen with exactly `drafts` drafts; undefined if none was seen. */
  slowestMs(drafts: number): number | undefined {
    return this.slowestBySize[drafts];
  }

  /** The recent mean duration of tasks with exactly `drafts` drafts; undefined if none was seen. */
  meanMs(drafts: number): number | undefined {
    return this.meanBySize[drafts]?.value;
  }

  /** The recent mean duration of one-token tasks that ran alone; undefined before any. */
  soloMs(): number | undefined {
    return this.solo.value;
  }

  /** Tasks observed since a one-token task last ran alone (how stale `soloMs` is). */
  tasksSinceSolo(): number {
    return this.tasks - this.soloAt;
  }

  /** The recent mean duration of one drafter step; undefined before any. */
  drafterMs(): number | undefined {
    return this.drafter.value;
  }

  /**
   * Expected (pessimistic) duration of a task with `drafts` drafts: the slowest observed for
   * that size, else linear from the one-token cost with the steepest slope observed; undefined
   * while neither a one-token task nor a larger one has been seen.
   */
  estimateMs(drafts: number): number | undefined {
    const seen = this.slowestBySize[drafts];
    if (seen !== undefined) return seen;
    const single = this.slowestBySize[0];
    if (single === undefined) return undefined;
    let slope: number | undefined;
    this.slowestBySize.forEach((ms, k) => {
      if (k > 0 && ms !== undefined) slope = Math.max(slope ?? 0, (ms - single) / k);
    });
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

  /** The long-run acceptance (with one draft's worth of 0.5 as its own prior); undefined before any draft was decided. */
  rate(): number | undefined {
    const { accepted, decided } = this.counts;
    return decided > 0 ? (accepted + 0.5) / (decided + 1) : undefined;
  }
}

/**
 * What pools learn about their instances: task costs and acceptance. A backend passes one to
 * every runtime it builds over the same instances, so a new runtime starts from what the
 * earlier ones observed (the adaptive lookahead needs no cold start for each).
 */
export interface Learned {
  costs: TaskCosts;
  acceptance: AcceptanceMemory;
}

export function newLearned(): Learned {
  return { costs: new TaskCosts(), acceptance: new AcceptanceMemory() };
}
