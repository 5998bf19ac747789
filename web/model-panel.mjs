// model-panel.mjs - the model panel: pick a manifest, say its size and cache
// state, download and load it (progress.mjs), resume, delete (after asking),
// the storage line, and the status chip the panel folds into once a model is ready.

import { $, el } from './dom.mjs';
import { settings, params, state, say } from './page.mjs';
import { saveSettings } from './settings.mjs';
import { hasSimd } from './env.mjs';
import { cacheState, partialIds, loadLabel, loadErrorWords, mb, WASM_BASE } from './model.mjs';
import { notice, clearNotice, remark, confirmAction } from './notices.mjs';
import { addMessage } from './messages.mjs';
import { isDemo, DEMO_QUESTIONS, GENERAL_QUESTIONS } from './demo.mjs';
import { onProgress, endProgress } from './progress.mjs';
import { updateModelView, showPhotoWarning, board } from './pad.mjs';
import { updateAskButtons } from './chat.mjs';
import { pictureChanged, warmPicture } from './warm.mjs';

function manifestUrl() {
  const v = $('model-select').value;
  const raw = v === 'custom' ? $('model-url').value.trim() : v;
  if (!raw) return '';
  try { return new URL(raw, document.baseURI).href; } catch { return ''; }
}

/** The manifest at url: read again, or the last one read when the server does not answer now. */
async function readManifest(url) {
  try {
    const m = await state.rt.store.loadManifest(url);
    state.manifests.set(url, m);
    return m;
  } catch (e) {
    if (state.manifests.has(url) && (e.code === 'network' || !e.code || e.name === 'TypeError')) return state.manifests.get(url);
    throw e;
  }
}

export async function describeModel() {
  const url = manifestUrl();
  state.modelUrl = url;
  state.manifest = null;
  const info = $('model-info');
  $('delete-cache').disabled = true;
  showDemoHelp();
  if (!url) { info.textContent = 'Enter the URL of a model manifest (manifest.json).'; return null; }
  if (!state.rt) return null;
  info.textContent = 'Reading the model manifest…';
  try {
    const m = await readManifest(url);
    if (state.modelUrl !== url) return null;
    state.manifest = m;
    showDemoHelp();
    const model = (m.raw && m.raw.model) || {};
    const cs = await cacheState(state.backend, m);
    const cached = { cached: 'cached in this browser', partial: `partly downloaded (${cs.chunks} of ${m.chunks.length} chunks kept)`,
      none: 'not downloaded yet' }[cs.state];
    info.textContent = `${m.name || m.id}: ${mb(m.totalSize)}, ${model.quant || 'unknown quant'}` +
      `${model.parameters ? `, ${(model.parameters / 1e6).toFixed(1)} M parameters` : ''} — ${cached}.`;
    $('delete-cache').disabled = cs.state === 'none';
    if (!state.owl || state.owl.manifest.id !== m.id) $('load').textContent = loadLabel(cs, m.totalSize);
    return cs;
  } catch (e) {
    if (state.modelUrl !== url) return null;
    info.textContent = e.code === 'http' && /HTTP 404/.test(e.message)
      ? `No model at ${url} (HTTP 404).` + ($('model-select').value === 'custom' ? '' : ' The demo model is not deployed on this site; choose another model.')
      : `Cannot read the model's manifest (${e.message}).`;
    return null;
  }
}

async function deleteCached(id, name) {
  if (!(await confirmAction($('confirm'), `Delete ${name || id} from this browser? It has to be downloaded again to be used.`, 'Delete')))
    return;
  if (state.loading) state.loading.abort();
  await state.rt.Owlet.cache.delete(id, state.backend);
  const inUse = state.owl && state.owl.manifest.id === id;
  clearNotice('load');
  remark(`Deleted the cached copy of ${name || id}.`);
  if (inUse) notice(`${name || id} was deleted from this browser; the loaded copy keeps working until the page is reloaded.`, 'info', 'deleted');
  await describeModel();
  await showUsage();
}

/** "Cached models: N (MB)": complete models, and downloads that stopped part way (their kept bytes). */
export async function showUsage() {
  const list = $('cache-list');
  if (!state.rt || !state.backend) {
    $('storage-usage').textContent = 'No persistent storage: models are kept for this visit only.';
    list.replaceChildren();
    return;
  }
  try {
    const cache = state.rt.Owlet.cache;
    const [u, models, partial] = await Promise.all([cache.usage(state.backend), cache.list(state.backend), partialIds(state.backend)]);
    const m = state.manifest;
    const kept = m && partial.includes(m.id) ? (await cacheState(state.backend, m)).bytes : 0;
    $('storage-usage').textContent = `Cached models: ${u.models + partial.length} (${mb(u.bytes + kept)})` +
      (partial.length ? `, ${partial.length} of them partly downloaded.` : '.') +
      (u.usage != null && u.quota ? ` This site uses ${mb(u.usage)} of ${mb(u.quota)} allowed.` : '');
    const item = (id, name, words) => {
      const li = el('li', {}, words);
      const b = el('button', { type: 'button' }, 'Delete');
      b.setAttribute('aria-label', `Delete ${name || id} from this browser`);
      b.addEventListener('click', () => deleteCached(id, name));
      li.append(b);
      return li;
    };
    list.replaceChildren(...models.map((x) => item(x.id, x.name, `${x.name || x.id}, ${mb(x.totalSize || 0)}`)),
      ...partial.map((id) => item(id, m && m.id === id ? m.name : id,
        `${(m && m.id === id && m.name) || id}, partly downloaded${m && m.id === id ? ` (${mb(kept)} kept)` : ''}`)));
  } catch (e) { $('storage-usage').textContent = `Storage: ${e.message}`; }
}

