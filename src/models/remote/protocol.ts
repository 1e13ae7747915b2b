/**
 * The worker protocol (proto/worker.proto) as the client and the worker both use it: the
 * loaded service, with message and service types generated from the .proto (`npm run
 * proto:types` writes them to ./generated; a test checks they are up to date), and the prefix
 * hash that lets each side check that they agree on the sequence the worker holds.
 */
import { credentials, loadPackageDefinition, type ChannelCredentials } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { fileURLToPath } from "node:url";
import type { Probs } from "../../core/verify.js";
import type { ModelWorkerClient, ModelWorkerDefinition } from "./generated/dsi/worker/v1/ModelWorker.js";
import type { OutputMode__Output as OutputModeWire } from "./generated/dsi/worker/v1/OutputMode.js";
import type { ProbsFormat__Output as ProbsFormatWire } from "./generated/dsi/worker/v1/ProbsFormat.js";
import type { StatsReply__Output } from "./generated/dsi/worker/v1/StatsReply.js";
import type { ProtoGrpcType } from "./generated/worker.js";

export type { ModelWorkerClient, ModelWorkerDefinition, ModelWorkerHandlers } from "./generated/dsi/worker/v1/ModelWorker.js";
export type { EvaluateRequest, EvaluateRequest__Output } from "./generated/dsi/worker/v1/EvaluateRequest.js";
export type { EvaluateReply, EvaluateReply__Output } from "./generated/dsi/worker/v1/EvaluateReply.js";
export type { InfoReply, InfoReply__Output } from "./generated/dsi/worker/v1/InfoReply.js";

/** proto/ at the package root (dist/src/models/remote -> ../../../../proto). */
const PROTO = fileURLToPath(new URL("../../../../proto/worker.proto", import.meta.url));
/**
 * How the loader maps messages to objects; the generator's flags (package.json, proto:types)
 * must say the same, or the generated types describe other objects than the ones received
 * (test/worker/protocol.test.ts checks).
 */
export const LOAD_OPTIONS = { keepCase: false, longs: Number, enums: String, defaults: true } as const;

export const OUTPUT_MODES = ["greedy", "sample", "dist"] as const;
const MODE_NAMES = ["GREEDY", "SAMPLE", "DIST"] as const satisfies readonly OutputModeWire[];
export const modeToWire = (m: (typeof OUTPUT_MODES)[number]): OutputModeWire => MODE_NAMES[OUTPUT_MODES.indexOf(m)];
/** Undefined for a mode this side does not know (a newer peer's enum number). */
export const modeFromWire = (m: string): (typeof OUTPUT_MODES)[number] | undefined => OUTPUT_MODES[MODE_NAMES.indexOf(m as OutputModeWire)];

/**
 * The trailer a worker puts on an error its model raised (INTERNAL), so the client can tell it
 * from an INTERNAL status made by the transport (a connection that broke mid-call).
 */
export const MODEL_ERROR_KEY = "dsi-error";
export const MODEL_ERROR_VALUE = "model";

/** How distributions travel (see proto/worker.proto). */
export const PROBS_FORMATS = ["float32", "float16"] as const;
export type ProbsFormat = (typeof PROBS_FORMATS)[number];
export const probsFormatToWire = (f: ProbsFormat): ProbsFormatWire => (f === "float16" ? "FLOAT16" : "FLOAT32");

/** Encodes `positions` distributions of `vocab` probabilities (little-endian). */
export function encodeProbs(outputs: readonly { probs?: Probs }[], vocab: number, format: ProbsFormatWire): Buffer {
  if (format === "FLOAT32") {
    const f32 = new Float32Array(outputs.length * vocab);
    outputs.forEach((out, i) => f32.set(out.probs!, i * vocab));
    return Buffer.from(f32.buffer);
  }
  const f32 = new Float32Array(outputs.length * vocab);
  outputs.forEach((out, i) => f32.set(out.probs!, i * vocab));
  const bits = new Uint32Array(f32.buffer);
  const half = new Uint16Array(f32.length);
  for (let i = 0; i < bits.length; i++) half[i] = float32BitsToHalf(bits[i]);
  return Buffer.from(half.buffer);
}

/**
 * IEEE 754 binary32 bits to binary16 bits, rounding to nearest even: a few integer operations
 * per value (a general float16 library's per-value path costs ~1 µs, which at a vocabulary of
 * 32,000 made a window's reply slower than sending float32). Checked against that library in
 * test/models/float16.test.ts.
 */
