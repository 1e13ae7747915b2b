/**
 * The llama backend: GGUF models through node-llama-cpp (llama.cpp).
 *
 * Each instance is one sequence of a context (a context holds one or several; each context
 * has its own threads, so contexts run in parallel). It mirrors the tokens in its KV cache,
 * reuses the longest common prefix with each request, and rolls back the rest. A started
 * decode cannot be interrupted, so preemption is soft: the engine drops the result, the
 * sequence stays busy until the decode returns, and the cache keeps only tokens that were
 * evaluated (rolled back on the next request if they were speculative). A sequence's
 * evaluations run one at a time; the sequences of a context share its forward passes where
 * that is exact, and take turns on it pass by pass elsewhere (SharedContext). A sequence is
 * disposed only after its last evaluation settled, the context after its last sequence.
 */
import { open, stat } from "node:fs/promises";
import { freemem } from "node:os";
import { DEFAULT_SEQUENCES_CAP, MAX_SEQUENCES } from "./limits.js";
import { checkGgufStructure, GgufFormatError } from "./gguf/check.js";
import { cacheDirOf } from "./gguf/llama-model.js";
import { evalChunkWarning, measureEvalChunk, PROBE_LENGTH, probePath, type EvalChunk, type KernelIdentity, type ProbeOutput, type ProbeRunner } from "./batch-invariance.js";
import type { ChatHistoryItem, ChatWrapper, Llama, LlamaContext, LlamaContextSequence, LlamaModel } from "node-llama-cpp";
import PQueue from "p-queue";
import { keyedUniform } from "../core/random.js";
import { distributionFromProbs, sampleIndex } from "../core/sampling.js";
import type { PositionOutput } from "../core/verify.js";
import { AbortError } from "../runtime/abort.js";
import { serial } from "../runtime/serial.js";
import { DecodeGate } from "./decode-gate.js";
import { checkGpuKernels, gpuIdentity, GpuUnusableError } from "./gpu-check.js";
import { checkRequest, InvalidRequestError, TokenView, type EvalRequest, type ModelInstance, type TokenSequence } from "../core/instance.js";

/** A problem with model files or requests that the user can fix; the message says how. */
export class ModelFileError extends Error {
  override readonly name = "ModelFileError";
}

/**
 * A sequence too long for the instance's context (node-llama-cpp would shift the cache and
 * drop early tokens silently). A request error like any InvalidRequestError: the request
 * fails, the instance stays.
 */
export class ContextOverflowError extends InvalidRequestError {
  override readonly name: string = "ContextOverflowError";
}

/** One message of a chat, as the OpenAI API has them. */
export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

export interface LlamaPairOptions {
  target: string;
  /** Absent: a target alone (non-SI, prompt lookup). */
  drafter?: string;
  /** Threads per instance (each instance is one context). */
  threads: number;
  /** Use a GPU build of llama.cpp (CUDA, Vulkan or Metal) if one is available. */
  gpu: boolean;
  /** KV cache size per instance; default: the target's training context. */
  contextSize?: number;
  /**
   * Tokens per forward pass for every evaluation (`--eval-chunk`); default: the largest size
   * whose outputs are bit-identical to one token at a time, by the self-test at load.
   */
  evalChunk?: number;
  /** Folder of the self-test's cache; default `$DSI_CACHE_DIR` (or ~/.cache/dsi); false: none. */
  cacheDir?: string | false;
  /** Hears warnings (an unreadable cache); default: stderr. */
  warn?: (message: string) => void;
}

