/**
 * Cluster files: which workers serve the target instances and where the drafter runs. JSON or
 * YAML (by the file's extension), validated with a schema; every problem is one line naming
 * the file and the field.
 *
 *   drafter: { backend: synthetic, vocab: 16 }      # or llama with model, or remote with address
 *   targets:
 *     - address: 127.0.0.1:7001                      # token: ..., tls: true | { ca: ca.pem }
 */
import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import type { ModelInstance } from "../../core/instance.js";
import type { Clock } from "../../runtime/clock.js";
import type { Runtime } from "../../runtime/runtime.js";
import { learnedByRun, openInstance, type Backend, type Tokenizer } from "../backend.js";
import { NO_LATENCY, resolveProfile, withLatency, type LatencyProfile } from "../latency.js";
import { loadLlamaTokenizer } from "../llama.js";
import { assembleRuntime } from "../runtime.js";
import { SYNTHETIC_MAX_VOCAB, SyntheticTokenizer } from "../synthetic.js";
import { RemoteInstance, type RemoteOptions } from "./client.js";
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
    drafter: z.discriminatedUnion("backend", [
      z
        .object({
          backend: z.literal("synthetic"),
          vocab: z.number().int().min(2).max(SYNTHETIC_MAX_VOCAB).optional(),
          agreement: z.number().min(0).max(1).optional(),
          history: z.number().int().min(0).max(64).optional(),
          modelSeed: z.number().int().min(0).max(2 ** 32 - 1).optional(),
          latency,
        })
        .strict(),
      z.object({ backend: z.literal("llama"), model: z.string().min(1), threads: z.number().int().min(1).max(256).optional(), gpu: z.boolean().optional(), latency }).strict(),
      // A drafter in its own worker; `tokenizer` (a GGUF file) turns text into tokens here
      // when the workers serve llama models.
      z.object({ backend: z.literal("remote"), ...reach, tokenizer: z.string().min(1).optional() }).strict(),
    ]),
    targets: z.array(z.object(reach).strict()).min(1).max(1024),
    // How workers send distributions for rejection sampling (float16: half the bytes, rounded).
    probs: z.enum(PROBS_FORMATS).optional(),
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
  if (d.backend === "llama") d.model = resolve(base, d.model);
  if (d.backend === "remote" && d.tokenizer !== undefined) d.tokenizer = resolve(base, d.tokenizer);
  for (const r of [...parsed.data.targets, ...(d.backend === "remote" ? [d] : [])]) if (typeof r.tls === "object") r.tls.ca = resolve(base, r.tls.ca);
  return parsed.data;
}

/** Connection options for a worker entry: its token (else $DSI_TOKEN) and TLS trust. */
async function reachOptions(r: Reach, file: string, probs: ProbsFormat | undefined): Promise<RemoteOptions> {
  let tls: RemoteOptions["tls"];
  if (r.tls === true) tls = {};
  else if (r.tls) {
    try {
      tls = { ca: await readFile(r.tls.ca) };
    } catch (err) {
      throw new ClusterError(`${file}: ${r.address}: cannot read the TLS CA ${r.tls.ca} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  }
  return { token: r.token ?? (process.env[TOKEN_ENV] || undefined), tls, probs };
}

/** Connects to every worker entry, or fails naming each one that could not be reached. */
async function connectAll(entries: Reach[], file: string, probs?: ProbsFormat): Promise<RemoteInstance[]> {
  const options = await Promise.all(entries.map((r) => reachOptions(r, file, probs)));
  const settled = await Promise.allSettled(entries.map((r, i) => RemoteInstance.connect(r.address, options[i])));
  const connected = settled.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  const failed = settled.flatMap((s) => (s.status === "rejected" ? [(s.reason as Error).message] : []));
  if (failed.length > 0) {
    for (const c of connected) c.close();
    throw new ClusterError(`${file}: ${failed.join("; ")}`);
  }
  return connected;
}

/**
 * A backend over a cluster: the drafter in this process, the targets in their workers (all
 * connected up front; the pool's size is the number of targets). Real time only.
 */
export async function clusterBackend(spec: ClusterSpec, file = "cluster file"): Promise<Backend> {
  const d = spec.drafter;
  let drafter: ModelInstance;
  let tokenizer: Tokenizer;
  let defaultPrompt: string;
  const closers: (() => Promise<void> | void)[] = [];
  const targets: RemoteInstance[] = [];
  const close = async (): Promise<void> => {
    for (const c of closers.splice(0).reverse()) await c();
  };
  try {
    if (d.backend === "remote") {
      const [remote] = await connectAll([d], file, spec.probs);
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
          ? { backend: "synthetic", vocab: d.vocab, agreement: d.agreement, context: d.history, seed: d.modelSeed }
          : { backend: "llama", model: d.model, threads: d.threads ?? 1, gpu: d.gpu ?? false },
        "drafter",
        "drafter",
      );
      closers.push(opened.close);
      ({ instance: drafter, tokenizer, defaultPrompt } = opened);
    }
    targets.push(...(await connectAll(spec.targets, file, spec.probs)));
    closers.push(() => targets.forEach((t) => t.close()));
    const vocabs = new Set([drafter.vocabSize, ...targets.map((t) => t.vocabSize)]);
    if (vocabs.size > 1) {
      const list = targets.map((t) => `${t.address} ${t.vocabSize}`).join(", ");
      throw new ClusterError(`${file}: vocabularies differ: drafter ${drafter.vocabSize}, targets ${list}; every model must share one vocabulary`);
    }
  } catch (err) {
    await close();
    throw err;
  }
  const where = d.backend === "remote" ? `remote drafter at ${d.address}` : `${d.backend} drafter here${d.latency ? ` (latency ${d.latency})` : ""}`;
  const drafterLatency = d.backend === "remote" || d.latency === undefined ? NO_LATENCY.drafter : resolveProfile(d.latency)!.drafter;
  const learned = learnedByRun();
  return {
    name: "cluster",
    targetCount: targets.length,
    tokenizer,
    defaultPrompt,
    contextSize: undefined,
    realCompute: true,
    // Latency is the cluster's: the file's for an in-process drafter, each worker's own
    // (`dsi worker --latency`) for remote instances.
    runtime: async (clock: Clock, sp: number, profile: LatencyProfile, events?: boolean): Promise<Runtime> =>
      assembleRuntime({
        clock,
        drafter: withLatency(drafter, clock, drafterLatency),
        target: (i) => targets[i],
        vocabSize: targets[0].vocabSize,
        eosToken: targets[0].eosToken,
        sp: Math.min(sp, targets.length),
        events,
        learned: learned(clock, profile),
      }),
    describe: () => `cluster: ${where}, ${targets.length} target worker(s) at ${targets.map((t) => t.address).join(", ")}`,
    // A worker that does not answer has no counters (undefined), not an error.
    workerStats: () => Promise.all(targets.map(async (t) => ({ address: t.address, stats: await t.stats().catch(() => undefined) }))),
    close,
  };
}
