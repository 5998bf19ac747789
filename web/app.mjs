// app.mjs - owlet's image-chat page: wires the model panel, the picture and the
// chat to the runtime (owlet/owlet.mjs). Plain ES modules, no build step; user
// and model text only ever goes into the page through textContent.

import { hasSimd, threadState, hasStorage, ensureIsolation } from './env.mjs';
import { loadSettings, saveSettings } from './settings.mjs';
import { DrawingBoard, COLOURS, TOOLS } from './draw.mjs';
import { wirePictureSources, renderModelView } from './picture.mjs';
import { importRuntime, describeProgress, cacheState, mb, WASM_BASE } from './model.mjs';

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, text) => {
  const e = Object.assign(document.createElement(tag), props);
  if (text !== undefined) e.textContent = text;
  return e;
};

const settings = loadSettings();
const params = new URLSearchParams(location.search);
const state = {
  rt: null, backend: null, owl: null, chat: null, manifest: null, loading: null, asking: null,
  pictureDirty: true, modelUrl: '', isolation: 'unknown', storage: false,
};
/** Test hook: the page's state, read-only by convention. */
globalThis.owletApp = state;

// ---------------------------------------------------------------- notices

/** A notice at the top (kind: 'info' | 'warn' | 'error'); `key` replaces an earlier one. */
function notice(text, kind = 'info', key = '') {
  const box = $('notices');
  if (key) for (const n of box.querySelectorAll(`[data-key="${key}"]`)) n.remove();
  const p = el('p', { className: `notice ${kind}` }, text);
  if (key) p.dataset.key = key;
  const x = el('button', { type: 'button', className: 'dismiss' }, '×');
  x.setAttribute('aria-label', 'Dismiss this message');
  x.addEventListener('click', () => p.remove());
  p.append(x);
  box.append(p);
  return p;
}
const say = (text, kind = 'info') => notice(text, kind, kind === 'error' ? '' : 'status');

// ---------------------------------------------------------------- settings form

const fields = { temperature: 'set-temperature', topP: 'set-top-p', maxTokens: 'set-max-tokens', threads: 'set-threads',
  aspect: 'set-aspect', sw: 'set-sw' };