/** Checks that a path is a readable, structurally sound GGUF model file; throws ModelFileError otherwise. */
export async function checkGgufFile(path: string, role: string): Promise<void> {
  let file;
  try {
    if ((await stat(path)).isDirectory()) throw new ModelFileError(`${role} model ${path} is a directory, not a GGUF file`);
    file = await open(path, "r");
  } catch (err) {
    if (err instanceof ModelFileError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new ModelFileError(`${role} model file not found: ${path} (generate a pair with \`dsi make-model\`)`);
    throw new ModelFileError(`cannot read the ${role} model file ${path}: ${(err as Error).message}`);
  }
  try {
    const { size } = await file.stat();
    let summary;
    try {
      summary = await checkGgufStructure(file, size);
    } catch (err) {
      if (!(err instanceof GgufFormatError)) throw err;
      throw new ModelFileError(`${role} model ${path} ${err.message}`);
    }
    if (summary.architecture === undefined) throw new ModelFileError(`${role} model ${path} has no general.architecture metadata: not a model file, or a header only`);
    if (summary.tensors === 0) throw new ModelFileError(`${role} model ${path} holds no tensors: not a model file, or a header only`);
  } finally {
    await file.close();
  }
}

let llamaPromise: Promise<Llama> | undefined;
let llamaGpu: boolean | undefined;
/** llama.cpp's last error lines, kept out of the terminal and put into our one-line errors. */
const llamaErrors: string[] = [];

/**
 * Loads llama.cpp once per process: the prebuilt CPU build, or a GPU build when asked. A GPU
 * build is first checked in a child process (gpu-check.ts): one that cannot run on the GPU
 * there would abort this process at its first decode.
 */
export async function loadLlama(gpu: boolean, cacheDir?: string | false): Promise<Llama> {
  if (llamaPromise && llamaGpu === gpu) return llamaPromise;
  const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
  llamaGpu = gpu;
  llamaPromise = getLlama({
    gpu: gpu ? "auto" : false,
    build: "never",
    logLevel: LlamaLogLevel.error,
    logger: (level, message) => {
      if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) llamaErrors.splice(0, llamaErrors.length - 4, message.trim());
    },
  }).then(async (llama) => {
    if (gpu && llama.gpu !== false) {
      try {
        await checkGpuKernels({
          gpu: llama.gpu,
          identity: await gpuIdentity(kernelIdentity(llama, 1).build, await llama.getGpuDeviceNames()),
          cacheDir: cacheDirOf(cacheDir),
        });
      } catch (err) {
        // Not kept for the process: a later call loads and checks again.
        llamaPromise = undefined;
        await llama.dispose().catch(() => undefined);
        throw err instanceof GpuUnusableError ? new ModelFileError(err.message) : err;
      }
    }
    return llama;
  });
  const llama = await llamaPromise;
  if (gpu && llama.gpu === false) throw new ModelFileError("--gpu: no GPU build of llama.cpp is available on this machine (run without --gpu)");
  return llama;
}

export class LlamaPair {
  private readonly instances: LlamaInstance[] = [];
  private constructor(
    readonly llama: Llama,
    readonly target: LlamaModel,
    /** Absent: a target alone. */
    readonly drafter: LlamaModel | undefined,
    readonly contextSize: number,
    private readonly threads: number,
    /** Tokens per forward pass of each model, and how that was found. */
    readonly evalChunks: { target: EvalChunk; drafter?: EvalChunk },
  ) {}

  static async load(o: LlamaPairOptions): Promise<LlamaPair> {
    await checkGgufFile(o.target, "target");
    if (o.drafter !== undefined) await checkGgufFile(o.drafter, "drafter");
    const llama = await loadLlama(o.gpu, o.cacheDir);
    const load = async (path: string, role: string): Promise<LlamaModel> => {
      llamaErrors.length = 0;
      try {
        return await llama.loadModel({ modelPath: path, gpuLayers: o.gpu ? "auto" : 0 });
      } catch (err) {
        const detail = llamaErrors.at(-1)?.replace(/\s+/g, " ") ?? "";
        throw new ModelFileError(`could not load the ${role} model ${path}: ${(err as Error).message}${detail ? ` (llama.cpp: ${detail})` : ""}`);
      }
    };
    const target = await load(o.target, "target");
    let drafter: LlamaModel | undefined;
    try {
      drafter = o.drafter === undefined ? undefined : await load(o.drafter, "drafter");
      if (drafter) checkSameVocabulary(target, drafter);
    } catch (err) {
      await target.dispose();
      await drafter?.dispose();
      throw err;
    }
    const contextSize = o.contextSize ?? target.trainContextSize;
    let evalChunks;
    try {
      const chunkOf = (model: LlamaModel, path: string): Promise<EvalChunk> => evalChunkOf(llama, model, path, contextSize, o);
      const t = await chunkOf(target, o.target);
      evalChunks = { target: t, ...(drafter ? { drafter: o.drafter === o.target ? t : await chunkOf(drafter, o.drafter!) } : {}) };
    } catch (err) {
      await target.dispose();
      await drafter?.dispose();
      throw err;
    }
    return new LlamaPair(llama, target, drafter, contextSize, o.threads, evalChunks);
  }

