// app.mjs - owlet's image-chat page: wires the model panel, the picture and the
// chat to the runtime (owlet/owlet.mjs). Plain ES modules, no build step; user
// and model text only ever goes into the page through textContent.

import { hasSimd, threadState, hasStorage, ensureIsolation } from './env.mjs';
import { loadSettings, saveSettings } from './settings.mjs';
import { DrawingBoard, COLOURS, TOOLS } from './draw.mjs';
import { wirePictureSources, renderModelView } from './picture.mjs';
import { importRuntime, describeProgress, cacheState, partialIds, loadLabel, retryText, loadErrorWords, mb,
  WASM_BASE } from './model.mjs';
import { initNotices, notice, clearNotice, remark, confirmAction } from './notices.mjs';
import { addMessage, addThumb, addTimings, timingText } from './messages.mjs';
import { isDemo, photoWarning, DEMO_QUESTIONS, GENERAL_QUESTIONS } from './demo.mjs';

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
  photo: '', // where the picture on the pad came from when it is not a drawing ('' = drawn)
  manifests: new Map(), // manifest URL -> the last manifest read from it (a dead server still has a Resume button)
};
/** Test hook: the page's state, read-only by convention. */
globalThis.owletApp = state;

/** Errors are notices keyed by their cause; other remarks go to the live region. */
const say = (text, kind = 'info', key = 'misc') => (kind === 'info' ? remark(text) : notice(text, kind, key));

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

async function describeModel() {
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
async function showUsage() {
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

let progressFrame = 0, lastProgress = null, spoken = '', retryTimer = 0;
function stopRetryCountdown() { clearInterval(retryTimer); retryTimer = 0; }

/** "retrying in N s (attempt k of n)", counted down each second until the next try reports. */
function showRetry(p) {
  stopRetryCountdown();
  const until = performance.now() + p.waitMs;
  const show = () => { $('progress-text').textContent = retryText(p, until - performance.now()); };
  show();
  retryTimer = setInterval(show, 250);
}

function onProgress(p) {
  if (p.phase === 'retry') { showRetry(p); return; }
  if (retryTimer && p.phase === 'verify') return; // another chunk's hashing: keep the countdown in view
  stopRetryCountdown();
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
    if (!retryTimer) $('progress-text').textContent = describeProgress(q);
  });
}

function endProgress() {
  stopRetryCountdown();
  if (progressFrame) { cancelAnimationFrame(progressFrame); progressFrame = 0; }
}

async function loadModel() {
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
  $('progress-box').hidden = false;
  $('progress-text').textContent = 'Starting…';
  try {
    if (state.owl) { await state.owl.unload(); state.owl = null; state.chat = null; }
    const opts = { onProgress, signal: ac.signal, wasmBase: WASM_BASE, aspect: settings.aspect || undefined };
    if (settings.threads > 0) opts.threads = settings.threads;
    opts.backend = state.backend || new state.rt.store.MemoryBackend();
    onLoaded(await state.rt.Owlet.load(url, opts));
  } catch (e) {
    await onLoadFailed(e);
  } finally {
    state.loading = null;
    setBusy(false);
    await describeModel();
    await showUsage();
    document.body.dataset.model = state.owl ? 'ready' : 'none';
    if (state.owl) { showModelPanel(false); $('question').focus(); }
  }
}

