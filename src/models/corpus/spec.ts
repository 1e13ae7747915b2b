/**
 * What a corpus pair is built from (its knobs, with the defaults of the demo's pair) and the
 * layout of its residual stream: which dimensions hold what. docs/corpus-pair.md explains the
 * construction; this file is its table of contents.
 */

export interface CorpusPairSpec {
  kind: "corpus";
  /** Vocabulary size: <unk> <s> </s>, 256 byte tokens, the corpus' characters, learned pieces. */
  vocab: number;
  /** Target blocks; each block's feed-forward layer holds `blockTables` tables. */
  layers: number;
  /**
   * How much of the trigram tables the target adds to the bigram it shares with the drafter
   * (0: the target is the drafter plus its repeat penalty; 1: the full trigram). The knob for
   * acceptance: lower means the drafter guesses the target's token more often.
   */
  trigramWeight: number;
  /** Context length written into the files. */
  context: number;
  /** Rank of the drafter's bigram factorisation (embedding and output dimensions it uses). */
  rank: number;
  /** Dimensions of a token's identity code. */
  codeDims: number;
  /** Dimensions the tables write their corrections into. */
  correctionDims: number;
  /** Most frequent tokens whose top continuations are tabulated (drafter and target). */
  tokenTables: number;
  /** Tables per target block (its feed-forward width). */
  blockTables: number;
  /** Continuations set exactly by each table. */
  tableWidth: number;
  /**
   * Nats taken from a token that followed the same two tokens before (the target's repeat
   * penalty; split when several did). Negative: a copy bonus, the repeat head becomes an
   * induction head and the target continues its context the way it went before
   * (`COPYING_CORPUS_PAIR`).
   */
  repeatPenalty: number;
  /** Documents of the corpus used (500: all; fewer for quick test pairs), evenly spaced. */
  documents: number;
  /** Seed of the token codes and of the factorisation's random start. */
  seed: number;
}

/** The pair `dsi demo` and `dsi serve` use unless given model files. */
export const DEFAULT_CORPUS_PAIR: CorpusPairSpec = {
  kind: "corpus",
  vocab: 4096,
  layers: 5,
  trigramWeight: 0.4,
  context: 1024,
  rank: 128,
  codeDims: 96,
  correctionDims: 128,
  tokenTables: 2048,
  blockTables: 4096,
  tableWidth: 8,
  repeatPenalty: 3,
  documents: 500,
  seed: 1,
};

/**
 * The default pair with its repeat penalty turned into a 9-nat copy bonus: a target that copies
 * spans of its prompt and of its own output, as language models do with passages to repeat,
 * lists to continue, code to edit (prompt lookup's workload; `bench/ngram.ts`). At 6 nats the
 * bigram still overrules it after punctuation; at 12 every repeated pair is continued as before.
 */
export const COPYING_CORPUS_PAIR: CorpusPairSpec = { ...DEFAULT_CORPUS_PAIR, repeatPenalty: -9 };

/** Every twentieth document is held out of the statistics, for perplexity. */
export const HELD_OUT_EVERY = 20;
export const CORPUS_DOCUMENTS = 500;
/** Attention heads per block: two positional heads in block 0, the repeat head in block 1. */
export const HEADS = 2;
/** RoPE pairs per head that rotate (the rest stay still: content matching ignores position). */
export const ROTATED_PAIRS = 16;
/**
 * Their frequencies (radians per position), picked so that a score summed over them peaks at
 * one offset and stays at most ~0.9 of the peak at every other offset up to 8192 positions.
 */
export const ROPE_FREQUENCIES = [2.326, 2.294, 2.79, 2.969, 2.708, 2.893, 2.945, 0.643, 2.43, 1.11, 2.848, 2.78, 2.175, 2.903, 1.767, 2.139];
export const MAX_CONTEXT = 8192;

/** Offsets of the residual stream's parts (each a multiple of 32: Q8_0 blocks never mix parts). */
export interface StreamLayout {
  width: number;
  /** Constant (dim 0: every token) and sink flag (dim 1: <s> only). */
  control: number;
  /** The norm pad: makes every embedding row the same length. */
  pad: number;
  /** The drafter's bigram coordinates (`rank` dims). */
  bigram: number;
  /** The current token's code. */
  current: number;
  /** The previous token's code (written by block 0's first head). */
  previous: number;
  /** The token before that (block 0's second head). */
  previous2: number;
  /** Corrections written by the tables (`correctionDims`). */
  correction: number;
  /** Codes of tokens that followed the current pair before (the repeat head). */
  repeat: number;
  headDim: number;
}

