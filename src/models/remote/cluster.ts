/**
 * Cluster files: which workers serve the target instances and where the drafter runs. JSON or
 * YAML (by the file's extension), validated with a schema; every problem is one line naming
 * the file and the field.
 *
 *   drafter: { backend: synthetic, vocab: 16 }      # or llama with model, or remote with address
 *                                                    # (absent: the targets alone, prompt lookup)
 *   tokenizer: target.gguf                           # without a drafter, for llama targets
 *   targets:
 *     - address: 127.0.0.1:7001                      # token: ..., tls: true | { ca: ca.pem }
 *   timeouts: { connect: 5, call: 300 }              # seconds (optional)
 *
 * The cluster starts with the targets that answer: the others are asked again every second
 * and join when they answer with the same vocabulary (docs/distributed.md).
 */
import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import type { ModelInstance } from "../../core/instance.js";
import type { EvalChunk } from "../batch-invariance.js";
import type { Clock } from "../../runtime/clock.js";
import type { Runtime } from "../../runtime/runtime.js";
import { openInstance, type Backend, type RuntimeOptions, type Tokenizer } from "../backend.js";
import { NO_LATENCY, resolveProfile, withLatency, type LatencyProfile } from "../latency.js";
import { loadLlamaTokenizer } from "../llama.js";
import { assembleRuntime } from "../runtime.js";
import { SYNTHETIC_MAX_VOCAB, SyntheticTokenizer } from "../synthetic.js";
import { MAX_POOL_SIZE, MAX_SEED, MAX_SEQUENCES, MAX_THREADS, SYNTHETIC_MAX_HISTORY } from "../limits.js";
import { RemoteInstance, WorkerError, type RemoteOptions } from "./client.js";
import { PROBS_FORMATS, type ProbsFormat } from "./protocol.js";
import { TOKEN_ENV } from "./security.js";

/** A cluster file that cannot be used: the message names the file and what is wrong. */
export class ClusterError extends Error {
  override readonly name = "ClusterError";
}

const address = z.string().regex(/^(\[[0-9a-fA-F:]+\]|[^\s:\[\]]+):\d{1,5}$/, "expected HOST:PORT");
/** How to reach a worker: its address, its token (else DSI_TOKEN) and TLS (true: system roots). */
const reach = {
  address,
  token: z.string().min(16).optional(),
  tls: z.union([z.literal(true), z.object({ ca: z.string().min(1) }).strict()]).optional(),
};
/** An in-process drafter's emulated device (the drafter part of a latency profile), as workers' --latency. */
const latency = z
  .string()
  .refine((v) => resolveProfile(v) !== undefined, "unknown latency profile (see dsi profiles; TARGET_MS/DRAFTER_MS also works)")
  .optional();
const ClusterSchema = z
  .object({
    // Absent: the targets alone, which run non-SI and prompt lookup (draft ngram).
    drafter: z.discriminatedUnion("backend", [
      z
        .object({
          backend: z.literal("synthetic"),
          vocab: z.number().int().min(2).max(SYNTHETIC_MAX_VOCAB).optional(),
          agreement: z.number().min(0).max(1).optional(),
          // A number of previous tokens, or "all" (the whole prefix).
          history: z.union([z.number().int().min(0).max(SYNTHETIC_MAX_HISTORY), z.literal("all")], { error: `expected an integer in 0..${SYNTHETIC_MAX_HISTORY} or "all"` }).optional(),
          modelSeed: z.number().int().min(0).max(MAX_SEED).optional(),
          // How often the target copies its context (the drafter's logits start from the target's).
          copy: z.number().min(0).max(1).optional(),
          latency,
        })
        .strict(),
      z.object({ backend: z.literal("llama"), model: z.string().min(1), threads: z.number().int().min(1).max(MAX_THREADS).optional(), gpu: z.boolean().optional(), latency }).strict(),
      // A drafter in its own worker; `tokenizer` (a GGUF file) turns text into tokens here
      // when the workers serve llama models.
      z.object({ backend: z.literal("remote"), ...reach, tokenizer: z.string().min(1).optional() }).strict(),
    ]).optional(),
    // Without a drafter: the GGUF file whose tokenizer turns text into tokens (llama targets).
    tokenizer: z.string().min(1).optional(),
    targets: z.array(z.object(reach).strict()).min(1).max(MAX_POOL_SIZE),
    // Sequences each target worker serves (`dsi worker --sequences`): the pool leases them, one
    // generation each, sharing the worker's compute. Default 1.
    sequences: z.number().int().min(1).max(MAX_SEQUENCES).optional(),
    // How workers send distributions for rejection sampling (float16: half the bytes, rounded).
    probs: z.enum(PROBS_FORMATS).optional(),
    // Seconds: to answer Info when connecting or probing (default 5), and each evaluation call's
    // deadline (default 300), past which the worker is lost.
    timeouts: z
      .object({ connect: z.number().positive().max(3600).optional(), call: z.number().positive().max(86_400).optional() })
      .strict()
      .optional(),
  })
  .strict();

