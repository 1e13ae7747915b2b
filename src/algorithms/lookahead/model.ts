/**
 * The expected-time models of the adaptive lookahead: pure functions of measured costs and an
 * acceptance rate (the paper's i.i.d. model: a draft is accepted with probability a, the first
 * rejection ends a run). No state: the controller (controller.ts) feeds them what it observed.
 */
import { TUNING } from "./tuning.js";

const { tailMass: TAIL_MASS, maxModelAcceptance: MAX_MODEL_ACCEPTANCE } = TUNING;

/** What the expected-time models need. */
export interface CostModel {
  /** Acceptance probability per draft. */
  a: number;
  /** Drafter cost per draft, ms. */
  d: number;
  /** Target task cost with k drafts, ms. */
  t: (k: number) => number;
  /** A plain step alone, ms (non-SI's pace). */
  t0: number;
}

/** Expected tokens a window of k drafts commits: the accepted run plus one of the target's. */
export function windowTokens(k: number, acceptance: number): number {
  const a = Math.min(acceptance, MAX_MODEL_ACCEPTANCE);
  return (1 - a ** (k + 1)) / (1 - a);
}

/** SI: expected ms per committed token with lookahead k (k = 0: a plain step). */
export function siMsPerToken(k: number, m: CostModel): number {
  if (k === 0) return m.t0;
  return (k * m.d + m.t(k)) / windowTokens(k, m.a);
}

/**
 * DSI: expected ms per committed token with lookahead k on `instances` target instances.
 * Renewal over epochs. With two or more instances, the epoch's first position is decided by the
 * frontier task (no drafts, sent at once; it ends at t(0)). Window i (drafts ik..ik+k-1 after
 * that) is ready when its drafts are, (i+1)·k·d, starts on the instance free first (the frontier
 * task holds one until t(0)), ends t(k) later, and decides the drafts up to (i+1)k (its last
 * output decides the next window's first draft). The guard rule is part of the timeline: when
 * the frontier reaches a window that would finish later than a fresh one-token pass, and an
 * instance is free, such passes decide its first drafts (and hold that instance), which is
 * what windows that cost more than a step lose on. The timeline becomes periodic after a few
 * windows; from there the rest of the epoch is a geometric series.
 */
export function dsiMsPerToken(k: number, m: CostModel, instances: number): number {
  if (k === 0) return m.t0;
  if (instances < 2) return Math.min(dsiOneInstanceMsPerToken(k, m, true), dsiOneInstanceMsPerToken(k, m, false));
  const a = Math.min(m.a, MAX_MODEL_ACCEPTANCE);
  const tk = m.t(k);
  const t0 = m.t(0);
  // The epoch's timeline while nothing is rejected: windows go out in order, each on the
  // instance free first, once its drafts are ready; the frontier task holds one until t(0).
  const free: number[] = new Array<number>(instances).fill(0);
  free[0] = t0;
  const earliest = (): number => {
    let j = 0;
    for (let x = 1; x < free.length; x++) if (free[x] < free[j]) j = x;
    return j;
  };
  const finish: number[] = [];
  const startOf = (i: number): number => Math.max((i + 1) * k * m.d, free[earliest()]);
  const place = (): void => {
    const start = startOf(finish.length);
    free[earliest()] = start + tk;
    finish.push(start + tk);
  };
  let epoch = (1 - a) * t0;
  let reach = a; // P(no rejection before window i)
  // Per window: its share of the epoch's expected length, the probability that the epoch ends
  // in it, and when it decides each draft relative to its finish (the guard rule's pattern).
  const share: number[] = [];
  const ends: number[] = [];
  const offsets: number[][] = [];
  for (let i = 0; reach > TAIL_MASS; i++) {
    // When the frontier reaches window i: the frontier task's or window i - 1's finish.
    let at = i === 0 ? t0 : finish[i - 1];
    // Windows that could start before then go first (at the same instant the guard rule does).
    while (finish.length <= i || startOf(finish.length) < at - 1e-9) place();
    // Guard rule: while window i would finish later than a fresh one-token pass on a free
    // instance, such a pass decides the frontier position first.
    let e = 0;
    const off: number[] = [];
    for (let j = 0; j < k; j++) {
      let decided = finish[i];
      const g = earliest();
      if (finish[i] > at + t0 + 1e-9 && free[g] <= at + 1e-9) {
        free[g] = at + t0;
        at += t0;
        decided = at;
      }
      off.push(decided - finish[i]);
      e += reach * a ** j * (1 - a) * decided; // the first rejection at window i's j-th draft
    }
    share.push(e);
    ends.push(reach * (1 - a ** k));
    offsets.push(off);
    epoch += e;
    reach *= a ** k;
    // Once the timeline repeats with a period of p windows (the same spacing and guard
    // pattern), the rest is a geometric series: each period later, times shift by the
    // period's length and probabilities shrink by a^(kp).
    const p = period(finish, offsets, i, instances);
    if (p > 0) {
      const r = a ** (k * p);
      const length = finish[i] - finish[i - p];
      for (let w = i - p + 1; w <= i; w++) epoch += (share[w] * r) / (1 - r) + (length * ends[w] * r) / (1 - r) ** 2;
      return epoch * (1 - a);
    }
  }
  // What is left (probability below TAIL_MASS): later windows at the pace of the last ones.
  if (reach > 0) {
    if (finish.length === 0) place();
    const n = finish.length;
    const pace = n >= 2 ? finish[n - 1] - finish[n - 2] : tk;
    epoch += reach * (finish[n - 1] + pace / (1 - a ** k));
  }
  return epoch * (1 - a); // tokens per epoch: 1 / (1 - a)
}

