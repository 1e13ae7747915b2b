/**
 * Generated llama-architecture model pairs as GGUF files: the corpus pair (weights compiled
 * from the Brown Corpus, models/corpus/; the default), and seeded random pairs for tests that
 * need near ties everywhere.
 *
 * A random pair's drafter is derived from its target: it shares the token embeddings, the output norm
 * and projection, and the target's first `drafterLayers` blocks exactly; the target has
 * more blocks whose contribution to the residual stream is scaled by `depthScale`. A small
 * depthScale makes the target's extra depth a small perturbation (acceptance near 1); a
 * large one makes the two models disagree (acceptance near 0).
 */
import { rename, stat } from "node:fs/promises";
import { makeDirs } from "../make-dirs.js";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { FastRng, hash32 } from "../../core/random.js";
import { DEFAULT_CORPUS_PAIR, type CorpusPairSpec } from "../corpus/spec.js";
import { writeCorpusPair } from "../corpus/write.js";
import { writeGguf, type GgufTensor, type GgufValue } from "./writer.js";

export interface LlamaShape {
  vocab: number;
  width: number;
  layers: number;
  heads: number;
  /** Feed-forward width. */
  ff: number;
  context: number;
}

/** A seeded random-weight pair. */
export interface PairSpec {
  target: LlamaShape;
  drafterLayers: number;
  /** Scale of the target-only blocks' output projections. */
  depthScale: number;
  /** Standard deviation of the logits (before the final norm's effect). */
  logitScale: number;
  seed: number;
  /** A Jinja chat template written as `tokenizer.chat_template` (none by default). */
  chatTemplate?: string;
}

/** A random pair with a target ~10x the drafter's compute (the default pair before the corpus pair). */
export const RANDOM_PAIR: PairSpec = {
  target: { vocab: 512, width: 512, layers: 32, heads: 8, ff: 1536, context: 1024 },
  drafterLayers: 1,
  depthScale: 0.06,
  logitScale: 3,
  seed: 1,
};

/** Either kind of generated pair. */
export type ModelPairSpec = PairSpec | CorpusPairSpec;

/** The pair `dsi demo`, `dsi serve` and `dsi generate --backend llama` use unless given files: the corpus pair. */
export const DEFAULT_PAIR: CorpusPairSpec = DEFAULT_CORPUS_PAIR;

export function isCorpusPair(spec: ModelPairSpec): spec is CorpusPairSpec {
  return "kind" in spec && spec.kind === "corpus";
}

export interface Vocabulary {
  /** "llama": SentencePiece-style with byte fallback (any text encodes); "gpt2": byte-level characters, no merges. */
  model: "llama" | "gpt2";
  tokens: string[];
  scores: number[];
  types: number[];
  bos: number;
  eos: number;
}

/** The smallest vocabulary of the SentencePiece tokenizer: specials, 256 bytes, single characters. */
export const MIN_SPM_VOCAB = 313;
export const MIN_VOCAB = 4;

const LETTERS = "etaoinshrdlcumwfgypbvkjxqz";

/**
 * The tokenizer written into the GGUF. From MIN_SPM_VOCAB tokens up it is SentencePiece-
 * style: <unk> <s> </s>, the 256 byte tokens, then characters and letter pairs. Smaller
 * vocabularies (tests that need exact distributions over a few tokens) use a byte-level
 * character tokenizer: <s> </s> and printable characters (space is "Ġ"), then pairs.
 */
export function buildVocabulary(size: number): Vocabulary {
  if (!(Number.isInteger(size) && size >= MIN_VOCAB)) throw new RangeError(`--vocab must be an integer >= ${MIN_VOCAB}, got ${size}`);
  const spm = size >= MIN_SPM_VOCAB;
  const tokens = spm ? ["<unk>", "<s>", "</s>"] : ["<s>", "</s>"];
  const types = spm ? [2, 3, 3] : [3, 3]; // unknown, control
  if (spm) {
    for (let b = 0; b < 256; b++) {
      tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
      types.push(6); // byte
    }
  }
  const space = spm ? "▁" : "Ġ";
  const pieces: string[] = [space];
  for (const ch of LETTERS) pieces.push(ch, `${space}${ch}`);
  for (const ch of "ETAOINSHRDLCUMWFGYPBVKJXQZ0123456789.,!?'-:;()") pieces.push(ch);
  for (const a of LETTERS) for (const b of LETTERS) pieces.push(a + b);
  for (const a of LETTERS) for (const b of LETTERS) pieces.push(`${space}${a}${b}`);
  const seen = new Set(tokens);
  const scores = tokens.map(() => 0);
  for (const p of pieces) {
    if (tokens.length >= size) break;
    if (seen.has(p)) continue;
    seen.add(p);
    tokens.push(p);
    // Longer pieces score higher so they win SentencePiece merges.
    scores.push(-1000 + 10 * [...p].length - tokens.length / 1000);
    types.push(1);
  }
  if (tokens.length < size) throw new RangeError(`--vocab ${size} is larger than the generator's ${tokens.length} pieces`);
  return { model: spm ? "llama" : "gpt2", tokens, scores, types, bos: spm ? 1 : 0, eos: spm ? 2 : 1 };
}