function onLoaded(owl) {
  state.owl = owl;
  state.chat = owl.chat();
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

function setBusy(loading) {
  $('cancel-load').hidden = !loading;
  $('load').disabled = loading || !state.rt || !hasSimd();
  $('model-select').disabled = loading;
  $('model-url').disabled = loading;
  updateAskButtons();
}

/** The model panel in full (choosing, loading, settings), or folded into the chip once a model is ready. */
function showModelPanel(open) {
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
  $('model-chip').addEventListener('click', () => {
    showModelPanel($('model').hidden);
    if (!$('model').hidden) $('load').focus();
  });
}

// ---------------------------------------------------------------- picture

let board;
function wirePicture() {
  board = new DrawingBoard({
    pixels: $('draw'), overlay: $('draw-overlay'),
    onChange: () => { state.pictureDirty = true; $('attach').checked = true; $('undo').disabled = board.undo.length === 0; updateModelView(); showAttachKind(); },
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
  $('clear').addEventListener('click', () => { board.clear(); setPhoto(''); remark('Picture cleared.'); });
  $('show-model-view').addEventListener('change', updateModelView);

  wirePictureSources({
    board, fileInput: $('file-input'), dropZone: $('drop-zone'), dropHint: $('drop-hint'),
    camera: { open: $('camera-open'), box: $('camera-box'), video: $('camera-video'), snap: $('camera-snap'), close: $('camera-close') },
    say: (text, kind) => say(text, kind, 'picture'),
    onImage: (how) => {
      clearNotice('picture');
      setPhoto(how);
      remark(`Picture from ${how} (${board.c.width}×${board.c.height}).`);
      $('question').focus();
    },
  });
}

/** A picture that was not drawn on the pad (a file, a paste, a drop, the camera); '' when the pad is cleared. */
function setPhoto(how) {
  state.photo = how;
  showAttachKind();
  showPhotoWarning();
}

function showAttachKind() {
  const k = $('attach-kind');
  k.textContent = state.photo ? '(a photo or picture)' : '(the drawing)';
  k.classList.toggle('photo', !!state.photo);
}

/** With the demo model, a picture that is not a drawing gets a warning; it goes when its cause does. */
function showPhotoWarning() {
  if (state.photo && isDemo(state.manifest, state.modelUrl)) notice(photoWarning(state.photo), 'warn', 'photo');
  else clearNotice('photo');
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

function updateAskButtons() {
  const asking = !!state.asking;
  $('send').disabled = asking || !!state.loading;
  $('stop').disabled = !asking;
}

/** Keep the conversation scrolled to its end (inside its own box); on a phone, the pad and composer in view too. */
function scrollLog() {
  const log = $('log');
  log.scrollTop = log.scrollHeight;
  $('intro').querySelector('.empty').hidden = $('messages').children.length > 0;
}

function showAnswerArea() {
  if (matchMedia('(max-width: 760px)').matches) $('ask-form').scrollIntoView({ block: 'end' });
}

async function ask(text) {
  if (!state.owl) {
    notice('Load the model first.', 'error', 'need-model');
    showModelPanel(true);
    $('load').focus();
    return;
  }
  if (state.asking) return;
  const ac = new AbortController();
  state.asking = ac;
  updateAskButtons();
  const attach = $('attach').checked;
  const u = addMessage($('messages'), 'user', text);
  if (attach) addThumb(u, board.c);
  const a = addMessage($('messages'), 'assistant', '');
  scrollLog();
  showAnswerArea();
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
    answerFailed(a.li, e);
  } finally {
    a.body.classList.remove('streaming');
    a.li.setAttribute('aria-busy', 'false');
    try {
      if (before && state.owl) addTimings(a.li, timingText(before, await state.owl.stats(), performance.now() - t0));
    } catch { /* stats are best effort */ }
    state.asking = null;
    updateAskButtons();
    scrollLog();
    showAnswerArea();
  }
}

function answerFailed(li, e) {
  if (e.name === 'AbortError') { li.append(el('span', { className: 'note' }, 'stopped')); return; }
  const long = e.code === 'limit' && /context|ctx/i.test(e.message);
  li.append(el('span', { className: 'note error' }, long ? 'error: the conversation is too long' : 'error: the model failed'));
  notice(long ? 'The conversation is longer than the model can take in. Start a new chat.' : 'The model failed to answer.',
    'error', 'answer', e.message);
}

async function newChat() {
  if ($('messages').children.length &&
      !(await confirmAction($('confirm'), 'Clear this conversation and start a new chat?', 'Clear conversation'))) return;
  if (state.asking) state.asking.abort();
  $('messages').replaceChildren();
  scrollLog();
  $('attach').checked = true;
  clearNotice('answer');
  if (state.owl) {
    const old = state.chat;
    state.chat = state.owl.chat();
    if (old) await old.reset().catch(() => {});
  }
  remark('New chat started.');
  $('question').focus();
}

function wireChat() {
  const form = $('ask-form'), q = $('question');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = q.value.trim();
    if (!text) { notice('Type a question first.', 'error', 'question'); q.focus(); return; }
    clearNotice('question');
    q.value = '';
    ask(text);
  });
  q.addEventListener('input', () => { if (q.value.trim()) clearNotice('question'); });
  q.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
  });
  $('stop').addEventListener('click', () => { if (state.asking) state.asking.abort(); });
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape' && state.asking) state.asking.abort(); });
  $('new-chat').addEventListener('click', () => newChat());
}

// ---------------------------------------------------------------- start

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
    if (state.storage) state.backend = new state.rt.store.IdbBackend();
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
