// Original file: proto/worker.proto


export interface EvaluateReply {
  /**
   * GREEDY and SAMPLE: one token per position (packed).
   */
  'tokens'?: (number)[];
  /**
   * DIST: positions x vocabulary probabilities, little-endian, in the request's probs_format.
   */
  'probs'?: (Buffer | Uint8Array | string);
  /**
   * The sequence the worker holds now: its length and hash.
   */
  'held'?: (number);
  'heldHash'?: (number);
}

export interface EvaluateReply__Output {
  /**
   * GREEDY and SAMPLE: one token per position (packed).
   */
  'tokens': (number)[];
  /**
   * DIST: positions x vocabulary probabilities, little-endian, in the request's probs_format.
   */
  'probs': (Buffer);
  /**
   * The sequence the worker holds now: its length and hash.
   */
  'held': (number);
  'heldHash': (number);
}
