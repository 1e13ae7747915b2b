/**
 * Synthetic models: target and drafter defined by explicit next-token distributions over a
 * small vocabulary, so tests can compute exact probabilities.
 *
 * The target is an n-gram-style table: its logits at position p are a seeded function of
 * the previous `context` tokens and of p itself (the position keeps greedy generations
 * from cycling, so acceptance behaves like the paper's i.i.d. per-token model). With
 * `context: "all"` they are a function of a rolling hash of the whole prefix instead: any
 * token that differs anywhere before p changes the output at p, so a test can see an
 * evaluation on a wrong prefix (a short history sees only its last few tokens).
 * The drafter is the target's logits plus noise, then either pushed to agree with the
 * target's argmax (with probability `agreement`, drawn per context) or to a different
 * token. Greedy acceptance therefore equals `agreement` in expectation, and under sampling
 * q differs from p everywhere, which exercises rejection and residual sampling.
 * With `copy` c > 0 the target copies: at a position whose table key draws below c, the token
 * that continued the most recent earlier occurrence of its context's longest suffix
 * (synthetic-copy.ts) gets most of the mass, so outputs repeat spans of the prompt and of
 * themselves about as often as c says. The drafter starts from those logits too, so it
 * follows a copy where it agrees with the target.
 */
import { hash32, keyedUniform } from "../core/random.js";
import { argmax, distributionFromLogits, sampleIndex, type SamplingParams } from "../core/sampling.js";
import type { PositionOutput } from "../core/verify.js";
import { AbortError } from "../runtime/abort.js";
import { checkRequest, type EvalRequest, type ModelInstance, type TokenSequence } from "../core/instance.js";
import { COPY_MARGIN, copiedToken } from "./synthetic-copy.js";

export interface SyntheticSpec {
  /** Vocabulary size, 2..64. */
  vocab: number;
  /**
   * How many previous tokens the tables condition on, or "all": the whole prefix (through a
   * rolling hash), so the output at a position depends on every earlier token.
   */
  context: number | "all";
  /** Seed of the tables. */
  seed: number;
  /** Spread of the target's logits: higher is more peaked. */
  sharpness: number;
  /** Probability that the drafter's argmax equals the target's at a position, in [0, 1]. */
  agreement: number;
  /** Token that ends a sequence, if any. */
  eosToken?: number;
  /**
   * Agreement that changes with the context: positions come in stretches of `length`, and
   * stretch i has agreement `values[i mod values.length]` (replaces `agreement`). Models
   * acceptance that differs by context (code vs prose) for the adaptive lookahead's tests.
   */
  stretches?: { length: number; values: number[] };
  /**
   * Probability, in [0, 1], that the target copies at a position: its favourite token is then
   * the continuation of an earlier occurrence of its recent context (see `copiedToken`), where
   * there is one. 0: no copying (the tables alone).
   */
  copy: number;
}

export const SYNTHETIC_DEFAULTS: SyntheticSpec = { vocab: 32, context: 2, seed: 1, sharpness: 4, agreement: 0.7, copy: 0 };
export const SYNTHETIC_MAX_VOCAB = 64;

/** Printable alphabet of the synthetic tokenizer: token i is ALPHABET[i]. */
export const ALPHABET = "abcdefghijklmnopqrstuvwxyz .ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

export class SyntheticPair {
  readonly spec: SyntheticSpec;
  constructor(spec: Partial<SyntheticSpec> = {}) {
    // Fields given as undefined keep their defaults.
    const given = Object.fromEntries(Object.entries(spec).filter(([, v]) => v !== undefined)) as Partial<SyntheticSpec>;
    this.spec = { ...SYNTHETIC_DEFAULTS, ...given };
    const { vocab, agreement, context, copy } = this.spec;
    if (!(Number.isInteger(vocab) && vocab >= 2 && vocab <= SYNTHETIC_MAX_VOCAB)) {
      throw new RangeError(`synthetic vocabulary must be an integer in 2..${SYNTHETIC_MAX_VOCAB}, got ${vocab}`);
    }
    if (!(agreement >= 0 && agreement <= 1)) throw new RangeError(`agreement must be in [0, 1], got ${agreement}`);
    if (!(copy >= 0 && copy <= 1)) throw new RangeError(`copy must be in [0, 1], got ${copy}`);
    const st = this.spec.stretches;
    if (st && !(Number.isInteger(st.length) && st.length >= 1 && st.values.length > 0 && st.values.every((v) => v >= 0 && v <= 1))) {
      throw new RangeError("stretches need an integer length >= 1 and agreements in [0, 1]");
    }
    if (!(context === "all" || (Number.isInteger(context) && context >= 0))) throw new RangeError(`context must be an integer >= 0 or "all", got ${context}`);
  }

  /**
   * The table key of position p given tokens[0..p). `prefix`: the whole-context mode's
   * rolling hash of tokens[0..p), when the caller has it (evaluate walks positions in order).
   */
  contextKey(tokens: TokenSequence, p: number, prefix?: number): number {
    const { seed, context } = this.spec;
    let key = hash32(seed, p);
    if (context === "all") return hash32(key, prefix ?? prefixHash(tokens, p));
    for (let j = 1; j <= context; j++) key = hash32(key, p - j >= 0 ? tokens.at(p - j)! : -1);
    return key;
  }

