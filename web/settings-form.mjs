// settings-form.mjs - the settings form (kept in localStorage) and the line
// that says what this browser can do (SIMD, isolation, threads, storage).

import { $ } from './dom.mjs';
import { settings, state, say } from './page.mjs';
import { saveSettings } from './settings.mjs';
import { hasSimd, threadState, ensureIsolation } from './env.mjs';
import { notice, clearNotice } from './notices.mjs';
import { loadModel } from './model-panel.mjs';
import { updateModelView } from './pad.mjs';

const fields = { temperature: 'set-temperature', topP: 'set-top-p', maxTokens: 'set-max-tokens', threads: 'set-threads',
  aspect: 'set-aspect', sw: 'set-sw' };
export function wireSettings() {
  for (const [k, id] of Object.entries(fields)) {
    const input = $(id);
    input.value = String(settings[k]);
    input.addEventListener('change', () => {
      const v = input.tagName === 'SELECT' ? input.value : Number(input.value);
      if (input.tagName !== 'SELECT' && !(Number.isFinite(v) && v >= Number(input.min) && v <= Number(input.max))) {
        input.setAttribute('aria-invalid', 'true');
        say(`${input.labels[0].textContent}: want a number from ${input.min} to ${input.max}.`, 'error', `setting-${k}`);
        return;
      }
      input.removeAttribute('aria-invalid');
      clearNotice(`setting-${k}`);
      settings[k] = v;
      saveSettings(settings);
      if (k === 'sw') {
        ensureIsolation({ enabled: v !== 'off' }).then((r) => {
          if (r === 'isolated' && v === 'off') say('The multi-threading helper is off: reload the page to run without it.');
        });
      }
      if (k === 'aspect') updateModelView();
    });
  }
  const auto = $('set-autoload');
  auto.checked = settings.autoload;
  auto.addEventListener('change', () => { settings.autoload = auto.checked; saveSettings(settings); });
  $('reload-model').addEventListener('click', () => loadModel());
}

export function showEnvironment() {
  const th = threadState();
  const why = { off: 'the multi-threading helper (service worker) is turned off in the settings',
    skipped: 'the multi-threading helper (service worker) is skipped for this visit (?sw=0)', unsupported: 'this browser has no service workers here',
    failed: 'the service worker could not isolate the page', unknown: '' }[state.isolation] || '';
  $('env-info').textContent = `WebAssembly SIMD: ${hasSimd() ? 'yes' : 'no'} · cross-origin isolated: ${th.isolated ? 'yes' : 'no'}` +
    ` · threads: ${th.on ? 'yes' : 'no'} · cores (as the browser reports them): ${navigator.hardwareConcurrency || '?'}` +
    ` · persistent storage: ${state.storage ? 'yes' : 'no'}`;
  if (th.why === 'isolation') {
    notice('This page is not cross-origin isolated, so the model runs on a single thread (slower)' +
      (why ? `: ${why}.` : '.') + ' Hosts that send COOP/COEP headers, or the service worker, enable threads (docs/DEPLOY.md).',
    'warn', 'threads');
  } else if (th.why === 'shared-memory') {
    notice('This page is cross-origin isolated, but this browser offers no shared memory (SharedArrayBuffer) to web ' +
      'pages, so the model runs on a single thread (slower). Another browser runs it on several threads.', 'warn', 'threads');
  }
}
