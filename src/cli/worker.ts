/** `dsi worker`: one model instance in this process, served to an orchestrator over gRPC. */
import { readFile } from "node:fs/promises";
import type { LatencyProfile } from "../models/latency.js";
import { withLatency } from "../models/latency.js";
import { BatchDevice } from "../models/batch-device.js";
import { openInstance, type InstanceSpec } from "../models/backend.js";
import type { SyntheticSpec } from "../models/synthetic.js";
import { RealClock } from "../runtime/clock.js";
import { isLoopback, TOKEN_ENV, type ServerTls } from "../models/remote/security.js";
import { serveWorker } from "../worker/server.js";
import { onSignals, UsageError } from "./flags.js";
import { println, type CliIo } from "./io.js";

export interface WorkerFlags {
  backend: "synthetic" | "llama";
  listen: string;
  role: "target" | "drafter";
  latency: LatencyProfile;
  /** llama */
  model?: string;
  threads: number;
  gpu: boolean;
  /** Tokens per forward pass; default: the batch-invariance self-test's. */
  evalChunk?: number;
  /** Sequences served (default 1): each keeps its cache; they share the instance's compute. */
  sequences: number;
  /** synthetic */
  synthetic: Partial<SyntheticSpec>;
  /** The token calls must carry (else DSI_TOKEN, else none). */
  token?: string;
  tlsCert?: string;
  tlsKey?: string;
  /** Stop when standard input closes: how `dsi cluster` ties its workers' lives to its own. */
  exitOnStdinClose: boolean;
}

async function readPem(flag: string, path: string): Promise<Buffer> {
  try {
    const pem = await readFile(path);
    if (!pem.includes("-----BEGIN ")) throw new UsageError(`${flag}: ${path} is not a PEM file`);
    return pem;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`${flag}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

export async function runWorker(f: WorkerFlags, io: CliIo): Promise<void> {
  const at = f.listen.lastIndexOf(":");
  const host = f.listen.slice(0, at);
  const port = Number(f.listen.slice(at + 1));
  if (at <= 0 || !/^\d+$/.test(f.listen.slice(at + 1)) || port > 65535) throw new UsageError(`--listen: give HOST:PORT (e.g. 127.0.0.1:7001; port 0 picks a free one), got ${JSON.stringify(f.listen)}`);
  const token = f.token ?? (io.env[TOKEN_ENV] || undefined); // an empty variable is no token
  if (token !== undefined && token.length < 16) throw new UsageError(`${f.token !== undefined ? "--token" : TOKEN_ENV}: give at least 16 characters (e.g. \`openssl rand -hex 16\`)`);
  if (!isLoopback(host) && token === undefined) {
    throw new UsageError(`--listen: ${host} is not a loopback address; a worker reachable from other hosts needs a token (--token or ${TOKEN_ENV}), and TLS (--tls-cert, --tls-key) to keep it secret`);
  }
  if ((f.tlsCert === undefined) !== (f.tlsKey === undefined)) throw new UsageError("--tls-cert and --tls-key go together");
  const tls: ServerTls | undefined = f.tlsCert !== undefined ? { cert: await readPem("--tls-cert", f.tlsCert), key: await readPem("--tls-key", f.tlsKey!) } : undefined;
  if (f.backend === "llama" && !f.model) throw new UsageError("--model: give the GGUF file this worker serves");
  // (A cluster connects to its drafter's sequence 0 alone: more would be loaded and never used.)
  if (f.role === "drafter" && f.sequences > 1) throw new UsageError("--sequences applies to --role target: a cluster uses one sequence of its drafter worker");
  const spec: InstanceSpec = f.backend === "synthetic" ? { backend: "synthetic", ...f.synthetic } : { backend: "llama", model: f.model!, threads: f.threads, gpu: f.gpu, evalChunk: f.evalChunk };
  const { instance, sequences, close } = await openInstance(spec, f.role, f.role, f.sequences);
  const latency = f.role === "target" ? f.latency.target : f.latency.drafter;
  const clock = new RealClock();
  // Several sequences with an emulated device: it batches their passes (as a GPU server would);
  // a llama context's sequences underneath share passes or take turns (llama.ts).
  const batch = sequences.length > 1 ? new BatchDevice(clock, latency) : undefined;
  const worker = await serveWorker({
    instances: sequences.map((s) => withLatency(s, clock, latency, undefined, batch)),
    // The model's own limits, which Info reports and the worker enforces (the latency wrapper does not carry them).
    contextSize: instance.contextSize,
    evalChunk: instance.evalChunk,
    listen: f.listen,
    backend: f.backend,
    role: f.role,
    token,
    tls,
  }).catch(async (err: Error) => {
    await close();
    throw new UsageError(`--listen: cannot serve on ${f.listen} (${err.message})`);
  });
  if (!isLoopback(host) && !tls) println(io.stderr, `dsi worker: warning: without TLS the token and the tokens travel in clear text on ${host}`);
  const limits = `${instance.contextSize !== undefined ? `, context ${instance.contextSize}` : ""}${instance.evalChunk !== undefined ? `, eval chunk ${instance.evalChunk}` : ""}`;
  println(io.stdout, `dsi worker: ${f.backend} ${f.role} (vocab ${instance.vocabSize}${limits}${sequences.length > 1 ? `, ${sequences.length} sequences` : ""}${token !== undefined ? ", token required" : ""}${tls ? ", TLS" : ""}) listening on ${worker.address}`);
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    onSignals(["SIGINT", "SIGTERM"], stop);
    if (f.exitOnStdinClose) {
      process.stdin.on("end", stop).on("close", stop).on("error", stop);
      process.stdin.resume();
    }
  });
  // Standard input kept the event loop alive while the worker served; let it go.
  if (f.exitOnStdinClose) process.stdin.destroy();
  await worker.close();
  await close();
}
