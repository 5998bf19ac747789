// warm.mjs - read the picture while the user types: the engine encodes the pad's
// picture into its image cache (owl.warmImage), so Send finds it there and the
// answer starts without the vision tower's wait (13-17 s for the 7B). A whole
// picture (file, drop, paste, camera) is read as it arrives; a drawing when the
// user turns to the question box (focus or typing), i.e. when the drawing is
// likely done. One read at a time; a picture changed meanwhile is read after it.
// A question sent during a read waits for it (the engine runs one job at a time)
// and then finds the picture cached if it did not change.

import { $ } from './dom.mjs';
import { state } from './page.mjs';

/** "reading the picture…" shows only for reads longer than this (the demo model takes milliseconds). */
const SHOW_AFTER_MS = 400;

let running = false, again = false, fresh = true, canvas = null;

function show(text) { $('warm-state').textContent = text; }

/** The picture on c changed: it is unread, and the old status goes. */
export function pictureChanged(c) {
  canvas = c;
  fresh = true;
  show('');
}

/** Read the picture if it changed since the last read (a no-op otherwise). */
export function warmPicture() {
  if (!fresh || !canvas) return;
  const owl = state.owl;
  if (!owl || state.loading || state.asking || !owl.info.has_vision || !$('attach').checked) return;
  if (running) { again = true; return; }
  fresh = false;
  running = true;
  const slow = setTimeout(() => show('· reading the picture…'), SHOW_AFTER_MS);
  owl.warmImage(canvas).then(
    (r) => { if (!fresh) show(r.encoded || $('warm-state').textContent ? '· picture read' : ''); },
    () => { if (!fresh) show(''); }, // the question's own addImage reports what is wrong with the picture
  ).finally(() => {
    clearTimeout(slow);
    running = false;
    if (again) { again = false; warmPicture(); }
  });
}

/** The picture went with a question, or the model changed: nothing to show. */
export function warmDone() { show(''); }
