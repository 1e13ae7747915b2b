/**
 * The ranges of the models' settings, one place for every face that takes them: the CLI's
 * backend flags (generate, serve, worker, cluster) and the cluster file's schema.
 */
export { SYNTHETIC_MAX_VOCAB } from "./synthetic.js";
export { MAX_SEED } from "../core/random.js";
export { MAX_POOL_SIZE } from "../runtime/pool.js";

/** Most previous tokens the synthetic tables condition on (besides `all`). */
export const SYNTHETIC_MAX_HISTORY = 64;
/** Most threads per llama.cpp instance. */
export const MAX_THREADS = 256;
/** Largest forward pass `--eval-chunk` may ask for (node-llama-cpp's default batch size). */
export const MAX_EVAL_CHUNK = 512;
/** Most sequences one llama instance or worker may hold (each is a cache of the context size). */
export const MAX_SEQUENCES = 64;
/**
 * Most sequences per target instance `dsi serve` gives by default: on this machine kind a
 * pass of 8 one-token steps costs ~4 steps, and past ~8 tokens a pass grows in step with its
 * tokens (8 tokens 112 ms, 16 tokens 217 ms): more sequences add latency, not throughput.
 */
export const DEFAULT_SEQUENCES_CAP = 8;
