// messages.mjs - the conversation's messages in the page: a message per turn,
// the picture sent with a question as a thumbnail, and an answer's timings
// behind a "details" toggle. Text only ever goes in through textContent.

import { el } from './dom.mjs';

/**
 * Append a message to the list (role 'user' | 'assistant' | 'system').
 * @param {HTMLOListElement} list @returns {{li:HTMLLIElement, body:HTMLParagraphElement}}
 */
export function addMessage(list, role, text) {
  const li = el('li', { className: `msg ${role}` });
  if (role !== 'system') li.append(el('span', { className: 'who' }, role === 'user' ? 'You' : 'owlet'));
  const body = el('p', { className: 'text' }, text);
  li.append(body);
  list.append(li);
  return { li, body };
}

/** Put a thumbnail of the canvas (as it is now) into a user message. */
export function addThumb(msg, canvas) {
  const thumb = el('img', { className: 'thumb', alt: 'the picture sent with this question', width: 64, height: 64 });
  canvas.toBlob((blob) => { if (blob) thumb.src = URL.createObjectURL(blob); });
  msg.li.insertBefore(thumb, msg.body);
}

/** An answer's timings, folded under a "details" toggle (closed). */
export function addTimings(li, text) {
  const d = el('details', { className: 'timings' });
  d.append(el('summary', {}, 'details'), el('p', {}, text));
  li.append(d);
}

/** Timings of one answer from two owl.stats() snapshots and the wall time. */
export function timingText(a, b, wallMs) {
  const d = (k) => (b[k] >= a[k] ? b[k] - a[k] : b[k]);
  const pt = d('promptTokens'), pms = d('prefillMs'), ct = d('completionTokens'), dms = d('decodeMs'), ims = d('imageEncodeMs');
  const parts = [];
  if (a.ahead) parts.push(`read ahead while the question was typed: the picture and ${a.ahead.rows} prompt positions in ${(a.ahead.ms / 1000).toFixed(1)} s`);
  if (d('images') > 0) parts.push(`image encode ${ims.toFixed(0)} ms`);
  const ca = a.imageCache || {}, cb = b.imageCache || {};
  const hits = (cb.hits || 0) - (ca.hits || 0);
  if (hits > 0) {
    const saved = (cb.savedMs || 0) - (ca.savedMs || 0);
    const amount = saved >= 1000 ? `${(saved / 1000).toFixed(1)} s` : `${saved.toFixed(0)} ms`;
    parts.push(`picture reused from the cache (${hits === 1 ? 'once' : `${hits} times`}): ${amount} of encoding saved`);
  }
  parts.push(`prefill ${pt} tokens in ${pms.toFixed(0)} ms` + (pms > 0 ? ` (${((pt * 1000) / pms).toFixed(0)} tok/s)` : ''));
  parts.push(`decode ${ct} tokens` + (dms > 0 ? ` at ${((ct * 1000) / dms).toFixed(1)} tok/s` : ''));
  parts.push(`total ${(wallMs / 1000).toFixed(2)} s, ${b.threads} thread${b.threads > 1 ? 's' : ''}`);
  return parts.join(' · ');
}
