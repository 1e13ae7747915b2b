// Original file: proto/worker.proto

import type { Long } from '@grpc/proto-loader';

export interface StatsReply {
  /**
   * Evaluate calls received, and of those cancelled by the caller.
   */
  'calls'?: (number | string | Long);
  'cancelled'?: (number | string | Long);
  /**
   * Tokens received (appended to the held sequence) and positions evaluated.
   */
  'tokensReceived'?: (number | string | Long);
  'positionsEvaluated'?: (number | string | Long);
  /**
   * Seconds with at least one evaluation running (sequences evaluating at once count once).
   */
  'busySeconds'?: (number | string);
}

export interface StatsReply__Output {
  /**
   * Evaluate calls received, and of those cancelled by the caller.
   */
  'calls': (number);
  'cancelled': (number);
  /**
   * Tokens received (appended to the held sequence) and positions evaluated.
   */
  'tokensReceived': (number);
  'positionsEvaluated': (number);
  /**
   * Seconds with at least one evaluation running (sequences evaluating at once count once).
   */
  'busySeconds': (number);
}
