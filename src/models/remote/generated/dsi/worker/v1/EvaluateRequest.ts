// Original file: proto/worker.proto

import type { OutputMode as _dsi_worker_v1_OutputMode, OutputMode__Output as _dsi_worker_v1_OutputMode__Output } from '../../../dsi/worker/v1/OutputMode.js';
import type { Sampling as _dsi_worker_v1_Sampling, Sampling__Output as _dsi_worker_v1_Sampling__Output } from '../../../dsi/worker/v1/Sampling.js';
import type { ProbsFormat as _dsi_worker_v1_ProbsFormat, ProbsFormat__Output as _dsi_worker_v1_ProbsFormat__Output } from '../../../dsi/worker/v1/ProbsFormat.js';
import type { Long } from '@grpc/proto-loader';

export interface EvaluateRequest {
  /**
   * Tokens of the worker's sequence to keep; must not exceed what it holds.
   */
  'keep'?: (number);
  /**
   * The sequence's tokens beyond `keep` (packed).
   */
  'append'?: (number)[];
  /**
   * Hash of the first `keep` tokens as the orchestrator believes the worker holds them
   * (FNV-1a style over the token ids: see hashStep in src/models/remote/protocol.ts).
   */
  'keepHash'?: (number);
  'from'?: (number);
  'mode'?: (_dsi_worker_v1_OutputMode);
  'sampling'?: (_dsi_worker_v1_Sampling | null);
  'seed'?: (number | string | Long);
  'stream'?: (number);
  'probsFormat'?: (_dsi_worker_v1_ProbsFormat);
  /**
   * Which of the worker's sequences (0..sequences-1): keep, append and the hashes are that
   * sequence's; calls on different sequences run at once, on one sequence in order.
   */
  'sequence'?: (number);
}

export interface EvaluateRequest__Output {
  /**
   * Tokens of the worker's sequence to keep; must not exceed what it holds.
   */
  'keep': (number);
  /**
   * The sequence's tokens beyond `keep` (packed).
   */
  'append': (number)[];
  /**
   * Hash of the first `keep` tokens as the orchestrator believes the worker holds them
   * (FNV-1a style over the token ids: see hashStep in src/models/remote/protocol.ts).
   */
  'keepHash': (number);
  'from': (number);
  'mode': (_dsi_worker_v1_OutputMode__Output);
  'sampling': (_dsi_worker_v1_Sampling__Output | null);
  'seed': (number);
  'stream': (number);
  'probsFormat': (_dsi_worker_v1_ProbsFormat__Output);
  /**
   * Which of the worker's sequences (0..sequences-1): keep, append and the hashes are that
   * sequence's; calls on different sequences run at once, on one sequence in order.
   */
  'sequence': (number);
}
