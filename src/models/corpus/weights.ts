/**
 * The corpus pair's tensors and GGUF metadata (llama architecture): the shared embedding and
 * output layer, the drafter's one block, the target's blocks. docs/corpus-pair.md describes
 * what each weight does; the numbers here follow it line by line.
 */
import type { GgufTensor, GgufValue } from "../gguf/writer.js";
import { TABLE_BLOCK, type CompiledPair } from "./compile.js";
import { detSinCos } from "./det-math.js";
import { repeatGain, rmsScale } from "./reference.js";
import { BIGRAM_SCALE, CONTROL_VALUE, EMBED_NORM, GATE_GAIN, HEADS, POSITION_GAP, REPEAT_MATCH, REPEAT_SINK_GAP, RMS_EPS, ROPE_FREQUENCIES, ROTATED_PAIRS } from "./spec.js";
import { BOS, EOS } from "./vocabulary.js";

/** A pair that never rotates: its frequency divisor makes every angle ~1e-27 radians. */
const STILL = 1e30;

/** max over offsets 1..context of the mean cosine of the rotating pairs: how close a positional head comes to its peak elsewhere. */
export function positionalRivalry(context: number): number {
  let worst = -1;
  for (let d = 1; d <= context; d++) {
    let s = 0;
    for (const theta of ROPE_FREQUENCIES) s += cosine(d * theta);
    worst = Math.max(worst, s / ROTATED_PAIRS);
  }
  return worst;
}

/** cos of any angle: reduced by a multiple of 2 pi first (2 pi as a double; exact enough here). */
function cosine(x: number): number {
  const twoPi = 6.283185307179586;
  const r = x - Math.round(x / twoPi) * twoPi;
  return detSinCos(r).cos;
}

interface Matrix {
  /** ggml dims: [inputs, outputs]; data[out * inputs + in]. */
  inputs: number;
  outputs: number;
  data: Float32Array;
}

function matrix(inputs: number, outputs: number): Matrix {
  return { inputs, outputs, data: new Float32Array(inputs * outputs) };
}

function set(m: Matrix, out: number, input: number, value: number): void {
  m.data[out * m.inputs + input] = value;
}

function q8(name: string, m: Matrix): GgufTensor {
  return { name, dims: [m.inputs, m.outputs], data: m.data, type: "q8_0" };
}

function f32(name: string, data: Float32Array): GgufTensor {
  return { name, dims: [data.length], data };
}

/** The shared embedding table: constant, sink flag, bigram coordinates, code, and the pad that makes every row EMBED_NORM long. */
function embedding(pair: CompiledPair): Float32Array {
  const { vocab, rank, codeDims: k } = pair.spec;
  const L = pair.layout;
  const W = L.width;
  const e = new Float32Array(W * vocab);
  const code = Math.fround(1 / Math.sqrt(k));
  for (let t = 0; t < vocab; t++) {
    const o = t * W;
    e[o + L.control] = CONTROL_VALUE;
    if (t === BOS) e[o + L.control + 1] = CONTROL_VALUE;
    for (let j = 0; j < rank; j++) e[o + L.bigram + j] = BIGRAM_SCALE * pair.embedBigram[t * rank + j];
    if (t !== BOS) for (let i = 0; i < k; i++) e[o + L.current + i] = pair.codes.signs[t * k + i] * code;
    let rest = 0;
    for (let d = 0; d < W; d++) rest += e[o + d] * e[o + d];
    e[o + L.pad] = Math.sqrt(EMBED_NORM * EMBED_NORM - rest);
  }
  return e;
}

/** The shared output layer: bias, bigram, correction codes and (negative) repeat codes, each divided by the embedding's RMS scale. */
function output(pair: CompiledPair, scale: number): Matrix {
  const { vocab, rank, codeDims: k, correctionDims: kT } = pair.spec;
  const L = pair.layout;
  const m = matrix(L.width, vocab);
  const gain = repeatGain(pair);
  for (let v = 0; v < vocab; v++) {
    set(m, v, L.control, pair.bias[v] / (CONTROL_VALUE * scale));
    if (!pair.textToken[v]) continue;
    for (let j = 0; j < rank; j++) set(m, v, L.bigram + j, pair.outBigram[v * rank + j] / (BIGRAM_SCALE * scale));
    for (let i = 0; i < kT; i++) set(m, v, L.correction + i, pair.correctionCodes.signs[v * kT + i] / Math.sqrt(kT) / scale);
    for (let i = 0; i < k; i++) set(m, v, L.repeat + i, (-gain * pair.codes.signs[v * k + i]) / Math.sqrt(k) / scale);
  }
  return m;
}

interface Block {
  q: Matrix;
  k: Matrix;
  v: Matrix;
  o: Matrix;
  qBias?: Float32Array;
  kBias?: Float32Array;
  gate: Matrix;
  up: Matrix;
  down: Matrix;
  gateBias: Float32Array;
  upBias: Float32Array;
}

