/**
 * What the HTTP server runs generations on: one backend, one runtime (so one shared target
 * pool, whose policy keeps every generation's non-SI bound) for the server's life, and
 * admission: at most `maxConcurrent` generations run, at most `maxQueue` wait, the rest are
 * refused (429). Every generation has an AbortController, so a client that goes away, or a
 * shutdown past its deadline, frees its instances.
 */
import { generate } from "../algorithms/generate.js";
import type { AlgorithmName, Completion, GenerateOptions } from "../algorithms/options.js";
import type { Backend } from "../models/backend.js";
import type { LatencyProfile } from "../models/latency.js";
import { AbortError } from "../runtime/abort.js";
import { RealClock } from "../runtime/clock.js";
import type { Runtime } from "../runtime/runtime.js";
import type { ServeMetrics } from "./metrics.js";

/** The queue is full: the client should retry later (HTTP 429). */
export class QueueFullError extends Error {
  override readonly name = "QueueFullError";
}

/** The server is shutting down or has no target left (HTTP 503). */
export class UnavailableError extends Error {
  override readonly name = "UnavailableError";
}

/** How long aborted generations get to end at shutdown before the server stops anyway. */
const ABORT_GRACE_MS = 5000;

export interface ServiceOptions {
  backend: Backend;
  /** Target instances (SP); a cluster's is its number of workers. */
  sp: number;
  /** Latency profile added on top of the backend's compute (emulated devices). */
  profile: LatencyProfile;
  maxConcurrent: number;
  maxQueue: number;
  metrics: ServeMetrics;
}

export interface Job {
  algo: AlgorithmName;
  options: Omit<GenerateOptions, "signal">;
}

export class Service {
  private active = 0;
  private readonly waiting: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  private readonly running = new Set<AbortController>();
  private draining = false;

  private constructor(
    private readonly o: ServiceOptions,
    readonly runtime: Runtime,
  ) {}

  static async open(o: ServiceOptions): Promise<Service> {
    const sp = o.backend.targetCount ?? o.sp;
    const runtime = await o.backend.runtime(new RealClock(), sp, o.profile, false);
    runtime.observer = o.metrics.observer;
    if (o.backend.workerStats) o.metrics.watchWorkers(() => o.backend.workerStats!());
    return new Service(o, runtime);
  }

  get backend(): Backend {
    return this.o.backend;
  }

  /** Most generations running or waiting at once: more choices in one request could never all be admitted. */
  get capacity(): number {
    return this.o.maxConcurrent + this.o.maxQueue;
  }

  /** Generations running now. */
  get activeCount(): number {
    return this.active;
  }

  /**
   * Whether new work is accepted: not draining, no target instance lost, and every target
   * worker (a cluster's) answering now.
   */
  async health(): Promise<{ ok: boolean; reason?: string }> {
    if (this.draining) return { ok: false, reason: "shutting down" };
    if (this.runtime.pool.alive === 0) return { ok: false, reason: "no target instance is alive" };
    if (this.runtime.pool.alive < this.runtime.pool.size) return { ok: false, reason: `${this.runtime.pool.size - this.runtime.pool.alive} target instance(s) lost` };
    const silent = (await this.o.backend.workerStats?.())?.filter((w) => !w.stats).map((w) => w.address) ?? [];
    if (silent.length > 0) return { ok: false, reason: `target worker(s) not answering: ${silent.join(", ")}` };
    return { ok: true };
  }

  /** Updates the gauges that are read, not counted. */
  refreshGauges(): void {
    this.o.metrics.active.set(this.active);
    this.o.metrics.queued.set(this.waiting.length);
    this.o.metrics.busyInstances.set(this.runtime.pool.busy);
  }

  /**
   * Runs one generation once admitted; `onToken` hears each committed token. Rejects with
   * QueueFullError, UnavailableError, an AbortError when `signal` aborts, or the engine's error.
   */
  async run(job: Job, signal: AbortSignal, onToken?: (token: number) => void): Promise<Completion> {
    if (this.draining) throw new UnavailableError("the server is shutting down");
    if (this.runtime.pool.alive === 0) throw new UnavailableError("no target instance is alive");
    await this.admit(signal);
    const controller = new AbortController();
    const abort = (): void => controller.abort(signal.reason);
    signal.addEventListener("abort", abort, { once: true });
    this.running.add(controller);
    try {
      const gen = generate(job.algo, this.runtime, { ...job.options, signal: controller.signal });
      if (onToken) for await (const token of gen) onToken(token);
      const result = await gen.result;
      this.o.metrics.observe(result.stats, job.options.prompt.length);
      return result;
    } finally {
      // Also when onToken threw: the generation must not outlive its request.
      controller.abort();
      signal.removeEventListener("abort", abort);
      this.running.delete(controller);
      this.active--;
      this.waiting.shift()?.resolve();
    }
  }

  private admit(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(new AbortError());
    if (this.active < this.o.maxConcurrent) {
      this.active++;
      return Promise.resolve();
    }
    if (this.waiting.length >= this.o.maxQueue) return Promise.reject(new QueueFullError(`${this.active} generations running and ${this.waiting.length} waiting (--max-concurrent, --max-queue)`));
    return new Promise<void>((resolve, reject) => {
      const entry = {
        resolve: () => {
          signal.removeEventListener("abort", onAbort);
          this.active++;
          resolve();
        },
        reject,
      };
      const onAbort = (): void => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(new AbortError());
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.waiting.push(entry);
    });
  }

  /**
   * Stops taking work, lets running generations finish for `graceMs`, then aborts the rest;
   * waiting requests are refused at once.
   */
  async drain(graceMs: number): Promise<void> {
    this.draining = true;
    for (const w of this.waiting.splice(0)) w.reject(new UnavailableError("the server is shutting down"));
    const deadline = Date.now() + graceMs;
    while (this.active > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const c of this.running) c.abort(new UnavailableError("the server is shutting down"));
    // Aborted generations end within a forward pass; do not wait on one that ignores it.
    const hard = Date.now() + ABORT_GRACE_MS;
    while (this.active > 0 && Date.now() < hard) await new Promise((r) => setTimeout(r, 5));
  }
}