/**
 * DSI on one instance: every task is a frontier task (SI's window: up to k drafts, deciding one
 * position more), and the drafter drafts while it runs, up to the queue's lead limit (2k + 1
 * drafts ahead of the frontier). `patient`: a task waits until k drafts are ready (the slack
 * rule at its longest); otherwise it goes as soon as the instance is free, with the drafts
 * made meanwhile (after a rejection: none, a plain step). Renewal over cycles that start with
 * no drafts ready: after a task of j drafts, the drafts made beyond the position its last
 * output decides carry over when that draft exists and all j + 1 are accepted; otherwise (a
 * rejection, or the target passed the drafter) the drafter starts afresh.
 */
export function dsiOneInstanceMsPerToken(k: number, m: CostModel, patient: boolean): number {
  const a = Math.min(m.a, MAX_MODEL_ACCEPTANCE);
  const lead = 2 * k + 1;
  let reach = 1; // P(this task is part of the cycle)
  let ready = 0; // drafts ahead of the frontier when the task is sent (fractional: one in progress)
  let ms = 0;
  let tokens = 0;
  for (let n = 0; n < 10_000 && reach > 1e-6; n++) {
    let wait = 0;
    if (patient && ready < k) [wait, ready] = [(k - ready) * m.d, k];
    const j = Math.min(k, Math.floor(ready + 1e-9));
    const tj = m.t(j);
    ms += reach * (wait + tj);
    tokens += reach * windowTokens(j, a);
    const drafted = m.d > 0 ? Math.min(lead, ready + tj / m.d) : lead;
    if (drafted < j + 1) break; // the next position was not drafted: a fresh start
    reach *= a ** (j + 1);
    ready = drafted - j - 1;
  }
  return ms / tokens;
}

/**
 * The smallest p (1..instances) with which the last 2·instances windows repeat (the same
 * spacing of finishes and the same guard pattern, p windows apart); 0 when none does yet.
 * Over fewer windows a start-up transient could pass for a period.
 */
function period(finish: readonly number[], offsets: readonly number[][], i: number, instances: number): number {
  const same = (x: number, y: number): boolean => Math.abs(x - y) <= 1e-6 * Math.max(1, Math.abs(x));
  const span = 2 * instances;
  for (let p = 1; p <= instances; p++) {
    if (i - span - p < 1) break;
    let repeats = true;
    for (let w = i; w > i - span && repeats; w--) {
      repeats = same(finish[w] - finish[w - 1], finish[w - p] - finish[w - p - 1]) && offsets[w].every((o, j) => same(o, offsets[w - p][j]));
    }
    if (repeats) return p;
  }
  return 0;
}

/** The recent mean cost of a task by its number of drafts (TaskCosts.meanMs), undefined where unseen. */
export interface MeanCosts {
  meanMs(drafts: number): number | undefined;
}

/**
 * Target cost with k drafts from the observed sizes: the recent mean where seen, linear between
 * seen sizes, linear beyond the two largest (slope at least 0); NaN where that is not enough.
 * `optimistic`: beyond the largest seen size, its cost (costs do not fall as windows grow).
 */
export function interpolate(costs: MeanCosts, sizes: readonly number[], k: number, optimistic: boolean): number {
  const seen = costs.meanMs(k);
  if (seen !== undefined) return seen;
  let below = -1;
  let above = -1;
  for (const s of sizes) {
    if (s < k) below = s;
    else if (above < 0) above = s;
  }
  if (below < 0) return NaN;
  const lo = costs.meanMs(below)!;
  if (above >= 0) return lo + ((costs.meanMs(above)! - lo) * (k - below)) / (above - below);
  if (optimistic) return lo;
  const i = sizes.indexOf(below);
  if (i < 1) return NaN;
  const prev = sizes[i - 1];
  const slope = Math.max(0, (lo - costs.meanMs(prev)!) / (below - prev));
  return lo + slope * (k - below);
}
