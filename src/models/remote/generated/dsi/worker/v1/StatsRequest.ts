// Original file: proto/worker.proto


export interface StatsRequest {
}

export interface StatsRequest__Output {
}
