/**
 * The worker protocol (proto/worker.proto) as the client and the worker both use it: the
 * loaded service definition, message types, and the prefix hash that lets each side check
 * that they agree on the sequence the worker holds.
 */
import { credentials, loadPackageDefinition, type ChannelCredentials, type Client, type ServiceClientConstructor } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { fileURLToPath } from "node:url";

/** proto/ at the package root (dist/src/models/remote -> ../../../../proto). */
const PROTO = fileURLToPath(new URL("../../../../proto/worker.proto", import.meta.url));

export const OUTPUT_MODES = ["greedy", "sample", "dist"] as const;
const MODE_NAMES = ["GREEDY", "SAMPLE", "DIST"] as const;
export const modeToWire = (m: (typeof OUTPUT_MODES)[number]): (typeof MODE_NAMES)[number] => MODE_NAMES[OUTPUT_MODES.indexOf(m)];
export const modeFromWire = (m: string): (typeof OUTPUT_MODES)[number] => OUTPUT_MODES[MODE_NAMES.indexOf(m as (typeof MODE_NAMES)[number])];

export interface InfoReply {
  label: string;
  vocabSize: number;
  eosToken: number;
  backend: string;
}

export interface EvaluateRequestMsg {
  keep: number;
  append: number[];
  keepHash: number;
  from: number;
  mode: string;
  sampling: { temperature: number; topK: number; topP: number };
  seed: number;
  stream: number;
}

export interface EvaluateReplyMsg {
  tokens: number[];
  probs: Buffer;
  held: number;
  heldHash: number;
}

/** A worker's counters since it started. */
export interface WorkerStats {
  calls: number;
  cancelled: number;
  tokensReceived: number;
  positionsEvaluated: number;
  busySeconds: number;
}

/** Full-vocabulary windows exceed gRPC's 4 MiB default (152k tokens x 9 positions x 4 bytes). */
export const MAX_MESSAGE_BYTES = 256 * 2 ** 20;

let service: ServiceClientConstructor | undefined;

/** The ModelWorker service (loaded once per process). */
export function workerService(): ServiceClientConstructor {
  if (!service) {
    const def = loadSync(PROTO, { keepCase: false, longs: Number, enums: String, defaults: true });
    const pkg = loadPackageDefinition(def) as unknown as { dsi: { worker: { v1: { ModelWorker: ServiceClientConstructor } } } };
    service = pkg.dsi.worker.v1.ModelWorker;
  }
  return service;
}

/**
 * Keepalive, set on both sides together: the client pings every 10 s, also between calls (a
 * dead worker is noticed while the pool holds it idle), and gives up after 5 s without an
 * answer; the worker accepts pings that often (a server that permits fewer closes the
 * connection with "too_many_pings").
 */
export const KEEPALIVE_TIME_MS = 10_000;
export const KEEPALIVE_TIMEOUT_MS = 5_000;
export const SERVER_KEEPALIVE = {
  "grpc.keepalive_permit_without_calls": 1,
  "grpc.http2.min_ping_interval_without_data_ms": KEEPALIVE_TIME_MS / 2,
  "grpc.http2.max_pings_without_data": 0,
};

/** A client of a worker at host:port (insecure on loopback by default). */
export function workerClient(address: string, creds: ChannelCredentials = credentials.createInsecure()): Client {
  const Ctor = workerService();
  return new Ctor(address, creds, {
    "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
    "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
    "grpc.keepalive_time_ms": KEEPALIVE_TIME_MS,
    "grpc.keepalive_timeout_ms": KEEPALIVE_TIMEOUT_MS,
    "grpc.keepalive_permit_without_calls": 1,
    // A restarted worker is found again within seconds (the default backoff grows to 120 s).
    "grpc.initial_reconnect_backoff_ms": 500,
    "grpc.max_reconnect_backoff_ms": 2000,
  });
}

/** Prefix hashes: h[0] = seed value, h[i+1] = mix(h[i], tokens[i]); FNV-1a style, 32 bits. */
export const HASH_START = 0x811c9dc5;
export function hashStep(h: number, token: number): number {
  return Math.imul(h ^ token, 0x01000193) >>> 0;
}
