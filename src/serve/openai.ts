/**
 * The OpenAI API's request bodies as this server accepts them (zod schemas: a field we do not
 * implement is an error naming it, never ignored), its error bodies, and the chat template.
 */
import { z } from "zod";
import { GENERATION_OPTIONS, maxOf, MAX_SEED, rangeText, type DraftMode, type OptionKey, type ValueSpec } from "../algorithms/option-spec.js";
import type { AlgorithmName, Lookahead } from "../algorithms/options.js";
import type { VerifyRule } from "../core/verify.js";

/** An error as the OpenAI API shapes it: `{error: {message, type, param, code}}` with an HTTP status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }
  body(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const invalid = (param: string, message: string, code: string | null = null): ApiError => new ApiError(400, message, "invalid_request_error", param, code);

/** Most completions one request may ask for (`n`). */
export const MAX_N = maxOf("n", "http");

export { MAX_SEED };

/**
 * A generation option's field, derived from the option table (algorithms/option-spec): its
 * type and range, with one message for every way a value can miss (not a number, a fraction,
 * out of range) in the words the CLI uses; `max` and `why` narrow it for this server.
 */
function field<T>(key: OptionKey, maxArg?: number, why = ""): z.ZodType<T> {
  const v = GENERATION_OPTIONS[key].value;
  const max = maxArg ?? (v.type === "choice" ? 0 : maxOf(key, "http"));
  const error = `${rangeText(key, "http", max)}${why}`;
  return schemaOf(v, max, error) as unknown as z.ZodType<T>;
}

function schemaOf(v: ValueSpec, max: number, error: string): z.ZodType {
  switch (v.type) {
    case "int":
      return z.number({ error }).int().min(v.min).max(max);
    case "number":
      return (v.openMin ? z.number({ error }).gt(v.min) : z.number({ error }).min(v.min)).max(max);
    case "autoOrInt":
      return z.union([z.literal("auto"), z.number({ error }).int().min(v.min).max(max)], { error });
    case "choice":
      return z.enum(v.choices as [string, ...string[]], { error });
    case "texts":
      return z.union([z.string({ error }).min(1, { error }), z.array(z.string({ error }).min(1, { error }), { error }).min(1, { error }).max(max, { error })], { error });
  }
}

/** The per-request choice of algorithm and speculation (the `dsi` extension object). */
const DsiOptions = z
  .object({
    algo: field<AlgorithmName>("algo").optional(),
    lookahead: field<Lookahead>("lookahead").optional(),
    draft: field<DraftMode>("draft").optional(),
    ngram_min: field<number>("ngramMin").optional(),
    ngram_max: field<number>("ngramMax").optional(),
    sp: field<number>("sp").optional(),
    verify: field<VerifyRule>("verify").optional(),
  })
  .strict();

const Message = z
  .object({
    role: z.enum(["system", "user", "assistant"]),
    content: z.string(),
  })
  .strict();

/**
 * The request bodies of a server whose requests may ask for at most `maxTokensLimit` tokens
 * per choice (`--max-tokens-limit`).
 */
export function requestSchemas(maxTokensLimit: number) {
  const maxTokens = field<number>("maxTokens", Math.min(maxTokensLimit, maxOf("maxTokens", "http")), " (this server's --max-tokens-limit)").nullable().optional();
  const common = {
    model: z.string().min(1),
    // (null is "not given", as in OpenAI's API: its clients send a None that way.)
    temperature: field<number>("temperature").nullable().optional(),
    top_p: field<number>("topP").nullable().optional(),
    top_k: field<number>("topK").nullable().optional(),
    seed: field<number>("seed").nullable().optional(),
    stop: field<string | string[]>("stop").nullable().optional(),
    n: field<number>("n").nullable().optional(),
    stream: z.boolean().nullable().optional(),
    stream_options: z.object({ include_usage: z.boolean().optional() }).strict().nullable().optional(),
    max_tokens: maxTokens,
    dsi: DsiOptions.optional(),
  };
  return {
    completion: z.object({ ...common, prompt: z.string() }).strict(),
    chat: z.object({ ...common, messages: z.array(Message).min(1), max_completion_tokens: maxTokens }).strict(),
  };
}
type Schemas = ReturnType<typeof requestSchemas>;
export type CompletionRequest = z.infer<Schemas["completion"]>;
export type ChatRequest = z.infer<Schemas["chat"]>;

/** Parses a body with `schema`, or throws the 400 that names the first bad field. */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  if (body === null || typeof body !== "object" || Array.isArray(body)) throw invalid("body", "the request body must be a JSON object");
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  if (issue.code === "unrecognized_keys") {
    const key = issue.keys[0];
    const path = [...issue.path, key].join(".");
    throw invalid(path, `${path} is not supported by this server`, "unsupported_parameter");
  }
  const param = issue.path.join(".") || "body";
  throw invalid(param, `${param}: ${issue.message}`);
}

/**
 * The default chat template, for a model whose tokenizer has no template of its own (a
 * GGUF's `tokenizer.chat_template` is applied by `Tokenizer.chat` instead, server.ts): one
 * line per message, `role: content`, then `assistant:` for the reply; `plain` (a tokenizer
 * without ":" or newlines, as the synthetic vocabularies) puts `role content` in a row,
 * separated by spaces. Rendered once here and tokenized once, so drafter and targets see the
 * same tokens.
 */
export function renderChat(messages: ChatRequest["messages"], plain: boolean): string {
  if (plain) return `${messages.map((m) => `${m.role} ${m.content}`).join(" ")} assistant`;
  return `${messages.map((m) => `${m.role}: ${m.content}`).join("\n")}\nassistant:`;
}
