/**
 * Tests never write into the user's cache: importing this points `$DSI_CACHE_DIR` (generated
 * models, the batch-invariance self-test's results) at a temporary folder of the test file,
 * removed when its tests have run. Child processes inherit it.
 */
import { tempDirSync } from "./temp.js";

process.env.DSI_CACHE_DIR = tempDirSync("cache");