  /**
   * The token the target copies at position p given tokens[0..p) (table key `key`), or -1
   * where it does not copy: with probability `copy`, drawn per key (so per position and
   * context, like the tables), and only where the context has an earlier occurrence to follow.
   */
  copyAt(tokens: TokenSequence, p: number, key = this.contextKey(tokens, p)): number {
    const { copy } = this.spec;
    if (copy === 0 || !(keyedUniform(key, 15, 0) < copy)) return -1;
    return copiedToken(tokens, p);
  }

  /** Target logits for the token at position p given tokens[0..p). */
  targetLogits(tokens: TokenSequence, p: number, key = this.contextKey(tokens, p)): Float64Array {
    return this.targetLogitsOfKey(key, this.copyAt(tokens, p, key));
  }

  /** Drafter logits for the token at position p given tokens[0..p). */
  drafterLogits(tokens: TokenSequence, p: number, key = this.contextKey(tokens, p)): Float64Array {
    return this.drafterLogitsOfKey(key, p, this.copyAt(tokens, p, key));
  }

  /** The table's logits of `key`; a copied token (>= 0) lifted COPY_MARGIN above the rest. */
  private targetLogitsOfKey(key: number, copied: number): Float64Array {
    const z = new Float64Array(this.spec.vocab);
    for (let i = 0; i < z.length; i++) z[i] = this.spec.sharpness * keyedUniform(key, 11, i);
    if (copied >= 0) {
      let max = -Infinity;
      for (let i = 0; i < z.length; i++) if (i !== copied) max = Math.max(max, z[i]);
      z[copied] = max + COPY_MARGIN;
    }
    return z;
  }

  private drafterLogitsOfKey(key: number, p: number, copied: number): Float64Array {
    const z = this.targetLogitsOfKey(key, copied);
    const V = z.length;
    const a = argmax(z);
    for (let i = 0; i < V; i++) z[i] += 1.5 * (keyedUniform(key, 12, i) - 0.5);
    let max = -Infinity;
    for (let i = 0; i < V; i++) max = Math.max(max, z[i]);
    const agrees = keyedUniform(key, 13, 0) < this.agreementAt(p);
    const favourite = agrees ? a : (a + 1 + Math.floor(keyedUniform(key, 14, 0) * (V - 1))) % V;
    z[favourite] = max + 0.5;
    return z;
  }

  /** The drafter's agreement with the target at position p. */
  agreementAt(p: number): number {
    const st = this.spec.stretches;
    return st ? st.values[Math.floor(p / st.length) % st.values.length] : this.spec.agreement;
  }

  logits(role: "target" | "drafter", tokens: TokenSequence, p: number, key = this.contextKey(tokens, p)): Float64Array {
    return role === "target" ? this.targetLogits(tokens, p, key) : this.drafterLogits(tokens, p, key);
  }

  /**
   * `logits(role, ..., p, key)` with the copied token `copied` (`copyAt`, -1: none),
   * remembered: the logits are a pure function of the table key and the copied token (and, for
   * the drafter, of the position's agreement), and runs over the same spec meet the same keys
   * again (every algorithm and lookahead follows the same committed path), so tests and
   * simulations that run many configurations compute each context once. Shared by every pair
   * with the same tables; the result must not be modified.
   */
  memoLogits(role: "target" | "drafter", p: number, key: number, copied = -1): Float64Array {
    const memo = this.roleMemo(role, p);
    const id = memoId(key, copied);
    let z = memo.logits.get(id);
    if (!z) {
      if (memo.logits.size >= MEMO_ENTRIES) memo.logits.clear();
      z = role === "target" ? this.targetLogitsOfKey(key, copied) : this.drafterLogitsOfKey(key, p, copied);
      memo.logits.set(id, z);
    }
    return z;
  }

  /** argmax of `memoLogits`, remembered too (the greedy path needs nothing else). */
  memoGreedy(role: "target" | "drafter", p: number, key: number, copied = -1): number {
    const memo = this.roleMemo(role, p);
    const id = memoId(key, copied);
    let t = memo.greedy.get(id);
    if (t === undefined) {
      if (memo.greedy.size >= MEMO_ENTRIES) memo.greedy.clear();
      t = argmax(this.memoLogits(role, p, key, copied));
      memo.greedy.set(id, t);
    }
    return t;
  }
  /** The target's memo, or the drafter's at position p's agreement (the drafter's logits depend on it). */
  private roleMemo(role: "target" | "drafter", p: number): RoleMemo {
    const m = (this.memo ??= memoFor(this.spec));
    if (role === "target") return m.target;
    const a = this.agreementAt(p);
    let d = m.drafter.get(a);
    if (!d) m.drafter.set(a, (d = { logits: new Map(), greedy: new Map() }));
    return d;
  }
  private memo?: TableMemo;

