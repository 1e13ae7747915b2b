/**
 * Backends: where model instances and the tokenizer come from (synthetic tables or GGUF
 * models), chosen from a plain description that the CLI, the server and workers share.
 */
import type { ModelInstance } from "../core/instance.js";
import type { Clock } from "../runtime/clock.js";
import type { Runtime } from "../runtime/runtime.js";
import { cacheDirOf, DEFAULT_PAIR, defaultCacheDir, ensurePair } from "./gguf/llama-model.js";
import type { LatencyProfile } from "./latency.js";
import { cpuModel, fileFingerprint, type EvalChunk } from "./batch-invariance.js";
import { openLearnedStore, type LearnedStore } from "./learned-store.js";
import { kernelIdentity, LlamaPair, type ChatMessage, type LlamaInstance, type LlamaPairOptions } from "./llama.js";
import type { WorkerStats } from "./remote/protocol.js";
import { resolveModel, type DownloadProgress } from "./resolve.js";
import type { Learned } from "../runtime/costs.js";
import { SequenceRouter } from "./sequence-router.js";
import { MAX_SEQUENCES } from "./limits.js";
import { assembleRuntime, syntheticRuntime } from "./runtime.js";
import { SyntheticPair, SyntheticTokenizer, type SyntheticSpec } from "./synthetic.js";
import { serial } from "../runtime/serial.js";

export const BACKENDS = ["synthetic", "llama"] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface Tokenizer {
  /** A prompt's tokens (with BOS where the model wants one). */
  encode(text: string): number[];
  decode(tokens: readonly number[]): string;
  /** A token's text, where the text of a sequence is always the concatenation of its tokens' texts. */
  piece?(token: number): string;
  /** A chat rendered with the model's own template, as tokens; undefined without one. */
  chat?(messages: readonly ChatMessage[]): Promise<number[] | undefined>;
}

export interface Backend {
  name: BackendName | "cluster";
  /** A fixed number of target instances (a cluster's workers); undefined: as many as asked for. */
  targetCount?: number;
  tokenizer: Tokenizer;
  /** A prompt this backend's tokenizer always encodes (for commands given none). */
  defaultPrompt: string;
  /** Tokens a sequence may hold, if limited. */
  contextSize: number | undefined;
  /** Whether the models compute in real time (then only the real clock makes sense). */
  realCompute: boolean;
  /**
   * A runtime whose pool holds up to `sp` targets, caches emptied, latency added on `clock`.
   * Run every generation of a command or a server on one runtime: what it learns (costs,
   * acceptance) serves the next generation. `close` closes the runtimes it made.
   */
  runtime(clock: Clock, sp: number, profile: LatencyProfile, options?: RuntimeOptions): Promise<Runtime>;
  describe(): string;
  /**
   * Tokens per forward pass of the target and drafter instances (real kernels: the
   * batch-invariant chunk size); undefined where not applicable (synthetic) or not known.
   */
  evalChunk?: { target?: EvalChunk; drafter?: EvalChunk };
  /**
   * Where what the runtimes learn is kept between processes (learned-store.ts): the file of a
   * latency profile. Absent where nothing is kept (synthetic, clusters, `--no-learned-cache`).
   */
  learnedCache?: { pathFor(profile: LatencyProfile): string };
  /**
   * Writes what the runtimes learned so far, to `learnedCache` (a server every few seconds;
   * `close` does it too); never throws (a failure is a warning). Absent where nothing is kept.
   */
  saveLearned?(): Promise<void>;
  /** Counters of the backend's worker processes (clusters), for the server's metrics. */
  workerStats?(): Promise<{ address: string; stats: WorkerStats | undefined; /** Why it did not answer. */ error?: string }[]>;
  close(): Promise<void>;
}

/** How a backend's runtime is built. */
export interface RuntimeOptions {
  /** `false` for a long-lived runtime (a server's), whose event log would only grow. */
  events?: boolean;
  /**
   * Start from what another runtime over the same instances, clock kind and latency learned
   * (the demo's three algorithms share it); default: what the backend's `learnedCache` kept
   * from an earlier process, else a fresh `Learned`.
   */
  learned?: Learned;
}

