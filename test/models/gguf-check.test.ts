/** The GGUF structure check: sound files pass, and no corruption makes it hang or misreport. */
import assert from "node:assert/strict";
import { mkdtemp, open, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { Rng } from "../../src/core/random.js";
import { checkGgufStructure, GgufFormatError, type GgufSummary } from "../../src/models/gguf/check.js";
import { writePair } from "../../src/models/gguf/llama-model.js";
import { TINY_PAIR } from "../helpers/gguf-models.js";

let dir: string;
let bytes: Buffer;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "dsi-gguf-check-"));
  const files = await writePair(join(dir, "pair"), TINY_PAIR);
  bytes = await readFile(files.target);
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function check(data: Buffer): Promise<GgufSummary> {
  const path = join(dir, "probe.gguf");
  await writeFile(path, data);
  const file = await open(path, "r");
  try {
    return await checkGgufStructure(file, data.length);
  } finally {
    await file.close();
  }
}

test("a GGUF we wrote passes, with its architecture and counts", async () => {
  const s = await check(bytes);
  assert.equal(s.version, 3);
  assert.equal(s.architecture, "llama");
  assert.ok(s.tensors > 5 && s.metadata > 10, JSON.stringify(s));
});

test("every truncation of the header sections is refused as truncated or corrupt, never a hang or another error", async () => {
  // The header sections end where the first tensor's data begins; cut at many points before it.
  const rng = new Rng(7);
  const cuts = new Set<number>([0, 3, 4, 8, 16, 24, 25]);
  while (cuts.size < 150) cuts.add(Math.floor(rng.next() * Math.min(bytes.length, 4096)));
  for (const n of cuts) {
    await assert.rejects(check(bytes.subarray(0, n)), (err: unknown) => err instanceof GgufFormatError, `cut at ${n}`);
  }
});

test("random byte corruptions of the header sections are refused or pass, never a hang or another error", async () => {
  const rng = new Rng(11);
  let refused = 0;
  for (let i = 0; i < 200; i++) {
    const copy = Buffer.from(bytes);
    for (let k = 0; k < 4; k++) copy[8 + Math.floor(rng.next() * 2000)] = Math.floor(rng.next() * 256);
    try {
      await check(copy);
    } catch (err) {
      assert.ok(err instanceof GgufFormatError, String(err));
      refused++;
    }
  }
  assert.ok(refused > 20, `only ${refused} of 200 corruptions refused`);
});

test("GGUF writer round trip: node-llama-cpp's own reader sees our metadata and tensors", async () => {
  const { readGgufFileInfo } = await import("node-llama-cpp");
  const path = join(dir, "round-trip.gguf");
  await writeFile(path, bytes);
  const info = await readGgufFileInfo(path, { readTensorInfo: true, logWarnings: false });
  const md = info.metadata as unknown as { general: { architecture: string }; llama: { block_count: number; embedding_length: number; context_length: number; vocab_size: number }; tokenizer: { ggml: { tokens: string[] } } };
  assert.equal(md.general.architecture, "llama");
  assert.equal(md.llama.block_count, TINY_PAIR.target.layers);
  assert.equal(md.llama.embedding_length, TINY_PAIR.target.width);
  assert.equal(md.llama.context_length, TINY_PAIR.target.context);
  assert.equal(md.tokenizer.ggml.tokens.length, TINY_PAIR.target.vocab);
  const ours = await check(bytes);
  assert.equal(info.tensorInfo?.length, ours.tensors);
  assert.ok(info.tensorInfo!.some((t) => t.name === "token_embd.weight"));
});
