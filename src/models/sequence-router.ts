/**
 * One model instance over the sequences of multi-sequence instances, for a model that every
 * generation shares (the drafter): each generation's requests go to the sequence that served
 * it last, so its context stays cached there. Without it, one drafter sequence served every
 * concurrent generation in turn, and each turn re-read the context of another. (A llama
 * context's sequences share its passes, or take turns on it: llama.ts, `SharedContext`.) More sequences may be
 * added (`grow`) when a runtime admits more generations at once.
 *
 * A generation is known by its requests' `TokenView.base` (the committed sequence the engine
 * appends to: one per generation). A generation new to the router takes the sequence used
 * least recently among those with the fewest calls in flight, and the generation that held
 * it loses it (its next request goes elsewhere and reads its context there). A request that
 * is not a view goes the same way.
 */
import { TokenView, type EvalRequest, type ModelInstance } from "../core/instance.js";
import type { PositionOutput } from "../core/verify.js";

type RoutedSequence = ModelInstance & { reset?(): Promise<void> };

export class SequenceRouter implements ModelInstance {
  readonly label: string;
  readonly vocabSize: number;
  readonly eosToken: number | undefined;
  /** The generation (committed sequence) each sequence serves. */
  private readonly owners: (object | undefined)[] = [];
  private readonly sequenceOf = new WeakMap<object, number>();
  private readonly lastUse: number[] = [];
  private readonly inFlight: number[] = [];
  private uses = 0;
  private readonly sequences: RoutedSequence[] = [];

  constructor(sequences: readonly RoutedSequence[]) {
    if (sequences.length === 0) throw new RangeError("a sequence router needs at least one sequence");
    const first = sequences[0];
    this.label = first.label.replace(/\/0$/, "");
    this.vocabSize = first.vocabSize;
    this.eosToken = first.eosToken;
    this.grow(sequences);
  }

  /** The sequences requests are routed to (read-only: for stats and tests). */
  get members(): readonly RoutedSequence[] {
    return this.sequences;
  }

  /** Adds sequences (of another instance of the same model): new generations may take them. */
  grow(more: readonly RoutedSequence[]): void {
    for (const s of more) {
      if (s.vocabSize !== this.vocabSize) throw new RangeError(`a routed sequence has vocabulary ${s.vocabSize}, the router ${this.vocabSize}`);
      this.sequences.push(s);
      this.owners.push(undefined);
      this.lastUse.push(0);
      this.inFlight.push(0);
    }
  }

  get contextSize(): number | undefined {
    return this.sequences[0].contextSize;
  }

  get evalChunk(): number | undefined {
    return this.sequences[0].evalChunk;
  }

  /** The sequence a request goes to (exposed for tests). */
  route(req: EvalRequest): number {
    const base = req.tokens instanceof TokenView ? req.tokens.base : undefined;
    const held = base !== undefined ? this.sequenceOf.get(base) : undefined;
    if (held !== undefined) return held;
    let pick = 0;
    for (let i = 1; i < this.sequences.length; i++) {
      if (this.inFlight[i] < this.inFlight[pick] || (this.inFlight[i] === this.inFlight[pick] && this.lastUse[i] < this.lastUse[pick])) pick = i;
    }
    const previous = this.owners[pick];
    if (previous !== undefined) this.sequenceOf.delete(previous);
    this.owners[pick] = base;
    if (base !== undefined) this.sequenceOf.set(base, pick);
    return pick;
  }

  async evaluate(req: EvalRequest, signal?: AbortSignal): Promise<PositionOutput[]> {
    const i = this.route(req);
    this.lastUse[i] = ++this.uses;
    this.inFlight[i]++;
    try {
      return await this.sequences[i].evaluate(req, signal);
    } finally {
      this.inFlight[i]--;
    }
  }

  /** Empties every sequence's cache and forgets who held which. */
  async reset(): Promise<void> {
    await Promise.all(this.sequences.map((s) => s.reset?.()));
    for (let i = 0; i < this.owners.length; i++) {
      const o = this.owners[i];
      if (o !== undefined) this.sequenceOf.delete(o);
      this.owners[i] = undefined;
    }
  }
}
