/**
 * Batch invariance of real kernels. llama.cpp's CPU (and GPU) kernels change how they sum once
 * a forward pass holds more than some number of tokens, so a context read in one long call
 * leaves a KV cache that differs in the last bits from the same context read one token at a
 * time; on a near tie that flips a greedy token. A restarted worker, a resend, a prefill or
 * an instance catching up would then answer differently from non-SI. So every evaluation is
 * split into chunks no larger than the size up to which outputs are bit-identical to one
 * token at a time. The size is found by a self-test when a model loads (`measureEvalChunk`)
 * and kept per model file, llama.cpp build, CPU, device and thread count
 * (`$DSI_CACHE_DIR/batch-invariance.json`), so only the first load on a machine pays for it.
 */
import { createHash } from "node:crypto";
import { cpus } from "node:os";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { keyedUniform } from "../core/random.js";
import { addEntry, readEntries } from "./entry-cache.js";

/**
 * Chunk sizes the self-test tries, smallest first; it stops at the first that differs. Sizes
 * below 8 (slow to try) only when 8 differs.
 */
export const CHUNK_CANDIDATES: readonly number[] = [8, 16, 32, 48, 64, 96];
const SMALL_CANDIDATES: readonly number[] = [4, 2];
/** Length of the probe path (capped by the model's context). */
export const PROBE_LENGTH = 96;
/** Bumped when the self-test changes, so older cached results are measured again. */
const SELF_TEST_VERSION = 1;

/** An output as the self-test compares it: the greedy token and its probability, bit for bit. */
export interface ProbeOutput {
  token: number;
  /** The softmax probability of `token`: any change of any logit changes it. */
  confidence: number;
}

/**
 * Evaluates `path` from an empty cache in calls of `sizes[0]`, `sizes[1]`, ... tokens (cycled)
 * and returns the output after every prefix (`path.length` outputs).
 */
export type ProbeRunner = (path: readonly number[], sizes: readonly number[]) => Promise<ProbeOutput[]>;

export interface EvalChunk {
  /** Tokens per forward pass used for every evaluation. */
  chunk: number;
  /** How it was chosen: measured now, read from the cache, given (`--eval-chunk`), or as a worker reported it. */
  source: "self-test" | "cache" | "flag" | "worker";
  /** Largest tried size whose outputs matched one token at a time (self-test and cache). */
  invariantUpTo?: number;
  /** Smallest tried size whose outputs differed; absent when every tried size matched. */
  firstDiffering?: number;
  /** Milliseconds the self-test took (self-test only). */
  selfTestMs?: number;
}

/** A fixed pseudo-random path over the vocabulary, starting with `first` (BOS) when given. */
export function probePath(vocabSize: number, length: number, first?: number): number[] {
  const path: number[] = [];
  for (let i = 0; i < length; i++) path.push(i === 0 && first !== undefined ? first : Math.floor(keyedUniform(20261203, 17, i) * vocabSize));
  return path;
}

/**
 * Chunk patterns tried for size c: full chunks of c mixed with shorter ones at odd offsets,
 * since a catch-up can start anywhere and be of any length up to the chunk.
 */
function patternFor(c: number): number[] {
  return [c, Math.floor(c / 2) + 1, Math.max(1, c - 1)];
}

/**
 * Finds the chunk size: the reference is one token at a time; sizes are tried in increasing
 * order up to the probe's length and the test stops at the first that differs. The result
 * keeps a margin of one candidate below the largest size that matched when a larger one
 * differed (the sizes between two candidates are not all tried).
 */
export async function selfTestEvalChunk(run: ProbeRunner, path: readonly number[]): Promise<EvalChunk> {
  const t0 = performance.now();
  const reference = await run(path, [1]);
  const same = (out: readonly ProbeOutput[]): boolean =>
    out.length === reference.length && out.every((o, i) => o.token === reference[i].token && Object.is(o.confidence, reference[i].confidence));
  const tried = async (sizes: readonly number[]): Promise<{ passed: number[]; firstDiffering?: number }> => {
    const passed: number[] = [];
    for (const c of sizes) {
      if (c > path.length) break;
      if (!same(await run(path, patternFor(c)))) return { passed, firstDiffering: c };
      passed.push(c);
    }
    return { passed };
  };
  let r = await tried(CHUNK_CANDIDATES);
  if (r.passed.length === 0 && r.firstDiffering !== undefined) {
    const small = await tried([...SMALL_CANDIDATES].reverse());
    r = { passed: small.passed, firstDiffering: small.firstDiffering ?? r.firstDiffering };
  }
  const invariantUpTo = r.passed.at(-1) ?? 1;
  const chunk = r.firstDiffering === undefined ? invariantUpTo : (r.passed.at(-2) ?? 1);
  return { chunk, source: "self-test", invariantUpTo, firstDiffering: r.firstDiffering, selfTestMs: performance.now() - t0 };
}

