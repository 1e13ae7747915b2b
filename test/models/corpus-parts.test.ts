/** The corpus pair's parts on their own: deterministic functions, codes, the corpus reader, the tokenizer. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { readBrown, untagSentence } from "../../src/models/corpus/brown.js";
import { boundedCodes, correlation } from "../../src/models/corpus/codes.js";
import { detExp, detLog, detSinCos } from "../../src/models/corpus/det-math.js";
import { chunkCounts, learnPieces, pieceVocabulary, SpmTokenizer } from "../../src/models/corpus/vocabulary.js";

test("detLog, detExp and detSinCos agree with Math's to a few ulps", () => {
  let worst = 0;
  for (let i = 1; i < 2000; i++) {
    const x = Math.pow(1.013, i - 1000);
    worst = Math.max(worst, Math.abs(detLog(x) - Math.log(x)) / Math.max(1, Math.abs(Math.log(x))));
    const y = (i - 1000) / 37;
    worst = Math.max(worst, Math.abs(detExp(y) / Math.exp(y) - 1));
    const a = (i - 1000) / 125;
    const { sin, cos } = detSinCos(a);
    worst = Math.max(worst, Math.abs(sin - Math.sin(a)), Math.abs(cos - Math.cos(a)));
  }
  assert.ok(worst < 1e-14, `worst relative difference ${worst}`);
  assert.equal(detLog(1), 0);
  assert.equal(detExp(0), 1);
  assert.equal(detLog(0), -Infinity);
  assert.ok(Number.isNaN(detLog(-1)));
  assert.throws(() => detSinCos(9), /\|x\| <= 8/);
});

test("codes keep their correlation bound, exactly, and are the same for the same seed", () => {
  const codes = boundedCodes(600, 64, 0.45, 3, 1);
  let worst = 0;
  for (let a = 0; a < 600; a++) {
    assert.equal(correlation(codes, a, a), 1);
    for (let b = a + 1; b < 600; b += 7) worst = Math.max(worst, Math.abs(correlation(codes, a, b)));
  }
  assert.ok(worst <= 0.45 && codes.maxCorrelation <= 0.45 && worst <= codes.maxCorrelation, `${worst} ${codes.maxCorrelation}`);
  assert.deepEqual(boundedCodes(600, 64, 0.45, 3, 1).signs, codes.signs);
  assert.notDeepEqual(boundedCodes(600, 64, 0.45, 4, 1).signs, codes.signs);
  assert.throws(() => boundedCodes(10, 40, 0.45, 1, 1), /multiple of 32/);
});

test("tagged Brown sentences become plain English text", () => {
  assert.equal(
    untagSentence("\t``/`` Only/rb a/at relative/jj handful/nn ''/'' ,/, the/at jury/nn said/vbd ,/, ``/`` (/( sic/rb )/) ''/'' ./."),
    '"Only a relative handful", the jury said, "(sic)".',
  );
  assert.equal(untagSentence("1/2/cd of/in it/pps"), "1/2 of it");
  const docs = readBrown();
  assert.equal(docs.length, 500);
  assert.equal(docs[0].name, "ca01");
  assert.ok(docs[0].text.startsWith("The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary election produced"));
  assert.ok(!/\/[a-z]/.test(docs[0].text), "tags left in the text");
});

test("learned pieces tokenize their text back, whole words where they were frequent, bytes for what is unknown", () => {
  const texts = ["the cat sat on the mat", "the cat ate the rat", "a cat and a rat sat"];
  const pieces = learnPieces(chunkCounts(texts), 40);
  const tokenizer = new SpmTokenizer(pieceVocabulary(pieces));
  const tokens = tokenizer.encode("the cat sat");
  assert.deepEqual(tokens.map((t) => tokenizer.vocabulary.tokens[t]), ["\u2581the", "\u2581cat", "\u2581sat"]);
  for (const s of ["the rat sat on a mat", "zebra café", "two  spaces"]) assert.equal(tokenizer.decode(tokenizer.encode(s)), s);
  // Characters with no piece fall back to their UTF-8 bytes (<0xC3> <0xA9> for é).
  const cafe = tokenizer.encode("café").map((t) => tokenizer.vocabulary.tokens[t]);
  assert.deepEqual(cafe.slice(-2), ["<0xC3>", "<0xA9>"]);
  assert.deepEqual(learnPieces(chunkCounts(texts), 40), pieces);
});
