/**
 * Stop strings matched on text, and the streamed text: cut at the stop string even inside a
 * token (OpenAI's semantics), at constant decode work per token, for tokenizers without
 * per-token pieces (llama's: multi-character pieces, partial UTF-8, a call's first space dropped).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { generate } from "../../src/algorithms/generate.js";
import { ALGORITHMS, type AlgorithmName, type Completion, type GenerateOptions, type ResolvedOptions } from "../../src/algorithms/options.js";
import { Committer } from "../../src/algorithms/output.js";
import { IncrementalDecoder, MAX_PENDING_TOKENS } from "../../src/core/detokenize.js";
import { Rng } from "../../src/core/random.js";
import { GREEDY } from "../../src/core/sampling.js";
import { syntheticRuntime } from "../../src/models/runtime.js";
import { SyntheticPair } from "../../src/models/synthetic.js";
import { TextStreamer } from "../../src/models/text-stream.js";
import type { Tokenizer } from "../../src/models/backend.js";
import type { TokenStream } from "../../src/runtime/token-stream.js";
import { profile, run } from "../helpers/run.js";

/** A tokenizer without `piece()` whose tokens are strings of any length; counts the tokens it decodes. */
class StringTokenizer implements Tokenizer {
  decoded = 0;
  constructor(readonly pieces: readonly string[]) {}
  encode(): number[] {
    throw new Error("not used");
  }
  decode(tokens: readonly number[]): string {
    this.decoded += tokens.length;
    return tokens.map((t) => this.pieces[t]).join("");
  }
}

/**
 * llama-shaped: tokens are byte strings (a character may span tokens), decoded as UTF-8 with
 * U+FFFD for incomplete or invalid bytes, and the first token of a call loses a leading space
 * (SentencePiece). Counts the tokens it decodes and the longest call.
 */
class ByteTokenizer implements Tokenizer {
  decoded = 0;
  longest = 0;
  constructor(readonly pieces: readonly Uint8Array[]) {}
  encode(): number[] {
    throw new Error("not used");
  }
  decode(tokens: readonly number[]): string {
    this.decoded += tokens.length;
    this.longest = Math.max(this.longest, tokens.length);
    const bytes = tokens.flatMap((t, i) => {
      const b = [...this.pieces[t]];
      return i === 0 && b[0] === 0x20 ? b.slice(1) : b;
    });
    return new TextDecoder().decode(new Uint8Array(bytes));
  }
}

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
/** Byte pieces of a text: cut into chunks of 1..3 bytes (splitting characters) by `rng`. */
function bytePieces(text: string, rng: Rng): Uint8Array[] {
  const bytes = utf8(text);
  const out: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; ) {
    const n = 1 + Math.floor(rng.next() * 3);
    out.push(bytes.slice(i, i + n));
    i += n;
  }
  return out;
}

/** The stop-string semantics before the fix, by whole-output decodes: tokens, stream schedule and text (cut at the stop string). */
function reference(tokens: readonly number[], decode: (t: readonly number[]) => string, stops: readonly string[], maxTokens: number) {
  const gen: number[] = [];
  const schedule: number[] = [];
  let emitted = 0;
  const within = (chars: number): number => {
    let m = gen.length;
    while (m > emitted && decode(gen.slice(0, m)).length > chars) m--;
    return m;
  };
  for (const t of tokens) {
    gen.push(t);
    const text = decode(gen);
    const at = Math.min(...stops.map((s) => text.indexOf(s)).filter((i) => i >= 0));
    if (at !== Infinity) {
      gen.length = emitted = within(at);
      schedule.push(emitted);
      return { tokens: gen, schedule, text: text.slice(0, at), finish: "stop" };
    }
    let held = 0;
    for (const s of stops) for (let len = Math.min(s.length - 1, text.length); len > held; len--) if (text.endsWith(s.slice(0, len))) held = len;
    emitted = Math.max(emitted, held === 0 ? gen.length : within(text.length - held));
    if (gen.length >= maxTokens) emitted = gen.length;
    schedule.push(emitted);
    if (gen.length >= maxTokens) break;
  }
  return { tokens: gen, schedule, text: decode(gen), finish: "length" };
}