/**
 * A model file's identity without reading all of it: its size and a hash of 16 evenly spaced
 * 64 KiB blocks (the first holds the header and metadata). Generated files are the same bytes
 * everywhere, so their result is found again wherever they are written.
 */
export async function fileFingerprint(path: string): Promise<string> {
  const file = await open(path, "r");
  try {
    const { size } = await file.stat();
    const hash = createHash("sha256").update(String(size));
    const block = Buffer.alloc(Math.min(65536, size));
    const blocks = size <= block.length * 16 ? 1 : 16;
    for (let i = 0; i < blocks; i++) {
      const at = blocks === 1 ? 0 : Math.floor(((size - block.length) * i) / (blocks - 1));
      const { bytesRead } = await file.read(block, 0, block.length, at);
      hash.update(block.subarray(0, bytesRead));
    }
    return hash.digest("hex").slice(0, 32);
  } finally {
    await file.close();
  }
}

/** What the result depends on besides the model: the kernels that run it. */
export interface KernelIdentity {
  /** llama.cpp build and release, and its system info (SIMD paths). */
  build: string;
  /** CPU or GPU type the model runs on. */
  device: string;
  threads: number;
}

/** The CPU's model name (part of every identity of measured kernels). */
export function cpuModel(): string {
  return cpus()[0]?.model ?? "unknown cpu";
}

export function cacheKey(model: string, kernels: KernelIdentity): string {
  return createHash("sha256").update(JSON.stringify([SELF_TEST_VERSION, model, kernels.build, kernels.device, kernels.threads, cpuModel()])).digest("hex").slice(0, 32);
}

interface CacheEntry {
  chunk: number;
  invariantUpTo: number;
  firstDiffering?: number;
  measured: string;
}

const CACHE_NAME = "batch-invariance.json";
const CACHE_KIND = "batch-invariance cache";

export interface MeasureOptions {
  /** The model file (its identity keys the cache). */
  modelPath: string;
  kernels: KernelIdentity;
  /** Folder of the cache; undefined: measure every time, keep nothing. */
  cacheDir: string | undefined;
  /** Runs the probe on a fresh context of the model. */
  run: ProbeRunner;
  path: readonly number[];
  warn: (msg: string) => void;
}

/** The model's chunk size: from the cache when measured before on these kernels, else by the self-test (then cached). */
export async function measureEvalChunk(o: MeasureOptions): Promise<EvalChunk> {
  const key = cacheKey(await fileFingerprint(o.modelPath), o.kernels);
  const path = o.cacheDir === undefined ? undefined : join(o.cacheDir, CACHE_NAME);
  if (path !== undefined) {
    const hit = (await readEntries<CacheEntry>(path, SELF_TEST_VERSION, CACHE_KIND, (why) => o.warn(`${why}; measuring again`)))[key];
    if (hit && Number.isInteger(hit.chunk) && hit.chunk >= 1) return { chunk: hit.chunk, source: "cache", invariantUpTo: hit.invariantUpTo, firstDiffering: hit.firstDiffering };
  }
  const result = await selfTestEvalChunk(o.run, o.path);
  if (path !== undefined) {
    const entry: CacheEntry = { chunk: result.chunk, invariantUpTo: result.invariantUpTo ?? result.chunk, firstDiffering: result.firstDiffering, measured: new Date().toISOString() };
    // (A cache that cannot be written is a warning, not an error.)
    await addEntry(path, SELF_TEST_VERSION, CACHE_KIND, key, entry).catch((err: unknown) =>
      o.warn(`cannot write ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); the next load measures again`),
    );
  }
  return result;
}

/** A few words for logs: "32 (invariant up to 48, not 64; cached)". */
export function describeEvalChunk(e: EvalChunk): string {
  if (e.source === "flag") return `${e.chunk} (--eval-chunk)`;
  if (e.source === "worker") return `${e.chunk} (as the worker found it)`;
  const range = e.firstDiffering === undefined ? `invariant up to ${e.invariantUpTo}, the largest size tried` : `invariant up to ${e.invariantUpTo}, not ${e.firstDiffering}`;
  return `${e.chunk} (${range}; ${e.source === "cache" ? "cached" : `self-test ${Math.round(e.selfTestMs ?? 0)} ms`})`;
}

/**
 * What a user must know when these kernels are batch-invariant only one token at a time: the
 * outputs stay exact (every pass reads one token), but a window then costs one pass per token,
 * so speculation cannot pay on this build. Undefined otherwise.
 */
export function evalChunkWarning(e: EvalChunk, model: string): string | undefined {
  if (e.source === "flag" || e.source === "worker" || e.chunk > 1) return undefined;
  return `${model}: this llama.cpp build's outputs match one-token-at-a-time evaluation only in passes of one token (differ at ${e.firstDiffering ?? 2}); every evaluation runs one token per pass, so outputs stay exact but SI and DSI cannot beat non-SI here (--eval-chunk N trades that exactness for speed)`;
}
