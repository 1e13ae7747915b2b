/**
 * The ten target/drafter pairs of the DSI paper's Table 1 (Timor et al., arXiv 2405.14105):
 * time per output token on one A100 and the measured acceptance rate.
 */
export interface PaperPair {
  /** Profile name, e.g. "vicuna-13b/vicuna-68m:cnn-dm". */
  name: string;
  target: string;
  drafter: string;
  dataset: string;
  targetMs: number;
  drafterMs: number;
  acceptance: number;
  /** The paper's reported DSI speedup over SI. */
  paperDsiOverSi: number;
}

const ROWS: [string, string, string, number, number, number, number][] = [
  ["Vicuna-13B", "Vicuna-68M", "CNN-DM", 37.7, 2.5, 0.63, 1.47],
  ["Vicuna-13B", "Vicuna-68M", "Alpaca", 33.3, 2.5, 0.58, 1.41],
  ["Vicuna-7B", "Vicuna-68M", "CNN-DM", 29.4, 2.5, 0.67, 1.29],
  ["Vicuna-7B", "Vicuna-68M", "Alpaca", 26.0, 2.5, 0.59, 1.7],
  ["Starcoder-15B", "Starcoder-168M", "HumanEval", 20.6, 6.8, 0.93, 1.92],
  ["Starcoder-15B", "Starcoder-168M", "MBPP", 21.0, 6.8, 0.9, 1.66],
  ["Phi3-14B", "Phi3-4B", "HumanEval", 52.1, 34.0, 0.95, 1.41],
  ["Phi3-14B", "Phi3-4B", "MBPP", 52.2, 34.3, 0.94, 1.37],
  ["Phi3-14B", "Phi3-4B", "CNN-DM", 52.4, 34.6, 0.93, 1.39],
  ["Phi3-14B", "Phi3-4B", "Alpaca", 49.6, 33.4, 0.87, 1.6],
];

export const PAPER_PAIRS: readonly PaperPair[] = ROWS.map(([target, drafter, dataset, targetMs, drafterMs, acceptance, paperDsiOverSi]) => ({
  name: `${target}/${drafter}:${dataset}`.toLowerCase(),
  target,
  drafter,
  dataset,
  targetMs,
  drafterMs,
  acceptance,
  paperDsiOverSi,
}));