export async function loadModel() {
  if (!state.rt) return;
  const url = manifestUrl();
  if (!url) { say('Choose a model first.', 'error', 'load'); return; }
  if (state.loading) return;
  if (state.asking) state.asking.abort();
  const ac = new AbortController();
  state.loading = ac;
  clearNotice('load', 'deleted');
  setBusy(true);
  showModelPanel(true);
  document.body.dataset.model = 'loading';
  delete document.body.dataset.firstStage;
  $('progress-box').hidden = false;
  $('progress-text').textContent = 'Starting…';
  try {
    if (state.owl) { await state.owl.unload(); state.owl = null; state.chat = null; }
    // early: a model in stages is usable for pictures once its first stage (the vision
    // tower) has loaded; the picture on the pad is read while the rest loads
    const opts = { onProgress, signal: ac.signal, wasmBase: WASM_BASE, aspect: settings.aspect || undefined, early: true };
    if (settings.threads > 0) opts.threads = settings.threads;
    opts.backend = state.backend || new state.rt.store.MemoryBackend();
    const owl = await state.rt.Owlet.load(url, opts);
    onFirstStage(owl);
    try { await owl.loaded; } catch (e) {
      state.owl = null;
      state.chat = null;
      await owl.unload();
      throw e;
    }
    onLoaded(owl);
  } catch (e) {
    await onLoadFailed(e);
  } finally {
    state.loading = null;
    setBusy(false);
    await describeModel();
    await showUsage();
    document.body.dataset.model = state.owl ? 'ready' : 'none';
    if (state.owl) { showModelPanel(false); $('question').focus(); warmPicture(); }
  }
}

/** The model's first stage has loaded (all of it, for a one-stage model): pictures can be read. */
function onFirstStage(owl) {
  state.owl = owl;
  state.chat = owl.chat();
  // a picture already on the pad (not the blank one the page starts with) is new to this engine
  if (board && (board.undo.length > 0 || state.photo)) pictureChanged(board.c);
  document.body.dataset.firstStage = 'true';
  warmPicture();
}

function onLoaded(owl) {
  if ($('messages').children.length) {
    addMessage($('messages'), 'system', 'The model was reloaded: a new conversation starts here.');
    $('attach').checked = true;
  }
  endProgress();
  $('load-progress').value = 1;
  const name = (owl.manifest && owl.manifest.name) || owl.info.name || 'the model';
  const threads = `${owl.threads} thread${owl.threads > 1 ? 's' : ''}`;
  $('progress-text').textContent = `Ready: ${name} on ${threads} (${owl.build}).`;
  $('model-chip-text').textContent = `${name} · ready · ${threads}`;
  $('load').textContent = 'Reload model';
  clearNotice('need-model', 'load');
  remark(`${name} is ready. Draw or open a picture and ask a question.`);
  updateModelView();
  showPhotoWarning();
}

async function onLoadFailed(e) {
  endProgress();
  if (e.name === 'AbortError') {
    $('progress-text').textContent = 'Download cancelled. The parts already downloaded are kept: loading again resumes.';
    return;
  }
  const m = state.manifest;
  const kept = m && state.backend ? (await cacheState(state.backend, m)).chunks > 0 : false;
  const w = loadErrorWords(e, { kept });
  $('progress-text').textContent = kept ? 'Stopped; the parts downloaded so far are kept.' : 'Stopped.';
  notice(w.text, 'error', 'load', w.details);
}

export function setBusy(loading) {
  $('cancel-load').hidden = !loading;
  $('load').disabled = loading || !state.rt || !hasSimd();
  $('model-select').disabled = loading;
  $('model-url').disabled = loading;
  updateAskButtons();
}

/** The model panel in full (choosing, loading, settings), or folded into the chip once a model is ready. */
export function showModelPanel(open) {
  const ready = !!state.owl && !state.loading;
  $('model-chip').hidden = !ready;
  $('model').hidden = ready && !open;
  $('model-chip').setAttribute('aria-expanded', String(!$('model').hidden));
}

/** The demo model's "what it can answer" (and the example questions that go with the model). */
function showDemoHelp() {
  const demo = isDemo(state.manifest, state.modelUrl);
  $('demo-help').hidden = !demo;
  const box = $('suggestions');
  const want = demo ? DEMO_QUESTIONS : GENERAL_QUESTIONS;
  if (box.dataset.set === String(demo)) return;
  box.dataset.set = String(demo);
  box.replaceChildren(...want.map((s) => {
    const b = el('button', { type: 'button', className: 'suggestion' }, s);
    b.addEventListener('click', () => { $('question').value = s; $('question').focus(); });
    return b;
  }));
  showPhotoWarning();
}

export function wireModelPanel() {
  const sel = $('model-select');
  const fromParam = params.get('model');
  if (fromParam) { settings.model = 'custom'; settings.customUrl = fromParam; }
  if (settings.model === 'custom') { sel.value = 'custom'; $('model-url').value = settings.customUrl; }
  $('model-url-row').hidden = sel.value !== 'custom';
  sel.addEventListener('change', () => {
    $('model-url-row').hidden = sel.value !== 'custom';
    settings.model = sel.value;
    saveSettings(settings);
    describeModel();
  });
  $('model-url').addEventListener('change', () => {
    settings.customUrl = $('model-url').value.trim();
    saveSettings(settings);
    describeModel();
  });
  $('load').addEventListener('click', () => loadModel());
  $('cancel-load').addEventListener('click', () => { if (state.loading) state.loading.abort(); });
  $('delete-cache').addEventListener('click', () => {
    const m = state.manifest;
    if (m && state.rt) deleteCached(m.id, m.name);
  });
  $('model-chip').addEventListener('click', () => {
    showModelPanel($('model').hidden);
    if (!$('model').hidden) $('load').focus();
  });
}