  get vocabSize(): number {
    return vocabSize(this.target);
  }

  private chatWrapper: ChatWrapper | undefined;

  /**
   * A chat rendered with the target's own template (GGUF `tokenizer.chat_template`, through
   * node-llama-cpp's chat wrappers), ending where the assistant's reply begins, as tokens;
   * undefined when the GGUF has no template.
   */
  async chatTokens(messages: readonly ChatMessage[]): Promise<number[] | undefined> {
    const metadata = this.target.fileInfo.metadata as { tokenizer?: { chat_template?: unknown } } | undefined;
    if (typeof metadata?.tokenizer?.chat_template !== "string") return undefined;
    const { resolveChatWrapper } = await import("node-llama-cpp");
    this.chatWrapper ??= resolveChatWrapper(this.target);
    const history: ChatHistoryItem[] = messages.map((m) => (m.role === "assistant" ? { type: "model", response: [m.content] } : { type: m.role, text: m.content }));
    history.push({ type: "model", response: [] });
    const { contextText } = this.chatWrapper.generateContextState({ chatHistory: history });
    return contextText.tokenize(this.target.tokenizer) as number[];
  }

  /** Text to tokens with the GGUF's own tokenizer, BOS first unless `bos` is false. */
  encode(text: string, bos = true): number[] {
    const tokens = this.target.tokenize(text) as number[];
    const id = this.target.tokens.bos;
    return bos && id !== null ? [id, ...tokens] : tokens;
  }

  decode(tokens: readonly number[]): string {
    return this.target.detokenize(tokens as never);
  }

  get eosToken(): number | undefined {
    return this.target.tokens.eos ?? undefined;
  }

  /**
   * The default number of sequences per target instance for `concurrent` generations on
   * `instances` target instances (a server's --max-concurrent and --sp): enough for each
   * generation to keep one, at most `DEFAULT_SEQUENCES_CAP`, and only as many as the targets'
   * contexts and the drafter's sequences (one per generation the pool runs at once) fit in a
   * quarter of the free memory (or of the process's memory limit), by node-llama-cpp's
   * estimate of a context of so many sequences of the pair's context size. One where
   * sequences would take turns (several threads, a GPU, or internals not as expected:
   * SharedContext): there more sequences cost memory and bring no throughput (the pool's
   * admission already keeps each generation's cache).
   */
  async defaultSequences(concurrent: number, instances: number): Promise<number> {
    if (!this.passesShareable) return 1;
    const limit = process.constrainedMemory?.() ?? 0;
    const budget = Math.min(freemem(), limit > 0 ? limit : Infinity) / 4;
    const ram = async (model: LlamaModel, sequences: number): Promise<number> =>
      (await model.fileInsights.estimateContextResourceRequirementsV2({ contextSize: this.contextSize, modelGpuLayers: 0, sequences })).cpuRam;
    const n = Math.max(1, instances);
    for (let s = Math.min(DEFAULT_SEQUENCES_CAP, Math.ceil(concurrent / n)); s > 1; s--) {
      // The targets' contexts, and the drafter's sequences (one per generation the pool runs at once).
      const need = n * (await ram(this.target, s)) + (this.drafter ? await ram(this.drafter, Math.min(MAX_SEQUENCES, n * s)) : 0);
      if (need <= budget) return s;
    }
    return 1;
  }

  /** Whether this pair's contexts may let their sequences share passes (SharedContext): a CPU, one thread, reachable internals. */
  private get passesShareable(): boolean {
    return this.llama.gpu === false && this.threads === 1 && logitReadsSerialisable(this.llama);
  }

  /** A new instance with its own context and sequence. */
  async instance(role: "target" | "drafter", label: string): Promise<LlamaInstance> {
    return (await this.sequences(role, label, 1))[0];
  }

