/**
 * Observed durations of target tasks, by the number of drafts they verified. The target pool
 * owns one, so what one generation learned about the instances serves the next from its first
 * token (DSI's slack and guard rules read it).
 */
export class TaskCosts {
  /** Fastest task seen, of any size: the pace of non-SI (one forward pass per token). */
  private fastest = Infinity;
  /** Slowest duration seen per number of drafts. */
  private readonly slowestBySize: number[] = [];

  /** Records a task with `drafts` drafts that took `ms`. */
  observe(drafts: number, ms: number): void {
    this.fastest = Math.min(this.fastest, ms);
    this.slowestBySize[drafts] = Math.max(this.slowestBySize[drafts] ?? 0, ms);
  }

  /** The fastest task seen; undefined before any. */
  fastestMs(): number | undefined {
    return Number.isFinite(this.fastest) ? this.fastest : undefined;
  }

  /** The slowest task seen with exactly `drafts` drafts; undefined if none was seen. */
  slowestMs(drafts: number): number | undefined {
    return this.slowestBySize[drafts];
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
