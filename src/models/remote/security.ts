/**
 * Who may call a worker: a shared token in every call's metadata (`authorization: Bearer ...`,
 * compared in constant time) and TLS on the channel. A worker on loopback may go without
 * both; one bound to any other address needs the token (see `dsi worker`).
 */
import { credentials, Metadata, ServerCredentials, type ChannelCredentials } from "@grpc/grpc-js";
import { createHash, timingSafeEqual } from "node:crypto";
import { isIP } from "node:net";

/** The environment variable both `dsi worker` and the orchestrator read the token from. */
export const TOKEN_ENV = "DSI_TOKEN";

/** Hosts a worker may bind without a token. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, "$1");
  return h === "localhost" || h === "::1" || (isIP(h) === 4 && h.startsWith("127."));
}

const digest = (s: string): Buffer => createHash("sha256").update(s).digest();

/**
 * A matcher of secrets against `want`: equal-length digests compared with timingSafeEqual, so
 * the time taken says nothing about how much of a guess was right.
 */
export function secretMatcher(want: string): (given: string) => boolean {
  const wanted = digest(want);
  return (given) => timingSafeEqual(digest(given), wanted);
}

/** A checker of call metadata against `token` (`authorization: Bearer <token>`). */
export function tokenChecker(token: string): (md: Metadata) => boolean {
  const matches = secretMatcher(`Bearer ${token}`);
  return (md) => {
    const got = md.get("authorization")[0];
    return typeof got === "string" && matches(got);
  };
}

/** Call metadata carrying `token` (empty without one). */
export function tokenMetadata(token: string | undefined): Metadata {
  const md = new Metadata();
  if (token !== undefined) md.set("authorization", `Bearer ${token}`);
  return md;
}

/**
 * TLS settings of a client: trust `ca` (PEM; the system's roots when absent). The worker's
 * certificate must name the host of the address the client dials.
 */
export interface ClientTls {
  ca?: Buffer;
}

/**
 * One credentials object per TLS settings: grpc-js lets channels share a connection only when
 * their credentials are equal, and SSL credentials are equal only when they share a secure
 * context. (Before, each sequence of a worker made its own and opened its own connection.)
 */
const sslCredentials = new WeakMap<ClientTls, ChannelCredentials>();

export function channelCredentials(tls: ClientTls | undefined): ChannelCredentials {
  if (!tls) return credentials.createInsecure();
  let made = sslCredentials.get(tls);
  if (!made) sslCredentials.set(tls, (made = credentials.createSsl(tls.ca ?? null)));
  return made;
}

/** TLS settings of a worker: its certificate chain and key (PEM). */
export interface ServerTls {
  cert: Buffer;
  key: Buffer;
}

export function serverCredentials(tls: ServerTls | undefined): ServerCredentials {
  return tls ? ServerCredentials.createSsl(null, [{ cert_chain: tls.cert, private_key: tls.key }], false) : ServerCredentials.createInsecure();
}
