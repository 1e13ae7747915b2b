/** `dsi worker`: one model instance in this process, served to an orchestrator over gRPC. */
import { isIP } from "node:net";
import type { LatencyProfile } from "../models/latency.js";
import { withLatency } from "../models/latency.js";
import { openInstance, type InstanceSpec } from "../models/backend.js";
import type { SyntheticSpec } from "../models/synthetic.js";
import { RealClock } from "../runtime/clock.js";
import { serveWorker } from "../worker/server.js";
import { UsageError } from "./flags.js";

export interface WorkerFlags {
  backend: "synthetic" | "llama";
  listen: string;
  role: "target" | "drafter";
  latency: LatencyProfile;
  /** llama */
  model?: string;
  threads: number;
  gpu: boolean;
  /** synthetic */
  synthetic: Partial<SyntheticSpec>;
}

/** Loopback hosts a worker may bind without authentication. */
function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host === "[::1]" || (isIP(host) === 4 && host.startsWith("127."));
}

export async function runWorker(f: WorkerFlags): Promise<void> {
  const at = f.listen.lastIndexOf(":");
  const host = f.listen.slice(0, at);
  const port = Number(f.listen.slice(at + 1));
  if (at <= 0 || !/^\d+$/.test(f.listen.slice(at + 1)) || port > 65535) throw new UsageError(`--listen: give HOST:PORT (e.g. 127.0.0.1:7001; port 0 picks a free one), got ${JSON.stringify(f.listen)}`);
  // Tokens and TLS are not there yet: a worker serves only this machine.
  if (!isLoopback(host)) throw new UsageError(`--listen: ${host} is not a loopback address; workers without --token/TLS serve only 127.0.0.1 (or ::1)`);
  if (f.backend === "llama" && !f.model) throw new UsageError("--model: give the GGUF file this worker serves");
  const spec: InstanceSpec = f.backend === "synthetic" ? { backend: "synthetic", ...f.synthetic } : { backend: "llama", model: f.model!, threads: f.threads, gpu: f.gpu };
  const { instance, close } = await openInstance(spec, f.role, `${f.role}@${f.listen}`);
  const latency = f.role === "target" ? f.latency.target : f.latency.drafter;
  const worker = await serveWorker({ instance: withLatency(instance, new RealClock(), latency), listen: f.listen, backend: f.backend });
  console.log(`dsi worker: ${f.backend} ${f.role} (vocab ${instance.vocabSize}) listening on ${worker.address}`);
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  await worker.close();
  await close();
}
