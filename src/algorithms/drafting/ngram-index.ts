/**
 * Prompt lookup (n-gram drafting): the draft at a position is the token that followed the most
 * recent earlier occurrence of the context's last n tokens, for the longest n in min..max that
 * occurred before. Drafting then costs a few map lookups (O(max) per draft, never a scan of the
 * context), because the index is updated once per committed token: for each n, the n-gram
 * ending just before that token maps to the token's position (the latest occurrence wins).
 *
 * Most recent, not most frequent: the text being copied (a passage being repeated, a list
 * being continued) is usually the nearest one, and a recency rule needs no counts; node-llama-
 * cpp's input lookup and llama.cpp's simple n-gram drafting take a recent match too.
 *
 * Only committed tokens are indexed; the context a draft is proposed for may end in drafts
 * (the drafts proposed so far for this window), which a match may then continue. The committed
 * sequence only grows within a generation, so the index never rewinds: a rejected draft was
 * never indexed.
 */
import type { TokenSequence } from "../../core/instance.js";
import { HASH_START, hashStep } from "../../core/token-hash.js";

/** The defaults: matches of 2 to 5 tokens (vLLM's default match is 5 tokens; 1 would draft on every repeated token). */
export const NGRAM_DEFAULTS = { min: 2, max: 5 } as const;
/** The longest match the flags accept: longer ones are rarer and cost more per lookup. */
export const MAX_NGRAM = 64;

export class NgramIndex {
  /**
   * Per match length n (index n - min): hash of an n-gram read backwards (core/token-hash.ts) ->
   * position of the token that followed its latest occurrence. Numeric hashes, not joined strings: a draft and a committed token cost
   * a few multiplications instead of building strings (this runs on every step, plain ones too).
   * A hash shared by two n-grams is caught by comparing the tokens, and then that length does not match.
   */
  private readonly next: Map<number, number>[];
  /** Tokens of `seq` indexed so far. */
  private indexed = 0;

  constructor(
    private readonly seq: readonly number[],
    readonly min: number = NGRAM_DEFAULTS.min,
    readonly max: number = NGRAM_DEFAULTS.max,
  ) {
    if (!(Number.isInteger(min) && Number.isInteger(max) && min >= 1 && min <= max && max <= MAX_NGRAM)) {
      throw new RangeError(`n-gram lengths must be integers with 1 <= min <= max <= ${MAX_NGRAM}, got ${min}..${max}`);
    }
    this.next = Array.from({ length: max - min + 1 }, () => new Map<number, number>());
  }

  /** Indexes the tokens `seq` gained since the last call (it only grows). */
  update(): void {
    const seq = this.seq;
    for (let e = Math.max(this.indexed, 1); e < seq.length; e++) {
      // The n-grams ending before e, longest last: hashes extended one token back at a time.
      let h = HASH_START;
      for (let n = 1; n <= Math.min(this.max, e); n++) {
        h = hashStep(h, seq[e - n]);
        if (n >= this.min) this.next[n - this.min].set(h, e);
      }
    }
    this.indexed = Math.max(this.indexed, seq.length);
  }

  /**
   * The token proposed after `context` (committed tokens, perhaps followed by drafts), and the
   * length of the match behind it; undefined when no suffix of `min` tokens or more occurred before.
   */
  propose(context: TokenSequence): { token: number; matched: number } | undefined {
    this.update();
    const length = context.length;
    const longest = Math.min(this.max, length - 1);
    if (longest < this.min) return undefined;
    const hashes: number[] = [];
    let h = HASH_START;
    for (let n = 1; n <= longest; n++) hashes.push((h = hashStep(h, context.at(length - n)!)));
    for (let n = longest; n >= this.min; n--) {
      const at = this.next[n - this.min].get(hashes[n - 1]);
      // The match ends before the suffix itself starts, or overlaps it: either way the token
      // that followed it is committed, so it is known.
      if (at !== undefined && this.same(at, context, n)) return { token: this.seq[at], matched: n };
    }
    return undefined;
  }

  /** Whether the n tokens before position `at` of the sequence are the last n of `context`. */
  private same(at: number, context: TokenSequence, n: number): boolean {
    const end = context.length;
    for (let i = 1; i <= n; i++) if (this.seq[at - i] !== context.at(end - i)) return false;
    return true;
  }
}
