/**
 * `dsi worker`'s server: one model instance behind the ModelWorker service, with one or more
 * sequences (`instances`: the sequences of one multi-sequence instance, each a ModelInstance
 * with its own cache). Per sequence it keeps the tokens it was last asked about (the instance
 * keeps its own cache of them), applies each request's `keep`/`append` to them after checking
 * the prefix hash, hands them to the instance as a view (not a copy: a call costs O(tokens
 * received)), and cancels the evaluation when the caller cancels the call. Evaluations on one
 * sequence run one at a time, in order; on different sequences they are in flight at once (the
 * instance decides how they share it: a llama context's share passes on a CPU with one thread), and cancelling one never
 * touches another's.
 * A request it refuses (INVALID_ARGUMENT, OUT_OF_RANGE) leaves what it holds unchanged and
 * tells the client the request was at fault, not the worker (see proto/worker.proto).
 */
import { Metadata, Server, status, type sendUnaryData, type ServerUnaryCall } from "@grpc/grpc-js";
import { InvalidRequestError, TokenView, type ModelInstance } from "../core/instance.js";
import type { SamplingParams } from "../core/sampling.js";
import type { OutputMode } from "../core/verify.js";
import {
  encodeProbs,
  HASH_START,
  hashStep,
  MAX_MESSAGE_BYTES,
  modeFromWire,
  MODEL_ERROR_KEY,
  MODEL_ERROR_VALUE,
  SERVER_KEEPALIVE,
  workerDefinition,
  type EvaluateReply,
  type EvaluateRequest__Output,
  type ModelWorkerHandlers,
  type WorkerStats,
} from "../models/remote/protocol.js";
import { serverCredentials, tokenChecker, type ServerTls } from "../models/remote/security.js";
import { isAbortError } from "../runtime/abort.js";

export interface WorkerOptions {
  /** The sequences served (at least one): calls name theirs by index. */
  instances: readonly ModelInstance[];
  /** host:port; port 0 picks a free one. */
  listen: string;
  /** What the worker says it serves (e.g. "synthetic", "llama"). */
  backend: string;
  /** The worker's label; `@host:port` (the bound address) is appended. */
  role: string;
  /** A token every call must carry; none: calls are not checked. */
  token?: string;
  /** Serve over TLS with this certificate. */
  tls?: ServerTls;
  /**
   * The model's context and forward-pass size, when `instance` is a wrapper that does not
   * carry them (a latency-emulating one); default: the instance's own.
   */
  contextSize?: number;
  evalChunk?: number;
}

export interface RunningWorker {
  /** host:port actually bound. */
  address: string;
  /** What the worker has done (also served by the Stats call). */
  counters: WorkerStats;
  close(): Promise<void>;
}

/**
 * The sequence a worker holds, as the instance is given it: a TokenView over `stable`, an
 * array that only grows (so a view stays valid however long the instance keeps it, as the
 * engine's own views do), followed by the last request's new tokens. Tokens a later request
 * keeps move into `stable` (most are committed ones); a request that keeps less than `stable`
 * (another sequence, or speculative tokens dropped after all) starts a new array with the
 * part it keeps: one copy.
 */
export class HeldSequence {
  private stable: number[] = [];
  private tail: number[] = [];
  /** hashes[i]: the prefix hash of the first i tokens. */
  private readonly hashes: number[] = [HASH_START];

  get length(): number {
    return this.stable.length + this.tail.length;
  }
  /** The prefix hash of the first `i` tokens, 0 <= i <= length. */
  hash(i: number): number {
    return this.hashes[i];
  }
  /** Keeps the first `keep` tokens (keep <= length) and appends `append`. */
  apply(keep: number, append: number[]): void {
    if (keep >= this.stable.length) for (let i = 0, moved = keep - this.stable.length; i < moved; i++) this.stable.push(this.tail[i]);
    else this.stable = this.stable.slice(0, keep);
    this.tail = append;
    this.hashes.length = keep + 1;
    for (const t of append) this.hashes.push(hashStep(this.hashes[this.hashes.length - 1], t));
  }
  view(): TokenView {
    return new TokenView(this.stable, this.stable.length, this.tail);
  }
}