/** Which backend to open, with its settings. */
export type BackendSpec =
  | ({ backend: "synthetic" } & Partial<SyntheticSpec>)
  | {
      backend: "llama";
      /** GGUF files: both, a target alone (non-SI, prompt lookup), or neither (then the generated default pair, made on first use). */
      target?: string;
      drafter?: string;
      threads: number;
      gpu: boolean;
      contextSize?: number;
      /** Tokens per forward pass (`--eval-chunk`); default: found by the batch-invariance self-test. */
      evalChunk?: number;
      /** Sequences per target instance (`--sequences`): generations each keep one, sharing the instance's passes (llama.ts, SharedContext). */
      sequences?: number;
      /** Without `sequences`: chosen for this many concurrent generations on this many target instances (`LlamaPair.defaultSequences`); without either, 1. */
      sequencesFor?: { concurrent: number; instances: number };
      /** Keep what runtimes learn in `$DSI_CACHE_DIR/learned/` (the CLI's default; `--no-learned-cache`); default false. */
      learnedCache?: boolean;
    };

/** A user error in a backend description (e.g. only one of target and drafter). */
export class BackendSpecError extends Error {
  override readonly name = "BackendSpecError";
}

/**
 * Opens the backend a spec describes; `onGenerated` hears where the default pair was made,
 * `onDownload` how far the download of a model given by URI is.
 */
export async function openBackend(spec: BackendSpec, onGenerated?: (dir: string) => void, onDownload?: DownloadProgress): Promise<Backend> {
  if (spec.backend === "synthetic") {
    const { backend: _, ...synthetic } = spec;
    return syntheticBackend(synthetic);
  }
  if (spec.drafter !== undefined && spec.target === undefined) {
    throw new BackendSpecError("--drafter needs --target (or give neither for the default pair)");
  }
  let files: { target: string; drafter?: string };
  if (spec.target !== undefined) {
    // A target alone (no --drafter) runs non-SI and prompt lookup (--draft ngram).
    files = { target: await resolveModel(spec.target, onDownload), ...(spec.drafter !== undefined ? { drafter: await resolveModel(spec.drafter, onDownload) } : {}) };
  }
  else {
    const dir = defaultCacheDir();
    const pair = await ensurePair(dir, DEFAULT_PAIR);
    if (pair.generated) onGenerated?.(dir);
    files = pair;
  }
  return llamaBackend({ ...files, threads: spec.threads, gpu: spec.gpu, contextSize: spec.contextSize, evalChunk: spec.evalChunk, sequences: spec.sequences, sequencesFor: spec.sequencesFor, learnedCache: spec.learnedCache });
}

/** One model of a pair, alone: what a worker serves, or a cluster's in-process drafter. */
export type InstanceSpec =
  | ({ backend: "synthetic" } & Partial<SyntheticSpec>)
  | { backend: "llama"; /** One GGUF file. */ model: string; threads: number; gpu: boolean; evalChunk?: number };

/** Opens one instance of `role` with its tokenizer; `close` frees what it loaded. */
export async function openInstance(
  spec: InstanceSpec,
  role: "target" | "drafter",
  label: string,
  /** Sequences of the instance (default 1): `sequences` holds them, `instance` is the first. */
  count = 1,
): Promise<{ instance: ModelInstance; sequences: ModelInstance[]; tokenizer: Tokenizer; defaultPrompt: string; close(): Promise<void> }> {
  const name = (j: number): string => (count > 1 ? `${label}/${j}` : label);
  if (spec.backend === "synthetic") {
    const { backend: _, ...synthetic } = spec;
    const pair = new SyntheticPair(synthetic);
    const tokenizer = new SyntheticTokenizer(pair.spec.vocab);
    const sequences = Array.from({ length: count }, (_, j) => pair.instance(role, name(j)));
    return { instance: sequences[0], sequences, tokenizer, defaultPrompt: tokenizer.defaultPrompt, close: async () => undefined };
  }
  // The pair loader checks the file like any model file; one file serves either role.
  const model = await resolveModel(spec.model);
  const pair = await LlamaPair.load({ target: model, drafter: model, threads: spec.threads, gpu: spec.gpu, evalChunk: spec.evalChunk });
  const sequences = await pair.sequences(role, label, count);
  return {
    instance: sequences[0],
    sequences,
    tokenizer: { encode: (t) => pair.encode(t), decode: (t) => pair.decode(t) },
    defaultPrompt: "the",
    close: () => pair.dispose(),
  };
}