export function float32BitsToHalf(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const abs = x & 0x7fffffff;
  if (abs >= 0x477ff000) return sign | (abs > 0x7f800000 ? 0x7e00 : 0x7c00); // NaN; >= 65520 is Infinity
  if (abs < 0x38800000) {
    // Below the smallest normal float16 (2^-14): a subnormal in units of 2^-24, or zero.
    if (abs <= 0x33000000) return sign; // at most 2^-25: rounds to 0 (2^-25 itself to even)
    const shift = 126 - (abs >>> 23);
    const mant = (abs & 0x7fffff) | 0x800000;
    let r = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && r & 1)) r++;
    return sign | r;
  }
  // Normal: rebias the exponent (127 -> 15) and drop 13 mantissa bits, rounding to even; a
  // carry into the exponent is the right result.
  let r = (abs - 0x38000000) >>> 13;
  const rest = abs & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && r & 1)) r++;
  return sign | r;
}

let halfValues: Float64Array | undefined;
/** Every float16 bit pattern's value (IEEE 754 binary16): decoding is one lookup per probability. */
export function float16Values(): Float64Array {
  if (!halfValues) {
    halfValues = new Float64Array(65536);
    for (let bits = 0; bits < 65536; bits++) {
      const sign = bits & 0x8000 ? -1 : 1;
      const exp = (bits >> 10) & 0x1f;
      const mant = bits & 0x3ff;
      halfValues[bits] = sign * (exp === 0 ? mant * 2 ** -24 : exp === 31 ? (mant ? NaN : Infinity) : (1 + mant / 1024) * 2 ** (exp - 15));
    }
  }
  return halfValues;
}

/**
 * Decodes what encodeProbs made into one distribution per position. Float32 ones are views of
 * the received bytes, not copies (a window at a 152k vocabulary is megabytes): the verification
 * rules read them as they read float64 (float32 converts exactly), so outcomes are the same.
 * Float16 ones are decoded to float64 and renormalised (rounding moves their sum off 1 by up
 * to about 2^-11).
 */
export function decodeProbs(raw: Buffer, positions: number, vocab: number, format: "float32"): Float32Array[] | undefined;
export function decodeProbs(raw: Buffer, positions: number, vocab: number, format: "float16"): Float64Array[] | undefined;
export function decodeProbs(raw: Buffer, positions: number, vocab: number, format: ProbsFormat): Probs[] | undefined;
export function decodeProbs(raw: Buffer, positions: number, vocab: number, format: ProbsFormat): Probs[] | undefined {
  const width = format === "float16" ? 2 : 4;
  if (raw.byteLength !== positions * vocab * width) return undefined;
  if (format === "float32") {
    // A received buffer need not be 4-byte aligned in its backing store: copy when it is not.
    const aligned = raw.byteOffset % 4 === 0 ? raw : Buffer.from(raw);
    const f32 = new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4);
    return Array.from({ length: positions }, (_, i) => f32.subarray(i * vocab, (i + 1) * vocab));
  }
  const aligned = raw.byteOffset % 2 === 0 ? raw : Buffer.from(raw);
  const bits = new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2);
  const value = float16Values();
  return Array.from({ length: positions }, (_, i) => {
    const probs = new Float64Array(vocab);
    let sum = 0;
    for (let k = 0; k < vocab; k++) sum += probs[k] = value[bits[i * vocab + k]];
    for (let k = 0; k < vocab; k++) probs[k] /= sum;
    return probs;
  });
}

/** A worker's counters since it started (the Stats reply). */
export type WorkerStats = StatsReply__Output;

/** Full-vocabulary windows exceed gRPC's 4 MiB default (152k tokens x 9 positions x 4 bytes). */
export const MAX_MESSAGE_BYTES = 256 * 2 ** 20;

type ModelWorkerService = ProtoGrpcType["dsi"]["worker"]["v1"]["ModelWorker"];
let service: ModelWorkerService | undefined;

/** The ModelWorker service (loaded once per process): its typed client constructor and definition. */
export function workerService(): ModelWorkerService {
  if (!service) {
    // The loader is dynamic: this is where its untyped package meets the generated types
    // (what the generator is for), once; clients and handlers are typed from here on.
    const pkg = loadPackageDefinition(loadSync(PROTO, LOAD_OPTIONS)) as unknown as ProtoGrpcType;
    service = pkg.dsi.worker.v1.ModelWorker;
  }
  return service;
}

/** The service definition a server adds (typed: handlers must match the generated ones). */
export const workerDefinition = (): ModelWorkerDefinition => workerService().service;

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
export function workerClient(address: string, creds: ChannelCredentials = credentials.createInsecure()): ModelWorkerClient {
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

/** Prefix hashes: h[0] = HASH_START, h[i+1] = hashStep(h[i], tokens[i]) (core/token-hash.ts). */
export { HASH_START, hashStep } from "../../core/token-hash.js";