export async function serveWorker(o: WorkerOptions): Promise<RunningWorker> {
  if (o.instances.length === 0) throw new RangeError("a worker serves at least one sequence");
  const instance = o.instances[0];
  const slots = o.instances.map((model) => ({ model, held: new HeldSequence(), queue: Promise.resolve() as Promise<unknown> }));
  const counters: WorkerStats = { calls: 0, cancelled: 0, tokensReceived: 0, positionsEvaluated: 0, busySeconds: 0 };
  // Busy time is wall time with at least one evaluation running: sequences evaluating at once
  // count once (their sum could pass the wall clock). Folded in at each start and end.
  let evaluating = 0;
  let since = 0;
  const busy = (change: 1 | -1): void => {
    const now = performance.now();
    if (evaluating > 0) counters.busySeconds += (now - since) / 1000;
    since = now;
    evaluating += change;
  };
  let label = o.role;
  // Every call is checked, Info and Stats included: nothing is served to a caller without the token.
  const check = o.token === undefined ? undefined : tokenChecker(o.token);
  const refused = <Req, Res>(call: ServerUnaryCall<Req, Res>, cb: sendUnaryData<Res>): boolean => {
    if (!check || check(call.metadata)) return false;
    cb({ code: status.UNAUTHENTICATED, details: "missing or wrong token (give the worker's token: DSI_TOKEN or the cluster file's token)" });
    return true;
  };

  const contextSize = o.contextSize ?? instance.contextSize;
  const info: ModelWorkerHandlers["Info"] = (call, cb) => {
    if (refused(call, cb)) return;
    cb(null, {
      label,
      vocabSize: instance.vocabSize,
      eosToken: instance.eosToken ?? -1,
      backend: o.backend,
      contextSize: contextSize ?? 0,
      evalChunk: o.evalChunk ?? instance.evalChunk ?? 0,
      sequences: slots.length,
    });
  };

  /**
   * Why the worker refuses a request, before touching what it holds; else what it asks for.
   * A refusal is the request's fault (the client fails that request, not this worker).
   */
  const accept = (r: EvaluateRequest__Output): { code: status; details: string } | { mode: OutputMode; sampling: SamplingParams } => {
    const vocab = instance.vocabSize;
    const bad = r.append.find((t) => !(Number.isInteger(t) && t >= 0 && t < vocab));
    if (bad !== undefined) return { code: status.INVALID_ARGUMENT, details: `token ${bad} is outside the vocabulary of ${vocab}` };
    const length = r.keep + r.append.length;
    const mode = modeFromWire(r.mode);
    if (mode === undefined) return { code: status.INVALID_ARGUMENT, details: `unknown output mode ${r.mode}` };
    if (!r.sampling) return { code: status.INVALID_ARGUMENT, details: "no sampling settings" };
    if (!(r.from >= 1 && r.from <= length)) return { code: status.INVALID_ARGUMENT, details: `from ${r.from} is outside 1..${length} (the sequence's length; an output needs a token of context)` };
    // The sequence and the token it predicts must fit: llama.cpp keeps one slot free and, full,
    // would drop the oldest tokens (a wrong prefix, silently).
    if (contextSize !== undefined && length >= contextSize) {
      return { code: status.OUT_OF_RANGE, details: `the sequence (${length} tokens) plus the token it predicts exceeds the model context of ${contextSize} tokens` };
    }
    return { mode, sampling: r.sampling };
  };
  /** An error the model raised: marked, so the client does not take it for a broken connection. */
  const modelError = (details: string): { code: status; details: string; metadata: Metadata } => {
    const metadata = new Metadata();
    metadata.set(MODEL_ERROR_KEY, MODEL_ERROR_VALUE);
    return { code: status.INTERNAL, details, metadata };
  };

  const evaluate: ModelWorkerHandlers["Evaluate"] = (call, cb) => {
    if (refused(call, cb)) return;
    const slot = slots[call.request.sequence];
    if (!slot) {
      counters.calls++;
      // NOT_FOUND, not INVALID_ARGUMENT: the request is fine, this worker (restarted with
      // fewer --sequences, say) no longer serves its sequence, and the client retires it.
      return cb({ code: status.NOT_FOUND, details: `sequence ${call.request.sequence} is outside 0..${slots.length - 1} (this worker serves ${slots.length})` });
    }
    const { model, held } = slot;
    const run = async (): Promise<void> => {
      const r = call.request;
      counters.calls++;
      if (call.cancelled) {
        counters.cancelled++;
        return cb({ code: status.CANCELLED, details: "cancelled before it ran" });
      }
      if (r.keep > held.length || held.hash(r.keep) !== r.keepHash) {
        return cb({ code: status.FAILED_PRECONDITION, details: `the worker holds ${held.length} tokens; the request's first ${r.keep} do not match them` });
      }
      const accepted = accept(r);
      if ("code" in accepted) return cb(accepted);
      const { mode, sampling } = accepted;
      held.apply(r.keep, r.append);
      counters.tokensReceived += r.append.length;
      const controller = new AbortController();
      const onCancel = (): void => controller.abort();
      call.on("cancelled", onCancel);
      busy(1);
      try {
        const outputs = await model.evaluate({ tokens: held.view(), from: r.from, mode, sampling, seed: r.seed, stream: r.stream }, controller.signal);
        counters.positionsEvaluated += outputs.length;
        const reply: EvaluateReply = { tokens: [], probs: Buffer.alloc(0), held: held.length, heldHash: held.hash(held.length) };
        if (mode === "dist") reply.probs = encodeProbs(outputs, instance.vocabSize, r.probsFormat);
        else reply.tokens = outputs.map((out) => out.token);
        cb(null, reply);
      } catch (err) {
        if (isAbortError(err)) {
          counters.cancelled++;
          cb({ code: status.CANCELLED, details: "cancelled" });
        } else if (err instanceof InvalidRequestError) cb({ code: status.INVALID_ARGUMENT, details: err.message });
        else cb(modelError(err instanceof Error ? err.message : String(err)));
      } finally {
        busy(-1);
        call.removeListener("cancelled", onCancel);
      }
    };
    // One evaluation at a time per sequence: its cache is not shared between calls.
    slot.queue = slot.queue.then(run, run);
  };

  const server = new Server({ "grpc.max_receive_message_length": MAX_MESSAGE_BYTES, "grpc.max_send_message_length": MAX_MESSAGE_BYTES, ...SERVER_KEEPALIVE });
  const stats: ModelWorkerHandlers["Stats"] = (call, cb) => {
    if (!refused(call, cb)) cb(null, { ...counters });
  };
  const handlers: ModelWorkerHandlers = { Info: info, Evaluate: evaluate, Stats: stats };
  server.addService(workerDefinition(), handlers);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(o.listen, serverCredentials(o.tls), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const host = o.listen.slice(0, o.listen.lastIndexOf(":"));
  label = `${o.role}@${host}:${port}`;
  return {
    address: `${host}:${port}`,
    counters,
    // Calls in flight get a second to finish; connections that linger after that (a client
    // process's idle channel) do not keep the worker from stopping.
    close: () =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 1000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}