export type ClusterSpec = z.infer<typeof ClusterSchema>;
type Reach = { address: string; token?: string; tls?: true | { ca: string } };

/** Reads and validates a cluster file (YAML when it ends in .yaml or .yml, else JSON). */
export async function loadClusterFile(path: string): Promise<ClusterSpec> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new ClusterError(`cluster file ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const yaml = /\.ya?ml$/i.test(path);
  let data: unknown;
  try {
    data = yaml ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    throw new ClusterError(`cluster file ${path}: not ${yaml ? "YAML" : "JSON"} (${(err as Error).message.split("\n")[0]})`);
  }
  const parsed = ClusterSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const at = issue.path.length > 0 ? issue.path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("").replace(/^\./, "") : "(top level)";
    throw new ClusterError(`cluster file ${path}: ${at}: ${issue.message}`);
  }
  // Relative paths in the file are relative to the file.
  const base = dirname(path);
  const d = parsed.data.drafter;
  if (d !== undefined && parsed.data.tokenizer !== undefined) {
    throw new ClusterError(`cluster file ${path}: tokenizer: applies to a cluster without a drafter (a remote drafter takes drafter.tokenizer)`);
  }
  if (parsed.data.tokenizer !== undefined) parsed.data.tokenizer = resolve(base, parsed.data.tokenizer);
  if (d?.backend === "llama") d.model = resolve(base, d.model);
  if (d?.backend === "remote" && d.tokenizer !== undefined) d.tokenizer = resolve(base, d.tokenizer);
  for (const r of [...parsed.data.targets, ...(d?.backend === "remote" ? [d] : [])]) if (typeof r.tls === "object") r.tls.ca = resolve(base, r.tls.ca);
  return parsed.data;
}

/** Connection options for a worker entry: its token (else $DSI_TOKEN), TLS trust and timeouts. */
async function reachOptions(r: Reach, file: string, probs: ProbsFormat | undefined, timeouts: ClusterSpec["timeouts"], token: string | undefined): Promise<RemoteOptions> {
  let tls: RemoteOptions["tls"];
  if (r.tls === true) tls = {};
  else if (r.tls) {
    try {
      tls = { ca: await readFile(r.tls.ca) };
    } catch (err) {
      throw new ClusterError(`${file}: ${r.address}: cannot read the TLS CA ${r.tls.ca} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  }
  return {
    token: r.token ?? token,
    tls,
    probs,
    connectTimeoutMs: timeouts?.connect !== undefined ? timeouts.connect * 1000 : undefined,
    callTimeoutMs: timeouts?.call !== undefined ? timeouts.call * 1000 : undefined,
  };
}

/** Connects to every worker entry: each one's instance, or why it did not answer. */
async function connectEach(entries: Reach[], options: RemoteOptions[]): Promise<(RemoteInstance | WorkerError)[]> {
  const settled = await Promise.allSettled(entries.map((r, i) => RemoteInstance.connect(r.address, options[i])));
  return settled.map((s, i) => (s.status === "fulfilled" ? s.value : s.reason instanceof WorkerError ? s.reason : new WorkerError(entries[i].address, String((s.reason as Error).message))));
}

export interface ClusterOptions {
  /** Hears, one line each, what happens to the target workers: missing at start, added later, lost, back. */
  log?: (line: string) => void;
  /**
   * When no target worker answers at start: wait for them (a server: it answers 503 until one
   * does) instead of failing with a ClusterError naming each and why (the default).
   */
  waitForTargets?: boolean;
  /** How often a worker that has not answered yet is asked again, in milliseconds. Default 1000. */
  probeIntervalMs?: number;
  /** The token for workers whose entry gives none; default $DSI_TOKEN ("" is no token). */
  token?: string;
}

