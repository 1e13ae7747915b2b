/**
 * `dsi serve`'s HTTP face (fastify): the OpenAI completions and chat completions endpoints,
 * streamed as Server-Sent Events when the body says `stream: true` (the official client sends
 * `Accept: application/json` either way), plus `/v1/models`, `/health` and `/metrics`.
 * Every response is a lossless generation on the service's shared target pool; a client that
 * disconnects aborts its generations.
 */
import { randomBytes, randomInt } from "node:crypto";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { OptionError, type AlgorithmName, type Completion, type GenerateOptions, type Lookahead, type FinishReason } from "../algorithms/options.js";
import { aggregateStats } from "../algorithms/output.js";
import type { SamplingParams } from "../core/sampling.js";
import type { VerifyRule } from "../core/verify.js";
import { secretMatcher } from "../models/remote/security.js";
import { TextStreamer } from "../models/text-stream.js";
import { isAbortError } from "../runtime/abort.js";
import { NoInstanceError } from "../runtime/pool.js";
import { contextProblem, crossCheck, GENERATION_OPTIONS, keyOfEngineName, optionName, type DraftMode, type OptionKey } from "../algorithms/option-spec.js";
import { clientErrorHandler, frameworkError, HTTP_DEFAULTS, serverOptions } from "./http.js";
import type { ServeMetrics } from "./metrics.js";
import { ApiError, invalid, MAX_SEED, parseBody, renderChat, requestSchemas, type ChatRequest, type CompletionRequest } from "./openai.js";
import { encodeText } from "./prompt.js";
import { QueueFullError, UnavailableError, type Service } from "./service.js";

/** Where the server finds its service: empty while the models load (then 503). */
export interface ServiceSlot {
  service?: Service;
}

export interface ServerOptions {
  slot: ServiceSlot;
  metrics: ServeMetrics;
  /** The id `/v1/models` lists and requests must name. */
  modelId: string;
  /** Requests to /v1/ must carry `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Defaults of the `dsi` request object. */
  algo: AlgorithmName;
  lookahead: Lookahead;
  /** Where drafts come from when a request does not say (`--draft`, `--ngram-min`, `--ngram-max`); default the drafter model. */
  drafting?: { draft: DraftMode; ngramMin: number; ngramMax: number };
  /** Tokens generated when a request gives no max_tokens. */
  defaultMaxTokens: number;
  /** Most tokens a request may ask for, per choice (`--max-tokens-limit`); default HTTP_DEFAULTS.maxTokensLimit. */
  maxTokensLimit?: number;
  /** Milliseconds a client has to send a whole request (`--request-timeout`); default HTTP_DEFAULTS. */
  requestTimeoutMs?: number;
  /** Milliseconds a client has to send a request's headers (`--headers-timeout`); default HTTP_DEFAULTS. */
  headersTimeoutMs?: number;
  /** Milliseconds a stream waits for its client to read what it was sent; default HTTP_DEFAULTS.streamStallS. */
  streamStallMs?: number;
}

/** What ends a stream's wait for its client to read: the buffer drained, the response flushed, or the connection gone. */
const STALL_ENDS = ["drain", "finish", "close"] as const;

/** Seconds a refused client should wait before retrying (429 Retry-After). */
const RETRY_AFTER_S = 1;

type Kind = "completion" | "chat";

/** Every error the server answers, in the OpenAI shape (429 with Retry-After). */
function sendError(reply: FastifyReply, e: ApiError): FastifyReply {
  if (e.status === 429) void reply.header("retry-after", String(RETRY_AFTER_S));
  return reply.status(e.status).send(e.body());
}

/** One request, validated and tokenized. */
interface Plan {
  kind: Kind;
  id: string;
  prompt: number[];
  n: number;
  seed: number;
  maxTokens: number;
  sampling: SamplingParams;
  verify: VerifyRule | undefined;
  algo: AlgorithmName;
  lookahead: Lookahead | undefined;
  /** Where drafts come from (si, dsi), and prompt lookup's match lengths where it drafts. */
  drafting: Partial<Pick<GenerateOptions, "draft" | "ngramMin" | "ngramMax">>;
  /** Most target instances each choice holds at once (dsi). */
  sp: number | undefined;
  stop: string[];
  stream: boolean;
  includeUsage: boolean;
}

const FINISH: Record<FinishReason, "stop" | "length"> = { eos: "stop", stop: "stop", length: "length" };

