/**
 * A model instance served by a worker process (`dsi worker`): the engine cannot tell it from an
 * in-process one. The client mirrors the sequence the worker holds and sends only the tokens
 * beyond their common prefix, so bytes per call do not grow with the context; it does not
 * compare the engine's committed tokens it sent before either (they are append-only: see
 * TokenView), so a call costs O(drafts) here too. The worker checks the prefix by hash and
 * refuses a call whose base it does not hold, and the client then sends the whole sequence
 * once; each reply says what the worker holds, and the next call starts from that. Aborting a
 * call cancels it on the worker.
 *
 * Failures are classified (docs/distributed.md, "Faults"): a request the worker refuses is an
 * InvalidRequestError (the request fails, the instance stays); an error its model raised is a
 * WorkerCallError (the same); only a worker that cannot be reached, misses a deadline, drops
 * the call or no longer lets us in is lost (WorkerError, an InstanceLostError).
 */
import { status, type ServiceError } from "@grpc/grpc-js";
import { checkRequest, InstanceLostError, InvalidRequestError, TokenView, type EvalRequest, type ModelInstance, type TokenSequence } from "../../core/instance.js";
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
  type EvaluateReply__Output,
  type EvaluateRequest,
  type InfoReply__Output,
  type ModelWorkerClient,
  type ProbsFormat,
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
  /** Which of the worker's sequences this instance is (`dsi worker --sequences`); default 0. */
  sequence?: number;
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
  /**
   * The engine's committed tokens (a TokenView's base, append-only) that the mirror's first
   * `sourceLength` tokens are: a request over the same base needs no comparing there.
   */
  private source: readonly number[] | undefined;
  private sourceLength = 0;
  /** Tokens sent over the wire, for tests and benches. */
  tokensSent = 0;
  /** Calls the worker refused for a prefix it did not hold, then sent again whole (tests, benches). */
  resends = 0;
  /** Replies saying the worker holds other than what it was sent, adopted as said (tests, benches). */
  resyncs = 0;
  private closed = false;
  /** What the worker said it serves (Info); the expected model until it answered once. */
  private served: { label: string; backend: string; contextSize?: number; evalChunk?: number };
  /** Why the worker has not answered yet (never answered since this client was made); undefined once it has. */
  private pendingWhy: string | undefined;
  private readonly connectTimeoutMs: number;
  private readonly callTimeoutMs: number;
  private readonly token: string | undefined;
  readonly probsFormat: ProbsFormat;
  /** The worker's sequence this instance drives. */
  readonly sequence: number;
  /** Sequences the worker serves (Info; 1 until it answered, and from workers that do not say). */
  sequences = 1;

  private constructor(
    readonly address: string,
    private readonly client: ModelWorkerClient,
    readonly vocabSize: number,
    readonly eosToken: number | undefined,
    o: RemoteOptions,
    info: InfoReply__Output | undefined,
    pendingWhy: string | undefined,
  ) {
    this.connectTimeoutMs = o.connectTimeoutMs ?? 5000;
    this.callTimeoutMs = o.callTimeoutMs ?? 300_000;
    this.token = o.token;
    this.probsFormat = o.probs ?? "float32";
    this.sequence = o.sequence ?? 0;
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

  private adopt(info: InfoReply__Output): void {
    this.sequences = info.sequences || 1;
    const label = this.sequences > 1 ? `${info.label}/${this.sequence}` : info.label;
    this.served = { label, backend: info.backend, contextSize: info.contextSize || undefined, evalChunk: info.evalChunk || undefined };
  }

  close(): void {
    this.closed = true;
    this.client.close();
  }

  /**
   * Whether the worker serves (again): it must answer Info with the same vocabulary and EOS,
   * and serve this instance's sequence.
   * Used after this client lost it (a worker restarted at the same address) and for a worker
   * that did not answer at start. It may hold nothing now: the client forgets what it sent,
   * and the next call sends the whole sequence. Rejects when the worker serves another model or
   * fewer sequences.
   */
  async probe(): Promise<boolean> {
    if (this.closed) throw new WorkerError(this.address, "closed");
    let reply: InfoReply__Output;
    try {
      reply = await infoCall(this.client, this.address, this.token, Math.min(QUICK_CALL_MS, this.connectTimeoutMs));
    } catch (err) {
      if (this.pendingWhy !== undefined) this.pendingWhy = (err as WorkerError).reason;
      return false;
    }
    const eos = reply.eosToken < 0 ? undefined : reply.eosToken;
    const refused =
      reply.vocabSize !== this.vocabSize || eos !== this.eosToken
        ? `serves another model (vocabulary ${reply.vocabSize}, EOS ${eos ?? "none"}; expected ${this.vocabSize}, EOS ${this.eosToken ?? "none"})`
        : (reply.sequences || 1) <= this.sequence
          ? `serves ${reply.sequences || 1} sequence(s), not sequence ${this.sequence} (restarted with fewer --sequences?)`
          : undefined;
    if (refused !== undefined) {
      if (this.pendingWhy !== undefined) this.pendingWhy = refused;
      throw new WorkerError(this.address, refused);
    }
    this.adopt(reply);
    this.pendingWhy = undefined;
    this.forgetBeyond(0);
    return true;
  }

  /** The worker's counters (calls, cancellations, tokens, positions, busy time); rejects with why when it does not answer now. */
  stats(): Promise<WorkerStats> {
    if (this.pendingWhy !== undefined) return Promise.reject(new WorkerError(this.address, this.pendingWhy));
    return new Promise((resolve, reject) =>
      this.client.stats({}, tokenMetadata(this.token), { deadline: Date.now() + Math.min(QUICK_CALL_MS, this.connectTimeoutMs) }, (err, res) =>
        err ? reject(new WorkerError(this.address, connectProblem(err))) : resolve(res!),
      ),
    );
  }

  async evaluate(req: EvalRequest, signal?: AbortSignal): Promise<PositionOutput[]> {
    if (signal?.aborted) throw new AbortError();
    if (this.pendingWhy !== undefined) throw new WorkerError(this.address, `has not answered yet (${this.pendingWhy})`);
    checkRequest(req);
    const seq = req.tokens;
    const n = seq.length;
    let keep = this.unchanged(seq);
    const limit = Math.min(this.mirror.length, n);
    while (keep < limit && this.mirror[keep] === seq.at(keep)) keep++;
    const append = seq.slice(keep);
    this.checkSendable(n, keep, append);
    let reply: EvaluateReply__Output;
    try {
      reply = await this.call(req, seq, keep, append, signal);
    } catch (err) {
      if ((err as ServiceError).code !== status.FAILED_PRECONDITION) throw this.failure(err, keep, signal);
      // (Aborted meanwhile: not sent again; the worker holds none of it, as a resend would have assumed.)
      if (signal?.aborted) throw this.failure(err, 0, signal);
      // The worker holds something else (a call it never saw, a restart): send it all.
      this.resends++;
      reply = await this.call(req, seq, 0, seq.slice(), signal).catch((e: unknown) => {
        throw this.failure(e, 0, signal);
      });
    }
    this.acknowledge(reply);
    const positions = n - req.from + 1;
    if (req.mode === "dist") {
      const probs = decodeProbs(reply.probs, positions, this.vocabSize, this.probsFormat);
      if (!probs) throw new WorkerCallError(this.address, `returned ${reply.probs.byteLength} bytes of ${this.probsFormat} probabilities for ${positions} positions of ${this.vocabSize}`);
      return probs.map((p) => ({ token: -1, probs: p }));
    }
    if (reply.tokens.length !== positions) throw new WorkerCallError(this.address, `returned ${reply.tokens.length} outputs for ${positions} positions`);
    return reply.tokens.map((token) => ({ token }));
  }

  /**
   * How many leading tokens of `seq` the mirror holds without comparing them: those of the
   * committed base the last request's view shared with this one (append-only, so unchanged).
   */
  private unchanged(seq: TokenSequence): number {
    return seq instanceof TokenView && seq.base === this.source ? Math.min(this.sourceLength, seq.baseLength) : 0;
  }

  /** What the worker would refuse, refused here without a round trip (Info says what it takes). */
  private checkSendable(length: number, keep: number, append: readonly number[]): void {
    const context = this.served.contextSize;
    // As the worker checks: the sequence and the token it predicts must fit.
    if (context !== undefined && length >= context) {
      throw new InvalidRequestError(`the sequence (${length} tokens) plus the token it predicts exceeds the model context of ${context} tokens (worker ${this.address})`);
    }
    append.forEach((t, i) => {
      if (!(Number.isInteger(t) && t >= 0 && t < this.vocabSize)) throw new InvalidRequestError(`token ${t} at position ${keep + i} is outside the vocabulary of ${this.vocabSize} (worker ${this.address})`);
    });
  }

  private call(req: EvalRequest, seq: TokenSequence, keep: number, append: number[], signal?: AbortSignal): Promise<EvaluateReply__Output> {
    // From here on the worker holds `seq` (if the call reaches it): the reply confirms it, a
    // failure forgets all beyond `keep`.
    this.mirror.length = keep;
    this.hashes.length = keep + 1;
    const keepHash = this.hashes[keep];
    for (let i = 0; i < append.length; i++) {
      this.mirror.push(append[i]);
      this.hashes.push(hashStep(this.hashes[keep + i], append[i]));
    }
    if (seq instanceof TokenView) [this.source, this.sourceLength] = [seq.base, seq.baseLength];
    else [this.source, this.sourceLength] = [undefined, 0];
    const msg: EvaluateRequest = {
      keep,
      append,
      keepHash,
      from: req.from,
      mode: modeToWire(req.mode),
      sampling: req.sampling,
      seed: req.seed,
      stream: req.stream,
      probsFormat: probsFormatToWire(this.probsFormat),
      sequence: this.sequence,
    };
    this.tokensSent += append.length;
    return new Promise<EvaluateReply__Output>((resolve, reject) => {
      const onAbort = (): void => call.cancel();
      const call = this.client.evaluate(msg, tokenMetadata(this.token), { deadline: Date.now() + this.callTimeoutMs }, (err, res) => {
        signal?.removeEventListener("abort", onAbort);
        if (err) reject(err);
        else resolve(res!);
      });
      signal?.addEventListener("abort", onAbort, { once: true });
      // (A signal that aborted before this call, between a refusal and its resend say, fires no event.)
      if (signal?.aborted) call.cancel();
    });
  }

  /**
   * The reply says what the worker holds now: normally all it was sent. Anything else (a
   * prefix, known by its hash; else nothing) is taken as said, so the next request starts from
   * there instead of being refused and sent again.
   */
  private acknowledge(reply: EvaluateReply__Output): void {
    const n = this.mirror.length;
    if (reply.held === n && reply.heldHash === this.hashes[n]) return;
    this.resyncs++;
    this.forgetBeyond(reply.held < n && reply.heldHash === this.hashes[reply.held] ? reply.held : 0);
  }

  /**
   * A failed call as the engine must see it. What the worker holds is certain only up to
   * `keep`: it may or may not have applied the rest (a call cancelled while it waited on the
   * worker never ran), so the next request starts there rather than risk a refusal. The worker
   * answered: a refusal or its model's error fails the request only. Otherwise it is lost.
   */
  private failure(err: unknown, keep: number, signal?: AbortSignal): Error {
    this.forgetBeyond(keep);
    if (signal?.aborted) return new AbortError();
    const e = err as ServiceError;
    if (e.code === status.INVALID_ARGUMENT || e.code === status.OUT_OF_RANGE) {
      return new InvalidRequestError(`worker ${this.address} refused the request: ${e.details}`);
    }
    if (e.code === status.INTERNAL && e.metadata?.get(MODEL_ERROR_KEY).includes(MODEL_ERROR_VALUE)) {
      return new WorkerCallError(this.address, `its model failed: ${e.details}`);
    }
    if (e.code === status.NOT_FOUND) return new WorkerError(this.address, `no longer serves sequence ${this.sequence} (${e.details}); restarted with fewer --sequences?`);
    if (e.code === status.DEADLINE_EXCEEDED) return new WorkerError(this.address, `no answer within ${this.callTimeoutMs} ms (the call's deadline)`);
    if (e.code === status.UNAVAILABLE) return new WorkerError(this.address, `unreachable (${e.details || "connection lost"}); did the worker stop?`);
    // Not ours (we did not abort): the worker dropped the call, stopping.
    if (e.code === status.CANCELLED) return new WorkerError(this.address, `dropped the call (${e.details || "cancelled"}); is it stopping?`);
    // The transport's own INTERNAL (a connection broken mid-call), or a worker that no longer lets us in.
    if (e.code === status.INTERNAL || e.code === status.UNAUTHENTICATED || e.code === status.PERMISSION_DENIED) return new WorkerError(this.address, e.details || e.message);
    // Anything else is about this call (a message too large, an unknown method): it fails, the worker stays.
    return new WorkerCallError(this.address, e.details || e.message);
  }

  private forgetBeyond(keep: number): void {
    this.mirror.length = Math.min(this.mirror.length, keep);
    this.hashes.length = this.mirror.length + 1;
    this.sourceLength = Math.min(this.sourceLength, this.mirror.length);
  }
}

/** One Info call; rejects with a WorkerError saying why in a few words. */
function infoCall(client: ModelWorkerClient, address: string, token: string | undefined, timeoutMs: number): Promise<InfoReply__Output> {
  return new Promise<InfoReply__Output>((resolve, reject) =>
    client.info({}, tokenMetadata(token), { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(new WorkerError(address, connectProblem(err))) : resolve(res!))),
  );
}
