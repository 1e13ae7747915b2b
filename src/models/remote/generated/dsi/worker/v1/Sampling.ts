// Original file: proto/worker.proto


export interface Sampling {
  'temperature'?: (number | string);
  'topK'?: (number);
  'topP'?: (number | string);
}

export interface Sampling__Output {
  'temperature': (number);
  'topK': (number);
  'topP': (number);
}
