/** Incremental detokenization: the text of committed tokens as they come (CLI and server). */
import type { Tokenizer } from "./backend.js";

/**
 * Turns committed tokens into text as they come. Where the tokenizer has per-token pieces the
 * text is their concatenation; otherwise the whole output is decoded again and the new part
 * printed, held back while it ends in an incomplete character (U+FFFD) or rewrites what was
 * printed (bounded by the model's context).
 */
export class TextStreamer {
  private readonly tokens: number[] = [];
  private printed = "";
  constructor(private readonly tokenizer: Tokenizer) {}
  push(token: number): string {
    this.tokens.push(token);
    if (this.tokenizer.piece) return this.tokenizer.piece(token);
    const text = this.tokenizer.decode(this.tokens);
    if (text.endsWith("\uFFFD") || !text.startsWith(this.printed)) return "";
    const chunk = text.slice(this.printed.length);
    this.printed = text;
    return chunk;
  }
  /** What is left once the completion's final text is known. */
  rest(final: string): string {
    if (this.tokenizer.piece) return "";
    return final.startsWith(this.printed) ? final.slice(this.printed.length) : "";
  }
}
