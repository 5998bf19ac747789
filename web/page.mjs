// page.mjs - what the page's parts share: the user's settings, the URL
// parameters, the page state (also a read-only test hook) and `say`.

import { loadSettings } from './settings.mjs';
import { notice, remark } from './notices.mjs';

export const settings = loadSettings();
export const params = new URLSearchParams(location.search);
export const state = {
  rt: null, backend: null, owl: null, chat: null, manifest: null, loading: null, asking: null,
  pictureDirty: true, modelUrl: '', isolation: 'unknown', storage: false,
  photo: '', // where the picture on the pad came from when it is not a drawing ('' = drawn)
  manifests: new Map(), // manifest URL -> the last manifest read from it (a dead server still has a Resume button)
};
/** Test hook: the page's state, read-only by convention. */
globalThis.owletApp = state;

/** Errors are notices keyed by their cause; other remarks go to the live region. */
export const say = (text, kind = 'info', key = 'misc') => (kind === 'info' ? remark(text) : notice(text, kind, key));
