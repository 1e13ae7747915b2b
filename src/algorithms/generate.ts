/** The engine's entry point: run one algorithm, stream its committed tokens. */
import { TokenStream } from "../runtime/token-stream.js";
import { RunContext } from "./context.js";
import { runDsi } from "./dsi/run.js";
import { runNonSi } from "./nonsi.js";
import type { Runtime } from "../runtime/runtime.js";
import { resolveOptions, type AlgorithmName, type Completion, type GenerateOptions } from "./options.js";
import { completion } from "./output.js";
import { runSi } from "./si.js";

const RUNNERS: Record<AlgorithmName, (ctx: RunContext) => Promise<void>> = { nonsi: runNonSi, si: runSi, dsi: runDsi };

/** A running generation: iterate it for committed tokens as they are decided, or await `result`. */
export class Generation implements AsyncIterable<number> {
  private readonly stream = new TokenStream<number>();
  readonly result: Promise<Completion>;

  constructor(algo: AlgorithmName, runtime: Runtime, options: GenerateOptions) {
    const resolved = resolveOptions(options, runtime, algo);
    const ctx = new RunContext(runtime, resolved, this.stream, algo);
    this.result = (async () => {
      try {
        if (resolved.maxTokens === 0) ctx.committer.finish("length");
        else {
          // No more generations run than the pool has instances: wait for a turn (pool admission).
          await ctx.member.admission(resolved.signal);
          ctx.admitted();
          await RUNNERS[algo](ctx);
        }
        ctx.stats.probes = ctx.lookahead.probes;
        const c = completion(ctx.committer, ctx.stats);
        this.stream.end();
        return c;
      } catch (err) {
        this.stream.end(err);
        throw err;
      } finally {
        ctx.member.leave();
      }
    })();
    // A consumer that only iterates still sees the failure through the stream.
    this.result.catch(() => undefined);
  }

  [Symbol.asyncIterator](): AsyncIterator<number> {
    return this.stream[Symbol.asyncIterator]();
  }
}

export function generate(algo: AlgorithmName, runtime: Runtime, options: GenerateOptions): Generation {
  return new Generation(algo, runtime, options);
}
