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
