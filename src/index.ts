/**
 * dsi: lossless non-SI, SI and DSI decoding over pluggable model instances. This is the
 * public API; everything else is internal and may change.
 */

// Generating
export { generate, Generation } from "./algorithms/generate.js";
export {
  ALGORITHMS,
  DEFAULT_LOOKAHEAD,
  DEFAULT_MAX_TOKENS,
  OptionError,
  type AlgorithmName,
  type Completion,
  type FinishReason,
  type GenerateOptions,
  type Lookahead,
  type Stats,
  type Verifier,
} from "./algorithms/options.js";
export { AUTO_MAX_LOOKAHEAD, dsiMsPerToken, siMsPerToken, type CostModel } from "./algorithms/lookahead.js";
export { DRAFT_MODES, type DraftMode } from "./algorithms/option-spec.js";
export { NGRAM_DEFAULTS, NgramIndex } from "./algorithms/drafting/ngram-index.js";
export { GREEDY, type SamplingParams } from "./core/sampling.js";
export { VERIFY_RULES, type Decision, type Draft, type OutputMode, type PositionOutput, type VerifyRule } from "./core/verify.js";

// The instance contract, for writing a backend
export { checkRequest, InstanceLostError, InvalidRequestError, TokenView, type EvalRequest, type ModelInstance, type TokenSequence } from "./core/instance.js";

// Runtime: clocks, the target pool, cancellation, events
export { makeClock, RealClock, VirtualClock, type Clock, type SleepOptions } from "./runtime/clock.js";
export { MAX_POOL_SIZE, NoInstanceError, TargetPool, type Claim, type Lease, type PoolEvent, type PoolMember, type TargetPoolOptions } from "./runtime/pool.js";
export { AcceptanceMemory, TaskCosts, newLearned, type Learned } from "./runtime/costs.js";
export { AbortError, isAbortError } from "./runtime/abort.js";
export { EventLog, isPoolEvent, type EngineEvent, type EventListener } from "./runtime/events.js";
export type { Runtime, RuntimeObserver } from "./runtime/runtime.js";

// Backends and runtime assembly
export { assembleRuntime, syntheticRuntime, type RuntimeParts, type SyntheticRuntimeOptions } from "./models/runtime.js";
export { BACKENDS, BackendSpecError, llamaBackend, openBackend, syntheticBackend, type Backend, type BackendName, type BackendSpec, type Tokenizer } from "./models/backend.js";
export { SyntheticPair, SyntheticTokenizer, SYNTHETIC_DEFAULTS, type SyntheticSpec } from "./models/synthetic.js";
export { flatLatency, NO_LATENCY, PROFILES, profileNames, resolveProfile, withLatency, type LatencyProfile, type ModelLatency } from "./models/latency.js";
export { SharedDevice } from "./models/shared-device.js";
export { PAPER_PAIRS, type PaperPair } from "./models/paper-pairs.js";
export { ContextOverflowError, LlamaInstance, LlamaPair, ModelFileError, type LlamaPairOptions } from "./models/llama.js";
export { describeEvalChunk, type EvalChunk } from "./models/batch-invariance.js";
export { DEFAULT_PAIR, defaultCacheDir, ensurePair, makeModelPair, RANDOM_PAIR, type ModelPairSpec, type PairSpec } from "./models/gguf/llama-model.js";
export { type CorpusPairSpec } from "./models/corpus/spec.js";
export { RemoteInstance, WorkerCallError, WorkerError, type RemoteOptions } from "./models/remote/client.js";
export { ClusterError, clusterBackend, loadClusterFile, type ClusterOptions, type ClusterSpec } from "./models/remote/cluster.js";

// Workers: one instance served over gRPC
export { serveWorker, type RunningWorker, type WorkerOptions } from "./worker/server.js";

// The simulator
export { simulateTimeUnits, spNeeded, type SimResult, type TimeUnitConfig } from "./sim/time-units.js";
export { engineMean, engineRun, simulateEngine, type EngineConfig, type EngineRunConfig } from "./sim/engine.js";
export { paperTable, type TableRow } from "./sim/paper-table.js";
export { plan, type Plan, type PlanInput } from "./sim/plan.js";
export { runHeatmap, type RunOptions as HeatmapRunOptions } from "./sim/run-heatmap.js";
export type { HeatmapOptions, CellResult } from "./sim/heatmap.js";
