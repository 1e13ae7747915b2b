/**
 * The model-instance contract every backend implements and every algorithm uses.
 */
import type { SamplingParams } from "../core/sampling.js";
import type { OutputMode, PositionOutput } from "../core/verify.js";

export interface EvalRequest {
  /** The full token sequence (prompt, committed tokens, drafts). */
  tokens: readonly number[];
  /** Return outputs for every position p in from..tokens.length (inclusive). */
  from: number;
  mode: OutputMode;
  sampling: SamplingParams;
  /** Key of the instance's own samples in mode `sample` (see core/random). */
  seed: number;
  stream: number;
}

export interface ModelInstance {
  /** A short label for traces and stats, e.g. "target-0". */
  readonly label: string;
  readonly vocabSize: number;
  /** End-of-sequence token, if the model has one. */
  readonly eosToken: number | undefined;
  /**
   * Output i is the next-token output after tokens[0..from+i). The instance keeps its own
   * cache; the caller never manages it. Rejects with an AbortError when `signal` aborts,
   * as soon as the backend can stop (at once for synthetic and latency-wrapped instances).
   */
  evaluate(req: EvalRequest, signal?: AbortSignal): Promise<PositionOutput[]>;
}

/** Checks the request's shape; backends call it first. */
export function checkRequest(req: EvalRequest): void {
  if (!(req.from >= 0 && req.from <= req.tokens.length)) {
    throw new RangeError(`evaluate: from=${req.from} outside 0..${req.tokens.length}`);
  }
}