/**
 * Choice i's seed: the request's seed XOR (i times an odd constant, mod 2^32). Choice 0 keeps
 * the seed (n = 1 is unchanged); the map is one-to-one in i, so a request's choices never
 * share a seed; and every result is a seed in 0..2^32-1 as given (seed + i wrapped at 2^32:
 * seed 2^32-1's choice 1 was seed 0's choice 0, and seeds s and s+1 shared choices).
 */
export function choiceSeed(seed: number, i: number): number {
  return (seed ^ Math.imul(i, 0x9e3779b9)) >>> 0;
}

export function buildServer(o: ServerOptions): FastifyInstance {
  const limits = {
    requestTimeoutMs: o.requestTimeoutMs ?? HTTP_DEFAULTS.requestTimeoutS * 1000,
    headersTimeoutMs: o.headersTimeoutMs ?? HTTP_DEFAULTS.headersTimeoutS * 1000,
  };
  const maxTokensLimit = o.maxTokensLimit ?? HTTP_DEFAULTS.maxTokensLimit;
  const streamStallMs = o.streamStallMs ?? HTTP_DEFAULTS.streamStallS * 1000;
  if (o.defaultMaxTokens > maxTokensLimit) throw new RangeError(`the default max_tokens (${o.defaultMaxTokens}) exceeds the limit (${maxTokensLimit})`);
  const schemas = requestSchemas(maxTokensLimit);
  const app = Fastify({
    logger: false,
    ...serverOptions(limits),
    // Errors before a route (a bad URL) and errors of Node's HTTP parser: the OpenAI shape too.
    frameworkErrors: (err, req, reply) => sendError(reply, frameworkError(err, req.headers["content-type"])),
    clientErrorHandler: clientErrorHandler(limits),
  });
  // fastify parses text/plain into a string by default; the API takes JSON only (415).
  app.removeContentTypeParser("text/plain");
  const { slot, metrics } = o;
  /** The service, or the 503 that says the models are still loading. */
  const ready = (): Service => {
    if (!slot.service) throw new ApiError(503, "the models are loading; retry shortly", "server_error", null, "loading");
    return slot.service;
  };
  const allowed = o.apiKey === undefined ? undefined : secretMatcher(`Bearer ${o.apiKey}`);
  const created = Math.floor(Date.now() / 1000);

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => sendError(reply, frameworkError(err, req.headers["content-type"])));
  app.setNotFoundHandler((req, reply) => sendError(reply, new ApiError(404, `no route ${req.method} ${req.url}`, "invalid_request_error", null, "not_found")));
  app.addHook("onRequest", async (req, reply) => {
    // Counted once the response is done with: onResponse misses a client that left before
    // its end (499: a stream cut short, a generation aborted), for which fastify sends nothing.
    reply.raw.once("close", () => {
      const endpoint = req.routeOptions.url;
      if (endpoint !== undefined) metrics.requests.inc({ endpoint, status: reply.raw.writableFinished ? String(reply.raw.statusCode) : "499" });
    });
    // Node's own check (requireHostHeader) would answer with an empty body.
    if (req.raw.httpVersion === "1.1" && !req.headers.host) {
      void reply.header("connection", "close");
      throw new ApiError(400, "an HTTP/1.1 request must send a Host header", "invalid_request_error", null, "malformed_request");
    }
    // The route as matched, not the raw URL (which may be absolute or percent-encoded).
    if (allowed && req.routeOptions.url?.startsWith("/v1/") && !allowed(String(req.headers.authorization ?? ""))) {
      throw new ApiError(401, "missing or wrong API key (Authorization: Bearer <key>)", "invalid_request_error", null, "invalid_api_key");
    }
  });

  app.get("/health", async (_req, reply) => {
    if (!slot.service) return reply.status(503).send({ status: "loading" });
    const { ok, ...body } = await slot.service.health();
    return reply.status(ok ? 200 : 503).send(body);
  });
  app.get("/metrics", async (_req, reply) => {
    slot.service?.refreshGauges();
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  app.get("/v1/models", async () => ({ object: "list", data: [{ id: o.modelId, object: "model", created, owned_by: "dsi" }] }));

  /** Validates, tokenizes and fixes every setting of a request. */
  const plan = async (kind: Kind, body: CompletionRequest | ChatRequest, signal: AbortSignal): Promise<Plan> => {
    const service = ready();
    const tokenizer = service.backend.tokenizer;
    if (body.model !== o.modelId) throw new ApiError(404, `the model ${JSON.stringify(body.model)} does not exist; this server serves ${JSON.stringify(o.modelId)}`, "invalid_request_error", "model", "model_not_found");
    let maxTokens = body.max_tokens ?? undefined;
    const chat = kind === "chat" ? (body as ChatRequest) : undefined;
    if (chat) {
      if (chat.max_tokens != null && chat.max_completion_tokens != null) throw invalid("max_tokens", "give max_tokens or max_completion_tokens, not both");
      maxTokens = chat.max_completion_tokens ?? maxTokens;
    }
    maxTokens ??= o.defaultMaxTokens;
    const promptParam = chat ? "messages" : "prompt";
    const context = service.backend.contextSize;
    if (context !== undefined && service.tokenBytes !== undefined) {
      // Refused by its size before it is tokenized (seconds for megabytes, on this thread).
      // A chat template may trim its messages' contents, never shorten them further.
      const bytes = chat ? chat.messages.reduce((a, m) => a + Buffer.byteLength(m.content.trim()), 0) : Buffer.byteLength((body as CompletionRequest).prompt);
      const least = Math.ceil(bytes / service.tokenBytes);
      if (least + maxTokens > context) {
        throw invalid(
          promptParam,
          `the prompt (${bytes} bytes, so at least ${least} tokens: no token of this model stands for more than ${service.tokenBytes} bytes) plus max_tokens (${maxTokens}) exceeds the model's context of ${context} tokens`,
          "context_length_exceeded",
        );
      }
    }
    let prompt: number[] | undefined;
    try {
      // The model's own chat template where its GGUF has one, else the default.
      if (chat) prompt = (await tokenizer.chat?.(chat.messages)) ?? (await encodeText(tokenizer, renderChat(chat.messages, !service.chatSeparators), signal));
      else prompt = await encodeText(tokenizer, (body as CompletionRequest).prompt, signal);
    } catch (err) {
      if (err instanceof ApiError || isAbortError(err)) throw err;
      throw invalid(promptParam, `${promptParam}: ${(err as Error).message}`);
    }
    if (prompt.length === 0) throw invalid(promptParam, `${promptParam}: the prompt has no tokens`);
    const tooLong = contextProblem(prompt.length, maxTokens, context, "http");
    if (tooLong) throw invalid(promptParam, tooLong, "context_length_exceeded");
    const n = body.n ?? 1;
    if (n > service.capacity) throw invalid("n", `n must be at most ${service.capacity}: each choice is a generation, and this server runs and queues that many (--max-concurrent, --max-queue)`);
    const temperature = body.temperature ?? (GENERATION_OPTIONS.temperature.defaults.http as number);
    const stream = body.stream === true;
    if (!stream && body.stream_options != null) throw invalid("stream_options", "stream_options applies only with stream: true");
    const algo = body.dsi?.algo ?? o.algo;
    // The option table's checks between fields, in the API's names (the CLI says the same with its flags).
    const given = new Set<OptionKey>();
    if (body.dsi?.lookahead !== undefined) given.add("lookahead");
    if (body.dsi?.sp !== undefined) given.add("sp");
    if (body.dsi?.draft !== undefined) given.add("draft");
    if (body.dsi?.ngram_min !== undefined) given.add("ngramMin");
    if (body.dsi?.ngram_max !== undefined) given.add("ngramMax");
    const drafting = {
      draft: body.dsi?.draft ?? o.drafting?.draft ?? "model",
      ngramMin: body.dsi?.ngram_min ?? o.drafting?.ngramMin,
      ngramMax: body.dsi?.ngram_max ?? o.drafting?.ngramMax,
    };
    const problem = crossCheck({ algo, given, temperature, verify: body.dsi?.verify, ...drafting }, "http");
    if (problem) throw invalid(optionName(problem.key, "http"), problem.message);
    const poolSize = service.runtime.pool.size;
    if (body.dsi?.sp !== undefined && body.dsi.sp > poolSize) throw invalid("dsi.sp", `dsi.sp must be at most ${poolSize}, the server's target instances (--sp)`);
    return {
      kind,
      id: `${kind === "chat" ? "chatcmpl" : "cmpl"}-${randomBytes(12).toString("hex")}`,
      prompt,
      n,
      seed: body.seed ?? randomInt(0, MAX_SEED + 1),
      maxTokens,
      sampling: { temperature, topK: body.top_k ?? 0, topP: body.top_p ?? 1 },
      verify: body.dsi?.verify,
      algo,
      lookahead: algo === "nonsi" ? undefined : (body.dsi?.lookahead ?? o.lookahead),
      drafting: algo === "nonsi" || drafting.draft === "model" ? {} : drafting,
      sp: body.dsi?.sp,
      stop: body.stop == null ? [] : typeof body.stop === "string" ? [body.stop] : body.stop,
      stream,
      includeUsage: body.stream_options?.include_usage === true,
    };
  };

  /** Runs choice `i` of a plan; `onText` hears its text as tokens commit. */
  const runChoice = (p: Plan, i: number, signal: AbortSignal, onText?: (chunk: string) => void): Promise<Completion> => {
    const service = ready();
    const tokenizer = service.backend.tokenizer;
    const streamer = new TextStreamer(tokenizer);
    return service
      .run(
        {
          algo: p.algo,
          options: {
            prompt: p.prompt,
            maxTokens: p.maxTokens,
            sampling: p.sampling,
            verify: p.verify,
            seed: choiceSeed(p.seed, i),
            lookahead: p.lookahead,
            ...p.drafting,
            maxInstances: p.sp,
            stopText: { strings: p.stop, decode: (t) => tokenizer.decode(t) },
          },
        },
        signal,
        onText
          ? (token) => {
              const chunk = streamer.push(token);
              if (chunk) onText(chunk);
            }
          : undefined,
      )
      .then((c) => {
        const rest = streamer.rest(c.text ?? tokenizer.decode(c.tokens));
        if (rest) onText?.(rest);
        return c;
      });
  };

  /** The engine's and service's failures as API errors. */
  const apiError = (err: unknown): ApiError => {
    if (err instanceof ApiError) return err;
    if (err instanceof OptionError) {
      const key = keyOfEngineName(err.option);
      return invalid(key ? optionName(key, "http") : err.option, err.message);
    }
    if (err instanceof QueueFullError) return new ApiError(429, `the server is busy: ${err.message}; retry later`, "rate_limit_error", null, "queue_full");
    if (err instanceof UnavailableError || err instanceof NoInstanceError) return new ApiError(503, err.message, "server_error", null, "unavailable");
    // Not the client's abort (handled before): the service stopped the generation at shutdown.
    if (isAbortError(err)) return new ApiError(503, "the server is shutting down", "server_error", null, "unavailable");
    return new ApiError(500, err instanceof Error ? err.message : String(err), "server_error");
  };

  const usage = (p: Plan, results: Completion[]) => {
    const completion = results.reduce((a, c) => a + c.tokens.length, 0);
    return { prompt_tokens: p.prompt.length, completion_tokens: completion, total_tokens: p.prompt.length + completion };
  };
  /** The `dsi` stats object of a response. */
  const dsiStats = (p: Plan, results: Completion[]) => {
    const s = aggregateStats(results.map((c) => c.stats));
    return {
      algo: p.algo,
      lookahead: p.lookahead ?? null,
      draft: p.algo === "nonsi" ? null : (p.drafting.draft ?? "model"),
      sp: p.algo === "dsi" ? (p.sp ?? ready().runtime.pool.size) : 1,
      drafted: s.drafted,
      accepted: s.accepted,
      rejected: s.rejected,
      acceptance: s.accepted + s.rejected > 0 ? s.acceptanceRate : null,
      preemptions: s.preemptions,
      windows: s.windows,
      probes: s.probes,
      target_busy_seconds: s.targetBusyMs / 1000,
    };
  };

  const handle = async (kind: Kind, req: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
    // A client that goes away (before or during the response) aborts every choice.
    const controller = new AbortController();
    reply.raw.on("close", () => {
      if (!reply.raw.writableFinished) controller.abort();
    });
    let p: Plan;
    try {
      p = await plan(kind, parseBody<CompletionRequest | ChatRequest>(kind === "chat" ? schemas.chat : schemas.completion, req.body), controller.signal);
    } catch (err) {
      if (controller.signal.aborted) return reply.status(499).send();
      throw err;
    }
    if (controller.signal.aborted) return reply.status(499).send();
    if (p.stream) return stream(p, reply, controller);
    let results: Completion[];
    try {
      results = await Promise.all(Array.from({ length: p.n }, (_, i) => runChoice(p, i, controller.signal)));
    } catch (err) {
      // The client is gone: 499 (client closed request) for the metrics; nobody reads it.
      if (controller.signal.aborted) return reply.status(499).send();
      controller.abort(); // the other choices
      throw apiError(err);
    }
    const choices = results.map((c, index) => {
      const text = c.text ?? ready().backend.tokenizer.decode(c.tokens);
      const finish_reason = FINISH[c.finishReason];
      return kind === "chat" ? { index, message: { role: "assistant", content: text }, finish_reason, logprobs: null } : { index, text, finish_reason, logprobs: null };
    });
    return { id: p.id, object: kind === "chat" ? "chat.completion" : "text_completion", created: Math.floor(Date.now() / 1000), model: o.modelId, choices, usage: usage(p, results), dsi: dsiStats(p, results) };
  };

  /** Server-Sent Events: one chunk per piece of text, a last chunk per choice, usage, [DONE]. */
  const stream = async (p: Plan, reply: FastifyReply, controller: AbortController): Promise<FastifyReply> => {
    const object = p.kind === "chat" ? "chat.completion.chunk" : "text_completion";
    const stamp = Math.floor(Date.now() / 1000);
    const base = { id: p.id, object, created: stamp, model: o.modelId };
    const choice = (index: number, text: string | undefined, finish: string | null, first = false) =>
      p.kind === "chat"
        ? { index, delta: first ? { role: "assistant", content: text ?? "" } : text === undefined ? {} : { content: text }, finish_reason: finish, logprobs: null }
        : { index, text: text ?? "", finish_reason: finish, logprobs: null };
    const raw = reply.raw;
    let started = false;
    /**
     * A client that stops reading: what the stream sends piles up in the server's memory (the
     * generation runs on; ~12 MB for n = 16 x 4096 tokens, held after the response ended, with
     * no timeout to free it). When what was written has not drained for `streamStallMs`, the
     * connection goes, which ends the generation as a disconnect does.
     */
    let stall: NodeJS.Timeout | undefined;
    const unstalled = (): void => {
      clearTimeout(stall);
      stall = undefined;
      for (const event of STALL_ENDS) raw.off(event, unstalled);
    };
    const watchStall = (): void => {
      if (stall !== undefined || raw.destroyed) return;
      stall = setTimeout(() => raw.destroy(), streamStallMs);
      for (const event of STALL_ENDS) raw.on(event, unstalled);
    };
    const send = (data: unknown): void => {
      if (!started) {
        // Headers only once the first choice is admitted, so a refusal can still be a 429/503.
        reply.hijack();
        // No Connection header of our own: Node keeps the connection or closes it after the
        // stream as the client asked (`Connection: close`).
        raw.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" });
        started = true;
      }
      if (!raw.writableEnded && !raw.write(`data: ${JSON.stringify(data)}\n\n`)) watchStall();
    };
    const results: Completion[] = [];
    try {
      await Promise.all(
        Array.from({ length: p.n }, async (_, index) => {
          let first = true;
          const c = await runChoice(p, index, controller.signal, (text) => {
            send({ ...base, choices: [choice(index, text, null, first)] });
            first = false;
          });
          send({ ...base, choices: [choice(index, first ? "" : undefined, FINISH[c.finishReason], first)] });
          results[index] = c;
        }),
      );
    } catch (err) {
      const clientGone = controller.signal.aborted;
      controller.abort(); // the other choices
      if (!started) {
        if (clientGone) return reply.status(499).send();
        throw apiError(err);
      }
      // Mid-stream: the status is sent; say what happened in an error event, then end.
      if (!raw.writableEnded && !clientGone) raw.write(`data: ${JSON.stringify(apiError(err).body())}\n\n`);
      raw.end();
      if (!raw.writableFinished) watchStall();
      return reply;
    }
    if (p.includeUsage) send({ ...base, choices: [], usage: usage(p, results), dsi: dsiStats(p, results) });
    if (!raw.writableEnded) raw.end("data: [DONE]\n\n");
    if (!raw.writableFinished) watchStall();
    return reply;
  };

  app.post("/v1/completions", (req, reply) => handle("completion", req, reply));
  app.post("/v1/chat/completions", (req, reply) => handle("chat", req, reply));
  return app;
}