export function syntheticBackend(spec: Partial<SyntheticSpec>, o: { /** Sequences per target instance, sharing modelled passes (default 1). */ sequences?: number } = {}): Backend {
  const pair = new SyntheticPair(spec);
  const runtimes = new Set<Runtime>();
  const s = pair.spec;
  const tokenizer = new SyntheticTokenizer(s.vocab);
  return {
    name: "synthetic",
    tokenizer,
    defaultPrompt: tokenizer.defaultPrompt,
    contextSize: undefined,
    realCompute: false,
    runtime: async (clock, sp, profile, r = {}) => kept(runtimes, syntheticRuntime({ pair, clock, sp, profile, ...(o.sequences !== undefined ? { sequences: o.sequences } : {}), ...r })),
    describe: () => `synthetic (vocab ${s.vocab}, context ${s.context}, agreement ${s.agreement}${s.copy > 0 ? `, copy ${s.copy}` : ""}, model seed ${s.seed})`,
    close: async () => closeAll(runtimes),
  };
}

/**
 * GGUF target and drafter. Instances are created when a pool first needs them and kept for
 * later runtimes; each runtime starts them with empty caches. With `learnedCache`, a runtime
 * given no `learned` starts from what an earlier process learned on the same files, kernels,
 * threads, device, eval chunks, CPU and latency profile, and `close` (or `saveLearned`) keeps
 * what it learned for the next.
 */
