/**
 * A model instance served by a worker process (`dsi worker`): the engine cannot tell it from an
 * in-process one. The client mirrors the sequence the worker holds and sends only the tokens
 * beyond their common prefix, so bytes per call do not grow with the context; the worker
 * checks the prefix by hash and refuses a call whose base it does not hold, and the client
 * then sends the whole sequence once. Aborting a call cancels it on the worker.
 */
import { status, type Client, type Metadata, type ServiceError } from "@grpc/grpc-js";
import { InstanceLostError, type EvalRequest, type ModelInstance } from "../../core/instance.js";
import type { PositionOutput } from "../../core/verify.js";
import { AbortError } from "../../runtime/abort.js";
import { channelCredentials, tokenMetadata, type ClientTls } from "./security.js";
import { decodeProbs, HASH_START, hashStep, modeToWire, probsFormatToWire, workerClient, type ProbsFormat, type EvaluateReplyMsg, type EvaluateRequestMsg, type InfoReply, type WorkerStats } from "./protocol.js";

/** A worker that cannot be reached or failed: the message names it. */
export class WorkerError extends InstanceLostError {
  override readonly name: string = "WorkerError";
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

export class RemoteInstance implements ModelInstance {
  /** The tokens the worker holds, as far as this client knows, and their prefix hashes. */
  private mirror: number[] = [];
  private hashes: number[] = [HASH_START];
  /** Tokens sent over the wire, for tests and benches. */
  tokensSent = 0;

  private constructor(
    readonly address: string,
    private readonly client: Client,
    readonly label: string,
    readonly vocabSize: number,
    readonly eosToken: number | undefined,
    /** What the worker serves ("synthetic", "llama"). */
    readonly backend: string,
    private readonly callTimeoutMs: number,
    private readonly token: string | undefined,
    readonly probsFormat: ProbsFormat,
  ) {}

  /** Connects to a worker and reads what it serves. */
  static async connect(address: string, o: RemoteOptions = {}): Promise<RemoteInstance> {
    const client = workerClient(address, channelCredentials(o.tls));
    const info = client as unknown as { info: Unary<object, InfoReply> };
    const deadline = Date.now() + (o.connectTimeoutMs ?? 5000);
    const reply = await new Promise<InfoReply>((resolve, reject) =>
      info.info({}, tokenMetadata(o.token), { deadline }, (err, res) => (err ? reject(new WorkerError(address, connectProblem(err))) : resolve(res))),
    ).catch((err: unknown) => {
      client.close();
      throw err;
    });
    return new RemoteInstance(address, client, reply.label, reply.vocabSize, reply.eosToken < 0 ? undefined : reply.eosToken, reply.backend, o.callTimeoutMs ?? 300_000, o.token, o.probs ?? "float32");
  }

  close(): void {
    this.closed = true;
    this.client.close();
  }

  private closed = false;

  /**
   * Whether the worker serves again after this client lost it (a worker restarted at the same
   * address): it must answer Info with the same vocabulary and EOS. It holds nothing now; the
   * next call's prefix check finds that out and sends the whole sequence.
   */
  async probe(): Promise<boolean> {
    if (this.closed) throw new WorkerError(this.address, "closed");
    const info = this.client as unknown as { info: Unary<object, InfoReply> };
    const reply = await new Promise<InfoReply | undefined>((resolve) =>
      info.info({}, tokenMetadata(this.token), { deadline: Date.now() + 2000 }, (err, res) => resolve(err ? undefined : res)),
    );
    if (!reply) return false;
    const eos = reply.eosToken < 0 ? undefined : reply.eosToken;
    if (reply.vocabSize !== this.vocabSize || eos !== this.eosToken) {
      throw new WorkerError(this.address, `came back serving another model (vocabulary ${reply.vocabSize}, was ${this.vocabSize})`);
    }
    this.mirror.length = 0;
    this.hashes.length = 1;
    return true;
  }

  /** The worker's counters (calls, cancellations, tokens, positions, busy time). */
  stats(): Promise<WorkerStats> {
    const rpc = this.client as unknown as { stats: Unary<object, WorkerStats> };
    return new Promise((resolve, reject) =>
      rpc.stats({}, tokenMetadata(this.token), { deadline: Date.now() + 5000 }, (err, res) => (err ? reject(new WorkerError(this.address, err.details || err.message)) : resolve(res))),
    );
  }

  async evaluate(req: EvalRequest, signal?: AbortSignal): Promise<PositionOutput[]> {
    if (signal?.aborted) throw new AbortError();
    const tokens = req.tokens.slice();
    let keep = 0;
    const limit = Math.min(this.mirror.length, tokens.length);
    while (keep < limit && this.mirror[keep] === tokens[keep]) keep++;
    let reply: EvaluateReplyMsg;
    try {
      reply = await this.call(req, tokens, keep, signal);
    } catch (err) {
      if ((err as ServiceError).code !== status.FAILED_PRECONDITION) throw this.failure(err, signal);
      // The worker holds something else (a call it never saw, a restart): send it all.
      reply = await this.call(req, tokens, 0, signal).catch((e: unknown) => {
        throw this.failure(e, signal);
      });
    }
    const positions = tokens.length - req.from + 1;
    if (req.mode === "dist") {
      const probs = decodeProbs(reply.probs, positions, this.vocabSize, this.probsFormat);
      if (!probs) throw new WorkerError(this.address, `returned ${reply.probs.byteLength} bytes of ${this.probsFormat} probabilities for ${positions} positions of ${this.vocabSize}`);
      return probs.map((p) => ({ token: -1, probs: p }));
    }
    if (reply.tokens.length !== positions) throw new WorkerError(this.address, `returned ${reply.tokens.length} outputs for ${positions} positions`);
    return reply.tokens.map((token) => ({ token }));
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

  private failure(err: unknown, signal?: AbortSignal): Error {
    if (signal?.aborted || (err as ServiceError).code === status.CANCELLED) return new AbortError();
    const e = err as ServiceError;
    if (e.code === status.DEADLINE_EXCEEDED) return new WorkerError(this.address, `no answer within ${this.callTimeoutMs} ms (the call's deadline)`);
    if (e.code === status.UNAVAILABLE) return new WorkerError(this.address, `unreachable (${e.details || "connection lost"}); did the worker stop?`);
    return new WorkerError(this.address, e.details || e.message);
  }
}
