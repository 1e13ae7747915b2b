/**
 * `dsi cluster`: N target workers on this machine (one per GPU where GPUs are given), a cluster
 * file that points at them, and supervision until Ctrl-C or SIGTERM. Workers are tied to this
 * process through their standard input (`dsi worker --exit-on-stdin-close`): when it ends, by a
 * signal or by `kill -9`, the pipes close and every worker stops, so none is left behind. A
 * worker that dies is started again on the same address, where the orchestrator's pool finds it.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { rm, writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify as toYaml } from "yaml";
import type { LatencyProfile } from "../models/latency.js";
import { RemoteInstance } from "../models/remote/client.js";
import type { ClusterSpec } from "../models/remote/cluster.js";
import { TOKEN_ENV } from "../models/remote/security.js";
import type { SyntheticSpec } from "../models/synthetic.js";
import { checkWritable, onSignals, UsageError } from "./flags.js";
import { println, type CliIo } from "./io.js";

const CLI = fileURLToPath(new URL("./main.js", import.meta.url));

export interface ClusterFlags {
  backend: "synthetic" | "llama";
  /** llama: GGUF files */
  target?: string;
  drafter?: string;
  threads: number;
  gpu: boolean;
  /** Tokens per forward pass of each worker; default: the batch-invariance self-test's. */
  evalChunk?: number;
  /** synthetic */
  synthetic: Partial<SyntheticSpec>;
  targets?: number;
  /** Device ids; worker i gets CUDA_VISIBLE_DEVICES=gpus[i % gpus.length]. */
  gpus?: number[];
  latency: LatencyProfile;
  out: string;
  /** Seconds to wait for every worker to answer. */
  startTimeout: number;
  /** Sequences each worker serves (`dsi worker --sequences`), written into the cluster file. */
  sequences: number;
}

/** Most restarts of one worker within a minute before it is given up. */
const MAX_RESTARTS_PER_MINUTE = 5;

/** What a slot's worker is started with: `dsi worker` arguments and extra environment. */
export function workerLaunch(f: ClusterFlags, slot: Pick<Slot, "gpu" | "address">): { args: string[]; env: Record<string, string> } {
  const args = ["worker", "--listen", slot.address ?? "127.0.0.1:0", "--role", "target", "--latency", f.latency.name, "--exit-on-stdin-close", "--backend", f.backend];
  if (f.sequences > 1) args.push("--sequences", String(f.sequences));
  if (f.backend === "llama") args.push("--model", resolve(f.target!), "--threads", String(f.threads), ...(f.gpu || f.gpus ? ["--gpu"] : []), ...(f.evalChunk !== undefined ? ["--eval-chunk", String(f.evalChunk)] : []));
  else {
    const s = f.synthetic;
    for (const [flag, v] of [["--vocab", s.vocab], ["--agreement", s.agreement], ["--history", s.context], ["--model-seed", s.seed], ["--copy", s.copy]] as const) if (v !== undefined) args.push(flag, String(v));
  }
  // One device per worker: it sees only its own, as device 0.
  return { args, env: slot.gpu !== undefined ? { CUDA_VISIBLE_DEVICES: String(slot.gpu) } : {} };
}

/** The cluster file's drafter: the workers' pair, run in the orchestrator. */
export function drafterEntry(f: ClusterFlags): NonNullable<ClusterSpec["drafter"]> {
  if (f.backend === "llama") return { backend: "llama", model: resolve(f.drafter!), threads: f.threads, ...(f.gpu || f.gpus ? { gpu: true } : {}), latency: f.latency.name };
  const s = f.synthetic;
  return {
    backend: "synthetic",
    vocab: s.vocab,
    agreement: s.agreement,
    history: s.context,
    modelSeed: s.seed,
    // Only where the targets copy: the files of clusters that do not stay as they were.
    ...(s.copy ? { copy: s.copy } : {}),
    latency: f.latency.name,
  };
}

interface Slot {
  name: string;
  gpu?: number;
  /** Fixed after the first start, so a restarted worker takes its old address. */
  address?: string;
  child?: ChildProcess;
  restarts: number[];
}

