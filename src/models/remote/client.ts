/**
 * A model instance served by a worker process (`dsi worker`): the engine cannot tell it from an
 * in-process one. The client mirrors the sequence the worker holds and sends only the tokens
 * beyond their common prefix, so bytes per call do not grow with the context; the worker
 * checks the prefix by hash and refuses a call whose base it does not hold, and the client
 * then sends the whole sequence once. Aborting a call cancels it on the worker.
 *
 * Failures are classified (docs/distributed.md, "Faults"): a request the worker refuses is an
 * InvalidRequestError (the request fails, the instance stays); an error its model raised is a
 * WorkerCallError (the same); only a worker that cannot be reached, misses a deadline, drops
 * the call or no longer lets us in is lost (WorkerError, an InstanceLostError).
 */
import { status, type Client, type Metadata, type ServiceError } from "@grpc/grpc-js";
import { checkRequest, InstanceLostError, InvalidRequestError, type EvalRequest, type ModelInstance } from "../../core/instance.js";
import type { PositionOutput } from "../../core/verify.js";
import { AbortError } from "../../runtime/abort.js";
import { channelCredentials, tokenMetadata, type ClientTls } from "./security.js";
import {
  decodeProbs,
  HASH_START,
  hashStep,
  modeToWire,
  MODEL_ERROR_KEY,
  MODEL_ERROR_VALUE,
  probsFormatToWire,
  workerClient,
  type ProbsFormat,
  type EvaluateReplyMsg,
  type EvaluateRequestMsg,
  type InfoReply,
  type WorkerStats,
} from "./protocol.js";

/** A worker that cannot be reached or no longer serves: the message names it. The instance is lost. */
export class WorkerError extends InstanceLostError {
  override readonly name: string = "WorkerError";
  constructor(
    readonly address: string,
    /** What went wrong, without the address. */
    readonly reason: string,
  ) {
    super(`worker ${address}: ${reason}`);
  }
}

/**
 * A call the worker answered with a failure of its own model (or a reply this client cannot
 * use): that request fails, the worker stays in the pool.
 */
export class WorkerCallError extends Error {
  override readonly name: string = "WorkerCallError";
  constructor(
    readonly address: string,
    message: string,
  ) {
    super(`worker ${address}: ${message}`);
  }
}

/** A connection failure in a few words. */
function connectProblem(err: ServiceError): string {
  if (err.code === status.UNAUTHENTICATED) return `refused: ${err.details}`;
  if (err.code === status.DEADLINE_EXCEEDED) return "no answer in time (is `dsi worker` running there?)";
  if (err.code === status.UNAVAILABLE) {
    const cause = /\b(E[A-Z]{3,})\b/.exec(err.details)?.[1];
    return `cannot connect${cause ? ` (${cause})` : ""}; is \`dsi worker\` running there?`;
  }
  return err.details || err.message;
}

type Unary<Req, Res> = (req: Req, md: Metadata, opts: { deadline?: number }, cb: (err: ServiceError | null, res: Res) => void) => { cancel(): void };

export interface RemoteOptions {
  /** Milliseconds to wait for the worker to answer Info. Defaults to 5000. */
  connectTimeoutMs?: number;
  /**
   * Deadline of each evaluation call, in milliseconds: a worker that has not answered by then
   * is treated as failed. Defaults to 300000 (a long prompt on a slow device).
   */
  callTimeoutMs?: number;
  /** The worker's token, sent with every call. */
  token?: string;
  /** Connect over TLS. */
  tls?: ClientTls;
  /**
   * How the worker sends distributions (rejection sampling): float32 (default) or float16,
   * half the bytes, each probability rounded to float16 (see docs/distributed.md).
   */
  probs?: ProbsFormat;
}

/** What a worker must serve to be taken (a worker that did not answer at start). */
export interface ExpectedModel {
  vocabSize: number;
  eosToken: number | undefined;
}

