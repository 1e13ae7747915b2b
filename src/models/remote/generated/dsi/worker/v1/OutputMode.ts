// Original file: proto/worker.proto

export const OutputMode = {
  GREEDY: 'GREEDY',
  SAMPLE: 'SAMPLE',
  DIST: 'DIST',
} as const;

export type OutputMode =
  | 'GREEDY'
  | 0
  | 'SAMPLE'
  | 1
  | 'DIST'
  | 2

export type OutputMode__Output = typeof OutputMode[keyof typeof OutputMode]
