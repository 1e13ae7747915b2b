/** Incremental detokenization: the text of committed tokens as they come (CLI and server). */
import { IncrementalDecoder } from "../core/detokenize.js";
import type { Tokenizer } from "./backend.js";

/**
 * Turns committed tokens into text as they come, at constant cost per token. Where the
 * tokenizer has per-token pieces the text is their concatenation; otherwise (llama) each new
 * token is decoded after the last few (core/detokenize), and held back while it ends in an
 * incomplete character (U+FFFD).
 */
export class TextStreamer {
  private readonly decoder: IncrementalDecoder | undefined;
  /** Everything returned so far, concatenated. */
  private printed = "";
  constructor(private readonly tokenizer: Tokenizer) {
    this.decoder = tokenizer.piece ? undefined : new IncrementalDecoder((t) => tokenizer.decode(t));
  }
  push(token: number): string {
    const chunk = this.decoder ? (this.decoder.push(token) ?? "") : this.tokenizer.piece!(token);
    this.printed += chunk;
    return chunk;
  }
  /**
   * What is left once the completion's final text is known: tokens held back for an
   * incomplete character, and text after the last token, e.g. the part of a token before a
   * stop string that began inside it (`Completion.text`).
   */
  rest(final: string): string {
    return final.startsWith(this.printed) ? final.slice(this.printed.length) : "";
  }
}
