import { TokenView } from "../../src/core/instance.js";

/** A view that counts the tokens an instance reads through it (requests must cost O(drafts)). */
export class CountingView extends TokenView {
  reads = 0;
  override at(index: number): number | undefined {
    this.reads++;
    return super.at(index);
  }
  override slice(start?: number, end?: number): number[] {
    const out = super.slice(start, end);
    this.reads += out.length;
    return out;
  }
}
