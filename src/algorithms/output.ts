/**
 * Shared by all algorithms: where committed tokens go (stop conditions, streaming with
 * stop-sequence hold-back) and how stats are counted.
 */
import type { Clock } from "../runtime/clock.js";
import { TokenStream } from "../runtime/token-stream.js";
import type { Completion, FinishReason, ResolvedOptions, Stats } from "./options.js";

export class Committer {
  /** Generated tokens, including any that may turn out to be a stop sequence. */
  private readonly generated: number[] = [];
  private emitted = 0;
  finishReason: FinishReason | undefined;
  private readonly stops: readonly (readonly number[])[];
  private readonly stopStrings: readonly string[];

  constructor(
    private readonly options: ResolvedOptions,
    private readonly eos: number | undefined,
    private readonly stream: TokenStream<number>,
  ) {
    this.stops = (options.stop ?? []).filter((s) => s.length > 0);
    this.stopStrings = (options.stopText?.strings ?? []).filter((s) => s.length > 0);
  }

  /** Tokens committed so far, including a stop sequence's and an EOS that ended the generation. */
  committed = 0;
  get done(): boolean {
    return this.finishReason !== undefined;
  }
  /** How many more tokens may be committed. */
  get remaining(): number {
    return this.done ? 0 : this.options.maxTokens - this.generated.length;
  }

  /** Commits one token; returns true when the generation must stop. */
  commit(token: number): boolean {
    if (this.done) return true;
    this.committed++;
    this.generated.push(token);
    if (this.eos !== undefined && token === this.eos && this.options.stopAtEos !== false) {
      this.generated.pop();
      return this.finish("eos");
    }
    for (const s of this.stops) {
      if (endsWith(this.generated, s)) {
        this.generated.length -= s.length;
        return this.finish("stop");
      }
    }
    if (this.stopStrings.length > 0) {
      const keep = this.textStop();
      if (keep !== undefined) {
        this.generated.length = keep;
        return this.finish("stop");
      }
    }
    // Hold back a tail that could still become a stop sequence.
    this.release(Math.min(this.generated.length - this.heldBack(), this.textReleasable()));
    if (this.generated.length >= this.options.maxTokens) return this.finish("length");
    return false;
  }

  /** Ends the generation (also for maxTokens 0). */
  finish(reason: FinishReason): true {
    if (!this.finishReason) {
      this.finishReason = reason;
      this.release(this.generated.length);
    }
    return true;
  }

  private decode(n: number): string {
    return this.options.stopText!.decode(this.generated.slice(0, n));
  }

  /** The longest prefix of tokens whose text ends at or before `chars`. */
  private prefixWithin(chars: number): number {
    let m = this.generated.length;
    while (m > this.emitted && this.decode(m).length > chars) m--;
    return m;
  }

  /** If a stop string appears in the text: how many tokens to keep (all before it). */
  private textStop(): number | undefined {
    const text = this.decode(this.generated.length);
    let at = Infinity;
    for (const s of this.stopStrings) {
      const i = text.indexOf(s);
      if (i >= 0) at = Math.min(at, i);
    }
    return at === Infinity ? undefined : this.prefixWithin(at);
  }

  /** Tokens that may be streamed: none whose text could be the start of a stop string. */
  private textReleasable(): number {
    if (this.stopStrings.length === 0) return this.generated.length;
    const text = this.decode(this.generated.length);
    let held = 0;
    for (const s of this.stopStrings) {
      for (let len = Math.min(s.length - 1, text.length); len > held; len--) {
        if (text.endsWith(s.slice(0, len))) {
          held = len;
          break;
        }
      }
    }
    return held === 0 ? this.generated.length : this.prefixWithin(text.length - held);
  }

  output(): number[] {
    return this.generated.slice(0, this.emitted);
  }

  private release(upTo: number): void {
    while (this.emitted < upTo) this.stream.push(this.generated[this.emitted++]);
  }

  private heldBack(): number {
    let held = 0;
    for (const s of this.stops) {
      for (let len = Math.min(s.length - 1, this.generated.length); len > held; len--) {
        if (endsWith(this.generated, s.slice(0, len))) {
          held = len;
          break;
        }
      }
    }
    return held;
  }
}

function endsWith(seq: readonly number[], suffix: readonly number[]): boolean {
  if (suffix.length > seq.length) return false;
  const off = seq.length - suffix.length;
  for (let i = 0; i < suffix.length; i++) if (seq[off + i] !== suffix[i]) return false;
  return true;
}

/** Mutable counters behind `Stats`. */
export class StatsCounter {
  drafted = 0;
  accepted = 0;
  rejected = 0;
  verifications = 0;
  windows: number[] = [];
  probes = 0;
  preemptions = 0;
  targetBusyMs = 0;
  ttftMs = NaN;
  private readonly start: number;
  constructor(private readonly clock: Clock) {
    this.start = clock.now();
  }
  elapsed(): number {
    return this.clock.now() - this.start;
  }
  firstToken(): void {
    if (Number.isNaN(this.ttftMs)) this.ttftMs = this.elapsed();
  }
  finish(tokens: number): Stats {
    const decided = this.accepted + this.rejected;
    return {
      tokens,
      drafted: this.drafted,
      accepted: this.accepted,
      rejected: this.rejected,
      acceptanceRate: decided > 0 ? this.accepted / decided : 0,
      verifications: this.verifications,
      windows: Array.from(this.windows, (n) => n ?? 0),
      probes: this.probes,
      preemptions: this.preemptions,
      targetBusyMs: this.targetBusyMs,
      ttftMs: Number.isNaN(this.ttftMs) ? 0 : this.ttftMs,
      timeMs: this.elapsed(),
      clock: this.clock.kind,
    };
  }
}

export function completion(c: Committer, stats: StatsCounter): Completion {
  return { tokens: c.output(), finishReason: c.finishReason ?? "length", stats: stats.finish(c.committed) };
}

/** Totals over several completions (the acceptance rate and TTFT recomputed, times summed). */
export function aggregateStats(all: readonly Stats[]): Stats {
  const sum = (f: (s: Stats) => number): number => all.reduce((a, s) => a + f(s), 0);
  const accepted = sum((s) => s.accepted);
  const rejected = sum((s) => s.rejected);
  return {
    tokens: sum((s) => s.tokens),
    drafted: sum((s) => s.drafted),
    accepted,
    rejected,
    acceptanceRate: accepted + rejected > 0 ? accepted / (accepted + rejected) : 0,
    verifications: sum((s) => s.verifications),
    windows: sumHistograms(all.map((s) => s.windows)),
    probes: sum((s) => s.probes),
    preemptions: sum((s) => s.preemptions),
    targetBusyMs: sum((s) => s.targetBusyMs),
    ttftMs: all.length > 0 ? sum((s) => s.ttftMs) / all.length : 0,
    timeMs: sum((s) => s.timeMs),
    clock: all[0]?.clock ?? "real",
  };
}

/** Histograms added bin by bin (as `Stats.windows`). */
export function sumHistograms(all: readonly (readonly number[])[]): number[] {
  const out: number[] = [];
  for (const h of all) h.forEach((n, k) => (out[k] = (out[k] ?? 0) + n));
  return Array.from(out, (n) => n ?? 0);
}
