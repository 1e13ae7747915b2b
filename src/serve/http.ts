/**
 * The HTTP layer under hostile clients: how long a client may take to send a request, how
 * large it may be, and every error raised before a route handler (by Node's HTTP parser, by
 * fastify's router and body parsers) answered in the OpenAI error shape like the rest.
 */
import { STATUS_CODES, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { ApiError, invalid } from "./openai.js";

/** Largest request body (fastify's `bodyLimit`): a longer one gets 413 before it is parsed. */
export const BODY_LIMIT = 16 * 2 ** 20;

/** Defaults of the `dsi serve` flags that bound a request in time and size. */
export const HTTP_DEFAULTS = {
  /** `--request-timeout`: seconds a client has to send a whole request, headers and body. */
  requestTimeoutS: 60,
  /** `--headers-timeout`: seconds a client has to send a request's headers (from its first byte, or from the connection's opening). */
  headersTimeoutS: 10,
  /** `--max-tokens-limit`: most tokens one request may ask for, per choice. */
  maxTokensLimit: 4096,
  /** Seconds a streamed response may wait for its client to read what it was sent (no flag): then the connection goes, as a disconnect. */
  streamStallS: 30,
} as const;

export interface HttpLimits {
  requestTimeoutMs: number;
  headersTimeoutMs: number;
}

/** What the timeouts say when they fire (a 408). */
function timeoutMessage(l: HttpLimits): string {
  return `the request did not arrive in time: its headers must arrive within ${l.headersTimeoutMs / 1000} s and the whole request within ${l.requestTimeoutMs / 1000} s (--headers-timeout, --request-timeout)`;
}

/**
 * The fastify and Node server options for these limits. Node checks the timeouts of
 * connections every `connectionsCheckingInterval`; its default (30 s) would let a 1 s
 * timeout fire 30 s late. `connectionTimeout` (an idle timeout on the socket) stays off: a
 * non-streamed generation, or a request waiting for admission, sends nothing until it ends,
 * and the idle timeout would cut it; a connection that sends nothing is closed by the
 * header timeout, and one idle between requests by the keep-alive timeout.
 */
export function serverOptions(l: HttpLimits) {
  if (!(l.headersTimeoutMs > 0 && l.requestTimeoutMs >= l.headersTimeoutMs)) {
    throw new RangeError(`the header timeout (${l.headersTimeoutMs} ms) must be positive and at most the request timeout (${l.requestTimeoutMs} ms)`);
  }
  return {
    bodyLimit: BODY_LIMIT,
    // fastify sets the server's requestTimeout from its own option (default 0: never).
    requestTimeout: l.requestTimeoutMs,
    connectionTimeout: 0,
    // While the server closes, a request on a connection kept alive still reaches its route,
    // which answers as a draining server does (the service's 503, /health's "shutting down"),
    // in the API's shape; fastify's own 503 had neither and went uncounted.
    return503OnClosing: false,
    http: {
      requestTimeout: l.requestTimeoutMs,
      headersTimeout: l.headersTimeoutMs,
      connectionsCheckingInterval: Math.max(50, Math.min(1000, l.headersTimeoutMs / 4)),
      // Node answers a missing Host with an empty 400 of its own; the server says it instead.
      requireHostHeader: false,
    },
  };
}

/** A fastify or Node error raised before (or instead of) a route handler, as an API error. */
export function frameworkError(err: Error & { statusCode?: number; code?: string }, contentType?: string): ApiError {
  if (err instanceof ApiError) return err;
  switch (err.code) {
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
    case "FST_ERR_CTP_INVALID_JSON_BODY":
      return invalid("body", `the request body is not valid JSON (${err.message})`);
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new ApiError(413, `the request body is larger than ${BODY_LIMIT} bytes`, "invalid_request_error", "body", "request_too_large");
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return new ApiError(415, `send the body as JSON with Content-Type: application/json (got ${contentType ?? "no Content-Type"})`, "invalid_request_error", "body", "unsupported_media_type");
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return invalid("body", "the request body's size does not match its Content-Length", "malformed_request");
    case "FST_ERR_BAD_URL":
    case "FST_ERR_INVALID_URL":
      return new ApiError(400, `the URL is not valid (${err.message})`, "invalid_request_error", null, "invalid_url");
  }
  // secure-json-parse's refusals (a __proto__ key) carry status 400 and no fastify code.
  if (err.statusCode === 400 && err instanceof SyntaxError) return invalid("body", `the request body is not valid JSON (${err.message})`);
  const status = err.statusCode ?? 500;
  if (status >= 400 && status < 500) return new ApiError(status, err.message, "invalid_request_error");
  return new ApiError(500, err.message, "server_error");
}

/**
 * What Node's HTTP parser refused (its `clientError` event), as an API error; llhttp's reason
 * names the fault (e.g. "Transfer-Encoding can't be present with Content-Length").
 */
function clientError(err: Error & { code?: string; reason?: string }, l: HttpLimits): ApiError {
  switch (err.code) {
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return new ApiError(408, timeoutMessage(l), "invalid_request_error", null, "request_timeout");
    case "HPE_HEADER_OVERFLOW":
      return new ApiError(431, "the request's headers are too large", "invalid_request_error", null, "headers_too_large");
  }
  return new ApiError(400, `malformed HTTP request: ${err.reason ?? err.message} (${err.code ?? "unknown"})`, "invalid_request_error", null, "malformed_request");
}

/**
 * fastify's `clientErrorHandler`: answers what Node's parser refused (a timeout, headers too
 * large, conflicting framing, garbage) in the OpenAI error shape, then closes the connection.
 * Nothing is written into a response already under way on the socket (Node's own rule).
 */
export function clientErrorHandler(l: HttpLimits): (err: Error & { code?: string }, socket: Duplex) => void {
  return (err, socket) => {
    if (err.code === "ECONNRESET" || socket.destroyed) return;
    const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse })._httpMessage;
    if (socket.writable && !inFlight?.headersSent) {
      const e = clientError(err, l);
      const body = JSON.stringify(e.body());
      socket.write(
        `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status]}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy(err);
  };
}
