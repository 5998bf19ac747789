// settings.mjs - the user's settings, remembered in localStorage.

const KEY = 'owlet.settings.v1';

export const DEFAULTS = Object.freeze({
  temperature: 0, topP: 0.9, maxTokens: 128, threads: 0, aspect: '', sw: 'auto', autoload: true,
  model: 'models/demo/manifest.json', customUrl: '',
});

const clamp = (v, lo, hi, d) => (Number.isFinite(v) ? Math.min(hi, Math.max(lo, v)) : d);

/** Parse and clamp a stored settings object; unknown keys are dropped. */
export function sanitize(raw) {
  const s = { ...DEFAULTS };
  if (!raw || typeof raw !== 'object') return s;
  s.temperature = clamp(Number(raw.temperature), 0, 2, DEFAULTS.temperature);
  s.topP = clamp(Number(raw.topP), 0.05, 1, DEFAULTS.topP);
  s.maxTokens = Math.round(clamp(Number(raw.maxTokens), 1, 2048, DEFAULTS.maxTokens));
  s.threads = Math.round(clamp(Number(raw.threads), 0, 64, DEFAULTS.threads));
  s.aspect = ['', 'pad', 'stretch', 'crop'].includes(raw.aspect) ? raw.aspect : DEFAULTS.aspect;
  s.sw = raw.sw === 'off' ? 'off' : 'auto';
  s.autoload = raw.autoload !== false;
  if (typeof raw.model === 'string' && raw.model.length < 2048) s.model = raw.model;
  if (typeof raw.customUrl === 'string' && raw.customUrl.length < 2048) s.customUrl = raw.customUrl;
  return s;
}

export function loadSettings() {
  try { return sanitize(JSON.parse(localStorage.getItem(KEY) || 'null')); } catch { return { ...DEFAULTS }; }
}

export function saveSettings(s) {
  try { localStorage.setItem(KEY, JSON.stringify(s)); } catch { /* storage refused: settings last this visit */ }
}
