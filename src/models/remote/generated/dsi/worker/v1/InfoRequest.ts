// Original file: proto/worker.proto


export interface InfoRequest {
}

export interface InfoRequest__Output {
}
