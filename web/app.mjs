// app.mjs - owlet's image-chat page: wires the model panel, the picture and the
// chat to the runtime (owlet/owlet.mjs). Plain ES modules, no build step; user
// and model text only ever goes into the page through textContent.

import { $ } from './dom.mjs';
import { settings, params, state } from './page.mjs';
import { hasSimd, hasStorage, ensureIsolation } from './env.mjs';
import { importRuntime } from './model.mjs';
import { initNotices, notice } from './notices.mjs';
import { wireSettings, showEnvironment } from './settings-form.mjs';
import { wireModelPanel, describeModel, showUsage, loadModel, setBusy } from './model-panel.mjs';
import { wirePicture, showAttachKind } from './pad.mjs';
import { wireChat } from './chat.mjs';

async function start() {
  initNotices($('notices'), $('status-line'));
  wireSettings();
  wireModelPanel();
  wirePicture();
  wireChat();
  setBusy(false);
  // ?sw=0: no service worker for this visit (an installed one is left alone).
  state.isolation = params.get('sw') === '0' && settings.sw !== 'off'
    ? (globalThis.crossOriginIsolated ? 'isolated' : 'skipped')
    : await ensureIsolation({ enabled: settings.sw !== 'off' });
  if (state.isolation === 'reloading') return;
  state.storage = await hasStorage();
  if (!hasSimd()) {
    notice('This browser does not support WebAssembly SIMD, which owlet needs. Use a current Chrome, Edge, Firefox or Safari (16.4 or later).', 'error', 'simd');
  }
  if (!state.storage) {
    notice('This browser gives the page no persistent storage (IndexedDB), for example in a private window: the model will be downloaded again on every visit.', 'warn', 'storage');
  }
  showEnvironment();
  try {
    state.rt = await importRuntime();
    // the chunks in the Origin Private File System where the page can write there, else IndexedDB
    if (state.storage) state.backend = await state.rt.store.browserBackend();
  } catch (e) {
    notice('The owlet engine files could not be loaded. Check that owlet/ is deployed next to this page (docs/DEPLOY.md).',
      'error', 'runtime', e.message);
    $('model-info').textContent = 'The engine is missing.';
    return;
  }
  setBusy(false);
  const cs = await describeModel();
  await showUsage();
  showAttachKind();
  document.body.dataset.ready = 'true';
  if (cs && cs.state === 'cached' && settings.autoload && hasSimd()) loadModel();
}

start();
