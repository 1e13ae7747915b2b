/**
 * A minimal GGUF v3 writer: typed metadata and F32 tensors, 32-byte aligned.
 * Enough to produce llama-architecture models that llama.cpp loads.
 */
import { open } from "node:fs/promises";

export type GgufValue =
  | { type: "u32"; value: number }
  | { type: "i32"; value: number }
  | { type: "f32"; value: number }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string }
  | { type: "string[]"; value: readonly string[] }
  | { type: "f32[]"; value: ArrayLike<number> }
  | { type: "i32[]"; value: ArrayLike<number> };

export interface GgufTensor {
  name: string;
  /** ggml order: dims[0] is the contiguous (input) dimension. */
  dims: readonly number[];
  data: Float32Array;
  /** Storage type: f32 (default) or q8_0 (8-bit blocks of 32; dims[0] must be a multiple of 32). */
  type?: "f32" | "q8_0";
}

const ALIGNMENT = 32;
const T = { U32: 4, I32: 5, F32: 6, BOOL: 7, STRING: 8, ARRAY: 9 } as const;
const GGML_TYPE = { f32: 0, q8_0: 8 } as const;
const Q8_BLOCK = 32;

/** Scratch for reading a float's bits (one per process: millions of calls per model). */
const F32 = new Float32Array(1);
const F32_BITS = new Uint32Array(F32.buffer);

/** IEEE half-precision bits of a float (round to nearest even). */
function f16Bits(value: number): number {
  F32[0] = value;
  const x = F32_BITS[0];
  const sign = (x >>> 16) & 0x8000;
  let exp = ((x >>> 23) & 0xff) - 127 + 15;
  let mant = x & 0x7fffff;
  if (exp >= 31) return sign | 0x7c00; // overflow to infinity (scales never get here)
  if (exp <= 0) {
    if (exp < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - exp;
    const half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (half + (rem > mid || (rem === mid && half & 1) ? 1 : 0));
  }
  const half = (exp << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  return sign | (half + (rem > 0x1000 || (rem === 0x1000 && half & 1) ? 1 : 0));
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** ggml's Q8_0: per block of 32 values, an f16 scale d = max|x|/127 and 32 int8 round(x/d). */
export function quantizeQ8_0(data: Float32Array): Buffer {
  if (data.length % Q8_BLOCK !== 0) throw new Error(`q8_0 needs a multiple of ${Q8_BLOCK} values, got ${data.length}`);
  const blocks = data.length / Q8_BLOCK;
  const out = Buffer.alloc(blocks * 34);
  const q8 = new Int8Array(out.buffer, out.byteOffset, out.length);
  for (let b = 0; b < blocks; b++) {
    let amax = 0;
    for (let i = 0; i < Q8_BLOCK; i++) amax = Math.max(amax, Math.abs(data[b * Q8_BLOCK + i]));
    if (amax === 0) continue; // an all-zero block is all-zero bytes (scale 0, values 0)
    const bits = f16Bits(amax / 127);
    const d = halfToFloat(bits);
    out[b * 34] = bits & 0xff;
    out[b * 34 + 1] = bits >>> 8;
    for (let i = 0; i < Q8_BLOCK; i++) {
      q8[b * 34 + 2 + i] = d === 0 ? 0 : Math.max(-127, Math.min(127, Math.round(data[b * Q8_BLOCK + i] / d)));
    }
  }
  return out;
}

function tensorBytes(t: GgufTensor): Buffer {
  if ((t.type ?? "f32") === "q8_0") {
    if (t.dims[0] % Q8_BLOCK !== 0) throw new Error(`tensor ${t.name}: q8_0 needs dims[0] to be a multiple of ${Q8_BLOCK}`);
    return quantizeQ8_0(t.data);
  }
  return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

class ByteSink {
  private chunks: Buffer[] = [];
  length = 0;
  raw(b: Buffer): void {
    this.chunks.push(b);
    this.length += b.length;
  }
  u8(v: number): void {
    this.raw(Buffer.from([v & 0xff]));
  }
  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    this.raw(b);
  }
  i32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v | 0);
    this.raw(b);
  }
  u64(v: number): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.raw(b);
  }
  f32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeFloatLE(v);
    this.raw(b);
  }
  str(s: string): void {
    const bytes = Buffer.from(s, "utf8");
    this.u64(bytes.length);
    this.raw(bytes);
  }
  pad(to: number): void {
    const rem = this.length % to;
    if (rem) this.raw(Buffer.alloc(to - rem));
  }
  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

function writeValue(s: ByteSink, v: GgufValue): void {
  switch (v.type) {
    case "u32":
      s.u32(T.U32);
      s.u32(v.value);
      break;
    case "i32":
      s.u32(T.I32);
      s.i32(v.value);
      break;
    case "f32":
      s.u32(T.F32);
      s.f32(v.value);
      break;
    case "bool":
      s.u32(T.BOOL);
      s.u8(v.value ? 1 : 0);
      break;
    case "string":
      s.u32(T.STRING);
      s.str(v.value);
      break;
    case "string[]":
      s.u32(T.ARRAY);
      s.u32(T.STRING);
      s.u64(v.value.length);
      for (const x of v.value) s.str(x);
      break;
    case "f32[]":
      s.u32(T.ARRAY);
      s.u32(T.F32);
      s.u64(v.value.length);
      for (let i = 0; i < v.value.length; i++) s.f32(v.value[i]);
      break;
    case "i32[]":
      s.u32(T.ARRAY);
      s.u32(T.I32);
      s.u64(v.value.length);
      for (let i = 0; i < v.value.length; i++) s.i32(v.value[i]);
      break;
  }
}

/** Writes a GGUF file: header, metadata, tensor infos, then aligned tensor data. */
export async function writeGguf(path: string, metadata: Record<string, GgufValue>, tensors: readonly GgufTensor[]): Promise<void> {
  const head = new ByteSink();
  head.raw(Buffer.from("GGUF", "ascii"));
  head.u32(3); // version
  head.u64(tensors.length);
  head.u64(Object.keys(metadata).length);
  for (const [key, value] of Object.entries(metadata)) {
    head.str(key);
    writeValue(head, value);
  }
  let offset = 0;
  const payloads: Buffer[] = [];
  for (const t of tensors) {
    const count = t.dims.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) throw new Error(`tensor ${t.name}: dims ${t.dims.join("x")} != ${t.data.length} values`);
    const bytes = tensorBytes(t);
    payloads.push(bytes);
    head.str(t.name);
    head.u32(t.dims.length);
    for (const d of t.dims) head.u64(d);
    head.u32(GGML_TYPE[t.type ?? "f32"]);
    head.u64(offset);
    offset += Math.ceil(bytes.length / ALIGNMENT) * ALIGNMENT;
  }
  head.pad(ALIGNMENT);
  const file = await open(path, "w");
  try {
    await file.write(head.bytes());
    for (const bytes of payloads) {
      await file.write(bytes);
      const rem = bytes.length % ALIGNMENT;
      if (rem) await file.write(Buffer.alloc(ALIGNMENT - rem));
    }
  } finally {
    await file.close();
  }
}