function emptyBlock(width: number, ff: number): Block {
  return {
    q: matrix(width, width),
    k: matrix(width, width),
    v: matrix(width, width),
    o: matrix(width, width),
    gate: matrix(width, ff),
    up: matrix(width, ff),
    down: matrix(ff, width),
    gateBias: new Float32Array(ff),
    upBias: new Float32Array(ff),
  };
}

/** Writes table `table` into feed-forward unit `unit`: its gate matches the code(s), its output is the correction. */
function putTable(pair: CompiledPair, block: Block, unit: number, table: CompiledPair["tokenTables"][number], scale: number): void {
  const L = pair.layout;
  const k = pair.spec.codeDims;
  const code = 1 / Math.sqrt(k);
  for (let i = 0; i < k; i++) set(block.gate, unit, L.current + i, (GATE_GAIN * pair.codes.signs[table.token * k + i] * code) / scale);
  if (table.previous !== undefined) {
    for (let i = 0; i < k; i++) set(block.gate, unit, L.previous + i, (GATE_GAIN * pair.codes.signs[table.previous * k + i] * code) / scale);
  }
  // One matching code scores GATE_GAIN: fire at GATE_GAIN/2 when every code matches, stay far below 0 otherwise.
  block.gateBias[unit] = (table.previous !== undefined ? -1.5 : -0.5) * GATE_GAIN;
  block.upBias[unit] = 1;
  for (let i = 0; i < pair.spec.correctionDims; i++) set(block.down, L.correction + i, unit, table.correction[i] / (GATE_GAIN / 2));
}

/** Block 0 of the target: head 0 copies the previous token's code, head 1 the one before. */
function positionalHeads(pair: CompiledPair, block: Block, scale: number): void {
  const L = pair.layout;
  const W = L.width;
  const hd = L.headDim;
  const kq = 1 / Math.sqrt(hd);
  const beta = Math.sqrt(POSITION_GAP / (kq * ROTATED_PAIRS * (1 - positionalRivalry(pair.spec.context))));
  block.qBias = new Float32Array(W);
  block.kBias = new Float32Array(W);
  for (let h = 0; h < HEADS; h++) {
    const offset = h + 1;
    for (let i = 0; i < ROTATED_PAIRS; i++) {
      // q = (beta, 0); k = q rotated by offset*theta: q.k peaks where the key is `offset` positions back.
      const { sin, cos } = detSinCos(offset * ROPE_FREQUENCIES[i]);
      block.qBias[h * hd + 2 * i] = beta;
      block.kBias[h * hd + 2 * i] = beta * cos;
      block.kBias[h * hd + 2 * i + 1] = beta * sin;
    }
    const target = h === 0 ? L.previous : L.previous2;
    for (let i = 0; i < pair.spec.codeDims; i++) {
      set(block.v, h * hd + i, L.current + i, 1 / scale);
      set(block.o, target + i, h * hd + i, 1);
    }
  }
}

/** Block 1 of the target, head 0: attends to positions that followed the same two tokens, against a sink at <s>. */
function repeatHead(pair: CompiledPair, block: Block, scale: number): void {
  const L = pair.layout;
  const W = L.width;
  const k = pair.spec.codeDims;
  const kq = 1 / Math.sqrt(L.headDim);
  const beta = Math.sqrt(REPEAT_MATCH / kq);
  const sink = Math.sqrt((2 * REPEAT_MATCH - REPEAT_SINK_GAP) / kq);
  const still = 2 * ROTATED_PAIRS; // first dimension of the head that does not rotate
  block.qBias = new Float32Array(W);
  block.kBias = new Float32Array(W);
  for (let i = 0; i < k; i++) {
    // query: (current, previous) codes; key: (previous, previous2) codes of the attended position.
    set(block.q, still + i, L.current + i, beta / scale);
    set(block.q, still + k + i, L.previous + i, beta / scale);
    set(block.k, still + i, L.previous + i, beta / scale);
    set(block.k, still + k + i, L.previous2 + i, beta / scale);
    set(block.v, i, L.current + i, 1 / scale);
    set(block.o, L.repeat + i, i, 1);
  }
  block.qBias[still + 2 * k] = sink;
  set(block.k, still + 2 * k, L.control + 1, sink / (CONTROL_VALUE * scale));
}

function blockTensors(b: number, block: Block, width: number): GgufTensor[] {
  const p = `blk.${b}`;
  const ones = new Float32Array(width).fill(1);
  return [
    f32(`${p}.attn_norm.weight`, ones),
    q8(`${p}.attn_q.weight`, block.q),
    ...(block.qBias ? [f32(`${p}.attn_q.bias`, block.qBias)] : []),
    q8(`${p}.attn_k.weight`, block.k),
    ...(block.kBias ? [f32(`${p}.attn_k.bias`, block.kBias)] : []),
    q8(`${p}.attn_v.weight`, block.v),
    q8(`${p}.attn_output.weight`, block.o),
    f32(`${p}.ffn_norm.weight`, ones),
    q8(`${p}.ffn_gate.weight`, block.gate),
    f32(`${p}.ffn_gate.bias`, block.gateBias),
    q8(`${p}.ffn_up.weight`, block.up),
    f32(`${p}.ffn_up.bias`, block.upBias),
    q8(`${p}.ffn_down.weight`, block.down),
  ];
}