export async function llamaBackend(o: LlamaPairOptions & { learnedCache?: boolean; sequences?: number; sequencesFor?: { concurrent: number; instances: number } }): Promise<Backend> {
  if (o.sequences !== undefined && !(Number.isInteger(o.sequences) && o.sequences >= 1)) throw new BackendSpecError(`sequences must be a positive integer, got ${o.sequences}`);
  const pair = await LlamaPair.load(o);
  const sequences = o.sequences ?? (o.sequencesFor ? await pair.defaultSequences(o.sequencesFor.concurrent, o.sequencesFor.instances) : 1);
  // The drafter serves every generation: each generation the pool admits at once keeps a
  // sequence of its own (sequence-router.ts), so none re-reads its context after another's
  // draft. A runtime that admits more than the drafter has sequences adds a context of them.
  const drafter = pair.drafter ? new SequenceRouter(await pair.sequences("drafter", "drafter", 1)) : undefined;
  // One growth at a time; a failed one (no memory for the context) fails its runtime only.
  const growing = serial();
  const drafterFor = (generations: number): Promise<void> =>
    growing(async () => {
      const more = Math.min(MAX_SEQUENCES, generations) - drafter!.members.length;
      if (more > 0) drafter!.grow(await pair.sequences("drafter", `drafter+${drafter!.members.length}`, more));
    });
  // Target instances, each a context with `sequences` sequences (the pool leases sequences).
  const targets: Promise<LlamaInstance[]>[] = [];
  const runtimes = new Set<Runtime>();
  const cacheDir = cacheDirOf(o.cacheDir);
  const warn = o.warn ?? ((m: string) => process.stderr.write(`dsi: warning: ${m}\n`));
  // What measured costs depend on besides the latency profile (each runtime adds its own).
  const identity =
    o.learnedCache && cacheDir !== undefined
      ? {
          backend: "llama",
          target: await fileFingerprint(o.target),
          drafter: o.drafter === undefined ? null : await fileFingerprint(o.drafter),
          ...kernelIdentity(pair.llama, o.threads),
          cpu: cpuModel(),
          evalChunk: [pair.evalChunks.target.chunk, pair.evalChunks.drafter?.chunk ?? null],
          contextSize: pair.contextSize,
          // (What a task costs beside others depends on whether other generations' sequences
          // share its context: a server's under load are not a lone generation's costs. Whether,
          // not how many: a server's default count follows free memory at its start.)
          severalSequences: sequences > 1,
        }
      : undefined;
  const storeFor = (profile: LatencyProfile): LearnedStore | undefined =>
    identity && openLearnedStore({ dir: cacheDir!, identity: { ...identity, latency: { target: profile.target, drafter: profile.drafter } }, warn });
  // The Learned to keep per file: the last runtime's of each profile (the demo's share one).
  const toSave = new Map<string, { store: LearnedStore; learned: Learned }>();
  const saveLearned = async (): Promise<void> => {
    await Promise.all([...toSave.values()].map(({ store, learned }) => store.save(learned)));
  };
  return {
    name: "llama",
    tokenizer: { encode: (t) => pair.encode(t), decode: (t) => pair.decode(t), chat: (m) => pair.chatTokens(m) },
    defaultPrompt: "the",
    contextSize: pair.contextSize,
    evalChunk: pair.evalChunks,
    realCompute: true,
    ...(identity ? { learnedCache: { pathFor: (profile: LatencyProfile) => storeFor(profile)!.path }, saveLearned } : {}),
    runtime: async (clock: Clock, sp: number, profile: LatencyProfile, o: RuntimeOptions = {}): Promise<Runtime> => {
      if (drafter) await drafterFor(sp * sequences);
      await drafter?.reset();
      const store = storeFor(profile);
      const learned = o.learned ?? (await store?.load());
      const rt = assembleRuntime({
        clock,
        ...(drafter ? { drafter } : {}),
        target: async (i) => {
          const instance = Math.floor(i / sequences);
          // (A context that failed to be made, out of memory say, is made again at the pool's
          // next try rather than failing every later sequence of the instance at once.)
          const making = (targets[instance] ??= pair.sequences("target", `target-${instance}`, sequences));
          making.catch(() => {
            if (targets[instance] === making) delete targets[instance];
          });
          const t = (await making)[i % sequences];
          await t.reset();
          return t;
        },
        vocabSize: pair.vocabSize,
        eosToken: pair.eosToken,
        sp,
        sequences,
        profile,
        // In-process instances and the drafter share this machine's CPU (or its one GPU).
        sharedDevice: true,
        ...o,
        ...(learned ? { learned } : {}),
      });
      if (store) toSave.set(store.path, { store, learned: rt.learned });
      return kept(runtimes, rt);
    },
    describe: () =>
      `llama.cpp ${o.gpu ? "GPU" : "CPU"} (${drafter ? "" : "a target alone, "}${o.threads} thread${o.threads > 1 ? "s" : ""} per instance, ${sequences > 1 ? `${sequences} sequences per target instance, ` : ""}vocab ${pair.vocabSize}, context ${pair.contextSize}, ${evalChunkSummary(pair.evalChunks)})`,
    close: async () => {
      closeAll(runtimes);
      await saveLearned();
      await pair.dispose();
    },
  };
}

/** Keeps a runtime a backend made, for `closeAll`. */
function kept(runtimes: Set<Runtime>, rt: Runtime): Runtime {
  runtimes.add(rt);
  return rt;
}

/** Closes the runtimes a backend made (their background probes stop). */
function closeAll(runtimes: Set<Runtime>): void {
  for (const rt of runtimes) rt.close();
  runtimes.clear();
}

/** "eval chunk 32", or per model when target and drafter differ. */
export function evalChunkSummary(e: { target?: EvalChunk; drafter?: EvalChunk }): string {
  if (e.drafter === undefined || e.target?.chunk === e.drafter.chunk) return `eval chunk ${e.target?.chunk ?? "?"}`;
  return `eval chunk ${e.target?.chunk ?? "?"}/${e.drafter?.chunk ?? "?"} (target/drafter)`;
}
