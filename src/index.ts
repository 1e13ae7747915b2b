/** dsi: lossless non-SI, SI and DSI decoding over pluggable model instances. */
export * from "./core/random.js";
export * from "./core/sampling.js";
export * from "./core/verify.js";
export * from "./runtime/abort.js";
export * from "./runtime/clock.js";
export * from "./runtime/events.js";
export * from "./models/instance.js";
export * from "./models/synthetic.js";
export * from "./models/latency.js";
export * from "./models/paper-pairs.js";
export * from "./algorithms/options.js";
export * from "./algorithms/generate.js";
export * from "./algorithms/runtime.js";