function wireSettings() {
  for (const [k, id] of Object.entries(fields)) {
    const input = $(id);
    input.value = String(settings[k]);
    input.addEventListener('change', () => {
      const v = input.tagName === 'SELECT' ? input.value : Number(input.value);
      if (input.tagName !== 'SELECT' && !(Number.isFinite(v) && v >= Number(input.min) && v <= Number(input.max))) {
        input.setAttribute('aria-invalid', 'true');
        say(`${input.labels[0].textContent}: want a number from ${input.min} to ${input.max}.`, 'error');
        return;
      }
      input.removeAttribute('aria-invalid');
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

function showEnvironment() {
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

// ---------------------------------------------------------------- model panel

function manifestUrl() {
  const v = $('model-select').value;
  const raw = v === 'custom' ? $('model-url').value.trim() : v;
  if (!raw) return '';
  try { return new URL(raw, document.baseURI).href; } catch { return ''; }
}

async function describeModel() {
  const url = manifestUrl();
  state.modelUrl = url;
  state.manifest = null;
  const info = $('model-info');
  $('delete-cache').disabled = true;
  if (!url) { info.textContent = 'Enter the URL of a model manifest (manifest.json).'; return null; }
  if (!state.rt) return null;
  info.textContent = 'Reading the model manifest…';
  try {
    const m = await state.rt.store.loadManifest(url);
    if (state.modelUrl !== url) return null;
    state.manifest = m;
    const model = (m.raw && m.raw.model) || {};
    const cs = await cacheState(state.backend, m);
    const cached = { cached: 'cached in this browser', partial: `partly downloaded (${cs.chunks} of ${m.chunks.length} chunks kept)`,
      none: 'not downloaded yet' }[cs.state];
    info.textContent = `${m.name || m.id}: ${mb(m.totalSize)}, ${model.quant || 'unknown quant'}` +
      `${model.parameters ? `, ${(model.parameters / 1e6).toFixed(1)} M parameters` : ''} — ${cached}.`;
    $('delete-cache').disabled = cs.state === 'none';
    if (!state.owl || state.owl.manifest.id !== m.id)
      $('load').textContent = cs.state === 'cached' ? 'Load model' : cs.state === 'partial' ? 'Resume download' : `Download and load (${mb(m.totalSize)})`;
    return cs;
  } catch (e) {
    if (state.modelUrl !== url) return null;
    info.textContent = e.code === 'http' && /HTTP 404/.test(e.message)
      ? `No model at ${url} (HTTP 404).` + ($('model-select').value === 'custom' ? '' : ' The demo model is not deployed on this site; choose another model.')
      : `Cannot read the manifest: ${e.message}`;
    return null;
  }
}

async function deleteCached(id, name) {
  if (state.loading) state.loading.abort();
  await state.rt.Owlet.cache.delete(id, state.backend);
  const inUse = state.owl && state.owl.manifest.id === id;
  say(`Deleted the cached copy of ${name || id}.` + (inUse ? ' The loaded model keeps working until the page is reloaded.' : ''));
  await describeModel();
  await showUsage();
}

async function showUsage() {
  const list = $('cache-list');
  if (!state.rt || !state.backend) {
    $('storage-usage').textContent = 'No persistent storage: models are kept for this visit only.';
    list.replaceChildren();
    return;
  }
  try {
    const cache = state.rt.Owlet.cache;
    const [u, models] = await Promise.all([cache.usage(state.backend), cache.list(state.backend)]);
    $('storage-usage').textContent = `Cached models: ${u.models} (${mb(u.bytes)}).` +
      (u.usage != null && u.quota ? ` This site uses ${mb(u.usage)} of ${mb(u.quota)} allowed.` : '');
    list.replaceChildren(...models.map((m) => {
      const li = el('li', {}, `${m.name || m.id}, ${mb(m.totalSize || 0)}`);
      const b = el('button', { type: 'button' }, 'Delete');
      b.setAttribute('aria-label', `Delete ${m.name || m.id} from this browser`);
      b.addEventListener('click', () => deleteCached(m.id, m.name));
      li.append(b);
      return li;
    }));
  } catch (e) { $('storage-usage').textContent = `Storage: ${e.message}`; }
}

let progressFrame = 0, lastProgress = null, spoken = '';
function onProgress(p) {
  lastProgress = p;
  // Screen readers hear the phase and every quarter, not every update.
  const quarter = p.bytesTotal > 0 ? Math.floor((4 * p.bytesDone) / p.bytesTotal) : 0;
  const phase = p.phase === 'verify' ? 'download' : p.phase;
  const words = `${phase === 'download' ? 'Downloading' : phase === 'load' ? 'Loading' : 'Ready'}: ${quarter * 25}%`;
  if (words !== spoken && phase !== 'ready') { spoken = words; $('load-status').textContent = words; }
  if (progressFrame) return;
  progressFrame = requestAnimationFrame(() => {
    progressFrame = 0;
    const q = lastProgress;
    const bar = $('load-progress');
    bar.value = q.bytesTotal > 0 ? q.bytesDone / q.bytesTotal : 0;
    bar.textContent = `${Math.round(bar.value * 100)}%`;
    $('progress-text').textContent = describeProgress(q);
  });
}

async function loadModel() {
  if (!state.rt) return;
  const url = manifestUrl();
  if (!url) { say('Choose a model first.', 'error'); return; }
  if (state.loading) return;
  if (state.asking) state.asking.abort();
  const ac = new AbortController();
  state.loading = ac;
  setBusy(true);
  document.body.dataset.model = 'loading';
  $('progress-box').hidden = false;
  $('progress-text').textContent = 'Starting…';
  try {
    if (state.owl) { await state.owl.unload(); state.owl = null; state.chat = null; }
    const opts = { onProgress, signal: ac.signal, wasmBase: WASM_BASE, aspect: settings.aspect || undefined };
    if (settings.threads > 0) opts.threads = settings.threads;
    if (state.backend) opts.backend = state.backend;
    else opts.backend = new state.rt.store.MemoryBackend();
    const owl = await state.rt.Owlet.load(url, opts);
    state.owl = owl;
    state.chat = owl.chat();
    if ($('messages').children.length) {
      $('messages').append(el('li', { className: 'msg system' }, 'The model was reloaded: a new conversation starts here.'));
      $('attach').checked = true;
    }
    if (progressFrame) { cancelAnimationFrame(progressFrame); progressFrame = 0; }
    $('load-progress').value = 1;
    const name = (owl.manifest && owl.manifest.name) || owl.info.name || 'the model';
    $('progress-text').textContent = `Ready: ${name} on ${owl.threads} thread${owl.threads > 1 ? 's' : ''} (${owl.build}).`;
    $('load').textContent = 'Reload model';
    say(`${name} is ready. Draw or open a picture and ask a question.`);
    updateModelView();
  } catch (e) {
    if (progressFrame) { cancelAnimationFrame(progressFrame); progressFrame = 0; }
    if (e.name === 'AbortError') {
      $('progress-text').textContent = 'Download cancelled. The chunks already downloaded are kept: loading again resumes.';
    } else {
      $('progress-text').textContent = `Could not load the model: ${e.message}`;
      notice(`Could not load the model: ${e.message}`, 'error');
    }
  } finally {
    state.loading = null;
    setBusy(false);
    await describeModel();
    await showUsage();
    document.body.dataset.model = state.owl ? 'ready' : 'none';
  }
}

function setBusy(loading) {
  $('cancel-load').hidden = !loading;
  $('load').disabled = loading || !state.rt || !hasSimd();
  $('model-select').disabled = loading;
  $('model-url').disabled = loading;
  updateAskButtons();
}

function wireModelPanel() {
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
}

// ---------------------------------------------------------------- picture

let board;
function wirePicture() {
  board = new DrawingBoard({
    pixels: $('draw'), overlay: $('draw-overlay'),
    onChange: () => { state.pictureDirty = true; $('attach').checked = true; $('undo').disabled = board.undo.length === 0; updateModelView(); },
    onStatus: (m) => { $('draw-status').textContent = `Drawing: ${m}.`; },
  });
  const tools = $('tool-buttons');
  for (const t of TOOLS) {
    const b = el('button', { type: 'button', className: 'tool' }, t);
    b.dataset.tool = t;
    b.setAttribute('aria-pressed', String(t === board.tool));
    b.addEventListener('click', () => {
      board.tool = t;
      for (const x of tools.children) x.setAttribute('aria-pressed', String(x === b));
    });
    tools.append(b);
  }
  const pal = $('palette');
  for (const c of COLOURS) {
    const b = el('button', { type: 'button', className: 'swatch', title: c[0] });
    b.dataset.colour = c[0];
    b.setAttribute('aria-label', c[0]);
    b.setAttribute('aria-pressed', String(c === board.colour));
    b.append(el('span', { className: 'chip' }));
    b.lastChild.dataset.colour = c[0].split(' ')[0];
    b.addEventListener('click', () => {
      board.colour = c;
      $('colour-name').textContent = c[0];
      for (const x of pal.children) x.setAttribute('aria-pressed', String(x === b));
    });
    pal.append(b);
  }
  const slider = (id, key) => {
    const s = $(id);
    s.value = String(board[key]);
    $(`${id}-out`).textContent = s.value;
    s.addEventListener('input', () => { board[key] = Number(s.value); $(`${id}-out`).textContent = s.value; });
  };
  slider('pen-width', 'penWidth');
  slider('shape-size', 'shapeSize');
  $('shape-filled').addEventListener('change', (e) => { board.filled = e.target.checked; });
  $('undo').addEventListener('click', () => board.undoLast());
  $('clear').addEventListener('click', () => { board.clear(); say('Picture cleared.'); });
  $('show-model-view').addEventListener('change', updateModelView);

  wirePictureSources({
    board, fileInput: $('file-input'), dropZone: $('drop-zone'), dropHint: $('drop-hint'),
    camera: { open: $('camera-open'), box: $('camera-box'), video: $('camera-video'), snap: $('camera-snap'), close: $('camera-close') },
    say,
  });
}

function updateModelView() {
  const on = $('show-model-view').checked;
  $('model-view-box').hidden = !on;
  if (!on || !board) return;
  const info = state.owl && state.owl.info;
  const size = (info && info.image_size) || 448;
  const aspect = settings.aspect || (info && info.aspect) || 'pad';
  renderModelView(board.c, $('model-view'), size, aspect);
  $('model-view-caption').textContent = `${size}×${size} pixels, ${aspect === 'pad' ? 'padded' : aspect === 'crop' ? 'centre-cropped' : 'stretched'} to a square` +
    (info ? '' : ' (load a model to see its own input size)') + '.';
}

// ---------------------------------------------------------------- chat

const SUGGESTIONS = ['What shape is this?', 'What colour is the shape?', 'How many shapes are there?', 'Describe the image.'];

function updateAskButtons() {
  const asking = !!state.asking;
  $('send').disabled = asking || !!state.loading;
  $('stop').disabled = !asking;
}

/** Keep the conversation scrolled to its end (inside its own box, the page does not jump). */
function scrollLog() {
  const log = $('log');
  log.scrollTop = log.scrollHeight;
}

function addMessage(role, text) {
  const li = el('li', { className: `msg ${role}` });
  li.append(el('span', { className: 'who' }, role === 'user' ? 'You' : 'owlet'));
  const body = el('p', { className: 'text' }, text);
  li.append(body);
  $('messages').append(li);
  scrollLog();
  return { li, body };
}

function timingText(a, b, wallMs) {
  const d = (k) => (b[k] >= a[k] ? b[k] - a[k] : b[k]);
  const pt = d('promptTokens'), pms = d('prefillMs'), ct = d('completionTokens'), dms = d('decodeMs'), ims = d('imageEncodeMs');
  const parts = [];
  if (d('images') > 0) parts.push(`image encode ${ims.toFixed(0)} ms`);
  parts.push(`prefill ${pt} tokens in ${pms.toFixed(0)} ms` + (pms > 0 ? ` (${((pt * 1000) / pms).toFixed(0)} tok/s)` : ''));
  parts.push(`decode ${ct} tokens` + (dms > 0 ? ` at ${((ct * 1000) / dms).toFixed(1)} tok/s` : ''));
  parts.push(`total ${(wallMs / 1000).toFixed(2)} s, ${b.threads} thread${b.threads > 1 ? 's' : ''}`);
  return parts.join(' · ');
}

async function ask(text) {
  if (!state.owl) { say('Load the model first (section 1).', 'error'); $('load').focus(); return; }
  if (state.asking) return;
  const ac = new AbortController();
  state.asking = ac;
  updateAskButtons();
  const attach = $('attach').checked;
  const u = addMessage('user', text);
  if (attach) {
    const thumb = el('img', { className: 'thumb', alt: 'the picture sent with this question', width: 64, height: 64 });
    board.c.toBlob((blob) => { if (blob) thumb.src = URL.createObjectURL(blob); });
    u.li.insertBefore(thumb, u.body);
  }
  const a = addMessage('assistant', '');
  a.li.setAttribute('aria-busy', 'true');
  a.body.classList.add('streaming');
  const t0 = performance.now();
  let before = null;
  try {
    before = await state.owl.stats();
    if (attach) {
      await state.chat.addImage(board.c, { signal: ac.signal });
      state.pictureDirty = false;
      $('attach').checked = false;
    }
    // A fresh seed per answer, so "ask again" at temperature > 0 gives another sample.
    const o = { temperature: settings.temperature, topP: settings.topP, maxTokens: settings.maxTokens, signal: ac.signal,
      seed: Math.floor(Math.random() * 2 ** 31) };
    for await (const piece of state.chat.ask(text, o)) { a.body.textContent += piece; scrollLog(); }
    if (!a.body.textContent) a.body.textContent = '(no answer)';
  } catch (e) {
    if (e.name === 'AbortError') a.li.append(el('span', { className: 'note' }, 'stopped'));
    else {
      const msg = e.code === 'limit' && /context|ctx/i.test(e.message)
        ? `The conversation is longer than the model's context (${e.message}). Start a new chat.` : `The model failed: ${e.message}`;
      a.li.append(el('span', { className: 'note error' }, `error: ${e.message}`));
      notice(msg, 'error');
    }
  } finally {
    a.body.classList.remove('streaming');
    a.li.setAttribute('aria-busy', 'false');
    try {
      if (before && state.owl) a.li.append(el('p', { className: 'timings' }, timingText(before, await state.owl.stats(), performance.now() - t0)));
    } catch { /* stats are best effort */ }
    state.asking = null;
    updateAskButtons();
  }
}

function wireChat() {
  const form = $('ask-form'), q = $('question');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = q.value.trim();
    if (!text) { say('Type a question first.', 'error'); q.focus(); return; }
    q.value = '';
    ask(text);
  });
  q.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
  });
  $('stop').addEventListener('click', () => { if (state.asking) state.asking.abort(); });
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape' && state.asking) state.asking.abort(); });
  $('new-chat').addEventListener('click', async () => {
    if (state.asking) state.asking.abort();
    $('messages').replaceChildren();
    $('attach').checked = true;
    if (state.owl) {
      const old = state.chat;
      state.chat = state.owl.chat();
      if (old) await old.reset().catch(() => {});
    }
    say('New chat started.');
    q.focus();
  });
  for (const s of SUGGESTIONS) {
    const b = el('button', { type: 'button', className: 'suggestion' }, s);
    b.addEventListener('click', () => { q.value = s; q.focus(); });
    $('suggestions').append(b);
  }
}

// ---------------------------------------------------------------- start

async function start() {
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
    if (state.storage) state.backend = new state.rt.store.IdbBackend();
  } catch (e) {
    notice(`The owlet engine files could not be loaded (${e.message}). Check that owlet/ is deployed next to this page (docs/DEPLOY.md).`, 'error', 'runtime');
    $('model-info').textContent = 'The engine is missing.';
    return;
  }
  setBusy(false);
  const cs = await describeModel();
  await showUsage();
  document.body.dataset.ready = 'true';
  if (cs && cs.state === 'cached' && settings.autoload && hasSimd()) loadModel();
}

start();
