import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { EvaluateReply as _dsi_worker_v1_EvaluateReply, EvaluateReply__Output as _dsi_worker_v1_EvaluateReply__Output } from './dsi/worker/v1/EvaluateReply.js';
import type { EvaluateRequest as _dsi_worker_v1_EvaluateRequest, EvaluateRequest__Output as _dsi_worker_v1_EvaluateRequest__Output } from './dsi/worker/v1/EvaluateRequest.js';
import type { InfoReply as _dsi_worker_v1_InfoReply, InfoReply__Output as _dsi_worker_v1_InfoReply__Output } from './dsi/worker/v1/InfoReply.js';
import type { InfoRequest as _dsi_worker_v1_InfoRequest, InfoRequest__Output as _dsi_worker_v1_InfoRequest__Output } from './dsi/worker/v1/InfoRequest.js';
import type { ModelWorkerClient as _dsi_worker_v1_ModelWorkerClient, ModelWorkerDefinition as _dsi_worker_v1_ModelWorkerDefinition } from './dsi/worker/v1/ModelWorker.js';
import type { Sampling as _dsi_worker_v1_Sampling, Sampling__Output as _dsi_worker_v1_Sampling__Output } from './dsi/worker/v1/Sampling.js';
import type { StatsReply as _dsi_worker_v1_StatsReply, StatsReply__Output as _dsi_worker_v1_StatsReply__Output } from './dsi/worker/v1/StatsReply.js';
import type { StatsRequest as _dsi_worker_v1_StatsRequest, StatsRequest__Output as _dsi_worker_v1_StatsRequest__Output } from './dsi/worker/v1/StatsRequest.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  dsi: {
    worker: {
      v1: {
        EvaluateReply: MessageTypeDefinition<_dsi_worker_v1_EvaluateReply, _dsi_worker_v1_EvaluateReply__Output>
        EvaluateRequest: MessageTypeDefinition<_dsi_worker_v1_EvaluateRequest, _dsi_worker_v1_EvaluateRequest__Output>
        InfoReply: MessageTypeDefinition<_dsi_worker_v1_InfoReply, _dsi_worker_v1_InfoReply__Output>
        InfoRequest: MessageTypeDefinition<_dsi_worker_v1_InfoRequest, _dsi_worker_v1_InfoRequest__Output>
        ModelWorker: SubtypeConstructor<typeof grpc.Client, _dsi_worker_v1_ModelWorkerClient> & { service: _dsi_worker_v1_ModelWorkerDefinition }
        OutputMode: EnumTypeDefinition
        ProbsFormat: EnumTypeDefinition
        Sampling: MessageTypeDefinition<_dsi_worker_v1_Sampling, _dsi_worker_v1_Sampling__Output>
        StatsReply: MessageTypeDefinition<_dsi_worker_v1_StatsReply, _dsi_worker_v1_StatsReply__Output>
        StatsRequest: MessageTypeDefinition<_dsi_worker_v1_StatsRequest, _dsi_worker_v1_StatsRequest__Output>
      }
    }
  }
}