/**
 * Most milliseconds a probe or a Stats call waits: they ask "do you answer now?" (a server's
 * /health waits on them), which a worker answers at once even while it evaluates.
 */
const QUICK_CALL_MS = 1000;

export class RemoteInstance implements ModelInstance {
  /** The tokens the worker holds, as far as this client knows, and their prefix hashes. */
  private mirror: number[] = [];
  private hashes: number[] = [HASH_START];
  /** Tokens sent over the wire, for tests and benches. */
  tokensSent = 0;
  private closed = false;
  /** What the worker said it serves (Info); the expected model until it answered once. */
  private served: { label: string; backend: string; contextSize?: number; evalChunk?: number };
  /** Why the worker has not answered yet (never answered since this client was made); undefined once it has. */
  private pendingWhy: string | undefined;
  private readonly connectTimeoutMs: number;
  private readonly callTimeoutMs: number;
  private readonly token: string | undefined;
  readonly probsFormat: ProbsFormat;

  private constructor(
    readonly address: string,
    private readonly client: Client,
    readonly vocabSize: number,
    readonly eosToken: number | undefined,
    o: RemoteOptions,
    info: InfoReply | undefined,
    pendingWhy: string | undefined,
  ) {
    this.connectTimeoutMs = o.connectTimeoutMs ?? 5000;
    this.callTimeoutMs = o.callTimeoutMs ?? 300_000;
    this.token = o.token;
    this.probsFormat = o.probs ?? "float32";
    this.served = { label: `target@${address}`, backend: "" };
    if (info) this.adopt(info);
    this.pendingWhy = pendingWhy;
  }

  /** Connects to a worker and reads what it serves; rejects with a WorkerError when it does not answer. */
  static async connect(address: string, o: RemoteOptions = {}): Promise<RemoteInstance> {
    const client = workerClient(address, channelCredentials(o.tls));
    const reply = await infoCall(client, address, o.token, o.connectTimeoutMs ?? 5000).catch((err: unknown) => {
      client.close();
      throw err;
    });
    return new RemoteInstance(address, client, reply.vocabSize, reply.eosToken < 0 ? undefined : reply.eosToken, o, reply, undefined);
  }

  /**
   * A worker that did not answer (`why`): an instance that fails every call at once (a
   * WorkerError, so the pool retires it and probes it) until `probe()` finds the worker
   * serving `expected`'s vocabulary and EOS.
   */
  static pending(address: string, o: RemoteOptions, expected: ExpectedModel, why: string): RemoteInstance {
    return new RemoteInstance(address, workerClient(address, channelCredentials(o.tls)), expected.vocabSize, expected.eosToken, o, undefined, why);
  }

  get label(): string {
    return this.served.label;
  }
  /** What the worker serves ("synthetic", "llama"); empty until it answered. */
  get backend(): string {
    return this.served.backend;
  }
  /** The worker model's context (Info), if limited. */
  get contextSize(): number | undefined {
    return this.served.contextSize;
  }
  /** The worker model's tokens per forward pass (Info), where it has one. */
  get evalChunk(): number | undefined {
    return this.served.evalChunk;
  }
  /** Why the worker has not answered since this client was made; undefined once it has. */
  get notAnswered(): string | undefined {
    return this.pendingWhy;
  }

  private adopt(info: InfoReply): void {
    this.served = { label: info.label, backend: info.backend, contextSize: info.contextSize || undefined, evalChunk: info.evalChunk || undefined };
  }

  close(): void {
    this.closed = true;
    this.client.close();
  }