export interface ModelFile {
  metadata: Record<string, GgufValue>;
  tensors: GgufTensor[];
}

function metadata(pair: CompiledPair, role: "target" | "drafter", layers: number, ff: number): Record<string, GgufValue> {
  const L = pair.layout;
  const s = pair.spec;
  const v = pair.vocabulary;
  return {
    "general.architecture": { type: "string", value: "llama" },
    "general.name": { type: "string", value: `dsi-brown-${role}` },
    "general.description": { type: "string", value: `dsi corpus pair (${role}): weights compiled from the Brown Corpus; see docs/corpus-pair.md` },
    "llama.context_length": { type: "u32", value: s.context },
    "llama.embedding_length": { type: "u32", value: L.width },
    "llama.block_count": { type: "u32", value: layers },
    "llama.feed_forward_length": { type: "u32", value: ff },
    "llama.attention.head_count": { type: "u32", value: HEADS },
    "llama.attention.head_count_kv": { type: "u32", value: HEADS },
    "llama.rope.dimension_count": { type: "u32", value: L.headDim },
    // Base 1: every pair's frequency is 1/rope_freqs[i] exactly, with no pow() in between.
    "llama.rope.freq_base": { type: "f32", value: 1 },
    "llama.attention.layer_norm_rms_epsilon": { type: "f32", value: RMS_EPS },
    "llama.vocab_size": { type: "u32", value: s.vocab },
    "tokenizer.ggml.model": { type: "string", value: "llama" },
    "tokenizer.ggml.tokens": { type: "string[]", value: v.tokens },
    "tokenizer.ggml.scores": { type: "f32[]", value: v.scores },
    "tokenizer.ggml.token_type": { type: "i32[]", value: v.types },
    "tokenizer.ggml.unknown_token_id": { type: "u32", value: 0 },
    "tokenizer.ggml.bos_token_id": { type: "u32", value: BOS },
    "tokenizer.ggml.eos_token_id": { type: "u32", value: EOS },
    "tokenizer.ggml.add_bos_token": { type: "bool", value: true },
    "tokenizer.ggml.add_eos_token": { type: "bool", value: false },
  };
}

function roundUp32(n: number): number {
  return Math.max(32, Math.ceil(n / 32) * 32);
}

/** The drafter: one block whose attention adds nothing and whose feed-forward layer holds the token tables. */
export function drafterFile(pair: CompiledPair): ModelFile {
  const W = pair.layout.width;
  const scale = rmsScale(EMBED_NORM * EMBED_NORM, W);
  const ff = roundUp32(pair.tokenTables.length);
  const block = emptyBlock(W, ff);
  pair.tokenTables.forEach((table, unit) => putTable(pair, block, unit, table, scale));
  return {
    metadata: metadata(pair, "drafter", 1, ff),
    tensors: [
      { name: "token_embd.weight", dims: [W, pair.spec.vocab], data: embedding(pair) },
      ...blockTensors(0, block, W),
      f32("output_norm.weight", new Float32Array(W).fill(1)),
      q8("output.weight", output(pair, scale)),
    ],
  };
}

/** The target: positional heads in block 0, the repeat head in block 1, token and pair tables from block 1 on. */
export function targetFile(pair: CompiledPair): ModelFile {
  const W = pair.layout.width;
  const scale = rmsScale(EMBED_NORM * EMBED_NORM, W);
  const ff = pair.spec.blockTables;
  const freqs = new Float32Array(pair.layout.headDim / 2).fill(STILL);
  ROPE_FREQUENCIES.forEach((theta, i) => (freqs[i] = 1 / theta));
  const tensors: GgufTensor[] = [{ name: "token_embd.weight", dims: [W, pair.spec.vocab], data: embedding(pair) }, f32("rope_freqs.weight", freqs)];
  const tables = [...pair.tokenTables, ...pair.pairTables];
  for (let b = 0; b < pair.spec.layers; b++) {
    const block = emptyBlock(W, ff);
    if (b === 0) positionalHeads(pair, block, scale);
    if (b === 1) repeatHead(pair, block, scale);
    for (let unit = 0; unit < ff; unit++) {
      const table = b >= TABLE_BLOCK ? tables[(b - TABLE_BLOCK) * ff + unit] : undefined;
      if (table) putTable(pair, block, unit, table, scale);
    }
    tensors.push(...blockTensors(b, block, W));
  }
  tensors.push(f32("output_norm.weight", new Float32Array(W).fill(1)), q8("output.weight", output(pair, scale)));
  return { metadata: metadata(pair, "target", pair.spec.layers, ff), tensors };
}