/**
 * A backend over a cluster: the drafter in this process (or its own worker), the targets in
 * their workers; the pool's size is the number of targets. It starts with the targets that
 * answer, asks the others again every `probeIntervalMs` and adds each when it answers with the
 * cluster's vocabulary and EOS; a ClusterError only when none answers (unless
 * `waitForTargets`). Real time only.
 */
export async function clusterBackend(spec: ClusterSpec, file = "cluster file", o: ClusterOptions = {}): Promise<Backend> {
  const log = o.log ?? (() => undefined);
  const token = (o.token ?? process.env[TOKEN_ENV]) || undefined; // an empty token is none
  const d = spec.drafter;
  let drafter: ModelInstance | undefined;
  let tokenizer: Tokenizer | undefined;
  let defaultPrompt = "the";
  /** The cluster's vocabulary: the drafter's, else the tokenizer file's, else the synthetic targets'. */
  let vocab: number | undefined;
  const closers: (() => Promise<void> | void)[] = [];
  const targets: RemoteInstance[] = [];
  /** Every sequence of every target worker, worker by worker (what the pool leases). */
  const slots: RemoteInstance[] = [];
  const sequences = spec.sequences ?? 1;
  let closed = false;
  const close = async (): Promise<void> => {
    closed = true;
    for (const c of closers.splice(0).reverse()) await c();
  };
  try {
    if (d === undefined) {
      // The targets alone: the tokenizer from the file's GGUF, or the synthetic workers' own.
      if (spec.tokenizer !== undefined) {
        const t = await loadLlamaTokenizer(spec.tokenizer);
        closers.push(() => t.close());
        tokenizer = t;
        vocab = t.vocabSize;
      }
    } else if (d.backend === "remote") {
      // The drafter's worker must answer: it says what the vocabulary is and tokenizes nothing without it.
      const [remote] = await connectEach([d], [await reachOptions(d, file, spec.probs, spec.timeouts, token)]);
      if (remote instanceof WorkerError) throw new ClusterError(`${file}: drafter: ${remote.message}`);
      closers.push(() => remote.close());
      drafter = remote;
      if (d.tokenizer !== undefined) {
        const t = await loadLlamaTokenizer(d.tokenizer);
        closers.push(() => t.close());
        if (t.vocabSize !== remote.vocabSize) throw new ClusterError(`${file}: drafter.tokenizer ${d.tokenizer} has ${t.vocabSize} tokens, the drafter at ${d.address} ${remote.vocabSize}`);
        tokenizer = t;
        defaultPrompt = "the";
      } else if (remote.backend === "synthetic") {
        const t = new SyntheticTokenizer(remote.vocabSize);
        tokenizer = t;
        defaultPrompt = t.defaultPrompt;
      } else throw new ClusterError(`${file}: drafter.tokenizer: give the GGUF file whose tokenizer turns text into tokens (the drafter at ${d.address} serves ${remote.backend})`);
    } else {
      const opened = await openInstance(
        d.backend === "synthetic"
          ? { backend: "synthetic", vocab: d.vocab, agreement: d.agreement, context: d.history, seed: d.modelSeed, copy: d.copy }
          : { backend: "llama", model: d.model, threads: d.threads ?? 1, gpu: d.gpu ?? false },
        "drafter",
        "drafter",
      );
      closers.push(opened.close);
      ({ instance: drafter, tokenizer, defaultPrompt } = opened);
    }
    const options = await Promise.all(spec.targets.map((r) => reachOptions(r, file, spec.probs, spec.timeouts, token)));
    const answers = await connectEach(spec.targets, options);
    const short = answers.filter((a): a is RemoteInstance => a instanceof RemoteInstance && a.sequences < sequences);
    if (short.length > 0) {
      for (const a of answers) if (a instanceof RemoteInstance) a.close();
      throw new ClusterError(`${file}: sequences: ${sequences} per target worker, but ${short.map((t) => `${t.address} serves ${t.sequences}`).join(", ")} (start them with dsi worker --sequences ${sequences})`);
    }
    const live = answers.filter((a): a is RemoteInstance => a instanceof RemoteInstance);
    const silent = answers.filter((a): a is WorkerError => a instanceof WorkerError);
    closers.push(() => (slots.length > 0 ? slots : targets.length > 0 ? targets : live).forEach((t) => t.close()));
    if (live.length === 0 && !o.waitForTargets) throw new ClusterError(`${file}: no target worker answers: ${silent.map((e) => e.message).join("; ")}`);
    if (!drafter && !tokenizer) {
      // No drafter and no tokenizer file: synthetic targets tokenize alike (their letters).
      const first = live[0];
      if (first === undefined) throw new ClusterError(`${file}: without a drafter and a tokenizer file, a target must answer at start (it says what the vocabulary is)`);
      if (first.backend !== "synthetic") throw new ClusterError(`${file}: tokenizer: give the GGUF file whose tokenizer turns text into tokens (the targets serve ${first.backend}, and there is no drafter)`);
      const t = new SyntheticTokenizer(first.vocabSize);
      tokenizer = t;
      defaultPrompt = t.defaultPrompt;
      vocab = first.vocabSize;
    }
    if (drafter) vocab = drafter.vocabSize;
    const reference = { name: drafter ? "drafter" : "tokenizer", vocabSize: vocab! };
    const vocabs = new Set([reference.vocabSize, ...live.map((t) => t.vocabSize)]);
    if (vocabs.size > 1) {
      const list = live.map((t) => `${t.address} ${t.vocabSize}`).join(", ");
      throw new ClusterError(`${file}: vocabularies differ: ${reference.name} ${reference.vocabSize}, targets ${list}; every model must share one vocabulary`);
    }
    // A target that did not answer joins later, when it serves what the others (else the drafter) serve.
    const expected = { vocabSize: reference.vocabSize, eosToken: live.length > 0 ? live[0].eosToken : drafter?.eosToken };
    targets.push(...answers.map((a, i) => (a instanceof RemoteInstance ? a : RemoteInstance.pending(a.address, options[i], expected, a.reason))));
    // A worker's other sequences: an instance each, on the same address (the first is
    // `targets`'s), connected all at once; one that fails waits like a silent worker, with its reason.
    const siblings = targets.map((_, i) =>
      Array.from({ length: sequences - 1 }, (_, j) => {
        const o = { ...options[i], sequence: j + 1 };
        const a = answers[i];
        return a instanceof RemoteInstance
          ? RemoteInstance.connect(a.address, o).catch((err: unknown) => RemoteInstance.pending(a.address, o, expected, err instanceof WorkerError ? err.reason : String(err)))
          : RemoteInstance.pending(a.address, o, expected, a.reason);
      }),
    );
    for (let i = 0; i < targets.length; i++) slots.push(targets[i], ...(await Promise.all(siblings[i])));
    if (silent.length > 0) {
      const why = silent.map((e) => e.message).join("; ");
      log(`${file}: ${silent.length} of ${targets.length} target workers did not answer (${why}); ${live.length > 0 ? `going on with ${live.length}` : "waiting for them"}, asking again every ${(o.probeIntervalMs ?? 1000) / 1000} s`);
    }
  } catch (err) {
    await close();
    throw err;
  }
  const answering = (): number => targets.filter((t) => t.notAnswered === undefined).length;
  // Workers that have not answered yet: asked until they do (or turn out to serve another model).
  // All of a worker's sequences are asked together: one left pending would fail its first task
  // and take the worker's idle sequences out of the pool with it.
  const sequencesOf = (i: number): RemoteInstance[] => slots.slice(i * sequences, (i + 1) * sequences);
  const watch = async (i: number): Promise<void> => {
    const own = sequencesOf(i);
    const refused = new Set<RemoteInstance>();
    // (One the pool's own probe found is no longer pending.)
    const pending = (s: RemoteInstance): boolean => s.notAnswered !== undefined && !refused.has(s);
    let added = !pending(own[0]);
    while (!closed && own.some(pending)) {
      await new Promise((r) => setTimeout(r, o.probeIntervalMs ?? 1000).unref());
      if (closed) return;
      const why = new Map<RemoteInstance, string>();
      await Promise.all(own.filter(pending).map((s) => s.probe().catch((err: unknown) => void why.set(s, (err as Error).message))));
      if (closed) return;
      for (const s of why.keys()) refused.add(s);
      const first = why.get(own[0]);
      if (first !== undefined) return log(`${first}; not adding it`); // another model: no sequence of it is added
      for (const [s, message] of why) log(`${message}; not adding its sequence ${s.sequence}`);
      // (Once none of its sequences is left pending: a pending one would fail its first task.)
      if (!added && !own.some(pending)) {
        added = true;
        log(`worker ${own[0].address} answered: added (${answering()} of ${targets.length} target workers answering)`);
      }
    }
  };
  targets.forEach((_, i) => {
    if (sequencesOf(i).some((s) => s.notAnswered !== undefined)) void watch(i);
  });
  const where = d === undefined ? "no drafter (the targets alone: non-SI, prompt lookup)" : d.backend === "remote" ? `remote drafter at ${d.address}` : `${d.backend} drafter here${d.latency ? ` (latency ${d.latency})` : ""}`;
  const drafterLatency = d === undefined || d.backend === "remote" || d.latency === undefined ? NO_LATENCY.drafter : resolveProfile(d.latency)!.drafter;
  const drafterContext = drafter?.contextSize;
  const vocabSize = vocab!;
  return {
    name: "cluster",
    targetCount: targets.length,
    tokenizer: tokenizer!,
    defaultPrompt,
    // The smallest context of the drafter and the targets that answered: what every request
    // must fit, checked before it is sent (as for a local model).
    get contextSize(): number | undefined {
      const sizes = [drafterContext, ...targets.map((t) => t.contextSize)].filter((c): c is number => c !== undefined);
      return sizes.length > 0 ? Math.min(...sizes) : undefined;
    },
    get evalChunk(): { target?: EvalChunk } | undefined {
      const chunks = targets.map((t) => t.evalChunk).filter((c): c is number => c !== undefined);
      return chunks.length > 0 ? { target: { chunk: Math.min(...chunks), source: "worker" } } : undefined;
    },
    realCompute: true,
    // Latency is the cluster's: the file's for an in-process drafter, each worker's own
    // (`dsi worker --latency`) for remote instances.
    runtime: async (clock: Clock, sp: number, _profile: LatencyProfile, o: RuntimeOptions = {}): Promise<Runtime> => {
      const rt = assembleRuntime({
        clock,
        ...(drafter ? { drafter: withLatency(drafter, clock, drafterLatency) } : {}),
        target: (i) => slots[i],
        vocabSize,
        eosToken: targets.find((t) => t.notAnswered === undefined)?.eosToken ?? drafter?.eosToken,
        sp: Math.min(sp, targets.length),
        sequences,
        // Workers that compute on this machine share its CPU with each other and the drafter;
        // elsewhere each is taken for a device of its own.
        sharedDevice: targets.every((t) => t.backend === "llama" && isLoopback(t.address)),
        ...o,
      });
      rt.events.listen((e) => {
        // A worker that never answered was reported at start; its retirement is no news.
        if (e.type === "retire" && slots[e.instance]?.notAnswered === undefined) log(`target ${e.label} lost (${e.why}); asking it again every second`);
        else if (e.type === "rejoin") log(`target ${e.label} is back in the pool`);
      });
      closers.push(() => rt.close()); // its probes of lost workers stop with the backend
      return rt;
    },
    describe: () => {
      const missing = targets.length - answering();
      return `cluster: ${where}, ${targets.length} target worker(s)${sequences > 1 ? ` of ${sequences} sequences` : ""} at ${targets.map((t) => t.address).join(", ")}${missing > 0 ? ` (${missing} not answering yet)` : ""}`;
    },
    // A worker that does not answer has no counters (undefined) and says why (`error`), not an error.
    workerStats: () =>
      Promise.all(
        targets.map(async (t) => {
          try {
            return { address: t.address, stats: await t.stats() };
          } catch (err) {
            return { address: t.address, stats: undefined, error: err instanceof WorkerError ? err.reason : (err as Error).message };
          }
        }),
      ),
    close,
  };
}

/** Whether a worker's HOST:PORT names this machine (a loopback address). */
export function isLoopback(address: string): boolean {
  const host = address.slice(0, address.lastIndexOf(":")).replace(/^\[|\]$/g, "").toLowerCase();
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}
