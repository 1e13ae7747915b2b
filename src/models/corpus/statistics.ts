/**
 * From the corpus to counts: the documents split into training and held-out text, the
 * vocabulary learned from the training text, every document tokenized as llama.cpp will
 * tokenize it, and the smoothed bigram and trigram statistics of the training streams.
 */
import { readBrown, type BrownDocument } from "./brown.js";
import { bigramModel, trigramContexts, type BigramModel, type TrigramContexts } from "./ngrams.js";
import { HELD_OUT_EVERY, type CorpusPairSpec } from "./spec.js";
import { BOS, chunkCounts, learnPieces, pieceVocabulary, SPECIAL_TOKENS, SpmTokenizer } from "./vocabulary.js";

export interface CorpusStatistics {
  tokenizer: SpmTokenizer;
  /** Documents the statistics come from and those held out, each as <s> + its tokens. */
  train: number[][];
  heldOut: number[][];
  heldOutDocuments: BrownDocument[];
  bigram: BigramModel;
  trigram: TrigramContexts;
}

/** Documents used by a spec: every HELD_OUT_EVERY-th held out, the rest for training, `documents` of all evenly spaced. */
export function splitDocuments(all: readonly BrownDocument[], documents: number): { train: BrownDocument[]; heldOut: BrownDocument[] } {
  const chosen = documents >= all.length ? [...all] : Array.from({ length: documents }, (_, i) => all[Math.floor((i * all.length) / documents)]);
  return {
    train: chosen.filter((_, i) => i % HELD_OUT_EVERY !== HELD_OUT_EVERY - 1),
    heldOut: chosen.filter((_, i) => i % HELD_OUT_EVERY === HELD_OUT_EVERY - 1),
  };
}

export function corpusStatistics(spec: CorpusPairSpec, documents: readonly BrownDocument[] = readBrown()): CorpusStatistics {
  const { train, heldOut } = splitDocuments(documents, spec.documents);
  const pieces = learnPieces(chunkCounts(train.map((d) => d.text)), spec.vocab - SPECIAL_TOKENS);
  const vocabulary = pieceVocabulary(pieces);
  if (vocabulary.tokens.length !== spec.vocab) {
    throw new RangeError(`--vocab ${spec.vocab}: the corpus gives only ${vocabulary.tokens.length} tokens (pieces stop where no pair repeats); use a smaller --vocab`);
  }
  const tokenizer = new SpmTokenizer(vocabulary);
  const stream = (d: BrownDocument): number[] => [BOS, ...tokenizer.encode(d.text)];
  const trainStreams = train.map(stream);
  return {
    tokenizer,
    train: trainStreams,
    heldOut: heldOut.map(stream),
    heldOutDocuments: heldOut,
    bigram: bigramModel(trainStreams, spec.vocab),
    trigram: trigramContexts(trainStreams, spec.vocab),
  };
}
