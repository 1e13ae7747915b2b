/**
 * A SentencePiece-style vocabulary learned from text by byte-pair merges, and the tokenizer
 * llama.cpp runs on it (its "llama"/SPM tokenizer), reproduced here so that the statistics
 * the weights are built from are counted over exactly the tokens the model will see.
 *
 * Pieces: <unk> <s> </s>, the 256 byte tokens (any text encodes), the corpus' characters,
 * then merged pieces in the order they were learned. A word starts with "▁" (the space
 * marker); letter runs (with apostrophes) merge, other characters stay single, so a piece
 * never spans two words or a word and its punctuation.
 */

/** SentencePiece's word-start marker (U+2581). */
export const SPACE = "\u2581";
/** Token types as GGUF writes them. */
const TYPE = { normal: 1, unknown: 2, control: 3, byte: 6 } as const;
/** <unk> <s> </s> and 256 byte tokens come first. */
export const SPECIAL_TOKENS = 3 + 256;
export const BOS = 1;
export const EOS = 2;

export interface PieceVocabulary {
  tokens: string[];
  scores: number[];
  types: number[];
}

function isWordChar(code: number): boolean {
  return (code >= 97 && code <= 122) || (code >= 65 && code <= 90) || code === 39;
}

/** Counts of the space-separated chunks of texts. */
export function chunkCounts(texts: Iterable<string>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const text of texts) for (const chunk of text.split(" ")) if (chunk) counts.set(chunk, (counts.get(chunk) ?? 0) + 1);
  return counts;
}

/** The segments merges work within: "▁" plus the chunk's first run, then each later run or character. */
export function segments(chunk: string): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = 1; i <= chunk.length; i++) {
    if (i === chunk.length || !(isWordChar(chunk.charCodeAt(i)) && isWordChar(chunk.charCodeAt(i - 1)))) {
      out.push((start === 0 ? SPACE : "") + chunk.slice(start, i));
      start = i;
    }
  }
  return out;
}

/** A binary max-heap of (count, key) pairs, larger count first, then smaller key. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];
  get size(): number {
    return this.counts.length;
  }
  private before(i: number, j: number): boolean {
    return this.counts[i] > this.counts[j] || (this.counts[i] === this.counts[j] && this.keys[i] < this.keys[j]);
  }
  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j], this.counts[i]];
    [this.keys[i], this.keys[j]] = [this.keys[j], this.keys[i]];
  }
  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.counts.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }
  pop(): { count: number; key: number } {
    const top = { count: this.counts[0], key: this.keys[0] };
    const count = this.counts.pop()!;
    const key = this.keys.pop()!;
    if (this.counts.length > 0) {
      this.counts[0] = count;
      this.keys[0] = key;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.counts.length && this.before(l, m)) m = l;
        if (r < this.counts.length && this.before(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }
}

/**
 * Learns pieces by byte-pair merges over the chunks' segments: the characters, then the most
 * frequent adjacent pair merged, again and again, until `maxPieces` pieces (or no pair occurs
 * twice). Ties go to the pair of smaller piece ids, so the result depends on the counts only.
 */
export function learnPieces(chunks: ReadonlyMap<string, number>, maxPieces: number): string[] {
  const segmentCounts = new Map<string, number>();
  for (const [chunk, n] of chunks) for (const s of segments(chunk)) segmentCounts.set(s, (segmentCounts.get(s) ?? 0) + n);
  const chars = new Set<string>();
  for (const s of segmentCounts.keys()) for (const c of s) chars.add(c);
  const pieces = [...chars].sort();
  const id = new Map(pieces.map((p, i) => [p, i]));
  const pieceId = new Map(id);
  const words: number[][] = [];
  const freq: number[] = [];
  for (const [s, n] of segmentCounts) {
    if (s.length < 2) continue;
    words.push([...s].map((c) => id.get(c)!));
    freq.push(n);
  }
  const K = 1 << 16; // pair key a*K+b; piece ids stay below 2^16
  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, number[]>();
  const bump = (key: number, n: number, word: number): void => {
    pairCount.set(key, (pairCount.get(key) ?? 0) + n);
    if (word < 0) return;
    let list = pairWords.get(key);
    if (!list) pairWords.set(key, (list = []));
    if (list[list.length - 1] !== word) list.push(word);
  };
  words.forEach((syms, w) => {
    for (let i = 0; i + 1 < syms.length; i++) bump(syms[i] * K + syms[i + 1], freq[w], w);
  });
  const heap = new PairHeap();
  for (const [key, n] of pairCount) heap.push(n, key);
  const seen = new Uint8Array(words.length);
  while (pieces.length < maxPieces && heap.size > 0) {
    const { count, key } = heap.pop();
    if (pairCount.get(key) !== count) continue; // stale entry
    if (count < 2) break;
    const a = Math.floor(key / K);
    const b = key - a * K;
    // Two merges can make the same string ("a"+"bc", "ab"+"c"): one piece.
    const text = pieces[a] + pieces[b];
    let merged = pieceId.get(text);
    if (merged === undefined) {
      merged = pieces.length;
      pieces.push(text);
      pieceId.set(text, merged);
    }
    const touched = new Set<number>();
    const list = pairWords.get(key) ?? [];
    for (const w of list) {
      if (seen[w]) continue;
      seen[w] = 1;
      const syms = words[w];
      let has = false;
      for (let i = 0; i + 1 < syms.length; i++) if (syms[i] === a && syms[i + 1] === b) has = true;
      if (!has) continue;
      const f = freq[w];
      for (let i = 0; i + 1 < syms.length; i++) {
        const k = syms[i] * K + syms[i + 1];
        pairCount.set(k, pairCount.get(k)! - f);
        touched.add(k);
      }
      const out: number[] = [];
      for (let i = 0; i < syms.length; i++) {
        if (i + 1 < syms.length && syms[i] === a && syms[i + 1] === b) {
          out.push(merged);
          i++;
        } else out.push(syms[i]);
      }
      words[w] = out;
      for (let i = 0; i + 1 < out.length; i++) {
        const k = out[i] * K + out[i + 1];
        bump(k, f, out[i] === merged || out[i + 1] === merged ? w : -1);
        touched.add(k);
      }
    }
    for (const w of list) seen[w] = 0;
    pairWords.delete(key);
    pairCount.delete(key);
    for (const k of touched) {
      const n = pairCount.get(k)!;
      if (n > 0) heap.push(n, k);
    }
  }
  return pieces;
}

