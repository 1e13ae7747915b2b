/**
 * Checks a GGUF file's structure against its size before llama.cpp sees it: every count and
 * length in the header, metadata and tensor infos must fit in the bytes that follow. A
 * corrupt count (say 2^62 tensors) would otherwise make llama.cpp allocate and loop until
 * memory runs out. Reads only the header sections, in chunks.
 */
import type { FileHandle } from "node:fs/promises";

/** What the file's structure says, once it is known to be sound. */
export interface GgufSummary {
  version: number;
  tensors: number;
  metadata: number;
  architecture: string | undefined;
}

/**
 * The structure is unsound. `message` is a predicate for "<the file> ...", e.g. "is truncated
 * or corrupt: tensor count ...", so callers can name the file in one line.
 */
export class GgufFormatError extends Error {
  override readonly name = "GgufFormatError";
  constructor(detail: string, predicate = "is truncated or corrupt:") {
    super(`${predicate} ${detail}`);
  }
}

/** llama.cpp's limits: GGML_MAX_DIMS, and a sane cap on one key or tensor name. */
const MAX_DIMS = 4;
const MAX_NAME = 1 << 16;
/** Bytes of fixed-size metadata values by GGUF type id; 8 (string) and 9 (array) vary. */
const FIXED_SIZE: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
const STRING = 8;
const ARRAY = 9;

/** Sequential little-endian reads over a file, in chunks, never past its end. */
class Reader {
  private buf = Buffer.alloc(0);
  private bufStart = 0;
  pos = 0;
  constructor(
    private readonly file: FileHandle,
    readonly size: number,
  ) {}

  get remaining(): number {
    return this.size - this.pos;
  }

  private async need(n: number, what: string): Promise<Buffer> {
    if (n > this.remaining) throw new GgufFormatError(`${what} at byte ${this.pos} needs ${n} bytes, ${this.remaining} are left (truncated or corrupt)`);
    const off = this.pos - this.bufStart;
    if (off + n > this.buf.length) {
      const len = Math.min(Math.max(n, 1 << 20), this.remaining);
      this.buf = Buffer.alloc(len);
      await this.file.read(this.buf, 0, len, this.pos);
      this.bufStart = this.pos;
    }
    const at = this.pos - this.bufStart;
    this.pos += n;
    return this.buf.subarray(at, at + n);
  }

  async u32(what: string): Promise<number> {
    return (await this.need(4, what)).readUInt32LE(0);
  }

  /** A u64 count, as a number; counts beyond 2^53 cannot fit in any file. */
  async u64(what: string): Promise<number> {
    const v = (await this.need(8, what)).readBigUInt64LE(0);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new GgufFormatError(`${what} at byte ${this.pos - 8} is ${v}, more than any file can hold`);
    return Number(v);
  }

  async string(what: string): Promise<string> {
    const len = await this.u64(`${what} length`);
    if (len > this.remaining) throw new GgufFormatError(`${what} at byte ${this.pos - 8} claims ${len} bytes, ${this.remaining} are left`);
    return (await this.need(len, what)).toString("utf8");
  }

  async skip(n: number, what: string): Promise<void> {
    if (n > this.remaining) throw new GgufFormatError(`${what} at byte ${this.pos} needs ${n} bytes, ${this.remaining} are left (truncated or corrupt)`);
    this.pos += n;
  }
}

/** Skips one metadata value of type `type`; returns it when it is a string. */
async function value(r: Reader, type: number, what: string, depth = 0): Promise<string | undefined> {
  if (type === STRING) return r.string(what);
  const fixed = FIXED_SIZE[type];
  if (fixed !== undefined) {
    await r.skip(fixed, what);
    return undefined;
  }
  if (type !== ARRAY || depth > 2) throw new GgufFormatError(`${what} has unknown value type ${type}`);
  const itemType = await r.u32(`${what} item type`);
  const count = await r.u64(`${what} item count`);
  const itemFixed = FIXED_SIZE[itemType];
  if (itemFixed !== undefined) {
    if (count * itemFixed > r.remaining) throw new GgufFormatError(`${what} claims ${count} items, more than the ${r.remaining} bytes left`);
    await r.skip(count * itemFixed, what);
    return undefined;
  }
  // Strings and nested arrays take at least 8 bytes each.
  if (count * 8 > r.remaining) throw new GgufFormatError(`${what} claims ${count} items, more than the ${r.remaining} bytes left`);
  for (let i = 0; i < count; i++) await value(r, itemType, `${what}[${i}]`, depth + 1);
  return undefined;
}

/** Reads the header, metadata and tensor infos of an open GGUF file of `size` bytes. */
export async function checkGgufStructure(file: FileHandle, size: number): Promise<GgufSummary> {
  const r = new Reader(file, size);
  if (size < 4) throw new GgufFormatError(`(${size} bytes)`, "is not a GGUF file");
  const magic = (await r.u32("magic")) >>> 0;
  if (magic !== 0x46554747) throw new GgufFormatError('(it does not start with "GGUF")', "is not a GGUF file");
  const version = await r.u32("version");
  if (version !== 2 && version !== 3) throw new GgufFormatError(`${version}; llama.cpp reads versions 2 and 3 (is the file truncated or corrupt?)`, "has GGUF version");
  const tensors = await r.u64("tensor count");
  const metadata = await r.u64("metadata count");
  // Each metadata entry takes at least 13 bytes (key length, type, a 1-byte value), each
  // tensor info at least 24 (name length, dimension count, type, offset).
  if (metadata * 13 > r.remaining) throw new GgufFormatError(`its header claims ${metadata} metadata entries, more than its ${size} bytes can hold`);
  if (tensors * 24 > r.remaining) throw new GgufFormatError(`its header claims ${tensors} tensors, more than its ${size} bytes can hold`);
  let architecture: string | undefined;
  for (let i = 0; i < metadata; i++) {
    const key = await r.string(`metadata key ${i}`);
    if (key.length > MAX_NAME) throw new GgufFormatError(`metadata key ${i} is ${key.length} bytes long`);
    const type = await r.u32(`metadata ${key} type`);
    const v = await value(r, type, `metadata ${key}`);
    if (key === "general.architecture") architecture = v;
  }
  for (let i = 0; i < tensors; i++) {
    const name = await r.string(`tensor ${i} name`);
    if (name.length > MAX_NAME) throw new GgufFormatError(`tensor ${i} name is ${name.length} bytes long`);
    const dims = await r.u32(`tensor ${name} dimension count`);
    if (dims < 1 || dims > MAX_DIMS) throw new GgufFormatError(`tensor ${name} has ${dims} dimensions (1..${MAX_DIMS} allowed)`);
    let elements = 1;
    for (let d = 0; d < dims; d++) elements *= await r.u64(`tensor ${name} dimension ${d}`);
    await r.u32(`tensor ${name} type`);
    const offset = await r.u64(`tensor ${name} offset`);
    if (offset >= size) throw new GgufFormatError(`tensor ${name} starts at data offset ${offset}, past the end of the ${size}-byte file`);
    // Every tensor type takes more than 1/8 byte per element (ternary ones about 2 bits).
    if (elements / 8 > size) throw new GgufFormatError(`tensor ${name} has ${elements} elements, more than the ${size}-byte file can hold`);
  }
  return { version, tensors, metadata, architecture };
}