/** Matrices are stored as Q8_0 (as real deployments quantize; and llama.cpp's CPU kernels
 * verify a window of drafts far cheaper than in F32); norms and embeddings stay F32. */
function randomTensor(name: string, dims: number[], std: number, seed: number): GgufTensor {
  const rng = new FastRng(seed, hash32(...[...name].map((c) => c.charCodeAt(0))));
  const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = rng.normal() * std;
  const quantize = dims.length === 2 && dims[0] % 32 === 0 && name !== "token_embd.weight";
  return { name, dims, data, type: quantize ? "q8_0" : "f32" };
}

function ones(name: string, n: number): GgufTensor {
  return { name, dims: [n], data: new Float32Array(n).fill(1) };
}

function modelTensors(spec: PairSpec, layers: number): GgufTensor[] {
  const { vocab, width, ff } = spec.target;
  const seed = spec.seed;
  const t: GgufTensor[] = [randomTensor("token_embd.weight", [width, vocab], 1, seed)];
  for (let i = 0; i < layers; i++) {
    // Blocks past the drafter's depth exist only in the target; their outputs are scaled.
    const outScale = i < spec.drafterLayers ? 0.5 : spec.depthScale;
    const b = `blk.${i}`;
    t.push(ones(`${b}.attn_norm.weight`, width));
    t.push(randomTensor(`${b}.attn_q.weight`, [width, width], 1 / Math.sqrt(width), seed));
    t.push(randomTensor(`${b}.attn_k.weight`, [width, width], 1 / Math.sqrt(width), seed));
    t.push(randomTensor(`${b}.attn_v.weight`, [width, width], 1 / Math.sqrt(width), seed));
    t.push(randomTensor(`${b}.attn_output.weight`, [width, width], outScale / Math.sqrt(width), seed));
    t.push(ones(`${b}.ffn_norm.weight`, width));
    t.push(randomTensor(`${b}.ffn_gate.weight`, [width, ff], 1 / Math.sqrt(width), seed));
    t.push(randomTensor(`${b}.ffn_up.weight`, [width, ff], 1 / Math.sqrt(width), seed));
    t.push(randomTensor(`${b}.ffn_down.weight`, [ff, width], outScale / Math.sqrt(ff), seed));
  }
  t.push(ones("output_norm.weight", width));
  const output = randomTensor("output.weight", [width, vocab], spec.logitScale / Math.sqrt(width), seed);
  // Byte and special tokens get a zero logit: text reads as pieces, and greedy decoding
  // (whose winners have clearly positive logits) never emits them.
  const { types } = buildVocabulary(vocab);
  for (let v = 0; v < vocab; v++) if (types[v] !== 1) output.data.fill(0, v * width, (v + 1) * width);
  t.push(output);
  return t;
}

function metadata(spec: PairSpec, layers: number, name: string): Record<string, GgufValue> {
  const s = spec.target;
  const vocab = buildVocabulary(s.vocab);
  return {
    "general.architecture": { type: "string", value: "llama" },
    "general.name": { type: "string", value: name },
    "llama.context_length": { type: "u32", value: s.context },
    "llama.embedding_length": { type: "u32", value: s.width },
    "llama.block_count": { type: "u32", value: layers },
    "llama.feed_forward_length": { type: "u32", value: s.ff },
    "llama.attention.head_count": { type: "u32", value: s.heads },
    "llama.attention.head_count_kv": { type: "u32", value: s.heads },
    "llama.rope.dimension_count": { type: "u32", value: s.width / s.heads },
    "llama.attention.layer_norm_rms_epsilon": { type: "f32", value: 1e-5 },
    "llama.vocab_size": { type: "u32", value: s.vocab },
    "tokenizer.ggml.model": { type: "string", value: vocab.model },
    "tokenizer.ggml.tokens": { type: "string[]", value: vocab.tokens },
    "tokenizer.ggml.scores": { type: "f32[]", value: vocab.scores },
    "tokenizer.ggml.token_type": { type: "i32[]", value: vocab.types },
    ...(vocab.model === "gpt2"
      ? { "tokenizer.ggml.merges": { type: "string[]", value: [] } as GgufValue, "tokenizer.ggml.pre": { type: "string", value: "default" } as GgufValue }
      : { "tokenizer.ggml.unknown_token_id": { type: "u32", value: 0 } as GgufValue }),
    "tokenizer.ggml.bos_token_id": { type: "u32", value: vocab.bos },
    "tokenizer.ggml.eos_token_id": { type: "u32", value: vocab.eos },
    "tokenizer.ggml.add_bos_token": { type: "bool", value: true },
    "tokenizer.ggml.add_eos_token": { type: "bool", value: false },
    ...(spec.chatTemplate !== undefined ? { "tokenizer.chat_template": { type: "string", value: spec.chatTemplate } as GgufValue } : {}),
  };
}

