/**
 * Model files named by URI (`hf:owner/repo/file.gguf`, `https://...`): node-llama-cpp's
 * resolver downloads each once into the cache (`$DSI_CACHE_DIR/models`) and later runs find
 * it there. A plain path is returned as given (and checked when it is loaded).
 */
import { join } from "node:path";
import { defaultCacheDir } from "./gguf/llama-model.js";
import { ModelFileError } from "./llama.js";

/** Download progress of one file, in bytes. */
export type DownloadProgress = (file: string, downloaded: number, total: number) => void;

const URI = /^(hf:|huggingface:|https?:\/\/)/i;

export function isModelUri(spec: string): boolean {
  return URI.test(spec);
}

export async function resolveModel(spec: string, onProgress?: DownloadProgress): Promise<string> {
  if (!isModelUri(spec)) return spec;
  const { resolveModelFile } = await import("node-llama-cpp");
  try {
    return await resolveModelFile(spec, {
      directory: join(defaultCacheDir(), "models"),
      cli: false,
      onProgress: onProgress ? ({ downloadedSize, totalSize }) => onProgress(spec, downloadedSize, totalSize) : undefined,
    });
  } catch (err) {
    throw new ModelFileError(`could not download ${spec}: ${(err as Error).message}`);
  }
}