/** A Committer fed `tokens` directly: its output, text and how many tokens it had streamed after each commit. */
function commitAll(tokens: readonly number[], decode: (t: readonly number[]) => string, stops: readonly string[], maxTokens: number) {
  const streamed: number[] = [];
  const stream = { push: (t: number) => streamed.push(t) } as unknown as TokenStream<number>;
  const c = new Committer({ maxTokens, stopText: { strings: stops, decode } } as unknown as ResolvedOptions, undefined, stream);
  const schedule: number[] = [];
  for (const t of tokens) {
    const done = c.commit(t);
    schedule.push(streamed.length);
    if (done) break;
  }
  return { tokens: c.output(), schedule, text: c.text(), finish: c.finishReason, streamed };
}

test("Committer: on multi-character pieces, the same tokens and stream schedule as whole-output decoding, the text cut at the stop string", () => {
  const rng = new Rng(11);
  const alphabet = "ab c";
  const word = (n: number): string => Array.from({ length: n }, () => alphabet[Math.floor(rng.next() * alphabet.length)]).join("");
  let midToken = 0;
  for (let trial = 0; trial < 300; trial++) {
    const pieces = Array.from({ length: 12 }, () => word(1 + Math.floor(rng.next() * 4)));
    pieces[0] = ""; // a token with no text (a special token)
    const tok = new StringTokenizer(pieces);
    const tokens = Array.from({ length: 60 }, () => Math.floor(rng.next() * pieces.length));
    const stops = Array.from({ length: 1 + Math.floor(rng.next() * 2) }, () => word(2 + Math.floor(rng.next() * 5)));
    const decode = (t: readonly number[]): string => tok.decode(t);
    const want = reference(tokens, decode, stops, 50);
    const got = commitAll(tokens, decode, stops, 50);
    const label = JSON.stringify({ pieces, tokens, stops });
    assert.equal(got.finish, want.finish, label);
    assert.deepEqual(got.tokens, want.tokens, label);
    assert.deepEqual(got.schedule, want.schedule, label);
    assert.deepEqual(got.streamed, got.tokens, label);
    assert.equal(got.text, want.text, label);
    assert.ok(got.text!.startsWith(decode(got.tokens)), label);
    if (got.text !== decode(got.tokens)) midToken++;
  }
  assert.ok(midToken > 20, `stop strings began inside a token in ${midToken} of 300 trials`);
});

test("a stop string that begins inside a token keeps the text before it in that token, in the final text and in the stream", async () => {
  // The case: "eytxVndae" + "evos x", where one token holds "evo": the text must be
  // "eytxVndaee" (whole tokens only gave "eytxVndae").
  const pieces = ["ey", "tx", "V", "nd", "ae", "evo", "s x", "q"];
  const tok = new StringTokenizer(pieces);
  const tokens = [0, 1, 2, 3, 4, 5, 6, 7];
  const got = commitAll(tokens, (t) => tok.decode(t), ["vos "], 32);
  assert.equal(got.finish, "stop");
  assert.deepEqual(got.tokens, [0, 1, 2, 3, 4], "whole tokens before the stop string");
  assert.equal(got.text, "eytxVndaee", "OpenAI's semantics: up to, not including, the stop string");
  const streamer = new TextStreamer(tok);
  const printed = got.streamed.map((t) => streamer.push(t)).join("");
  assert.equal(printed + streamer.rest(got.text!), "eytxVndaee");
});

