/**
 * Prompts of any size, without holding up other requests: a prompt that cannot fit the
 * context is refused by its size before it is tokenized, and a long admissible prompt is
 * tokenized in slices where the tokenizer allows it.
 */
import { setImmediate as yieldToLoop } from "node:timers/promises";
import type { Tokenizer } from "../models/backend.js";
import { SyntheticTokenizer } from "../models/synthetic.js";
import { AbortError } from "../runtime/abort.js";

/**
 * The most UTF-8 bytes of text one token of `tokenizer` can stand for: the longest token
 * text of the vocabulary, plus one for the leading space a SentencePiece tokenizer drops when
 * decoding a token alone. Hence a text of B bytes has at least ceil(B / tokenBytes) tokens
 * (true of byte-level BPE, SentencePiece and character vocabularies, whose tokens cover their
 * own text; not of tokenizers that normalise text away, such as collapsing whitespace).
 * Decodes every token once: ~3 µs each with llama.cpp.
 */
export function maxTokenBytes(tokenizer: Tokenizer, vocabSize: number): number {
  let most = 0;
  for (let id = 0; id < vocabSize; id++) {
    let text: string;
    try {
      text = tokenizer.piece?.(id) ?? tokenizer.decode([id]);
    } catch {
      continue; // a token with no text of its own (a control token) is never made from text
    }
    most = Math.max(most, Buffer.byteLength(text));
  }
  return most + 1;
}

/**
 * Whether `tokenizer` encodes the separators of the default chat template (`renderChat`:
 * ": " and newlines). A synthetic vocabulary (letters, digits, space, ".") has neither, and
 * its tokenizer throws on a character it lacks; a model's tokenizer encodes any text.
 */
export function encodesChatSeparators(tokenizer: Tokenizer): boolean {
  try {
    tokenizer.encode("user: a\nassistant:");
    return true;
  } catch {
    return false;
  }
}

/** Characters tokenized between two turns of the event loop (~10 ms of synthetic tokenizing). */
const SLICE_CHARS = 1 << 16;

/**
 * `tokenizer.encode(text)`, letting other requests run meanwhile where the tokenizer's tokens
 * are one character each (synthetic): a slice at a time, the event loop turning between
 * slices, never splitting a surrogate pair. Other tokenizers merge across any boundary, so
 * they encode in one call; their prompts are bounded first by the context (`maxTokenBytes`).
 * Rejects with an AbortError when `signal` aborts between slices.
 */
export async function encodeText(tokenizer: Tokenizer, text: string, signal?: AbortSignal): Promise<number[]> {
  if (!(tokenizer instanceof SyntheticTokenizer) || text.length <= SLICE_CHARS) return tokenizer.encode(text);
  const slices: number[][] = [];
  for (let at = 0; at < text.length; ) {
    let end = Math.min(text.length, at + SLICE_CHARS);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end++;
    slices.push(tokenizer.encode(text.slice(at, end)));
    at = end;
    await yieldToLoop();
    if (signal?.aborted) throw new AbortError();
  }
  return ([] as number[]).concat(...slices);
}
