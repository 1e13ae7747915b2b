/** `dsi serve`: the OpenAI-compatible HTTP server over one backend and its shared target pool. */
import type { AlgorithmName, Lookahead } from "../algorithms/options.js";
import type { DraftMode } from "../algorithms/option-spec.js";
import type { Backend } from "../models/backend.js";
import type { LatencyProfile } from "../models/latency.js";
import { isLoopback } from "../models/remote/security.js";
import { HTTP_DEFAULTS } from "../serve/http.js";
import { ServeMetrics } from "../serve/metrics.js";
import { buildServer, type ServiceSlot } from "../serve/server.js";
import { Service } from "../serve/service.js";
import { onSignals, UsageError } from "./flags.js";
import { println, type CliIo } from "./io.js";

/** The defaults of the flags that bound a request in time and size. */
export const SERVE_DEFAULTS = HTTP_DEFAULTS;

/** The environment variable `dsi serve` reads its API key from. */
export const API_KEY_ENV = "DSI_API_KEY";

/** The model id clients name in requests (`/v1/models` lists it). */
export const MODEL_ID = "dsi";

export interface ServeFlags {
  host: string;
  port: number;
  sp: number;
  algo: AlgorithmName;
  lookahead: Lookahead;
  draft: DraftMode;
  ngramMin: number;
  ngramMax: number;
  maxTokens: number;
  /** Most tokens a request may ask for, per choice. */
  maxTokensLimit: number;
  /** Seconds a client has to send a whole request, and its headers. */
  requestTimeout: number;
  headersTimeout: number;
  apiKey?: string;
  maxConcurrent: number;
  maxQueue: number;
  latency: LatencyProfile;
  shutdownTimeout: number;
}

/** Checks the flags that need no model; call before loading one. */
export function checkServeFlags(f: ServeFlags, env: CliIo["env"]): string | undefined {
  const key = f.apiKey ?? (env[API_KEY_ENV] || undefined);
  if (key !== undefined && key.length < 16) throw new UsageError(`${f.apiKey !== undefined ? "--api-key" : API_KEY_ENV}: give at least 16 characters`);
  if (f.maxTokens > f.maxTokensLimit) throw new UsageError(`--max-tokens: ${f.maxTokens} exceeds --max-tokens-limit (${f.maxTokensLimit}), the most a request may ask for`);
  if (f.headersTimeout > f.requestTimeout) throw new UsageError(`--headers-timeout: ${f.headersTimeout} s exceeds --request-timeout (${f.requestTimeout} s), which includes the headers`);
  if (!isLoopback(f.host) && key === undefined) throw new UsageError(`--host: ${f.host} is not a loopback address; a server reachable from other hosts needs an API key (--api-key or ${API_KEY_ENV})`);
  return key;
}

/**
 * Listens at once (`/health` says 503 while the models load), opens the backend, serves until
 * SIGINT or SIGTERM, then drains: running generations get `--shutdown-timeout` to finish.
 */
export async function runServe(open: () => Promise<Backend>, f: ServeFlags, apiKey: string | undefined, io: CliIo): Promise<void> {
  const metrics = new ServeMetrics();
  const slot: ServiceSlot = {};
  const app = buildServer({
    slot,
    metrics,
    modelId: MODEL_ID,
    apiKey,
    algo: f.algo,
    lookahead: f.lookahead,
    drafting: { draft: f.draft, ngramMin: f.ngramMin, ngramMax: f.ngramMax },
    defaultMaxTokens: f.maxTokens,
    maxTokensLimit: f.maxTokensLimit,
    requestTimeoutMs: f.requestTimeout * 1000,
    headersTimeoutMs: f.headersTimeout * 1000,
  });
  let address: string;
  try {
    address = await app.listen({ host: f.host, port: f.port });
  } catch (err) {
    throw new UsageError(`--host/--port: cannot listen on ${f.host}:${f.port} (${(err as Error).message})`);
  }
  println(io.stdout, `dsi serve: listening on ${address}; loading the models`);
  // Heard from now on: a signal while the models load stops the server once they are loaded.
  const stopped = new Promise<string>((resolve) => onSignals(["SIGINT", "SIGTERM"], resolve));
  let backend: Backend;
  try {
    backend = await open();
  } catch (err) {
    await app.close();
    throw err;
  }
  try {
    try {
      slot.service = await Service.open({ backend, sp: f.sp, profile: f.latency, maxConcurrent: f.maxConcurrent, maxQueue: f.maxQueue, metrics });
    } catch (err) {
      await app.close();
      throw err;
    }
    const learned = backend.learnedCache ? `; learned costs ${backend.learnedCache.pathFor(f.latency)}` : "";
    println(io.stdout, `dsi serve: ${backend.describe()}${learned}; ${f.algo}${f.algo === "nonsi" ? "" : ` L=${f.lookahead}`}, model "${MODEL_ID}", ready on ${address}`);
    const signal = await stopped;
    println(io.stdout, `dsi serve: ${signal}: finishing ${slot.service.activeCount} generation(s), at most ${f.shutdownTimeout} s`);
    // Refuse new work (drain), stop accepting connections, let generations finish, abort what
    // is left at the deadline.
    const drained = slot.service.drain(f.shutdownTimeout * 1000);
    const closed = app.close();
    await drained;
    // Connections go idle as their responses end; keep-alive would hold them (and us) 5 s more.
    const idle = setInterval(() => app.server.closeIdleConnections(), 50);
    await closed;
    clearInterval(idle);
  } finally {
    await backend.close();
  }
}
