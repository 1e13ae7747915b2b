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
   * What the worker holds after the call, as the length and hash of a prefix of the request's
   * sequence: all of it normally. The client's next request keeps at most that prefix, so a
   * worker that kept less (none: both 0) is brought back in step by that request, not refused.
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
   * What the worker holds after the call, as the length and hash of a prefix of the request's
   * sequence: all of it normally. The client's next request keeps at most that prefix, so a
   * worker that kept less (none: both 0) is brought back in step by that request, not refused.
   */
  'held': (number);
  'heldHash': (number);
}
