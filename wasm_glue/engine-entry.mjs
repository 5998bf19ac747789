// ES module entry of an Emscripten engine build, for Node 20.
//
// Emscripten 3.1.6's -sEXPORT_ES6 output does not run in Node (it uses
// __dirname and require at module scope), so the engine is built as a classic
// -sMODULARIZE script (owlet.js / owlet-st.js, also what a classic browser
// Worker loads with importScripts) and this file, copied next to it as
// owlet.mjs / owlet-st.mjs by `make wasm`, exposes it to ES modules.
import { createRequire } from 'node:module';

import { readFileSync } from 'node:fs';

const require = createRequire(import.meta.url);
const factory = require('./__ENGINE__.js');

/**
 * Instantiate the engine. The wasm bytes are read here (as engine-worker.mjs
 * does): the 3.1.6 glue would fetch() the file path when Node has a global
 * fetch, so Node would need --no-experimental-fetch.
 * @param {object} [moduleArgs] Emscripten Module overrides (print, printErr, wasmBinary, ...).
 * @returns {Promise<any>} the Emscripten module with the exported owl_* functions.
 */
export default function createOwlet(moduleArgs = {}) {
  const wasmBinary = moduleArgs.wasmBinary || readFileSync(new URL('./__ENGINE__.wasm', import.meta.url));
  return factory({ ...moduleArgs, wasmBinary });
}
