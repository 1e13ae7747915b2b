/** Seeded, counter-based randomness: determinism, range, independence of keys, rough uniformity. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { hash32, keyedUniform, Rng, Stream } from "../../src/core/random.js";

/** Chi-square statistic of observed counts against equal expected counts. */
function chiSquareUniform(counts: number[], total: number): number {
  const expected = total / counts.length;
  let chi = 0;
  for (const c of counts) chi += ((c - expected) * (c - expected)) / expected;
  return chi;
}

function bin10(values: Iterable<number>): number[] {
  const counts = new Array<number>(10).fill(0);
  for (const v of values) counts[Math.floor(v * 10)]++;
  return counts;
}

// Upper 0.001 quantile of the chi-square distribution with 9 degrees of freedom (10 bins).
const CHI2_DF9_ALPHA_0_001 = 27.877;

/** Pearson correlation of two equally long series. */
function correlation(xs: number[], ys: number[]): number {
  const n = xs.length;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += xs[i];
    my += ys[i];
  }
  mx /= n;
  my /= n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = xs[i] - mx;
    const dy = ys[i] - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  return sxy / Math.sqrt(sxx * syy);
}

describe("hash32", () => {
  test("is deterministic and returns an unsigned 32-bit integer", () => {
    for (let i = 0; i < 1000; i++) {
      const h = hash32(i, 7, -i, 123456789);
      assert.equal(h, hash32(i, 7, -i, 123456789));
      assert.ok(Number.isInteger(h), `not an integer: ${h}`);
      assert.ok(h >= 0 && h < 2 ** 32, `out of range: ${h}`);
    }
  });

  test("depends on the order and number of keys", () => {
    assert.notEqual(hash32(1, 2), hash32(2, 1));
    assert.notEqual(hash32(1), hash32(1, 0));
    assert.notEqual(hash32(0), hash32());
  });

  test("flipping one input bit flips about half of the output bits (avalanche)", () => {
    let flips = 0;
    let trials = 0;
    for (let k = 0; k < 500; k++) {
      for (const bit of [0, 5, 13, 31]) {
        const a = hash32(42, k);
        const b = hash32(42, k ^ (1 << bit));
        let x = (a ^ b) >>> 0;
        while (x) {
          flips += x & 1;
          x >>>= 1;
        }
        trials++;
      }
    }
    const mean = flips / trials;
    assert.ok(mean > 14 && mean < 18, `mean flipped bits ${mean}`);
  });
});

