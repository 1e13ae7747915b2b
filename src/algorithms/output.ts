/**
 * Shared by all algorithms: where committed tokens go (stop conditions, streaming with
 * stop-sequence hold-back) and how stats are counted.
 */
import type { Clock } from "../runtime/clock.js";
import type { DraftSource } from "../core/verify.js";
import { IncrementalDecoder } from "../core/detokenize.js";
import { TokenStream } from "../runtime/token-stream.js";
import type { Completion, FinishReason, ResolvedOptions, Stats } from "./options.js";

export class Committer {
  /** Generated tokens, including any that may turn out to be a stop sequence. */
  private readonly generated: number[] = [];
  private emitted = 0;
  finishReason: FinishReason | undefined;
  private readonly stops: readonly (readonly number[])[];
  private readonly stopStrings: readonly string[];
  /** Text of the generated tokens, for stop strings; undefined without any. */
  private readonly decoder: IncrementalDecoder | undefined;
  /** ends[i]: length of the settled text once token i is in (every token of a settled group ends where the group does). */
  private readonly ends: number[] = [];
  /**
   * The settled text not yet released to the stream, from offset `unreleasedAt`. A stop string
   * can only begin here (text before it was released because no stop string could start in
   * it), so matching reads this tail and the new text, never the whole output.
   */
  private unreleased = "";
  private unreleasedAt = 0;
  /** Where a stop string began in the text, when one ended the generation. */
  private stopAt: number | undefined;
  private readonly longestStop: number;

  constructor(
    private readonly options: ResolvedOptions,
    private readonly eos: number | undefined,
    private readonly stream: TokenStream<number>,
  ) {
    this.stops = (options.stop ?? []).filter((s) => s.length > 0);
    this.stopStrings = (options.stopText?.strings ?? []).filter((s) => s.length > 0);
    this.longestStop = Math.max(0, ...this.stopStrings.map((s) => s.length));
    const decode = options.stopText?.decode;
    this.decoder = this.stopStrings.length > 0 && decode ? new IncrementalDecoder(decode) : undefined;
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
    if (this.decoder) {
      const at = this.textStop(token);
      if (at !== undefined) {
        // Whole tokens before the stop string; the text keeps the part of the next one before it.
        this.stopAt = at;
        this.generated.length = this.prefixWithin(at);
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

  /** Where a stop string first appears in the text once `token` is in, if it does. */
  private textStop(token: number): number | undefined {
    const chunk = this.decoder!.push(token);
    if (chunk === undefined) return undefined; // an incomplete character: nothing new to match
    const end = this.decoder!.length;
    while (this.ends.length < this.decoder!.settled) this.ends.push(end);
    // No stop string was in the text before, so a match ends in the new chunk: search from
    // where the longest could begin (within the unreleased tail, see `unreleased`).
    const from = Math.max(0, this.unreleased.length - (this.longestStop - 1));
    this.unreleased += chunk;
    let at = Infinity;
    for (const s of this.stopStrings) {
      const i = this.unreleased.indexOf(s, from);
      if (i >= 0) at = Math.min(at, i);
    }
    return at === Infinity ? undefined : this.unreleasedAt + at;
  }

  /** Text length once the first `n` generated tokens are in (n at most the settled tokens). */
  private end(n: number): number {
    return n === 0 ? 0 : this.ends[n - 1];
  }

  /** The longest prefix of settled tokens whose text ends at or before `chars` (never fewer than those released). */
  private prefixWithin(chars: number): number {
    // ends is nondecreasing: binary search between the released and the settled tokens.
    let lo = this.emitted;
    let hi = Math.min(this.generated.length, this.decoder!.settled);
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.end(mid) <= chars) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Tokens that may be streamed: settled ones whose text cannot be the start of a stop string. */
  private textReleasable(): number {
    if (!this.decoder) return this.generated.length;
    const text = this.unreleased;
    let held = 0;
    for (const s of this.stopStrings) {
      for (let len = Math.min(s.length - 1, text.length); len > held; len--) {
        if (text.endsWith(s.slice(0, len))) {
          held = len;
          break;
        }
      }
    }
    return this.prefixWithin(this.decoder.length - held);
  }

  output(): number[] {
    return this.generated.slice(0, this.emitted);
  }

  /**
   * The output's text (`Completion.text`): the output tokens decoded, then, when a stop string
   * ended the generation, the text of the next token up to the stop string (OpenAI's
   * semantics: everything before the stop string, even where it begins inside a token).
   * Undefined without `stopText`.
   */
  text(): string | undefined {
    const decode = this.options.stopText?.decode;
    if (!decode) return undefined;
    const text = decode(this.output());
    if (this.stopAt === undefined) return text;
    const from = this.end(this.emitted) - this.unreleasedAt;
    return text + this.unreleased.slice(from, this.stopAt - this.unreleasedAt);
  }

  private release(upTo: number): void {
    while (this.emitted < upTo) this.stream.push(this.generated[this.emitted++]);
    if (this.decoder && this.stopAt === undefined) {
      // Released text can no longer hold the start of a stop string: drop it from the tail.
      const at = Math.min(this.end(Math.min(this.emitted, this.decoder.settled)), this.decoder.length);
      if (at > this.unreleasedAt) {
        this.unreleased = this.unreleased.slice(at - this.unreleasedAt);
        this.unreleasedAt = at;
      }
    }
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
  readonly bySource: Stats["bySource"] = { model: { drafted: 0, accepted: 0, rejected: 0 }, ngram: { drafted: 0, accepted: 0, rejected: 0 } };
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
  /** A draft was made (`source`: where it came from). */
  draftMade(source: DraftSource): void {
    this.drafted++;
    this.bySource[source].drafted++;
  }
  /** A draft was decided. */
  draftDecided(source: DraftSource, accepted: boolean): void {
    if (accepted) this.accepted++;
    else this.rejected++;
    this.bySource[source][accepted ? "accepted" : "rejected"]++;
  }
  finish(tokens: number): Stats {
    const decided = this.accepted + this.rejected;
    return {
      tokens,
      drafted: this.drafted,
      accepted: this.accepted,
      rejected: this.rejected,
      bySource: { model: { ...this.bySource.model }, ngram: { ...this.bySource.ngram } },
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
  const text = c.text();
  return { tokens: c.output(), ...(text === undefined ? {} : { text }), finishReason: c.finishReason ?? "length", stats: stats.finish(c.committed) };
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
    bySource: Object.fromEntries(
      (["model", "ngram"] as const).map((k) => [k, { drafted: sum((s) => s.bySource[k].drafted), accepted: sum((s) => s.bySource[k].accepted), rejected: sum((s) => s.bySource[k].rejected) }]),
    ) as Stats["bySource"],
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