/** A generation with a piece-less tokenizer over a synthetic pair: its completion and the text a TextStreamer printed. */
async function streamed(algo: AlgorithmName, pair: SyntheticPair, tok: Tokenizer, o: Partial<GenerateOptions>): Promise<{ c: Completion; printed: string }> {
  const rt = syntheticRuntime({ pair, profile: profile(10, 2), sp: 3 });
  const gen = generate(algo, rt, { prompt: [1, 2, 3], maxTokens: 80, sampling: GREEDY, verify: "greedy", seed: 0, ...(algo === "nonsi" ? {} : { lookahead: 3 }), ...o });
  const streamer = new TextStreamer(tok);
  let printed = "";
  const tokens: number[] = [];
  for await (const t of gen) {
    tokens.push(t);
    printed += streamer.push(t);
  }
  const c = await gen.result;
  assert.deepEqual(tokens, c.tokens, "streamed tokens are the output's");
  return { c, printed: printed + streamer.rest(c.text ?? tok.decode(c.tokens)) };
}

test("every algorithm: a stop string inside a token cuts the text there (final and streamed), multi-character and byte-level pieces", async () => {
  const V = 8;
  const pair = new SyntheticPair({ vocab: V, seed: 2 });
  const plain = await run("nonsi", pair, { maxTokens: 80 });
  const rng = new Rng(5);
  const tokenizers: [string, Tokenizer][] = [
    ["strings", new StringTokenizer(["lo", "rem ", "ips", "um, d", "ol", "or s", "it ", "amet"])],
    ["bytes", new ByteTokenizer(bytePieces("Dé€ar 𝄞Sir ", rng).slice(0, V))],
  ];
  for (const [name, tok] of tokenizers) {
    const full = tok.decode(plain.tokens);
    // A stop string that starts inside a token, at its first occurrence in the output.
    let stop: string | undefined;
    let at = -1;
    for (let k = 10; k < plain.tokens.length && stop === undefined; k++) {
      const start = tok.decode(plain.tokens.slice(0, k)).length;
      const next = tok.decode(plain.tokens.slice(0, k + 1)).length;
      for (let i = start + 1; i < next && stop === undefined; i++) {
        const s = full.slice(i, i + 3);
        if (s.length === 3 && !s.includes("\uFFFD") && full.indexOf(s) === i) [stop, at] = [s, i];
      }
    }
    assert.ok(stop !== undefined, `${name}: a stop string inside a token`);
    for (const algo of ALGORITHMS) {
      const { c, printed } = await streamed(algo, pair, tok, { stopText: { strings: [stop, "zzzz"], decode: (t) => tok.decode(t) } });
      const label: string = `${name} ${algo} stop ${JSON.stringify(stop)}`;
      assert.equal(c.finishReason, "stop", label);
      assert.equal(c.text, full.slice(0, at), label);
      assert.equal(printed, c.text, label);
      assert.ok(c.text!.startsWith(tok.decode(c.tokens)) && c.text!.length > tok.decode(c.tokens).length, label);
      assert.deepEqual(c.tokens, plain.tokens.slice(0, c.tokens.length), `${label}: lossless`);
    }
    // No stop string in the output: the text is the output's, streamed whole.
    const { c, printed } = await streamed("dsi", pair, tok, { stopText: { strings: ["zzzz"], decode: (t) => tok.decode(t) } });
    assert.equal(c.finishReason, "length");
    assert.equal(c.text, full);
    assert.equal(printed, full);
  }
});

test("Committer: a stop string over byte tokens, inside a multi-byte character's group, and before it", () => {
  // "x\xE2" + "\x82\xAC" is "x€": the second token completes the character.
  const pieces = [utf8("ab"), new Uint8Array([0x78, 0xe2]), new Uint8Array([0x82, 0xac]), utf8("cd"), utf8(" z")];
  const tok = new ByteTokenizer(pieces);
  const decode = (t: readonly number[]): string => tok.decode(t);
  const tokens = [0, 1, 2, 3, 4];
  assert.equal(decode(tokens), "abx€cd z");
  for (const [stop, text, kept] of [
    ["€c", "abx", [0]],
    ["x€", "ab", [0]],
    ["bx", "a", []],
    ["d z", "abx€c", [0, 1, 2]],
  ] as const) {
    const got = commitAll(tokens, decode, [stop], 10);
    assert.equal(got.finish, "stop", stop);
    assert.equal(got.text, text, stop);
    assert.deepEqual(got.tokens, kept, stop);
  }
});

