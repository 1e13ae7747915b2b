/**
 * The little linear algebra the corpus pair needs: products of sparse rows with tall dense
 * matrices, orthonormal columns (Cholesky QR, twice), and a randomized range finder that
 * gives the dominant column space of a sparse matrix (Halko, Martinsson and Tropp 2011).
 * Dense matrices are Float64Arrays, row-major unless said otherwise. Every loop runs in a
 * fixed order, so results are the same doubles on every machine.
 */
import type { SparseRows } from "./ngrams.js";

/** Y = S X for X (cols x k, row-major); Y is rows x k, row-major. */
export function times(S: SparseRows, X: Float64Array, k: number): Float64Array {
  const Y = new Float64Array(S.rows * k);
  const { ptr, col, val, rows } = S;
  for (let i = 0; i < rows; i++) {
    const oy = i * k;
    for (let p = ptr[i]; p < ptr[i + 1]; p++) {
      const v = val[p];
      const ox = col[p] * k;
      for (let j = 0; j < k; j++) Y[oy + j] += v * X[ox + j];
    }
  }
  return Y;
}

/** Y = S^T X for X (rows x k, row-major); Y is cols x k, row-major. */
export function transposeTimes(S: SparseRows, X: Float64Array, k: number): Float64Array {
  const Y = new Float64Array(S.cols * k);
  const { ptr, col, val, rows } = S;
  for (let i = 0; i < rows; i++) {
    const ox = i * k;
    for (let p = ptr[i]; p < ptr[i + 1]; p++) {
      const v = val[p];
      const oy = col[p] * k;
      for (let j = 0; j < k; j++) Y[oy + j] += v * X[ox + j];
    }
  }
  return Y;
}

/** The transpose of an n x k row-major matrix (= the same matrix column-major, and back). */
export function transpose(X: Float64Array, n: number, k: number): Float64Array {
  const Y = new Float64Array(n * k);
  for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) Y[j * n + i] = X[i * k + j];
  return Y;
}

/** G = Y^T Y (k x k, symmetric) for Y (n x k, column-major). */
function gram(Y: Float64Array, n: number, k: number): Float64Array {
  const G = new Float64Array(k * k);
  for (let a = 0; a < k; a++) {
    const oa = a * n;
    for (let b = a; b < k; b++) {
      const ob = b * n;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      let i = 0;
      for (; i + 3 < n; i += 4) {
        s0 += Y[oa + i] * Y[ob + i];
        s1 += Y[oa + i + 1] * Y[ob + i + 1];
        s2 += Y[oa + i + 2] * Y[ob + i + 2];
        s3 += Y[oa + i + 3] * Y[ob + i + 3];
      }
      for (; i < n; i++) s0 += Y[oa + i] * Y[ob + i];
      G[a * k + b] = G[b * k + a] = s0 + s1 + (s2 + s3);
    }
  }
  return G;
}

/** Lower Cholesky factor of G (k x k); a non-positive pivot is floored (a dependent column becomes ~0). */
function cholesky(G: Float64Array, k: number): Float64Array {
  const L = new Float64Array(k * k);
  for (let j = 0; j < k; j++) {
    let s = G[j * k + j];
    for (let p = 0; p < j; p++) s -= L[j * k + p] * L[j * k + p];
    const d = Math.sqrt(s > 1e-280 ? s : 1e-280);
    L[j * k + j] = d;
    for (let i = j + 1; i < k; i++) {
      let t = G[i * k + j];
      for (let p = 0; p < j; p++) t -= L[i * k + p] * L[j * k + p];
      L[i * k + j] = t / d;
    }
  }
  return L;
}

/** Makes the columns of Y (n x k, column-major) orthonormal in place (Cholesky QR twice); returns Y. */
export function orthonormalize(Y: Float64Array, n: number, k: number): Float64Array {
  for (let pass = 0; pass < 2; pass++) {
    const L = cholesky(gram(Y, n, k), k);
    for (let j = 0; j < k; j++) {
      const oj = j * n;
      for (let p = 0; p < j; p++) {
        const c = L[j * k + p];
        if (c === 0) continue;
        const op = p * n;
        for (let i = 0; i < n; i++) Y[oj + i] -= c * Y[op + i];
      }
      const inv = 1 / L[j * k + j];
      for (let i = 0; i < n; i++) Y[oj + i] *= inv;
    }
  }
  return Y;
}

/**
 * An orthonormal basis Q (rows x k, row-major) of the dominant column space of S: Q Q^T S is
 * close to the best rank-k approximation of S. `uniform` draws the random start (in [0, 1)).
 */
export function rangeFinder(S: SparseRows, k: number, powerIterations: number, uniform: () => number): Float64Array {
  const start = new Float64Array(S.cols * k);
  for (let i = 0; i < start.length; i++) start[i] = 2 * uniform() - 1;
  let Y = times(S, start, k);
  for (let it = 0; it < powerIterations; it++) Y = times(S, transposeTimes(S, Y, k), k);
  return transpose(orthonormalize(transpose(Y, S.rows, k), S.rows, k), k, S.rows);
}