  /**
   * An instance holding `count` sequences: one context (`count` caches of the pair's context
   * size), one `LlamaInstance` per sequence, labelled `label/j` when there are several. The
   * sequences keep their caches and share the context's passes on a CPU with one thread, else
   * take turns on its compute (SharedContext says why).
   */
  async sequences(role: "target" | "drafter", label: string, count: number): Promise<LlamaInstance[]> {
    const model = role === "target" ? this.target : this.drafter;
    if (!model) throw new Error("this pair has no drafter model (a target alone)");
    const chunk = this.evalChunks[role]!.chunk;
    const context = await model.createContext({ contextSize: this.contextSize, threads: this.threads, sequences: count });
    // (The drafter's sequences are not gated: a draft is short, and no sequence waits for
    // another's there as the target's generations do for their next pass.)
    const shared = new SharedContext(context, count, count > 1 && this.passesShareable && serialiseLogitReads(context), role === "target");
    const made = Array.from(
      { length: count },
      (_, j) => new LlamaInstance(count > 1 ? `${label}/${j}` : label, context, context.getSequence(), vocabSize(this.target), this.eosToken, chunk, shared),
    );
    this.instances.push(...made);
    return made;
  }

  async dispose(): Promise<void> {
    for (const i of this.instances.splice(0)) await i.dispose();
    await this.target.dispose();
    await this.drafter?.dispose();
  }
}

/**
 * A model's batch-invariant chunk size: given (`--eval-chunk`), cached, or measured by the
 * self-test on a context of its own (`batch-invariance.ts`).
 */
async function evalChunkOf(llama: Llama, model: LlamaModel, modelPath: string, contextSize: number, o: LlamaPairOptions): Promise<EvalChunk> {
  if (o.evalChunk !== undefined) return { chunk: o.evalChunk, source: "flag" };
  const probeLength = Math.min(PROBE_LENGTH, contextSize, model.trainContextSize);
  const run: ProbeRunner = async (path, sizes) => {
    const context = await model.createContext({ contextSize: probeLength, threads: o.threads, sequences: 1 });
    try {
      const sequence = context.getSequence();
      const next = { generateNext: { token: true, confidence: true, options: { temperature: 0 } } } as const;
      const outputs: ProbeOutput[] = [];
      for (let at = 0, k = 0; at < path.length; k++) {
        const size = sizes[k % sizes.length];
        const results = await sequence.controlledEvaluate(path.slice(at, at + size).map((t) => [t, next] as const) as never);
        for (const r of results as { next?: { token?: number; confidence?: number } }[]) outputs.push({ token: r.next?.token ?? -1, confidence: r.next?.confidence ?? NaN });
        at += size;
      }
      return outputs;
    } finally {
      await context.dispose();
    }
  };
  const warn = o.warn ?? ((m: string) => process.stderr.write(`dsi: warning: ${m}\n`));
  const found = await measureEvalChunk({
    modelPath,
    kernels: kernelIdentity(llama, o.threads),
    cacheDir: cacheDirOf(o.cacheDir),
    run,
    path: probePath(vocabSize(model), probeLength, model.tokens.bos ?? undefined),
    warn,
  });
  const caution = evalChunkWarning(found, modelPath);
  if (caution) warn(caution);
  return found;
}

/** The kernels a model runs on: llama.cpp build and SIMD paths, device, threads (what measured costs depend on). */
export function kernelIdentity(llama: Llama, threads: number): KernelIdentity {
  const release = llama.llamaCppRelease;
  return { build: `${llama.buildType} ${release.repo}@${release.release} ${llama.systemInfo}`, device: llama.gpu === false ? "cpu" : `${llama.gpu}`, threads };
}

/**
 * A GGUF file's tokenizer alone (no weights loaded): what an orchestrator whose models all run
 * in workers needs to turn text into tokens and back.
 */
export async function loadLlamaTokenizer(path: string): Promise<{ vocabSize: number; encode(text: string): number[]; decode(tokens: readonly number[]): string; close(): Promise<void> }> {
  await checkGgufFile(path, "tokenizer");
  const llama = await loadLlama(false);
  let model: LlamaModel;
  try {
    model = await llama.loadModel({ modelPath: path, vocabOnly: true, gpuLayers: 0 });
  } catch (err) {
    throw new ModelFileError(`could not load the tokenizer of ${path}: ${(err as Error).message}`);
  }
  return {
    vocabSize: vocabSize(model),
    encode: (text) => {
      const bos = model.tokens.bos;
      const tokens = model.tokenize(text) as number[];
      return bos !== null ? [bos, ...tokens] : tokens;
    },
    decode: (tokens) => model.detokenize(tokens as never),
    close: () => model.dispose(),
  };
}

function vocabSize(model: LlamaModel): number {
  return tokenList(model).length;
}

function tokenList(model: LlamaModel): readonly string[] {
  const md = model.fileInfo.metadata as unknown as { tokenizer?: { ggml?: { tokens?: readonly string[]; model?: string } } };
  return md.tokenizer?.ggml?.tokens ?? [];
}