export function streamLayout(s: CorpusPairSpec): StreamLayout {
  const control = 0;
  const pad = 32;
  const bigram = 64;
  const current = bigram + s.rank;
  const previous = current + s.codeDims;
  const previous2 = previous + s.codeDims;
  const repeat = previous2 + s.codeDims;
  const correction = repeat + s.codeDims;
  const width = correction + s.correctionDims;
  return { width, control, pad, bigram, current, previous, previous2, correction, repeat, headDim: width / HEADS };
}

/** Checks a spec; a RangeError names the knob and the allowed values. */
export function checkCorpusSpec(s: CorpusPairSpec): void {
  const int = (name: string, v: number, min: number, max: number, multiple = 1): void => {
    if (!(Number.isInteger(v) && v >= min && v <= max && v % multiple === 0)) {
      throw new RangeError(`${name} must be ${multiple > 1 ? `a multiple of ${multiple} ` : "an integer "}in ${min}..${max}, got ${v}`);
    }
  };
  int("--vocab", s.vocab, 512, 16_384);
  int("--layers", s.layers, 2, 64);
  int("--context", s.context, 64, MAX_CONTEXT);
  if (!(s.trigramWeight >= 0 && s.trigramWeight <= 1)) throw new RangeError(`--trigram-weight must be in [0, 1], got ${s.trigramWeight}`);
  int("rank", s.rank, 32, 1024, 32);
  int("codeDims", s.codeDims, 64, 256, 32);
  int("correctionDims", s.correctionDims, 32, 512, 32);
  int("tokenTables", s.tokenTables, 0, s.vocab);
  int("blockTables", s.blockTables, 32, 65_536, 32);
  if (s.tokenTables > s.blockTables) throw new RangeError(`tokenTables (${s.tokenTables}) must fit in one block's blockTables (${s.blockTables})`);
  int("tableWidth", s.tableWidth, 1, 32);
  if (!(s.repeatPenalty >= -20 && s.repeatPenalty <= 20)) throw new RangeError(`--repeat-penalty must be in [-20, 20], got ${s.repeatPenalty}`);
  int("documents", s.documents, 2 * HELD_OUT_EVERY, CORPUS_DOCUMENTS);
  int("seed", s.seed, 0, 2 ** 32 - 1);
  const layout = streamLayout(s);
  // The repeat head matches two codes and a sink flag in its still dimensions.
  if (layout.headDim < 2 * ROTATED_PAIRS + 2 * s.codeDims + 1 || layout.headDim % 2 !== 0) {
    throw new RangeError(`the head (${layout.headDim} dims) cannot hold ${ROTATED_PAIRS} rotating pairs and two ${s.codeDims}-dim codes; raise rank or correctionDims`);
  }
}

/**
 * Constants of the construction's arithmetic (docs/corpus-pair.md says why each is what it is).
 * The embedding rows all have length EMBED_NORM, large beside everything the blocks add, so
 * that RMS normalisation scales every position nearly alike.
 */
export const EMBED_NORM = 256;
/** Value of the constant dimension (every token) and of the sink flag (<s>). */
export const CONTROL_VALUE = 16;
/** Scale of the bigram coordinates in the embedding. */
export const BIGRAM_SCALE = 16;
export const RMS_EPS = 1e-5;
/** Gain of a table's gate: a match gives GATE_GAIN/2, anything else at most -GATE_GAIN/20 (SiLU ~ 0). */
export const GATE_GAIN = 400;
/** Nats between a positional head's score at its offset and at any other offset. */
export const POSITION_GAP = 24;
/** Score of the repeat head per matching code (two codes match: twice this; one code and noise: at most 1.45 times). */
export const REPEAT_MATCH = 50;
/**
 * The sink's score is this far below a full match: a match takes all the weight (1 - 6e-6),
 * so rounding in the scores cannot change the penalty; a half match stays 15.5 nats below the sink.
 */
export const REPEAT_SINK_GAP = 12;
