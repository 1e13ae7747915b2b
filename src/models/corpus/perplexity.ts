/**
 * Held-out perplexity of the corpus pair's drafter and target (their exact arithmetic, from
 * reference.ts): the first tokens of every held-out document, each predicted from the
 * document's text before it.
 */
import { detExp, detLog } from "./det-math.js";
import type { PairReference } from "./reference.js";

/** Tokens predicted per held-out document (the rest of each document is not read). */
export const PERPLEXITY_TOKENS_PER_DOCUMENT = 80;

export interface HeldOutPerplexity {
  drafter: number;
  target: number;
  /** Tokens predicted, from how many documents. */
  tokens: number;
  documents: number;
}

function logSumExp(row: Float64Array): number {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i] > max) max = row[i];
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += detExp(row[i] - max);
  return max + detLog(sum);
}

export function heldOutPerplexity(ref: PairReference, heldOut: readonly (readonly number[])[], perDocument = PERPLEXITY_TOKENS_PER_DOCUMENT): HeldOutPerplexity {
  const drafterRows = new Map<number, { row: Float64Array; z: number }>();
  let drafterLoss = 0;
  let targetLoss = 0;
  let tokens = 0;
  for (const doc of heldOut) {
    const trace = ref.targetTrace();
    trace.push(doc[0]);
    // Predict doc[p + 1] from doc[0..p], for p >= 1 (a context of at least one token of text).
    for (let p = 1; p + 1 < doc.length && p <= perDocument; p++) {
      trace.push(doc[p]);
      const next = doc[p + 1];
      const target = trace.logits();
      targetLoss -= target[next] - logSumExp(target);
      let d = drafterRows.get(doc[p]);
      if (!d) {
        const row = ref.drafterLogits(doc[p]);
        drafterRows.set(doc[p], (d = { row, z: logSumExp(row) }));
      }
      drafterLoss -= d.row[next] - d.z;
      tokens++;
    }
  }
  return { drafter: detExp(drafterLoss / tokens), target: detExp(targetLoss / tokens), tokens, documents: heldOut.length };
}