test("TextStreamer: byte pieces and SentencePiece spaces stream exactly the whole text, never a partial character", () => {
  const rng = new Rng(3);
  for (let trial = 0; trial < 50; trial++) {
    const text = Array.from({ length: 40 }, () => ["a", " b", "é", " €", "𝄞", "  ", "z"][Math.floor(rng.next() * 7)]).join("");
    const tok = new ByteTokenizer(bytePieces(text, rng));
    const tokens = tok.pieces.map((_, i) => i);
    const streamer = new TextStreamer(tok);
    const chunks = tokens.map((t) => streamer.push(t));
    const full = tok.decode(tokens);
    assert.ok(!chunks.some((c) => c.includes("\uFFFD")), JSON.stringify(chunks));
    assert.equal(chunks.join("") + streamer.rest(full), full);
  }
});

test("TextStreamer: invalid bytes do not make it hold back forever", () => {
  const tok = new ByteTokenizer([new Uint8Array([0x80]), utf8("a")]);
  const tokens = [...Array<number>(40).fill(0), 1];
  const streamer = new TextStreamer(tok);
  const chunks = tokens.map((t) => streamer.push(t));
  assert.ok(tok.longest <= 2 * MAX_PENDING_TOKENS, `decoded ${tok.longest} tokens at once`);
  assert.equal(chunks.join(""), tok.decode(tokens));
  assert.ok(chunks.slice(0, 20).join("").length > 0, "the replacement characters were streamed before the end");
});

test("decode work per token is constant: the Committer with stop strings and the TextStreamer, 4000 tokens", () => {
  const n = 4000;
  const rng = new Rng(9);
  for (const tok of [new StringTokenizer(["ab", "c", " d", "é", "", "ff "]), new ByteTokenizer(bytePieces("ab c€ d𝄞 é", rng))]) {
    const tokens = Array.from({ length: n }, () => Math.floor(rng.next() * tok.pieces.length));
    const decode = (t: readonly number[]): string => tok.decode(t);
    tok.decoded = 0;
    // "zz" never appears; "ab c€ " often partly, so text is held back again and again.
    const got = commitAll(tokens, decode, ["zz", "ab c€ d𝄞 éX"], n);
    assert.equal(got.finish, "length");
    assert.ok(tok.decoded <= 8 * n + got.tokens.length, `the Committer decoded ${tok.decoded} tokens for ${n} (at most ${8 * n} for the stop strings and one final decode)`);
    assert.equal(got.text, decode(tokens));
    tok.decoded = 0;
    const streamer = new TextStreamer(tok);
    const text = tokens.map((t) => streamer.push(t)).join("");
    assert.ok(tok.decoded <= 8 * n, `the TextStreamer decoded ${tok.decoded} tokens for ${n}`);
    assert.equal(text + streamer.rest(decode(tokens)), decode(tokens));
  }
});

test("IncrementalDecoder: settles a token only once its text is complete", () => {
  const tok = new ByteTokenizer([utf8("a"), new Uint8Array([0xe2]), new Uint8Array([0x82]), new Uint8Array([0xac])]);
  const d = new IncrementalDecoder((t) => tok.decode(t));
  assert.equal(d.push(0), "a");
  assert.equal(d.push(1), undefined);
  assert.equal(d.push(2), undefined);
  assert.deepEqual([d.pushed, d.settled, d.length], [3, 1, 1]);
  assert.equal(d.push(3), "€");
  assert.deepEqual([d.pushed, d.settled, d.length], [4, 4, 2]);
});
