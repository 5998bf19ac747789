// chat.mjs - the conversation and the composer: ask (the picture attached
// when ticked), stream the answer, stop, errors in words, New chat (after asking).

import { $, el } from './dom.mjs';
import { settings, state } from './page.mjs';
import { notice, clearNotice, remark, confirmAction } from './notices.mjs';
import { addMessage, addThumb, addTimings, timingText } from './messages.mjs';
import { showModelPanel } from './model-panel.mjs';
import { board } from './pad.mjs';
import { warmPicture, pictureForQuestion } from './warm.mjs';

export function updateAskButtons() {
  const asking = !!state.asking;
  $('send').disabled = asking || !!state.loading;
  $('stop').disabled = !asking;
}

/** Keep the conversation scrolled to its end (inside its own box); the first-visit hint goes once it has messages. */
function scrollLog() {
  const log = $('log');
  log.scrollTop = log.scrollHeight;
  $('intro').querySelector('.empty').hidden = $('messages').children.length > 0;
}

/** On a phone (one column): scroll the page so the composer, the pad above it and the latest answer are on screen. */
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
    const ahead = await pictureForQuestion(attach, board.c, ac.signal);
    if (attach) {
      state.pictureDirty = false;
      $('attach').checked = false;
    }
    if (ahead) before.ahead = ahead;
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
  $('question').focus(); // at once, with the cleared page: the engine's reset below may take a moment
  if (state.owl) {
    const old = state.chat;
    state.chat = state.owl.chat();
    if (old) await old.reset().catch(() => {});
  }
  remark('New chat started.');
}

export function wireChat() {
  const form = $('ask-form'), q = $('question');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = q.value.trim();
    if (!text) { notice('Type a question first.', 'error', 'question'); q.focus(); return; }
    clearNotice('question');
    q.value = '';
    ask(text);
  });
  q.addEventListener('input', () => { if (q.value.trim()) clearNotice('question'); warmPicture(); });
  q.addEventListener('focus', () => warmPicture()); // the drawing is likely done: read it while the question is typed
  q.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
  });
  $('stop').addEventListener('click', () => { if (state.asking) state.asking.abort(); });
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape' && state.asking) state.asking.abort(); });
  $('new-chat').addEventListener('click', () => newChat());
}