describe("keyedUniform", () => {
  test("same key gives the same value", () => {
    for (let pos = 0; pos < 2000; pos++) {
      for (const stream of [Stream.target, Stream.draft, Stream.accept, Stream.residual]) {
        assert.equal(keyedUniform(17, stream, pos), keyedUniform(17, stream, pos));
      }
    }
    // Stable across calls interleaved with other keys (no hidden state).
    const first = keyedUniform(5, 3, 99);
    for (let i = 0; i < 100; i++) keyedUniform(i, i, i);
    assert.equal(keyedUniform(5, 3, 99), first);
  });

  test("values lie in [0, 1) and use more than 32 bits of precision", () => {
    let fine = 0;
    for (let seed = 0; seed < 10; seed++) {
      for (let pos = 0; pos < 10_000; pos++) {
        const u = keyedUniform(seed, Stream.target, pos);
        assert.ok(Number.isFinite(u));
        assert.ok(u >= 0 && u < 1, `out of range: ${u}`);
        if (!Number.isInteger(u * 2 ** 32)) fine++;
      }
    }
    // A 53-bit uniform has bits below 2^-32 almost always.
    assert.ok(fine > 99_000, `only ${fine} values had bits below 2^-32`);
  });

  test("different streams, positions and seeds give different values", () => {
    const streams = [Stream.target, Stream.draft, Stream.accept, Stream.residual];
    for (let pos = 0; pos < 1000; pos++) {
      const vals = streams.map((s) => keyedUniform(3, s, pos));
      assert.equal(new Set(vals).size, vals.length, `streams collide at position ${pos}`);
      assert.notEqual(keyedUniform(3, Stream.target, pos), keyedUniform(3, Stream.target, pos + 1));
      assert.notEqual(keyedUniform(3, Stream.target, pos), keyedUniform(4, Stream.target, pos));
    }
    // No collisions over many distinct keys: the 53 bits come from two independent 32-bit hash
    // chains, so distinct keys collide with probability ~2^-53 per pair (~4e-7 expected here).
    const seen = new Set<number>();
    for (let seed = 0; seed < 20; seed++) {
      for (const s of streams) for (let pos = 0; pos < 1000; pos++) seen.add(keyedUniform(seed, s, pos));
    }
    const collisions = 20 * streams.length * 1000 - seen.size;
    assert.equal(collisions, 0, `${collisions} collisions among 80000 keys`);
  });

  test("the low bits depend on every key component too", () => {
    // Low 26 of the 53 bits; exact, since u * 2^53 is an integer below 2^53.
    const low = (u: number): number => (u * 2 ** 53) % 2 ** 26;
    let sameStream = 0;
    let samePos = 0;
    let sameSeed = 0;
    for (let pos = 0; pos < 1000; pos++) {
      const base = low(keyedUniform(8, Stream.accept, pos));
      if (base === low(keyedUniform(8, Stream.residual, pos))) sameStream++;
      if (base === low(keyedUniform(8, Stream.accept, pos + 1000))) samePos++;
      if (base === low(keyedUniform(9, Stream.accept, pos))) sameSeed++;
    }
    assert.equal(sameStream, 0);
    assert.equal(samePos, 0);
    assert.equal(sameSeed, 0);
  });

  test("roughly uniform over positions: mean and 10-bin chi-square over 100k draws", () => {
    const n = 100_000;
    const values: number[] = [];
    for (let pos = 0; pos < n; pos++) values.push(keyedUniform(2024, Stream.accept, pos));
    const mean = values.reduce((a, b) => a + b, 0) / n;
    // sd of the mean is sqrt(1/12/n) ~ 0.00091; allow 5 sd.
    assert.ok(Math.abs(mean - 0.5) < 0.0046, `mean ${mean}`);
    const chi = chiSquareUniform(bin10(values), n);
    assert.ok(chi < CHI2_DF9_ALPHA_0_001, `chi-square ${chi} >= ${CHI2_DF9_ALPHA_0_001}`);
  });

  test("roughly uniform over seeds at a fixed position (10-bin chi-square over 100k draws)", () => {
    const n = 100_000;
    const values: number[] = [];
    for (let seed = 0; seed < n; seed++) values.push(keyedUniform(seed, Stream.target, 0));
    const chi = chiSquareUniform(bin10(values), n);
    assert.ok(chi < CHI2_DF9_ALPHA_0_001, `chi-square ${chi}`);
    const mean = values.reduce((a, b) => a + b, 0) / n;
    assert.ok(Math.abs(mean - 0.5) < 0.0046, `mean ${mean}`);
  });

  test("uncorrelated across adjacent positions and across streams at one position", () => {
    const n = 50_000;
    const a: number[] = [];
    const b: number[] = [];
    const acc: number[] = [];
    const res: number[] = [];
    for (let pos = 0; pos < n; pos++) {
      a.push(keyedUniform(9, Stream.target, pos));
      b.push(keyedUniform(9, Stream.target, pos + 1));
      acc.push(keyedUniform(9, Stream.accept, pos));
      res.push(keyedUniform(9, Stream.residual, pos));
    }
    // sd of a null correlation is ~1/sqrt(n) ~ 0.0045; allow 5 sd.
    const bound = 5 / Math.sqrt(n);
    const lag = correlation(a, b);
    const streams = correlation(acc, res);
    assert.ok(Math.abs(lag) < bound, `lag-1 correlation ${lag}`);
    assert.ok(Math.abs(streams) < bound, `accept/residual correlation ${streams}`);
  });
});

describe("Rng", () => {
  test("same seed gives the same sequence", () => {
    const a = new Rng(77);
    const b = new Rng(77);
    const sa = Array.from({ length: 1000 }, () => a.next());
    const sb = Array.from({ length: 1000 }, () => b.next());
    assert.deepEqual(sa, sb);
  });

  test("values are in [0, 1), vary along the sequence, and differ across seeds", () => {
    const a = new Rng(1);
    const b = new Rng(2);
    const sa = Array.from({ length: 1000 }, () => a.next());
    const sb = Array.from({ length: 1000 }, () => b.next());
    for (const v of sa) assert.ok(v >= 0 && v < 1);
    assert.equal(new Set(sa).size, sa.length);
    assert.notDeepEqual(sa, sb);
    let same = 0;
    for (let i = 0; i < sa.length; i++) if (sa[i] === sb[i]) same++;
    assert.equal(same, 0);
  });

  test("instances are independent: draws from one do not shift another", () => {
    const ref = new Rng(5);
    const expected = Array.from({ length: 50 }, () => ref.next());
    const a = new Rng(5);
    const other = new Rng(5);
    const got: number[] = [];
    for (let i = 0; i < 50; i++) {
      other.next();
      other.next();
      got.push(a.next());
    }
    assert.deepEqual(got, expected);
  });

  test("sequence is roughly uniform (10-bin chi-square over 100k draws)", () => {
    const rng = new Rng(123);
    const n = 100_000;
    const values = Array.from({ length: n }, () => rng.next());
    const chi = chiSquareUniform(bin10(values), n);
    assert.ok(chi < CHI2_DF9_ALPHA_0_001, `chi-square ${chi}`);
  });
});
