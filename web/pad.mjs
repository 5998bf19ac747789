// pad.mjs - the drawing pad and the picture sources wired to it (picture.mjs),
// what kind of picture is attached (a drawing, or a photo: the demo model's
// warning), and the "what the model sees" preview.

import { $, el } from './dom.mjs';
import { settings, state, say } from './page.mjs';
import { DrawingBoard, COLOURS, TOOLS } from './draw.mjs';
import { wirePictureSources, renderModelView } from './picture.mjs';
import { notice, clearNotice, remark } from './notices.mjs';
import { isDemo, photoWarning } from './demo.mjs';
import { pictureChanged, warmPicture } from './warm.mjs';

/** The drawing board (its canvas is what a question sends). */
export let board;
export function wirePicture() {
  board = new DrawingBoard({
    pixels: $('draw'), overlay: $('draw-overlay'),
    onChange: () => {
      state.pictureDirty = true; $('attach').checked = true; $('undo').disabled = board.undo.length === 0;
      updateModelView(); showAttachKind(); pictureChanged(board.c);
    },
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
      warmPicture(); // a whole picture: read it while the question is typed
    },
  });
}

/** A picture that was not drawn on the pad (a file, a paste, a drop, the camera); '' when the pad is cleared. */
function setPhoto(how) {
  state.photo = how;
  showAttachKind();
  showPhotoWarning();
}

export function showAttachKind() {
  const k = $('attach-kind');
  k.textContent = state.photo ? '(a photo or picture)' : '(the drawing)';
  k.classList.toggle('photo', !!state.photo);
}

/** With the demo model, a picture that is not a drawing gets a warning; it goes when its cause does. */
export function showPhotoWarning() {
  if (state.photo && isDemo(state.manifest, state.modelUrl)) notice(photoWarning(state.photo), 'warn', 'photo');
  else clearNotice('photo');
}

export function updateModelView() {
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