/** Target and drafter must share a vocabulary, token for token. */
export function checkSameVocabulary(target: LlamaModel, drafter: LlamaModel): void {
  const t = tokenList(target);
  const d = tokenList(drafter);
  if (t.length !== d.length) {
    throw new ModelFileError(`target and drafter vocabularies differ: the target has ${t.length} tokens, the drafter ${d.length}; use a drafter made for this target`);
  }
  for (let i = 0; i < t.length; i++) {
    if (t[i] !== d[i]) {
      throw new ModelFileError(`target and drafter vocabularies differ at token ${i} (${JSON.stringify(t[i])} vs ${JSON.stringify(d[i])}); use a drafter made for this target`);
    }
  }
}

type GenerateNext = { token?: boolean; probabilities?: boolean; options: { temperature: number } };

/**
 * A context whose sequences belong to several instances: disposed once the last of them is.
 *
 * Whether its sequences share forward passes (`sharesPasses`): node-llama-cpp puts the tokens
 * of every sequence that is ready in one event-loop turn into one decode. At first that was not
 * bit-exact: a sequence got other bits beside another's tokens (2 of 16 stressed rounds of 8
 * concurrent generations ended with other tokens; one-token steps alone sharing, 4 of 24), so
 * the sequences took turns. The cause was a race, not arithmetic: after a decode that llama.cpp
 * split into ubatches out of batch order, it puts the output rows back in order lazily, on the
 * first logits read and with no lock (llama-context.cpp, `output_reorder`), while node-llama-cpp
 * reads each sequence's logits on its own libuv worker at once (`sampleToken`), so two reads
 * could apply the swaps twice or read a half-swapped row. With the reads one at a time per
 * context (`serialiseLogitReads`), 4 and 8 sequences evaluating random 200-token paths in mixed
 * chunks of 1..32 tokens matched one-token-at-a-time evaluation alone in 224 of 224 sequences,
 * under CPU load too, against 9 of 128 differing without (and 0 of 48 with a libuv pool of one
 * thread). The kernels keep a row's bits whatever shares its ubatch when one thread runs them
 * and each sequence has fewer than 64 rows in it (the flash-attention kernel's tiled path starts
 * at 64 query rows per stream; chunks are at most `evalChunk`). So on a CPU with one thread the
 * sequences share passes; elsewhere they take turns (one queue for the context): with several
 * threads a one-token step alone may take llama.cpp's split-KV attention path that a shared one
 * does not, and GPU kernels change with a pass's rows (on an H200, 8 sequences' one-token
 * steps sharing decodes got other bits in 743 of 800 distributions: docs/architecture.md).
 */
class SharedContext {
  /** The passes of the context's sequences, one at a time (where passes are not shared). */
  private readonly turns = new PQueue({ concurrency: 1 });
  /** Where passes are shared by a target's sequences: lets their evaluations in together (decode-gate.ts). */
  readonly gate: DecodeGate | undefined;
  constructor(
    private readonly context: LlamaContext,
    private users: number,
    readonly sharesPasses: boolean,
    gated: boolean,
  ) {
    this.gate = sharesPasses && gated ? new DecodeGate() : undefined;
  }

  /**
   * Runs `job` (one pass, or a change to a sequence's cache) alone on the context where its
   * sequences take turns; at once where they share passes. Turns go pass by pass, not
   * evaluation by evaluation, so a one-token step waits for one chunk of another sequence's
   * prefill, not all of it; and a wait that `signal` aborts leaves the queue at once (before,
   * a cancelled call waited for its turn behind whole evaluations, holding its lease).
   */
  async alone<T>(job: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (this.sharesPasses) return job();
    // Only the wait gets a signal: p-queue's also races a running task (add() rejects while the
    // pass goes on, and the next task starts beside it), and a started pass must end first.
    const waiting = new AbortController();
    let started = false;
    const stopWaiting = (): void => {
      if (!started) waiting.abort();
    };
    signal?.addEventListener("abort", stopWaiting, { once: true });
    if (signal?.aborted) stopWaiting();
    try {
      return await this.turns.add(() => ((started = true), job()), { signal: waiting.signal });
    } catch (err) {
      throw waiting.signal.aborted ? new AbortError() : err;
    } finally {
      signal?.removeEventListener("abort", stopWaiting);
    }
  }

