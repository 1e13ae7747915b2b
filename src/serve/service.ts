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
import { InvalidRequestError } from "../core/instance.js";
import type { ServeMetrics } from "./metrics.js";
import { ApiError } from "./openai.js";
import { encodesChatSeparators, maxTokenBytes } from "./prompt.js";

/** The queue is full: the client should retry later (HTTP 429). */
export class QueueFullError extends Error {
  override readonly name = "QueueFullError";
}

/** The server is shutting down or has no target left (HTTP 503). */
export class UnavailableError extends Error {
  override readonly name = "UnavailableError";
}

/**
 * How often a server keeps what its runtime learned (the backend's `saveLearned`), when it
 * learned something since: a server killed without a drain loses at most this much.
 */
export const LEARNED_SAVE_MS = 5000;

/** How long aborted generations get to end at shutdown before the server stops anyway. */
const ABORT_GRACE_MS = 5000;

/** Per signal: the callbacks its abort runs, and its one listener (see `onAbort`). */
const abortCallbacks = new WeakMap<AbortSignal, { callbacks: Set<() => void>; listener: () => void }>();

/**
 * Runs `f` when `signal` aborts; returns the function that forgets it. One listener per
 * signal, however many callbacks: a request's n choices (each a generation, waiting or
 * running) share its signal, and more than 10 listeners on one signal make Node warn of a
 * leak (MaxListenersExceededWarning).
 */
function onAbort(signal: AbortSignal, f: () => void): () => void {
  // Aborted already (between a caller's check and this): no event will come.
  if (signal.aborted) {
    f();
    return () => undefined;
  }
  let entry = abortCallbacks.get(signal);
  if (!entry) {
    const callbacks = new Set<() => void>();
    const listener = (): void => {
      abortCallbacks.delete(signal);
      for (const g of callbacks) g();
    };
    entry = { callbacks, listener };
    abortCallbacks.set(signal, entry);
    signal.addEventListener("abort", listener, { once: true });
  }
  const mine = entry;
  const { callbacks, listener } = mine;
  callbacks.add(f);
  return () => {
    callbacks.delete(f);
    // The listener goes with the last callback, so a long-lived signal keeps none.
    if (callbacks.size === 0 && abortCallbacks.get(signal) === mine) {
      abortCallbacks.delete(signal);
      signal.removeEventListener("abort", listener);
    }
  };
}

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

/** What `/health` says: ok (200), degraded (200: serving with fewer targets), unavailable (503). */
export interface Health {
  ok: boolean;
  status: "ok" | "degraded" | "unavailable";
  reason?: string;
  /** Target instances configured, and live now (no sequence lost and, for a cluster, answering). */
  targets?: { live: number; configured: number };
}

export interface Job {
  algo: AlgorithmName;
  options: Omit<GenerateOptions, "signal">;
}

export class Service {
  private active = 0;
  private readonly waiting: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  private readonly running = new Set<AbortController>();
  /** Called when the last running generation ends (see `idleWithin`). */
  private readonly idle = new Set<() => void>();
  private draining = false;
  /** Saves what the runtime learned every `LEARNED_SAVE_MS` (backends that keep it). */
  private saveTimer: ReturnType<typeof setInterval> | undefined;
  /** The costs' version last saved, and the save in flight. */
  private savedVersion = -1;
  private saving: Promise<void> | undefined;

  private constructor(
    private readonly o: ServiceOptions,
    readonly runtime: Runtime,
    /**
     * With a context: the most bytes of text one token stands for (`maxTokenBytes`), so that
     * a prompt that cannot fit is refused by its size, before it is tokenized.
     */
    readonly tokenBytes: number | undefined,
    /** Whether the tokenizer encodes the default chat template's separators (else `renderChat`'s plain form). */
    readonly chatSeparators: boolean,
  ) {}