export function checkShape(s: LlamaShape): void {
  const int = (name: string, v: number, min: number): void => {
    if (!(Number.isInteger(v) && v >= min)) throw new RangeError(`--${name} must be an integer >= ${min}, got ${v}`);
  };
  int("vocab", s.vocab, MIN_VOCAB);
  int("width", s.width, 8);
  int("layers", s.layers, 1);
  int("heads", s.heads, 1);
  int("ff", s.ff, 8);
  int("context", s.context, 16);
  if (s.width % s.heads !== 0 || (s.width / s.heads) % 2 !== 0) {
    throw new RangeError(`--width (${s.width}) must be a multiple of 2 x --heads (2 x ${s.heads} = ${2 * s.heads})`);
  }
  // Weights are generated in memory before they are written: keep a pair within reach.
  const bytes = targetBytes(s);
  if (bytes > MAX_MODEL_BYTES) {
    throw new RangeError(`the target would take about ${(bytes / 2 ** 30).toFixed(1)} GiB (at most ${MAX_MODEL_BYTES / 2 ** 30} GiB); lower --vocab, --width, --layers or --ff`);
  }
}

/** Largest target make-model writes. */
export const MAX_MODEL_BYTES = 4 * 2 ** 30;

/** About how many bytes the target's weights take (Q8_0: 34 bytes per 32 weights). */
export function targetBytes(s: LlamaShape): number {
  const weights = 2 * s.vocab * s.width + s.layers * (4 * s.width * s.width + 3 * s.width * s.ff);
  return (weights * 34) / 32;
}

/** Writes target.gguf and drafter.gguf into `dir` (atomically: a crash leaves no half file). */
export async function writePair(dir: string, spec: PairSpec): Promise<{ target: string; drafter: string }> {
  checkShape(spec.target);
  if (!(Number.isInteger(spec.drafterLayers) && spec.drafterLayers >= 1 && spec.drafterLayers <= spec.target.layers)) {
    throw new RangeError(`--drafter-layers must be in 1..${spec.target.layers} (the target's --layers), got ${spec.drafterLayers}`);
  }
  await makeDirs(dir);
  const out = { target: join(dir, "target.gguf"), drafter: join(dir, "drafter.gguf") };
  for (const [role, layers] of [
    ["target", spec.target.layers],
    ["drafter", spec.drafterLayers],
  ] as const) {
    const tmp = `${out[role]}.tmp-${process.pid}`;
    await writeGguf(tmp, metadata(spec, layers, `dsi-${role}`), modelTensors(spec, layers));
    await rename(tmp, out[role]);
  }
  return out;
}

/**
 * Writes a target/drafter pair as GGUF files into `dir` (the default pair unless `spec` says
 * otherwise); returns their paths.
 */
export async function makeModelPair(dir: string, spec: ModelPairSpec = DEFAULT_PAIR): Promise<{ target: string; drafter: string }> {
  if (isCorpusPair(spec)) {
    const { target, drafter } = await writeCorpusPair(dir, spec);
    return { target, drafter };
  }
  return writePair(dir, spec);
}

/** Bumped whenever the corpus pair's construction changes, so caches hold no stale pair. */
export const CORPUS_PAIR_VERSION = 1;

/** A stable directory name for a spec inside a cache directory. */
export function pairKey(spec: ModelPairSpec): string {
  if (isCorpusPair(spec)) {
    const c = spec;
    return `brown-v${CORPUS_PAIR_VERSION}-v${c.vocab}-l${c.layers}-w${c.trigramWeight}-c${c.context}-r${c.rank}-k${c.codeDims}-t${c.correctionDims}-n${c.tokenTables}-b${c.blockTables}-m${c.tableWidth}-p${c.repeatPenalty}-d${c.documents}-seed${c.seed}`;
  }
  const s = spec.target;
  return `llama-v${s.vocab}-w${s.width}-l${s.layers}-h${s.heads}-f${s.ff}-c${s.context}-d${spec.drafterLayers}-s${spec.depthScale}-g${spec.logitScale}-seed${spec.seed}`;
}

/** Returns the pair's files, generating them into the cache on first use. */
export async function ensurePair(cacheDir: string, spec: ModelPairSpec): Promise<{ target: string; drafter: string; generated: boolean }> {
  const dir = join(cacheDir, pairKey(spec));
  const files = { target: join(dir, "target.gguf"), drafter: join(dir, "drafter.gguf") };
  const exists = async (p: string): Promise<boolean> => stat(p).then(
    () => true,
    () => false,
  );
  if ((await exists(files.target)) && (await exists(files.drafter))) return { ...files, generated: false };
  await makeDirs(dirname(dir));
  await makeModelPair(dir, spec);
  return { ...files, generated: true };
}

/** Where generated models live: $DSI_CACHE_DIR, or ~/.cache/dsi. */
export function defaultCacheDir(): string {
  return process.env.DSI_CACHE_DIR ?? join(homedir(), ".cache", "dsi");
}

/** A cache folder option resolved: given, or the default; `false`: none (keep nothing). */
export function cacheDirOf(option: string | false | undefined): string | undefined {
  return option === false ? undefined : (option ?? defaultCacheDir());
}