  /**
   * Whether the worker serves (again): it must answer Info with the same vocabulary and EOS.
   * Used after this client lost it (a worker restarted at the same address) and for a worker
   * that did not answer at start. It holds nothing now; the next call's prefix check finds
   * that out and sends the whole sequence. Rejects when the worker serves another model.
   */
  async probe(): Promise<boolean> {
    if (this.closed) throw new WorkerError(this.address, "closed");
    let reply: InfoReply;
    try {
      reply = await infoCall(this.client, this.address, this.token, Math.min(QUICK_CALL_MS, this.connectTimeoutMs));
    } catch (err) {
      if (this.pendingWhy !== undefined) this.pendingWhy = (err as WorkerError).reason;
      return false;
    }
    const eos = reply.eosToken < 0 ? undefined : reply.eosToken;
    if (reply.vocabSize !== this.vocabSize || eos !== this.eosToken) {
      const why = `serves another model (vocabulary ${reply.vocabSize}, EOS ${eos ?? "none"}; expected ${this.vocabSize}, EOS ${this.eosToken ?? "none"})`;
      if (this.pendingWhy !== undefined) this.pendingWhy = why;
      throw new WorkerError(this.address, why);
    }
    this.adopt(reply);
    this.pendingWhy = undefined;
    this.mirror.length = 0;
    this.hashes.length = 1;
    return true;
  }

  /** The worker's counters (calls, cancellations, tokens, positions, busy time); rejects with why when it does not answer now. */
  stats(): Promise<WorkerStats> {
    if (this.pendingWhy !== undefined) return Promise.reject(new WorkerError(this.address, this.pendingWhy));
    const rpc = this.client as unknown as { stats: Unary<object, WorkerStats> };
    return new Promise((resolve, reject) =>
      rpc.stats({}, tokenMetadata(this.token), { deadline: Date.now() + Math.min(QUICK_CALL_MS, this.connectTimeoutMs) }, (err, res) =>
        err ? reject(new WorkerError(this.address, connectProblem(err))) : resolve(res),
      ),
    );
  }

  async evaluate(req: EvalRequest, signal?: AbortSignal): Promise<PositionOutput[]> {
    if (signal?.aborted) throw new AbortError();
    if (this.pendingWhy !== undefined) throw new WorkerError(this.address, `has not answered yet (${this.pendingWhy})`);
    checkRequest(req);
    const tokens = req.tokens.slice();
    let keep = 0;
    const limit = Math.min(this.mirror.length, tokens.length);
    while (keep < limit && this.mirror[keep] === tokens[keep]) keep++;
    this.checkSendable(tokens, keep);
    let reply: EvaluateReplyMsg;
    try {
      reply = await this.call(req, tokens, keep, signal);
    } catch (err) {
      if ((err as ServiceError).code !== status.FAILED_PRECONDITION) throw this.failure(err, keep, signal);
      // The worker holds something else (a call it never saw, a restart): send it all.
      reply = await this.call(req, tokens, 0, signal).catch((e: unknown) => {
        throw this.failure(e, 0, signal);
      });
    }
    const positions = tokens.length - req.from + 1;
    if (req.mode === "dist") {
      const probs = decodeProbs(reply.probs, positions, this.vocabSize, this.probsFormat);
      if (!probs) throw new WorkerCallError(this.address, `returned ${reply.probs.byteLength} bytes of ${this.probsFormat} probabilities for ${positions} positions of ${this.vocabSize}`);
      return probs.map((p) => ({ token: -1, probs: p }));
    }
    if (reply.tokens.length !== positions) throw new WorkerCallError(this.address, `returned ${reply.tokens.length} outputs for ${positions} positions`);
    return reply.tokens.map((token) => ({ token }));
  }

  /** What the worker would refuse, refused here without a round trip (Info says what it takes). */
  private checkSendable(tokens: readonly number[], keep: number): void {
    const context = this.served.contextSize;
    // As the worker checks: the sequence and the token it predicts must fit.
    if (context !== undefined && tokens.length >= context) {
      throw new InvalidRequestError(`the sequence (${tokens.length} tokens) plus the token it predicts exceeds the model context of ${context} tokens (worker ${this.address})`);
    }
    for (let i = keep; i < tokens.length; i++) {
      const t = tokens[i];
      if (!(Number.isInteger(t) && t >= 0 && t < this.vocabSize)) throw new InvalidRequestError(`token ${t} at position ${i} is outside the vocabulary of ${this.vocabSize} (worker ${this.address})`);
    }
  }

