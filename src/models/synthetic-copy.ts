/**
 * The copy rule of synthetic targets (`SyntheticSpec.copy`): where the target copies, its
 * favourite token is the one that followed the most recent earlier occurrence of the longest
 * suffix of its context, as an induction head (or prompt lookup) would continue it.
 *
 * Longest suffix, not a fixed length: after a token the target did not copy, a one-token
 * match starts a span at once, and the next positions match two, three, ... tokens of that
 * same span, so copying continues the span until the next position that does not copy. With
 * a fixed length of 2 or 3 a fresh token rarely starts a match again on a 32-token vocabulary,
 * and the share of copied positions would fall far below the copy probability.
 *
 * Only occurrences at least COPY_MIN_DISTANCE back count: a copy from d tokens back repeats a
 * d-token unit until the next position that does not copy, and a short d makes that a stutter
 * ("ababab"), 30-50 tokens long at copy 0.9, instead of a repeated span.
 */
import type { TokenSequence } from "../core/instance.js";

/** Longest suffix the rule matches: long enough to keep a span apart from its look-alikes, short enough to scan. */
export const COPY_MAX_MATCH = 8;

/** How far back, at least, the copied token lies: no loop shorter than this. */
export const COPY_MIN_DISTANCE = 16;

/** Logit margin of a copied token over the table's favourite: most of the mass, never all of it. */
export const COPY_MARGIN = 4;

/**
 * The token that followed the most recent occurrence of the longest suffix (1 to
 * COPY_MAX_MATCH tokens) of tokens[0..p) that lies at least COPY_MIN_DISTANCE back (the token
 * followed, tokens[s], has s <= p - COPY_MIN_DISTANCE), or -1 where there is none.
 * O(p * match length): a scan back from p, stopped at the first full-length match.
 */
export function copiedToken(tokens: TokenSequence, p: number): number {
  const at = (i: number): number => tokens.at(i)!;
  let best = 0;
  let source = -1;
  // An occurrence ending at j is followed by tokens[j + 1].
  for (let j = p - 1 - COPY_MIN_DISTANCE; j >= 0 && best < COPY_MAX_MATCH; j--) {
    let n = 0;
    while (n < COPY_MAX_MATCH && j - n >= 0 && at(j - n) === at(p - 1 - n)) n++;
    if (n > best) [best, source] = [n, j + 1];
  }
  return source < 0 ? -1 : at(source);
}
