// Original file: proto/worker.proto


export interface InfoReply {
  'label'?: (string);
  'vocabSize'?: (number);
  /**
   * -1 when the model has none.
   */
  'eosToken'?: (number);
  'backend'?: (string);
  /**
   * The model's context in tokens; 0 when unlimited. An Evaluate request's sequence must be
   * shorter (it and the token it predicts must fit), else OUT_OF_RANGE.
   */
  'contextSize'?: (number);
  /**
   * Real kernels: most tokens per forward pass (the batch-invariant chunk size); 0 when not
   * applicable (synthetic models).
   */
  'evalChunk'?: (number);
  /**
   * Sequences the worker serves (`dsi worker --sequences`), each with its own held sequence and
   * cache; they share the model's compute. 0 from workers before this field: 1.
   */
  'sequences'?: (number);
}

export interface InfoReply__Output {
  'label': (string);
  'vocabSize': (number);
  /**
   * -1 when the model has none.
   */
  'eosToken': (number);
  'backend': (string);
  /**
   * The model's context in tokens; 0 when unlimited. An Evaluate request's sequence must be
   * shorter (it and the token it predicts must fit), else OUT_OF_RANGE.
   */
  'contextSize': (number);
  /**
   * Real kernels: most tokens per forward pass (the batch-invariant chunk size); 0 when not
   * applicable (synthetic models).
   */
  'evalChunk': (number);
  /**
   * Sequences the worker serves (`dsi worker --sequences`), each with its own held sequence and
   * cache; they share the model's compute. 0 from workers before this field: 1.
   */
  'sequences': (number);
}
