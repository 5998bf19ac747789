// warm.mjs - read the picture while the user types. As soon as a whole picture
// arrives (file, drop, paste, camera), or the user turns from the drawing pad to
// the question box (focus or typing: the drawing is likely done), the picture is
// added to the conversation (chat.addImage: the vision tower) and primed
// (chat.prime: the prompt up to and including the picture runs through the
// model), so Send only runs the question's own tokens. For the 7B that moves
// the encode (13-17 s) and most of the prompt (~70 of ~87 positions) out of the
// wait after Send. One read at a time; a picture changed meanwhile replaces the
// one added (chat.clearImages) the next time; a read in flight when the picture
// changes is aborted (the engine stops at its next layer in the threaded builds).
// A question sent during a read of the same picture waits for it (the engine
// runs one job at a time).

import { $ } from './dom.mjs';
import { state } from './page.mjs';

/** "reading the picture…" shows only for reads longer than this (the demo model takes milliseconds). */
const SHOW_AFTER_MS = 400;

let version = 0; // the pad's picture, counted by its changes
let canvas = null;
let added = null; // {version, chat, ms, rows}: the picture added (and primed) for the next question
let running = null, again = false;
let reading = null; // the AbortController of the read in flight

function show(text) { $('warm-state').textContent = text; }

/** The picture on c changed: the one added (if any) is no longer it. */
export function pictureChanged(c) {
  canvas = c;
  version++;
  if (reading) reading.abort(); // reading a picture that is gone: stop it
  show('');
}

/** Read the picture ahead if it is not the one added for the next question already. */
export function warmPicture() {
  const owl = state.owl;
  // (during a load state.owl is set once the model's first stage is in: Owlet.load's early)
  if (!owl || !canvas || state.asking || !owl.info.has_vision || !$('attach').checked) return;
  if (running) { again = true; return; }
  if (added && added.version === version && added.chat === state.chat) return;
  running = read().finally(() => {
    running = null;
    if (again) { again = false; warmPicture(); }
  });
}

async function read() {
  const chat = state.chat, v = version, owl = state.owl;
  const slow = setTimeout(() => show('· reading the picture…'), SHOW_AFTER_MS);
  const ac = new AbortController();
  reading = ac;
  const { signal } = ac;
  try {
    const t0 = performance.now();
    const before = await owl.stats();
    if (added && added.chat === chat) await chat.clearImages();
    added = null;
    await chat.addImage(canvas, { signal });
    added = { version: v, chat, ms: 0, rows: 0 };
    if (version === v && !state.asking) await chat.prime({ signal });
    const after = await owl.stats();
    added.ms = performance.now() - t0;
    added.rows = after.promptTokens - before.promptTokens;
    if (version === v) show('· picture read');
  } catch {
    if (version === v) show(''); // the question's own addImage reports what is wrong with the picture
  } finally {
    clearTimeout(slow);
    if (reading === ac) reading = null;
  }
}

/**
 * At Send, after any read in flight: make the next question carry exactly the
 * picture on the pad (attach: the canvas pad) or none. Returns what was read
 * ahead for it ({ms, rows}) or null when the picture is added now.
 */
export async function pictureForQuestion(attach, pad, signal) {
  if (running) await running;
  const chat = state.chat;
  const mine = added && added.chat === chat ? added : null;
  added = null;
  show('');
  if (attach && mine && mine.version === version && pad === canvas) return mine;
  if (mine) await chat.clearImages(); // a picture added before it changed, or no picture wanted now
  if (attach) await chat.addImage(pad, { signal });
  return null;
}