/** The GGUF vocabulary for learned pieces: specials, bytes, then pieces (merged ones score by merge order). */
export function pieceVocabulary(pieces: readonly string[]): PieceVocabulary {
  const tokens = ["<unk>", "<s>", "</s>"];
  const types: number[] = [TYPE.unknown, TYPE.control, TYPE.control];
  const scores = [0, 0, 0];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    types.push(TYPE.byte);
    scores.push(0);
  }
  let rank = 0;
  for (const p of pieces) {
    tokens.push(p);
    types.push(TYPE.normal);
    // llama.cpp merges the adjacent pair whose piece scores highest: earlier merges first.
    scores.push([...p].length > 1 ? -++rank : 0);
  }
  return { tokens, scores, types };
}

/**
 * llama.cpp's SPM tokenizer over a piece vocabulary: the text gets a leading space, spaces
 * become "▁", then the adjacent pair whose concatenation is the best-scoring piece is merged
 * (leftmost on ties) until none is left; characters without a piece become byte tokens.
 * Words are tokenized once and cached: no piece spans a "▁" boundary, so words are independent.
 */
export class SpmTokenizer {
  private readonly piece = new Map<string, { id: number; score: number }>();
  private readonly cache = new Map<string, readonly number[]>();

  constructor(readonly vocabulary: PieceVocabulary) {
    vocabulary.tokens.forEach((t, id) => {
      if (vocabulary.types[id] === TYPE.normal) this.piece.set(t, { id, score: vocabulary.scores[id] });
    });
  }

  /** Tokens of `text` as llama.cpp encodes it (no BOS). */
  encode(text: string): number[] {
    const out: number[] = [];
    // "▁" + text with spaces as "▁", cut before each "▁": one word per space-separated chunk.
    for (const chunk of text.split(" ")) for (const t of this.word(chunk)) out.push(t);
    return out;
  }

  /** Text of tokens (the leading space of the first word dropped, as llama.cpp detokenizes). */
  decode(tokens: readonly number[]): string {
    const bytes: number[] = [];
    for (const t of tokens) {
      const type = this.vocabulary.types[t];
      if (type === TYPE.byte) bytes.push(t - 3);
      else if (type === TYPE.normal) for (const b of Buffer.from(this.vocabulary.tokens[t].replaceAll(SPACE, " "), "utf8")) bytes.push(b);
    }
    const text = Buffer.from(bytes).toString("utf8");
    return text.startsWith(" ") ? text.slice(1) : text;
  }

  /** Tokens of "▁" + chunk. */
  private word(chunk: string): readonly number[] {
    const cached = this.cache.get(chunk);
    if (cached) return cached;
    const sym = [SPACE, ...chunk];
    // score[i]: the piece sym[i] + sym[i+1] would make (-Infinity: none); after a merge only
    // the two pairs around it change.
    const score: number[] = [];
    const pairScore = (i: number): number => this.piece.get(sym[i] + sym[i + 1])?.score ?? -Infinity;
    for (let i = 0; i + 1 < sym.length; i++) score.push(pairScore(i));
    for (;;) {
      let best = -1;
      for (let i = 0; i < score.length; i++) if (score[i] > -Infinity && (best < 0 || score[i] > score[best])) best = i;
      if (best < 0) break;
      sym.splice(best, 2, sym[best] + sym[best + 1]);
      score.splice(best, 1);
      if (best < score.length) score[best] = pairScore(best);
      if (best > 0) score[best - 1] = pairScore(best - 1);
    }
    const ids: number[] = [];
    for (const s of sym) {
      const p = this.piece.get(s);
      if (p !== undefined) ids.push(p.id);
      else for (const b of Buffer.from(s, "utf8")) ids.push(3 + b);
    }
    this.cache.set(chunk, ids);
    return ids;
  }
}
