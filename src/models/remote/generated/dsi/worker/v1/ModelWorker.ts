// Original file: proto/worker.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { EvaluateReply as _dsi_worker_v1_EvaluateReply, EvaluateReply__Output as _dsi_worker_v1_EvaluateReply__Output } from '../../../dsi/worker/v1/EvaluateReply.js';
import type { EvaluateRequest as _dsi_worker_v1_EvaluateRequest, EvaluateRequest__Output as _dsi_worker_v1_EvaluateRequest__Output } from '../../../dsi/worker/v1/EvaluateRequest.js';
import type { InfoReply as _dsi_worker_v1_InfoReply, InfoReply__Output as _dsi_worker_v1_InfoReply__Output } from '../../../dsi/worker/v1/InfoReply.js';
import type { InfoRequest as _dsi_worker_v1_InfoRequest, InfoRequest__Output as _dsi_worker_v1_InfoRequest__Output } from '../../../dsi/worker/v1/InfoRequest.js';
import type { StatsReply as _dsi_worker_v1_StatsReply, StatsReply__Output as _dsi_worker_v1_StatsReply__Output } from '../../../dsi/worker/v1/StatsReply.js';
import type { StatsRequest as _dsi_worker_v1_StatsRequest, StatsRequest__Output as _dsi_worker_v1_StatsRequest__Output } from '../../../dsi/worker/v1/StatsRequest.js';

export interface ModelWorkerClient extends grpc.Client {
  /**
   * One evaluation: outputs for positions from..length of the sequence the worker holds after
   * applying the request (keep its first `keep` tokens, append `append`).
   * Errors: FAILED_PRECONDITION when the worker does not hold the request's first `keep`
   * tokens (send the whole sequence); INVALID_ARGUMENT or OUT_OF_RANGE for a request it
   * refuses (a token outside the vocabulary, a bad mode or `from`, a sequence longer than the
   * context): the request's fault, the worker is fine; INTERNAL with the trailer
   * `dsi-error: model` when its model failed the call; CANCELLED when the caller cancelled.
   */
  Evaluate(argument: _dsi_worker_v1_EvaluateRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_dsi_worker_v1_EvaluateReply__Output>): grpc.ClientUnaryCall;
  Evaluate(argument: _dsi_worker_v1_EvaluateRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_dsi_worker_v1_EvaluateReply__Output>): grpc.ClientUnaryCall;
  Evaluate(argument: _dsi_worker_v1_EvaluateRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_dsi_worker_v1_EvaluateReply__Output>): grpc.ClientUnaryCall;
  Evaluate(argument: _dsi_worker_v1_EvaluateRequest, callback: grpc.requestCallback<_dsi_worker_v1_EvaluateReply__Output>): grpc.ClientUnaryCall;
  /**
   * One evaluation: outputs for positions from..length of the sequence the worker holds after
   * applying the request (keep its first `keep` tokens, append `append`).
   * Errors: FAILED_PRECONDITION when the worker does not hold the request's first `keep`
   * tokens (send the whole sequence); INVALID_ARGUMENT or OUT_OF_RANGE for a request it
   * refuses (a token outside the vocabulary, a bad mode or `from`, a sequence longer than the
   * context): the request's fault, the worker is fine; INTERNAL with the trailer
   * `dsi-error: model` when its model failed the call; CANCELLED when the caller cancelled.
   */
  evaluate(argument: _dsi_worker_v1_EvaluateRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_dsi_worker_v1_EvaluateReply__Output>): grpc.ClientUnaryCall;
  evaluate(argument: _dsi_worker_v1_EvaluateRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_dsi_worker_v1_EvaluateReply__Output>): grpc.ClientUnaryCall;
  evaluate(argument: _dsi_worker_v1_EvaluateRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_dsi_worker_v1_EvaluateReply__Output>): grpc.ClientUnaryCall;
  evaluate(argument: _dsi_worker_v1_EvaluateRequest, callback: grpc.requestCallback<_dsi_worker_v1_EvaluateReply__Output>): grpc.ClientUnaryCall;
  
