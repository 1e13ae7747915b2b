/**
 * The model-instance contract every backend implements and every algorithm uses. It lives in
 * core so that algorithms see instances only through it, never through a backend.
 */
import type { SamplingParams } from "./sampling.js";
import type { OutputMode, PositionOutput } from "./verify.js";

/**
 * A read-only token sequence. A plain `number[]` is one; the engine passes `TokenView`s, which
 * cost O(drafts) to make instead of O(sequence), so a call's overhead does not grow with the
 * context. Instances must not assume they can index it with `[]`.
 */
export interface TokenSequence {
  readonly length: number;
  /** The token at `index`, 0 <= index < length. */
  at(index: number): number | undefined;
  /** Tokens start..end-1 as a new array (like Array.prototype.slice). */
  slice(start?: number, end?: number): number[];
}

/**
 * An immutable sequence: the first `baseLength` tokens of `base` followed by a copy of `tail`.
 * Requires: `base[0..baseLength)` never changes afterwards (the engine's committed tokens are
 * append-only), so a view stays valid however long an instance holds it.
 */
export class TokenView implements TokenSequence {
  private readonly tail: readonly number[];
  readonly length: number;
  constructor(
    /**
     * Public so that an instance that saw a view over the same `base` knows, without reading
     * them, that the first min(baseLength, its baseLength) tokens are the same (the engine's
     * committed prefix): a request then costs O(drafts), not O(sequence).
     */
    readonly base: readonly number[],
    readonly baseLength: number,
    tail: readonly number[] = [],
  ) {
    this.tail = tail.slice();
    this.length = baseLength + this.tail.length;
  }
  at(index: number): number | undefined {
    const i = index < 0 ? index + this.length : index;
    if (i < 0 || i >= this.length) return undefined;
    return i < this.baseLength ? this.base[i] : this.tail[i - this.baseLength];
  }
  slice(start = 0, end = this.length): number[] {
    const norm = (i: number): number => Math.min(this.length, Math.max(0, i < 0 ? i + this.length : i));
    const [a, b] = [norm(start), norm(end)];
    const out: number[] = [];
    for (let i = a; i < b; i++) out.push(i < this.baseLength ? this.base[i] : this.tail[i - this.baseLength]);
    return out;
  }
}

export interface EvalRequest {
  /** The full token sequence (prompt, committed tokens, drafts). */
  tokens: TokenSequence;
  /** Return outputs for every position p in from..tokens.length (inclusive). */
  from: number;
  mode: OutputMode;
  sampling: SamplingParams;
  /** Key of the instance's own samples in mode `sample` (see core/random). */
  seed: number;
  stream: number;
  /**
   * A scheduling hint: how long, from the call, the pass may wait before it starts for the
   * caller to keep its bound (DSI: commit no later than non-SI). A device that holds a pass to
   * batch sequences (a modelled one: models/batch-device.ts; a llama context's target
   * sequences: models/decode-gate.ts) holds none longer; others ignore it. Relative, so that
   * no clock need be shared: a llama context outlives the runtimes (and clocks) it serves.
   * Never sent to a worker.
   */
  mayWaitMs?: number;
}

export interface ModelInstance {
  /** A short label for traces and stats, e.g. "target-0". */
  readonly label: string;
  readonly vocabSize: number;
  /** End-of-sequence token, if the model has one. */
  readonly eosToken: number | undefined;
  /** Tokens a sequence may hold (the model's context), if limited. */
  readonly contextSize?: number;
  /**
   * Real kernels only: the most tokens this instance evaluates in one forward pass, the largest
   * chunk whose outputs are bit-identical to evaluating one token at a time (found by a
   * self-test when the model loads). Every evaluation is split into chunks no larger, so how
   * a context was built never changes an output.
   */
  readonly evalChunk?: number;
  /**
   * Requires: 0 <= req.from <= req.tokens.length.
   * Returns tokens.length - from + 1 outputs; output i is the next-token output after
   * tokens[0..from+i): the greedy token (mode `greedy`), the instance's own sample keyed by
   * (seed, stream, position) (mode `sample`), or the full distribution (mode `dist`).
   * The instance keeps its own cache; the caller never manages it. Rejects with an
   * AbortError when `signal` aborts, as soon as the backend can stop (at once for synthetic
   * and latency-wrapped instances; after the running forward pass for llama.cpp), and with an
   * InstanceLostError when the instance is gone for good.
   */
  evaluate(req: EvalRequest, signal?: AbortSignal): Promise<PositionOutput[]>;
  /**
   * Only instances that can come back after they were lost (a worker restarted at its
   * address): true when the instance serves again, unchanged (same vocabulary and EOS);
   * false when not yet; rejects when it never will (closed, or back with another model).
   */
  probe?(): Promise<boolean>;
}

/**
 * An instance that can no longer serve (its worker process died or stopped answering).
 * `evaluate` rejects with it; the pool retires the instance and the engine dispatches the
 * task again on another one.
 */
export class InstanceLostError extends Error {
  override readonly name: string = "InstanceLostError";
}

/**
 * A request the instance refuses (too long for its context, a token outside its vocabulary,
 * a bad mode): the caller's fault, not the instance's. The request fails with this error and
 * the instance stays in the pool.
 */
export class InvalidRequestError extends Error {
  override readonly name: string = "InvalidRequestError";
}

/** Checks the request's shape (`from` in 1..tokens.length); every backend calls it first. */
export function checkRequest(req: EvalRequest): void {
  if (!(Number.isInteger(req.from) && req.from >= 1 && req.from <= req.tokens.length)) {
    throw new RangeError(`evaluate: from=${req.from} outside 1..${req.tokens.length}`);
  }
}