  private call(req: EvalRequest, tokens: number[], keep: number, signal?: AbortSignal): Promise<EvaluateReplyMsg> {
    // From here on the worker holds `tokens` (if the call reaches it); a call it never saw
    // shows up as a hash mismatch next time.
    this.mirror.length = keep;
    this.hashes.length = keep + 1;
    const keepHash = this.hashes[keep];
    for (let i = keep; i < tokens.length; i++) {
      this.mirror.push(tokens[i]);
      this.hashes.push(hashStep(this.hashes[i], tokens[i]));
    }
    const msg: EvaluateRequestMsg = {
      keep,
      append: tokens.slice(keep),
      keepHash,
      from: req.from,
      mode: modeToWire(req.mode),
      sampling: req.sampling,
      seed: req.seed,
      stream: req.stream,
      probsFormat: probsFormatToWire(this.probsFormat),
    };
    this.tokensSent += msg.append.length;
    const rpc = this.client as unknown as { evaluate: Unary<EvaluateRequestMsg, EvaluateReplyMsg> };
    return new Promise<EvaluateReplyMsg>((resolve, reject) => {
      const onAbort = (): void => call.cancel();
      const call = rpc.evaluate(msg, tokenMetadata(this.token), { deadline: Date.now() + this.callTimeoutMs }, (err, res) => {
        signal?.removeEventListener("abort", onAbort);
        if (err) reject(err);
        else resolve(res);
      });
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /**
   * A failed call as the engine must see it. The worker answered: a refusal or its model's
   * error fails the request only, and what it holds is certain only up to `keep` (it may or may
   * not have applied the rest). Otherwise the worker is lost.
   */
  private failure(err: unknown, keep: number, signal?: AbortSignal): Error {
    if (signal?.aborted) return new AbortError();
    const e = err as ServiceError;
    if (e.code === status.INVALID_ARGUMENT || e.code === status.OUT_OF_RANGE) {
      this.forgetBeyond(keep);
      return new InvalidRequestError(`worker ${this.address} refused the request: ${e.details}`);
    }
    if (e.code === status.INTERNAL && e.metadata?.get(MODEL_ERROR_KEY).includes(MODEL_ERROR_VALUE)) {
      this.forgetBeyond(keep);
      return new WorkerCallError(this.address, `its model failed: ${e.details}`);
    }
    if (e.code === status.DEADLINE_EXCEEDED) return new WorkerError(this.address, `no answer within ${this.callTimeoutMs} ms (the call's deadline)`);
    if (e.code === status.UNAVAILABLE) return new WorkerError(this.address, `unreachable (${e.details || "connection lost"}); did the worker stop?`);
    // Not ours (we did not abort): the worker dropped the call, stopping.
    if (e.code === status.CANCELLED) return new WorkerError(this.address, `dropped the call (${e.details || "cancelled"}); is it stopping?`);
    // The transport's own INTERNAL (a connection broken mid-call), or a worker that no longer lets us in.
    if (e.code === status.INTERNAL || e.code === status.UNAUTHENTICATED || e.code === status.PERMISSION_DENIED) return new WorkerError(this.address, e.details || e.message);
    // Anything else is about this call (a message too large, an unknown method): it fails, the worker stays.
    this.forgetBeyond(keep);
    return new WorkerCallError(this.address, e.details || e.message);
  }

  private forgetBeyond(keep: number): void {
    this.mirror.length = Math.min(this.mirror.length, keep);
    this.hashes.length = this.mirror.length + 1;
  }
}

/** One Info call; rejects with a WorkerError saying why in a few words. */
function infoCall(client: Client, address: string, token: string | undefined, timeoutMs: number): Promise<InfoReply> {
  const rpc = client as unknown as { info: Unary<object, InfoReply> };
  return new Promise<InfoReply>((resolve, reject) =>
    rpc.info({}, tokenMetadata(token), { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(new WorkerError(address, connectProblem(err))) : resolve(res))),
  );
}