  /**
   * What the worker serves and what a client must check before sending: vocabulary, EOS,
   * context size, backend, a label.
   */
  Info(argument: _dsi_worker_v1_InfoRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_dsi_worker_v1_InfoReply__Output>): grpc.ClientUnaryCall;
  Info(argument: _dsi_worker_v1_InfoRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_dsi_worker_v1_InfoReply__Output>): grpc.ClientUnaryCall;
  Info(argument: _dsi_worker_v1_InfoRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_dsi_worker_v1_InfoReply__Output>): grpc.ClientUnaryCall;
  Info(argument: _dsi_worker_v1_InfoRequest, callback: grpc.requestCallback<_dsi_worker_v1_InfoReply__Output>): grpc.ClientUnaryCall;
  /**
   * What the worker serves and what a client must check before sending: vocabulary, EOS,
   * context size, backend, a label.
   */
  info(argument: _dsi_worker_v1_InfoRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_dsi_worker_v1_InfoReply__Output>): grpc.ClientUnaryCall;
  info(argument: _dsi_worker_v1_InfoRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_dsi_worker_v1_InfoReply__Output>): grpc.ClientUnaryCall;
  info(argument: _dsi_worker_v1_InfoRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_dsi_worker_v1_InfoReply__Output>): grpc.ClientUnaryCall;
  info(argument: _dsi_worker_v1_InfoRequest, callback: grpc.requestCallback<_dsi_worker_v1_InfoReply__Output>): grpc.ClientUnaryCall;
  
  /**
   * What the worker has done since it started (for the orchestrator's metrics).
   */
  Stats(argument: _dsi_worker_v1_StatsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_dsi_worker_v1_StatsReply__Output>): grpc.ClientUnaryCall;
  Stats(argument: _dsi_worker_v1_StatsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_dsi_worker_v1_StatsReply__Output>): grpc.ClientUnaryCall;
  Stats(argument: _dsi_worker_v1_StatsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_dsi_worker_v1_StatsReply__Output>): grpc.ClientUnaryCall;
  Stats(argument: _dsi_worker_v1_StatsRequest, callback: grpc.requestCallback<_dsi_worker_v1_StatsReply__Output>): grpc.ClientUnaryCall;
  /**
   * What the worker has done since it started (for the orchestrator's metrics).
   */
  stats(argument: _dsi_worker_v1_StatsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_dsi_worker_v1_StatsReply__Output>): grpc.ClientUnaryCall;
  stats(argument: _dsi_worker_v1_StatsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_dsi_worker_v1_StatsReply__Output>): grpc.ClientUnaryCall;
  stats(argument: _dsi_worker_v1_StatsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_dsi_worker_v1_StatsReply__Output>): grpc.ClientUnaryCall;
  stats(argument: _dsi_worker_v1_StatsRequest, callback: grpc.requestCallback<_dsi_worker_v1_StatsReply__Output>): grpc.ClientUnaryCall;
  
}

export interface ModelWorkerHandlers extends grpc.UntypedServiceImplementation {
  /**
   * One evaluation: outputs for positions from..length of the sequence the worker holds after
   * applying the request (keep its first `keep` tokens, append `append`).
   * Errors: FAILED_PRECONDITION when the worker does not hold the request's first `keep`
   * tokens (send the whole sequence); INVALID_ARGUMENT or OUT_OF_RANGE for a request it
   * refuses (a token outside the vocabulary, a bad mode or `from`, a sequence longer than the
   * context): the request's fault, the worker is fine; INTERNAL with the trailer
   * `dsi-error: model` when its model failed the call; CANCELLED when the caller cancelled.
   */
  Evaluate: grpc.handleUnaryCall<_dsi_worker_v1_EvaluateRequest__Output, _dsi_worker_v1_EvaluateReply>;
  
  /**
   * What the worker serves and what a client must check before sending: vocabulary, EOS,
   * context size, backend, a label.
   */
  Info: grpc.handleUnaryCall<_dsi_worker_v1_InfoRequest__Output, _dsi_worker_v1_InfoReply>;
  
  /**
   * What the worker has done since it started (for the orchestrator's metrics).
   */
  Stats: grpc.handleUnaryCall<_dsi_worker_v1_StatsRequest__Output, _dsi_worker_v1_StatsReply>;
  
}

export interface ModelWorkerDefinition extends grpc.ServiceDefinition {
  Evaluate: MethodDefinition<_dsi_worker_v1_EvaluateRequest, _dsi_worker_v1_EvaluateReply, _dsi_worker_v1_EvaluateRequest__Output, _dsi_worker_v1_EvaluateReply__Output>
  Info: MethodDefinition<_dsi_worker_v1_InfoRequest, _dsi_worker_v1_InfoReply, _dsi_worker_v1_InfoRequest__Output, _dsi_worker_v1_InfoReply__Output>
  Stats: MethodDefinition<_dsi_worker_v1_StatsRequest, _dsi_worker_v1_StatsReply, _dsi_worker_v1_StatsRequest__Output, _dsi_worker_v1_StatsReply__Output>
}