  /** One user is done (its evaluations settled); the last one disposes the context. */
  async release(): Promise<void> {
    if (--this.users === 0) await this.context.dispose();
  }
}

/** The native context's methods this reaches into (node-llama-cpp's internals, pinned version). */
type NativeContext = { sampleToken?: unknown; decodeBatch?: unknown };

/** Whether this node-llama-cpp build's contexts can have their logits reads serialised (`serialiseLogitReads`). */
function logitReadsSerialisable(llama: Llama): boolean {
  const proto = (llama as unknown as { _bindings?: { AddonContext?: { prototype?: NativeContext } } })._bindings?.AddonContext?.prototype;
  return typeof proto?.sampleToken === "function" && typeof proto.decodeBatch === "function";
}

/**
 * Makes a context's logits reads run one at a time (see SharedContext): its native
 * `sampleToken` is shadowed by one that queues, and its `decodeBatch` waits for the reads
 * queued before it (node-llama-cpp awaits a decode's reads before the next decode, except when
 * one fails: then no decode may overlap the reads still queued). Reaches into node-llama-cpp's
 * internals (the version is pinned); false, and nothing changed, where they are not as expected.
 */
function serialiseLogitReads(context: LlamaContext): boolean {
  const native = (context as unknown as { _ctx?: object })._ctx as NativeContext | undefined;
  const [read, decode] = [native?.sampleToken, native?.decodeBatch];
  if (!native || typeof read !== "function" || typeof decode !== "function" || !Object.isExtensible(native)) return false;
  const inTurn = serial();
  const queued = (call: (...a: unknown[]) => unknown) => (...args: unknown[]): Promise<unknown> => inTurn(() => call.apply(native, args));
  Object.defineProperty(native, "sampleToken", { value: queued(read as (...a: unknown[]) => unknown), configurable: true });
  Object.defineProperty(native, "decodeBatch", { value: queued(decode as (...a: unknown[]) => unknown), configurable: true });
  return true;
}

export class LlamaInstance implements ModelInstance {
  /** Tokens whose keys and values are in this instance's cache. */
  private cached: number[] = [];
  /**
   * The engine's committed tokens that `cached` starts with: its first `cachedBaseLength`
   * tokens are `cachedBase`'s (append-only, by TokenView's contract). A request over the same
   * base then shares them without a comparison: only drafts and new tokens are compared.
   */
  private cachedBase: readonly number[] | undefined;
  private cachedBaseLength = 0;
  get contextSize(): number {
    return this.context.contextSize;
  }
  /** Forward passes (decode calls) and tokens evaluated, for stats and tests. */
  decodes = 0;
  tokensEvaluated = 0;
  /** Most tokens one evaluation read (a catch-up, a prefill, a re-read after a switch). */
  longestRead = 0;

  constructor(
    readonly label: string,
    private readonly context: LlamaContext,
    private readonly sequence: LlamaContextSequence,
    readonly vocabSize: number,
    readonly eosToken: number | undefined,
    /** Most tokens per forward pass: the model's batch-invariant chunk size. */
    readonly evalChunk: number,
    /** The context, shared with the instances of its other sequences (disposed with the last). */
    private readonly shared: SharedContext,
  ) {}

  evaluate(req: EvalRequest, signal?: AbortSignal): Promise<PositionOutput[]> {
    // A view is immutable (O(1) to keep); anything else is copied now: the caller may reuse
    // its arrays once we return.
    const tokens: TokenSequence = req.tokens instanceof TokenView ? req.tokens : req.tokens.slice();
    // (How long the pass may be held counts from now, not from when the queue lets it run.)
    const startBy = req.mayWaitMs !== undefined && this.shared.gate ? this.shared.gate.now() + req.mayWaitMs : Infinity;
    return this.inTurn(() => this.run(tokens, req, startBy, signal));
  }

  /**
   * This sequence's evaluations (and its reset and disposal), one at a time in the order they
   * came. (Where the context's sequences take turns, each pass also waits for the context:
   * `SharedContext.alone`.)
   */
  private readonly inTurn = serial();

  /** Whether this sequence's passes may carry other sequences' tokens (SharedContext). */
  get sharesPasses(): boolean {
    return this.shared.sharesPasses;
  }