  static async open(o: ServiceOptions): Promise<Service> {
    const sp = o.backend.targetCount ?? o.sp;
    const runtime = await o.backend.runtime(new RealClock(), sp, o.profile, { events: false });
    runtime.observer = o.metrics.observer;
    if (o.backend.workerStats) o.metrics.watchWorkers(() => o.backend.workerStats!());
    const tokenBytes = o.backend.contextSize === undefined ? undefined : maxTokenBytes(o.backend.tokenizer, runtime.pool.vocabSize);
    const service = new Service(o, runtime, tokenBytes, encodesChatSeparators(o.backend.tokenizer));
    o.metrics.watchTargets(() => service.targets());
    if (o.backend.saveLearned) {
      service.savedVersion = runtime.learned.costs.version;
      // Unref'd: the timer never keeps the process alive.
      service.saveTimer = setInterval(() => void service.saveLearned(), LEARNED_SAVE_MS);
      service.saveTimer.unref();
    }
    return service;
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
   * Target instances configured; live now: none of their sequences lost and, for a cluster,
   * answering; serving: at least one sequence not lost (and answering). `silent` names each
   * worker that does not answer, and why.
   */
  async targets(): Promise<{ configured: number; live: number; serving: number; silent: string[] }> {
    const pool = this.runtime.pool;
    const workers = await this.o.backend.workerStats?.();
    let [live, serving] = [0, 0];
    for (let i = 0; i < pool.size; i++) {
      if (workers && !workers[i]?.stats) continue;
      const lost = pool.lostOn(i);
      if (lost === 0) live++;
      if (lost < pool.sequences) serving++;
    }
    const silent = (workers ?? []).filter((w) => !w.stats).map((w) => `${w.address} (${w.error ?? "not answering"})`);
    return { configured: pool.size, live, serving, silent };
  }

  /**
   * Whether new work is accepted: unavailable while draining or with no live target; degraded
   * (serving) while some targets, or some of their sequences, are lost or do not answer (a
   * cluster's workers).
   */
  async health(): Promise<Health> {
    if (this.draining) return { ok: false, status: "unavailable", reason: "shutting down" };
    const t = await this.targets();
    const targets = { live: t.live, configured: t.configured };
    const silent = t.silent.length > 0 ? `: target worker(s) not answering: ${t.silent.join(", ")}` : "";
    if (this.runtime.pool.alive === 0) return { ok: false, status: "unavailable", reason: `no target instance is alive${silent}`, targets };
    if (t.serving === 0) return { ok: false, status: "unavailable", reason: `no target instance is live${silent}`, targets };
    const partly = t.serving - t.live;
    if (t.live < t.configured) {
      const some = partly > 0 ? ` (${partly} of them serving some of their sequences)` : "";
      return { ok: true, status: "degraded", reason: `${t.configured - t.live} of ${t.configured} target instances not serving${some}${silent}`, targets };
    }
    return { ok: true, status: "ok", targets };
  }

  /** Updates the gauges that are read, not counted. */
  refreshGauges(): void {
    this.o.metrics.active.set(this.active);
    this.o.metrics.queued.set(this.waiting.length);
    this.o.metrics.busyInstances.set(this.runtime.pool.busyInstances);
    this.o.metrics.poolQueued.set(this.runtime.pool.queuedMembers);
    const chunks = this.o.backend.evalChunk;
    for (const model of ["target", "drafter"] as const) {
      const c = chunks?.[model]?.chunk;
      if (c !== undefined) this.o.metrics.evalChunk.set({ model }, c);
    }
  }

  /**
   * Runs one generation once admitted; `onToken` hears each committed token. Rejects with
   * QueueFullError, UnavailableError, an AbortError when `signal` aborts, or the engine's error.
   */
  async run(job: Job, signal: AbortSignal, onToken?: (token: number) => void): Promise<Completion> {
    if (this.draining) throw new UnavailableError("the server is shutting down");
    if (this.runtime.pool.alive === 0) {
      // Lost instances are probed and rejoin when they answer; until then, say which and why.
      const silent = (await this.targets()).silent;
      throw new UnavailableError(`no target instance is alive${silent.length > 0 ? `: target worker(s) not answering: ${silent.join(", ")}` : ""}`);
    }
    await this.admit(signal);
    const controller = new AbortController();
    const forget = onAbort(signal, () => controller.abort(signal.reason));
    this.running.add(controller);
    /** Tokens put out so far; undefined until the generation starts. */
    let tokens: number | undefined;
    let finished = false;
    try {
      const gen = generate(job.algo, this.runtime, { ...job.options, signal: controller.signal });
      this.o.metrics.started(job.options.prompt.length);
      tokens = 0;
      // Iterated also without onToken: a generation that does not finish counts its tokens.
      for await (const token of gen) {
        tokens++;
        onToken?.(token);
      }
      const result = await gen.result;
      this.o.metrics.finished(result.stats);
      finished = true;
      return result;
    } catch (err) {
      // A request an instance refused (a worker's context, a token it does not have) is the
      // client's fault: 400, and the instance stays in the pool.
      if (err instanceof InvalidRequestError) throw new ApiError(400, err.message, "invalid_request_error", null, "invalid_request");
      throw err;
    } finally {
      // Also when onToken threw: the generation must not outlive its request.
      controller.abort();
      forget();
      if (tokens !== undefined && !finished) this.o.metrics.unfinished(tokens);
      this.running.delete(controller);
      this.active--;
      this.waiting.shift()?.resolve();
      if (this.active === 0) for (const idle of [...this.idle]) idle();
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
          forget();
          this.active++;
          resolve();
        },
        reject: (e: unknown) => {
          forget();
          reject(e);
        },
      };
      this.waiting.push(entry);
      const forget = onAbort(signal, () => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(new AbortError());
      });
    });
  }

  /**
   * Writes what the runtime learned if it learned something since the last save (one save at
   * a time; the backend warns when it cannot write).
   */
  async saveLearned(): Promise<void> {
    const save = this.o.backend.saveLearned;
    if (!save) return;
    await this.saving;
    const version = this.runtime.learned.costs.version;
    if (version === this.savedVersion) return;
    this.savedVersion = version;
    this.saving = save();
    await this.saving;
    this.saving = undefined;
  }

  /**
   * Stops taking work, lets running generations finish for `graceMs`, then aborts the rest;
   * waiting requests are refused at once. What the runtime learned is saved last.
   */
  async drain(graceMs: number): Promise<void> {
    this.draining = true;
    for (const w of this.waiting.splice(0)) w.reject(new UnavailableError("the server is shutting down"));
    await this.idleWithin(graceMs);
    for (const c of this.running) c.abort(new UnavailableError("the server is shutting down"));
    // Aborted generations end within a forward pass; do not wait on one that ignores it.
    await this.idleWithin(ABORT_GRACE_MS);
    clearInterval(this.saveTimer);
    await this.saveLearned();
  }

  /** Resolves when no generation runs (the last one's end says so), or after `ms`. */
  private idleWithin(ms: number): Promise<void> {
    if (this.active === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.idle.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.idle.add(done);
    });
  }
}
