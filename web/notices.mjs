// notices.mjs - the page's one notice area. A notice has a key (its cause):
// the same key replaces it, and the page removes it when the cause is gone
// (clearNotice). Technical details (URLs, hashes, error text) sit behind a
// <details> disclosure under the human sentence. Passing remarks ("Picture
// cleared.") go to a polite live region instead and leave the page alone.

import { el } from './dom.mjs';

let box = null, live = null, liveTimer = 0;

/** @param {HTMLElement} area the notice list @param {HTMLElement} statusLine a role=status element */
export function initNotices(area, statusLine) { box = area; live = statusLine; }

/**
 * Show a notice. kind: 'info' | 'warn' | 'error'; key: its cause (replaces an
 * earlier notice with that key); details: technical text behind a disclosure.
 * @returns {HTMLElement}
 */
export function notice(text, kind = 'info', key = '', details = '') {
  if (key) clearNotice(key);
  const n = el('div', { className: `notice ${kind}` });
  if (key) n.dataset.key = key;
  const words = el('div', { className: 'words' });
  words.append(el('p', { className: 'text' }, text));
  if (details) {
    const d = el('details');
    d.append(el('summary', {}, 'Details'), el('code', {}, details));
    words.append(d);
  }
  const x = el('button', { type: 'button', className: 'dismiss' }, '×');
  x.setAttribute('aria-label', 'Dismiss this message');
  x.addEventListener('click', () => n.remove());
  n.append(words, x);
  box.append(n);
  return n;
}

/** Remove the notices of these causes (keys). */
export function clearNotice(...keys) {
  for (const k of keys) for (const n of box.querySelectorAll(`.notice[data-key="${k}"]`)) n.remove();
}

/** A passing remark for screen readers (and tests): replaced by the next, gone after 8 s. */
export function remark(text) {
  live.textContent = text;
  clearTimeout(liveTimer);
  liveTimer = setTimeout(() => { live.textContent = ''; }, 8000);
}

/**
 * Ask before a destructive action, in the page's <dialog>.
 * @param {HTMLDialogElement} dialog @param {string} question @param {string} okLabel
 * @returns {Promise<boolean>}
 */
export function confirmAction(dialog, question, okLabel) {
  const ok = dialog.querySelector('#confirm-ok'), cancel = dialog.querySelector('#confirm-cancel');
  dialog.querySelector('#confirm-text').textContent = question;
  ok.textContent = okLabel;
  const back = document.activeElement;
  return new Promise((resolve) => {
    const done = (v) => {
      ok.onclick = cancel.onclick = dialog.oncancel = null;
      if (dialog.open) dialog.close();
      if (back && back.isConnected && !back.disabled) back.focus();
      resolve(v);
    };
    ok.onclick = () => done(true);
    cancel.onclick = () => done(false);
    dialog.oncancel = (e) => { e.preventDefault(); done(false); };
    dialog.showModal();
    cancel.focus();
  });
}