export async function runCluster(f: ClusterFlags, io: CliIo): Promise<void> {
  if (f.backend === "llama" && f.target === undefined) throw new UsageError("--target: give the target GGUF file (and --drafter, unless the cluster drafts by prompt lookup alone)");
  const count = f.targets ?? f.gpus?.length;
  if (count === undefined) throw new UsageError("--targets: give the number of target workers (or --gpus, one worker per listed device)");
  const out = resolve(f.out);
  await checkWritable(out, "--out");
  let written = false;
  const log = (line: string): void => println(io.stderr, `dsi cluster: ${line}`);

  let stopping = false;
  /** Starts a slot's worker; resolves with its address once it listens. */
  const start = (slot: Slot): Promise<string> => {
    const { args, env } = workerLaunch(f, slot);
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ["pipe", "pipe", "pipe"], env: { ...io.env, ...env } });
    slot.child = child;
    let listening = false;
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
      for (const line of d.toString().split("\n")) if (line.trim()) log(`${slot.name}: ${line.replace(/^error: /, "")}`);
    });
    return new Promise<string>((resolveAddress, reject) => {
      let stdout = "";
      child.stdout!.on("data", (d: Buffer) => {
        if (listening) return; // nothing more to read from a worker that serves
        stdout += d.toString();
        const m = /listening on (\S+)/.exec(stdout);
        if (!m) return;
        listening = true;
        slot.address ??= m[1];
        resolveAddress(m[1]);
      });
      child.once("exit", (code, signal) => {
        const why = `${slot.name} exited (${signal ?? `code ${code}`}) before it listened${stderr ? `: ${stderr.trim().split("\n").at(-1)!.replace(/^error: /, "")}` : ""}`;
        // Exit code 2 is the worker's answer to bad input (flags, model files): the user's to fix.
        reject(code === 2 ? new UsageError(why) : new Error(why));
        // Only a worker that was serving is started again (one that cannot start would loop).
        if (!stopping && listening) void restart(slot, code, signal);
      });
    });
  };

  const restart = async (slot: Slot, code: number | null, signal: NodeJS.Signals | null): Promise<void> => {
    const now = Date.now();
    slot.restarts = slot.restarts.filter((t) => now - t < 60_000);
    if (slot.restarts.length >= MAX_RESTARTS_PER_MINUTE) {
      log(`${slot.name} at ${slot.address} exited (${signal ?? `code ${code}`}) ${MAX_RESTARTS_PER_MINUTE} times in a minute; not restarting it`);
      return;
    }
    slot.restarts.push(now);
    log(`${slot.name} at ${slot.address} exited (${signal ?? `code ${code}`}); starting it again there`);
    try {
      await start(slot);
      log(`${slot.name} is back at ${slot.address}`);
    } catch (err) {
      if (!stopping) log((err as Error).message);
    }
  };

  const slots: Slot[] = Array.from({ length: count }, (_, i) => ({ name: `target-${i}`, gpu: f.gpus?.[i % f.gpus.length], restarts: [] }));
  const stopAll = async (): Promise<void> => {
    stopping = true;
    await Promise.all(
      slots.map(
        (s) =>
          new Promise<void>((done) => {
            const c = s.child;
            if (!c || c.exitCode !== null || c.signalCode !== null) return done();
            const kill = setTimeout(() => c.kill("SIGKILL"), 5000);
            c.once("exit", () => {
              clearTimeout(kill);
              done();
            });
            c.kill("SIGTERM");
          }),
      ),
    );
  };
  let signalled: (() => void) | undefined;
  const stopped = new Promise<void>((done) => (signalled = done));
  onSignals(["SIGINT", "SIGTERM", "SIGHUP"], () => signalled!());

  try {
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new UsageError(`the workers did not all start within ${f.startTimeout} s (--start-timeout)`)), f.startTimeout * 1000).unref(),
    );
    const interrupted = stopped.then(() => {
      throw new UsageError("stopped before every worker was up");
    });
    const addresses = await Promise.race([Promise.all(slots.map((s) => start(s))), timeout, interrupted]);
    // Healthy: each answers Info over gRPC.
    // The workers inherit DSI_TOKEN, if set: then they require it.
    const token = io.env[TOKEN_ENV] || undefined;
    await Promise.race([Promise.all(addresses.map(async (a) => (await RemoteInstance.connect(a, { connectTimeoutMs: 10_000, token })).close())), timeout, interrupted]);

    // Without --drafter (llama): the targets alone, the target's file as the tokenizer.
    const targets = addresses.map((address) => ({ address }));
    const spec: ClusterSpec = {
      ...(f.backend === "llama" && f.drafter === undefined ? { tokenizer: resolve(f.target!) } : { drafter: drafterEntry(f) }),
      targets,
      ...(f.sequences > 1 ? { sequences: f.sequences } : {}),
    };
    const text = /\.ya?ml$/i.test(out) ? toYaml(spec) : `${JSON.stringify(spec, null, 2)}\n`;
    await writeFile(out, text);
    written = true;
    io.stdout.write(text);
    log(`${count} target worker(s) up (${slots.map((s) => `${s.name} pid ${s.child!.pid}${s.gpu !== undefined ? ` gpu ${s.gpu}` : ""}`).join(", ")}); wrote ${out}; Ctrl-C stops them`);
    await stopped;
    log("stopping the workers");
  } finally {
    await stopAll();
    // The addresses die with the workers: a file left behind would only point at nothing.
    if (written) await rm(out, { force: true });
  }
}
