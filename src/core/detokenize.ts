/**
 * Incremental detokenization: the text of a growing token sequence at constant decode work per
 * token, for tokenizers whose text is not the concatenation of per-token pieces (llama.cpp's:
 * SentencePiece drops the space of a call's first token, byte tokens are partial UTF-8).
 *
 * The standard technique (Hugging Face TGI, vLLM, node-llama-cpp's `lastTokens`): decode the
 * last settled group of tokens alone and followed by the new ones; the difference is the new
 * text. Both decodes start at the same token, so whatever the tokenizer does to a call's first
 * token cancels out. New text that ends in U+FFFD (an incomplete character) is held back until
 * a later token completes it.
 */

/**
 * Most tokens held back for an incomplete character. A UTF-8 character has at most 4 bytes, so
 * a replacement character still there after this many tokens is real (invalid bytes), and
 * holding on would make the window, and the cost per token, grow.
 */
export const MAX_PENDING_TOKENS = 8;

export class IncrementalDecoder {
  /** The last settled group (context for the next decode), then the pending tokens. */
  private window: number[] = [];
  /** Leading tokens of `window` that are settled. */
  private context = 0;
  /** `decode` of the settled group alone. */
  private contextText = "";
  /** Length of the text settled so far. */
  length = 0;
  /** Tokens pushed so far, and how many of them are settled (their text is in `length`). */
  pushed = 0;
  settled = 0;

  constructor(private readonly decode: (tokens: readonly number[]) => string) {}

  /**
   * Adds a token. Returns the text it settles, for it and every token still pending before it
   * (possibly ""), or undefined while that text ends in an incomplete character.
   */
  push(token: number): string | undefined {
    this.window.push(token);
    this.pushed++;
    const text = this.decode(this.window);
    if (text.endsWith("\uFFFD") && this.window.length - this.context < MAX_PENDING_TOKENS) return undefined;
    // A tokenizer that rewrote the context's text would need the whole output re-decoded;
    // llama.cpp's and the synthetic one never do, so the difference is cut by length.
    const chunk = text.slice(this.contextText.length);
    this.window = this.window.slice(this.context);
    this.context = this.window.length;
    this.contextText = this.decode(this.window);
    this.length += chunk.length;
    this.settled = this.pushed;
    return chunk;
  }
}