  /** Empties the cache (a cold start, e.g. between benchmark runs). */
  reset(): Promise<void> {
    return this.inTurn(async () => {
      await this.shared.alone(() => this.sequence.clearHistory());
      this.cached = [];
      this.cachedBase = undefined;
      this.cachedBaseLength = 0;
    });
  }

  private async run(tokens: TokenSequence, req: EvalRequest, startBy: number, signal?: AbortSignal): Promise<PositionOutput[]> {
    if (signal?.aborted) throw new AbortError();
    checkRequest(req);
    // node-llama-cpp keeps one cell free and, on a full context, silently drops early tokens
    // (a context shift): the cache would no longer hold `tokens`. Refuse instead.
    if (tokens.length >= this.context.contextSize) {
      throw new ContextOverflowError(`the sequence (${tokens.length} tokens) plus the token it predicts exceeds the model context of ${this.context.contextSize} tokens`);
    }
    // The output at position p comes from evaluating token p-1, so re-evaluate from `from - 1`.
    const limit = Math.min(this.cached.length, req.from - 1);
    const view = tokens instanceof TokenView ? tokens : undefined;
    // The committed prefix shared with the cache is known; compare only past it.
    let keep = view && view.base === this.cachedBase ? Math.min(view.baseLength, this.cachedBaseLength, limit) : 0;
    while (keep < limit && this.cached[keep] === tokens.at(keep)) keep++;
    if (this.sequence.nextTokenIndex > keep) {
      await this.shared.alone(() => this.sequence.eraseContextTokenRanges([{ start: keep, end: this.sequence.nextTokenIndex }]), signal);
    }
    this.cached.length = keep;
    // cached[0, keep) are the request's tokens, so they start with its view's base prefix.
    this.cachedBase = view?.base;
    const baseLength = view?.baseLength ?? 0;
    this.cachedBaseLength = Math.min(keep, baseLength);
    const next: GenerateNext =
      req.mode === "greedy" ? { token: true, options: { temperature: 0 } } : { probabilities: true, options: { temperature: 0 } };
    const items = tokens.slice(keep).map((t, i) => (keep + i >= req.from - 1 ? ([t, { generateNext: next }] as const) : t));
    // Never more than `evalChunk` tokens in one pass: then the cache and the outputs are the
    // same bits however the context is read (one token at a time, windows, a catch-up).
    this.longestRead = Math.max(this.longestRead, items.length);
    const results: { next?: { token?: number; probabilities?: Map<number, number> } }[] = [];
    for (let at = 0; at < items.length; at += this.evalChunk) {
      if (at > 0 && signal?.aborted) throw new AbortError(); // preempted catch-up: stop between passes
      const chunk = items.slice(at, at + this.evalChunk);
      const ended = await this.shared.gate?.turn(this, items.length === 1, startBy, signal);
      let got: typeof results;
      try {
        got = (await this.shared.alone(() => this.sequence.controlledEvaluate(chunk as never), signal)) as typeof results;
      } finally {
        ended?.();
      }
      // One entry per item (the result leaves out the items after the last one asked about).
      for (let i = 0; i < chunk.length; i++) results.push(got[i]);
      this.decodes++;
      this.tokensEvaluated += chunk.length;
      this.cached.push(...tokens.slice(keep + at, keep + at + chunk.length));
      this.cachedBaseLength = Math.min(this.cached.length, baseLength);
    }
    const outputs: PositionOutput[] = [];
    for (let i = req.from - 1 - keep; i < results.length; i++) {
      const p = keep + i + 1;
      const n = results[i]?.next;
      if (req.mode === "greedy") {
        outputs.push({ token: n?.token ?? -1 });
        continue;
      }
      // The raw softmax, then our own sampling transform (the same as on its logits, in
      // place): identical for target and drafter.
      const raw = new Float64Array(this.vocabSize);
      for (const [tok, prob] of n?.probabilities ?? []) raw[tok] = prob;
      const probs = distributionFromProbs(raw, req.sampling);
      if (req.mode === "dist") outputs.push({ token: -1, probs });
      else outputs.push({ token: sampleIndex(probs, keyedUniform(req.seed, req.stream, p)) });
    }
    if (signal?.aborted) throw new AbortError(); // soft preemption: computed, but no longer wanted
    return outputs;
  }

  /** Disposes after every queued evaluation: never with an evaluation pending. */
  dispose(): Promise<void> {
    return this.inTurn(() => this.shared.release());
  }
}
