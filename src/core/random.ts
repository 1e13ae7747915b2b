/**
 * Seeded, counter-based randomness.
 *
 * Every random decision of a generation is keyed by (seed, stream, position), not drawn
 * from a shared sequential generator. Each position's decision therefore consumes its own
 * uniform exactly once, whatever order concurrent work finishes in: a DSI run gives the
 * same output on the real clock as on the virtual one, and a stale draft that is thrown
 * away never shifts the randomness of the tokens that follow.
 */

/** Seeds are 32-bit keys of the randomness: every value in 0..MAX_SEED is used as given. */
export const MAX_SEED = 2 ** 32 - 1;

/** Streams of randomness; each kind of decision draws from its own. */
export const Stream = {
  /** The target's own sample at a position (non-SI, bonus tokens, `match`). */
  target: 1,
  /** The drafter's sample at a position. */
  draft: 2,
  /** The accept/reject coin of `rejection` verification. */
  accept: 3,
  /** The resample from the residual distribution after a rejection. */
  residual: 4,
} as const;
export type StreamId = (typeof Stream)[keyof typeof Stream];

/** 32-bit finalizer (murmur3 fmix32): spreads every input bit over the output. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Hashes a list of integers into 32 bits; every step is a bijection of the state for a fixed key. */
export function hash32(...keys: number[]): number {
  return chain(0x9e3779b9, keys);
}

function chain(init: number, keys: readonly number[]): number {
  let h = init;
  for (const k of keys) h = fmix32(Math.imul(h ^ fmix32((k | 0) + 0x7f4a7c15), 0x9e3779b1));
  return h;
}

/**
 * A uniform in [0, 1) with 53 random bits, determined by its key. The high and low bits
 * come from two independent hash chains, so distinct keys collide with probability ~2^-53.
 */
export function keyedUniform(seed: number, stream: number, position: number): number {
  const keys = [seed, stream, position];
  const hi = chain(0x243f6a88, keys) >>> 5; // 27 bits
  const lo = chain(0x85a308d3, keys) >>> 6; // 26 bits
  return (hi * 67108864 + lo) / 9007199254740992;
}

/** A small sequential generator (for building seeded tables), same seed same sequence. */
export class Rng {
  private counter = 0;
  constructor(private readonly seed: number) {}
  next(): number {
    return keyedUniform(this.seed, 0, this.counter++);
  }
}

/**
 * A fast sequential generator (xoshiro128**) for bulk data such as model weights, seeded
 * through the hash so nearby seeds give unrelated streams.
 */
export class FastRng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare: number | undefined;
  constructor(...seed: number[]) {
    this.a = hash32(...seed, 1) | 1;
    this.b = hash32(...seed, 2);
    this.c = hash32(...seed, 3);
    this.d = hash32(...seed, 4);
  }
  /** A uniform in [0, 1) with 32 random bits. */
  next(): number {
    const r = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return r / 4294967296;
  }
  /** A standard normal (Box-Muller). */
  normal(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    const u = 1 - this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
