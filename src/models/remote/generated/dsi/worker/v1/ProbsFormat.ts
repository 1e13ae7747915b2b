// Original file: proto/worker.proto

/**
 * How DIST replies encode probabilities: float32 (exact to float32 precision) or float16 (half
 * the bytes; each probability rounded to float16).
 */
export const ProbsFormat = {
  FLOAT32: 'FLOAT32',
  FLOAT16: 'FLOAT16',
} as const;

/**
 * How DIST replies encode probabilities: float32 (exact to float32 precision) or float16 (half
 * the bytes; each probability rounded to float16).
 */
export type ProbsFormat =
  | 'FLOAT32'
  | 0
  | 'FLOAT16'
  | 1

/**
 * How DIST replies encode probabilities: float32 (exact to float32 precision) or float16 (half
 * the bytes; each probability rounded to float16).
 */
export type ProbsFormat__Output = typeof ProbsFormat[keyof typeof ProbsFormat]
