// errors.mjs - the one error class of the JS side and the abort helpers.
//
// OwletError carries `code`: for engine failures the C status name
// (status.gen.mjs, generated from src/core/status.h), else a JS-side code
// ('bad_manifest', 'bad_chunk', 'quota', 'bad_origin', 'cache', 'engine', ...).
// An aborted call rejects with an Error named 'AbortError' (as fetch does).
import { STATUS_CODES } from './status.gen.mjs';

export class OwletError extends Error {
  /** @param {string} code @param {string} message @param {any} [cause] */
  constructor(code, message, cause) {
    super(message);
    this.name = 'OwletError';
    this.code = code;
    if (cause !== undefined) this.cause = cause;
  }
}

/** The error an aborted call rejects with. */
export function abortError() {
  const e = new Error('The operation was aborted');
  e.name = 'AbortError';
  return e;
}

/** Throw abortError() if the signal has fired. */
export function checkSignal(signal) {
  if (signal && signal.aborted) throw abortError();
}

/** An OwletError for a C status (negative owl_status) and its message; `status` kept. */
export function statusError(status, message) {
  return Object.assign(new OwletError(STATUS_CODES[status] || 'engine', message), { status });
}
