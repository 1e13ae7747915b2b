/**
 * A 32-bit hash of a token sequence built one token at a time (FNV-1a style): the worker
 * protocol's prefix hashes and prompt lookup's n-gram keys.
 */

/** The hash of the empty sequence. */
export const HASH_START = 0x811c9dc5;

/** The hash of a sequence extended by `token`. */
export function hashStep(h: number, token: number): number {
  return Math.imul(h ^ token, 0x01000193) >>> 0;
}