  /** Exact next-token distribution of a role under sampling settings (for tests). */
  distribution(role: "target" | "drafter", tokens: TokenSequence, p: number, sampling: SamplingParams): Float64Array {
    return distributionFromLogits(this.logits(role, tokens, p), sampling);
  }

  instance(role: "target" | "drafter", label: string = role): ModelInstance {
    return new SyntheticInstance(this, role, label);
  }
}

class SyntheticInstance implements ModelInstance {
  readonly vocabSize: number;
  readonly eosToken: number | undefined;
  constructor(
    private readonly pair: SyntheticPair,
    private readonly role: "target" | "drafter",
    readonly label: string,
  ) {
    this.vocabSize = pair.spec.vocab;
    this.eosToken = pair.spec.eosToken;
  }

  async evaluate(req: EvalRequest, signal?: AbortSignal): Promise<PositionOutput[]> {
    checkRequest(req);
    if (signal?.aborted) throw new AbortError();
    const out: PositionOutput[] = [];
    // Whole-context mode: the prefix hash up to `from` once, then one step per position.
    const whole = this.pair.spec.context === "all";
    let prefix = whole ? prefixHash(req.tokens, req.from) : 0;
    for (let p = req.from; p <= req.tokens.length; p++) {
      const key = this.pair.contextKey(req.tokens, p, whole ? prefix : undefined);
      if (whole && p < req.tokens.length) prefix = hash32(prefix, req.tokens.at(p)!);
      const copied = this.pair.copyAt(req.tokens, p, key);
      if (req.mode === "greedy") {
        out.push({ token: this.pair.memoGreedy(this.role, p, key, copied) });
        continue;
      }
      const probs = distributionFromLogits(this.pair.memoLogits(this.role, p, key, copied), req.sampling);
      if (req.mode === "dist") out.push({ token: -1, probs });
      else out.push({ token: sampleIndex(probs, keyedUniform(req.seed, req.stream, p)) });
    }
    return out;
  }
}

/** What one role of a table remembers: logits and greedy token by table key. */
interface RoleMemo {
  logits: Map<number, Float64Array>;
  greedy: Map<number, number>;
}
/**
 * A memo's key: the table key (32 bits) alone where nothing is copied, else above 2^32 with the
 * copied token, so the two kinds never meet (exact in a double: at most 65 * 2^32).
 */
function memoId(key: number, copied: number): number {
  return copied < 0 ? key : (copied + 1) * 2 ** 32 + key;
}
/** Entries a memo holds before it starts over (at 64 tokens, ~40 MB of logits). */
const MEMO_ENTRIES = 1 << 16;
/** A table's memos: the target's, and the drafter's per agreement. */
interface TableMemo {
  target: RoleMemo;
  drafter: Map<number, RoleMemo>;
}
/** Memos by the settings that decide the logits (with the key): pairs with the same tables share one. */
const memos = new Map<string, TableMemo>();
function memoFor(s: SyntheticSpec): TableMemo {
  const id = JSON.stringify([s.vocab, s.seed, s.sharpness]);
  let m = memos.get(id);
  if (!m) memos.set(id, (m = { target: { logits: new Map(), greedy: new Map() }, drafter: new Map() }));
  return m;
}

/** Rolling hash of tokens[0..p) (the whole-context mode): h0 fixed, h(i+1) = hash32(h(i), token i). */
function prefixHash(tokens: TokenSequence, p: number): number {
  let h = PREFIX_START;
  for (let i = 0; i < p; i++) h = hash32(h, tokens.at(i)!);
  return h;
}
const PREFIX_START = 0x2545f491;

/** Text <-> tokens for synthetic vocabularies: one character per token. */
export class SyntheticTokenizer {
  readonly alphabet: string;
  /** A prompt every vocabulary can encode: "the" where it fits, else its first letters. */
  get defaultPrompt(): string {
    return [..."the"].every((c) => this.alphabet.includes(c)) ? "the" : this.alphabet.slice(0, Math.min(3, this.alphabet.length));
  }
  constructor(vocab: number) {
    this.alphabet = ALPHABET.slice(0, vocab);
  }
  encode(text: string): number[] {
    return [...text].map((ch) => {
      const id = this.alphabet.indexOf(ch);
      if (id < 0) {
        const at = ALPHABET.indexOf(ch);
        const widen = at >= 0 ? `; --vocab ${at + 1} or more includes it` : `; it is in no synthetic vocabulary (the largest, --vocab ${ALPHABET.length}, is ${JSON.stringify(ALPHABET)})`;
        throw new RangeError(`character ${JSON.stringify(ch)} is not in the synthetic vocabulary of ${this.alphabet.length} tokens (${JSON.stringify(this.alphabet)})${widen}`);
      }
      return id;
    });
  }
  decode(tokens: readonly number[]): string {
    return tokens.map((t) => this.piece(t)).join("");
  }
  /** One character per token. */
  piece(token: number): string {
    return this.alphabet[token] ?? "?";
  }
}
