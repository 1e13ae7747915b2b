/**
 * Cluster files: which workers serve the target instances and where the drafter runs. JSON,
 * validated with a schema; every problem is one line naming the file and the field.
 *
 *   { "drafter": { "backend": "synthetic", "vocab": 16 }            // or "llama" with "model"
 *     "targets": [ { "address": "127.0.0.1:7001" }, ... ] }
 */
import { readFile } from "node:fs/promises";
import { z } from "zod";
import type { Clock } from "../../runtime/clock.js";
import type { Runtime } from "../../runtime/runtime.js";
import { openInstance, type Backend } from "../backend.js";
import { withLatency, type LatencyProfile } from "../latency.js";
import { assembleRuntime } from "../runtime.js";
import { SYNTHETIC_MAX_VOCAB } from "../synthetic.js";
import { RemoteInstance } from "./client.js";

/** A cluster file that cannot be used: the message names the file and what is wrong. */
export class ClusterError extends Error {
  override readonly name = "ClusterError";
}

const address = z.string().regex(/^[^\s:]+:\d{1,5}$/, "expected HOST:PORT");
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
        })
        .strict(),
      z.object({ backend: z.literal("llama"), model: z.string().min(1), threads: z.number().int().min(1).max(256).optional(), gpu: z.boolean().optional() }).strict(),
    ]),
    targets: z.array(z.object({ address }).strict()).min(1).max(1024),
  })
  .strict();

export type ClusterSpec = z.infer<typeof ClusterSchema>;

/** Reads and validates a cluster file. */
export async function loadClusterFile(path: string): Promise<ClusterSpec> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new ClusterError(`cluster file ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ClusterError(`cluster file ${path}: not JSON (${(err as Error).message})`);
  }
  const parsed = ClusterSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const at = issue.path.length > 0 ? issue.path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("").replace(/^\./, "") : "(top level)";
    throw new ClusterError(`cluster file ${path}: ${at}: ${issue.message}`);
  }
  return parsed.data;
}

/**
 * A backend over a cluster: the drafter in this process, the targets in their workers (all
 * connected up front; the pool's size is the number of targets). Real time only.
 */
export async function clusterBackend(spec: ClusterSpec, file = "cluster file"): Promise<Backend> {
  const d = spec.drafter;
  const opened = await openInstance(
    d.backend === "synthetic"
      ? { backend: "synthetic", vocab: d.vocab, agreement: d.agreement, context: d.history, seed: d.modelSeed }
      : { backend: "llama", model: d.model, threads: d.threads ?? 1, gpu: d.gpu ?? false },
    "drafter",
    "drafter",
  );
  const { instance: drafter, tokenizer, defaultPrompt } = opened;
  const closeDrafter = opened.close;
  const targets: RemoteInstance[] = [];
  const close = async (): Promise<void> => {
    for (const t of targets) t.close();
    await closeDrafter();
  };
  try {
    const settled = await Promise.allSettled(spec.targets.map((t) => RemoteInstance.connect(t.address)));
    for (const s of settled) if (s.status === "fulfilled") targets.push(s.value);
    const failed = settled.flatMap((s) => (s.status === "rejected" ? [(s.reason as Error).message] : []));
    if (failed.length > 0) throw new ClusterError(`${file}: ${failed.join("; ")}`);
    const vocabs = new Set([drafter.vocabSize, ...targets.map((t) => t.vocabSize)]);
    if (vocabs.size > 1) {
      const list = targets.map((t) => `${t.address} ${t.vocabSize}`).join(", ");
      throw new ClusterError(`${file}: vocabularies differ: drafter ${drafter.vocabSize}, targets ${list}; every model must share one vocabulary`);
    }
  } catch (err) {
    await close();
    throw err;
  }
  return {
    name: "cluster",
    targetCount: targets.length,
    tokenizer,
    defaultPrompt,
    contextSize: undefined,
    realCompute: true,
    runtime: async (clock: Clock, sp: number, profile: LatencyProfile): Promise<Runtime> =>
      assembleRuntime({
        clock,
        drafter: withLatency(drafter, clock, profile.drafter),
        // Remote targets keep their own latency (`dsi worker --latency`).
        target: (i) => targets[i],
        vocabSize: targets[0].vocabSize,
        eosToken: targets[0].eosToken,
        sp: Math.min(sp, targets.length),
      }),
    describe: () => `cluster: ${spec.drafter.backend} drafter here, ${targets.length} target worker(s) at ${targets.map((t) => t.address).join(", ")}`,
    close,
  };
}
