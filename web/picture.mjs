// picture.mjs - image sources into the drawing board (file picker, drag and
// drop, clipboard paste, camera snapshot) and the "what the model sees" preview.

/** Decode an image file/blob into something drawable. */
async function decode(blob) {
  if (!blob || !/^image\//.test(blob.type || 'image/')) throw new Error(`not an image (${blob && blob.type})`);
  if (typeof createImageBitmap === 'function') return createImageBitmap(blob);
  const url = URL.createObjectURL(blob);
  try {
    const img = new Image();
    img.src = url;
    await img.decode();
    return img;
  } finally { URL.revokeObjectURL(url); }
}

/**
 * Wire the picture sources to board.setImage.
 * @param {{board:any, fileInput:HTMLInputElement, dropZone:HTMLElement, dropHint:HTMLElement,
 *          camera:{open:HTMLButtonElement, box:HTMLElement, video:HTMLVideoElement, snap:HTMLButtonElement,
 *          close:HTMLButtonElement}, say:(msg:string, kind?:string)=>void, onImage:(how:string)=>void}} o
 *   onImage: a picture arrived (the page warns, moves focus on)
 */
export function wirePictureSources(o) {
  const { board, say } = o;
  const use = async (blob, how) => {
    try {
      const img = await decode(blob);
      board.setImage(img);
      if (img.close) img.close();
      o.onImage(how);
    } catch (e) {
      say(`Could not use that picture: ${e.message}`, 'error');
    }
  };

  // the file input is hidden behind its label: the label shows its focus (one ring, not two)
  const label = document.querySelector(`label[for="${o.fileInput.id}"]`);
  o.fileInput.addEventListener('focus', () => label && label.classList.toggle('focus-ring', o.fileInput.matches(':focus-visible')));
  o.fileInput.addEventListener('blur', () => label && label.classList.remove('focus-ring'));
  o.fileInput.addEventListener('change', () => {
    const f = o.fileInput.files && o.fileInput.files[0];
    if (f) use(f, `the file ${f.name}`);
    o.fileInput.value = '';
  });

  const z = o.dropZone;
  const hint = (on) => { o.dropHint.hidden = !on; z.classList.toggle('dragging', on); };
  z.addEventListener('dragover', (e) => { e.preventDefault(); e.dataTransfer.dropEffect = 'copy'; hint(true); });
  z.addEventListener('dragleave', () => hint(false));
  z.addEventListener('drop', (e) => {
    e.preventDefault();
    hint(false);
    const f = [...(e.dataTransfer.files || [])].find((x) => x.type.startsWith('image/'));
    if (f) use(f, 'a dropped file'); else say('Drop an image file (PNG, JPEG, GIF, WebP…).', 'error');
  });

  document.addEventListener('paste', (e) => {
    const t = e.target;
    const items = [...((e.clipboardData && e.clipboardData.items) || [])];
    const item = items.find((x) => x.kind === 'file' && x.type.startsWith('image/'));
    if (!item) return; // text pastes go to the text box as usual
    if (t && t.tagName === 'TEXTAREA' && items.some((x) => x.kind === 'string')) return;
    e.preventDefault();
    use(item.getAsFile(), 'the clipboard');
  });

  wireCamera(o);
}

/** The camera: opt-in, the stream stops when its box closes; a snapshot goes to the board. */
function wireCamera(o) {
  const { board, say } = o;
  const cam = o.camera;
  let stream = null;
  const stop = () => {
    if (stream) for (const tr of stream.getTracks()) tr.stop();
    stream = null;
    cam.video.srcObject = null;
    cam.box.hidden = true;
    cam.open.disabled = false;
  };
  cam.open.addEventListener('click', async () => {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      say('This browser (or a page not served over HTTPS) cannot use the camera.', 'error');
      return;
    }
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false });
      cam.video.srcObject = stream;
      cam.box.hidden = false;
      cam.open.disabled = true;
      cam.snap.focus();
    } catch (e) {
      say(`The camera is not available: ${e.message || e.name}`, 'error');
    }
  });
  cam.snap.addEventListener('click', () => {
    if (!cam.video.videoWidth) { say('The camera has no picture yet; try again in a moment.', 'error'); return; }
    board.setImage(cam.video);
    stop();
    o.onImage('the camera');
  });
  cam.close.addEventListener('click', () => { stop(); cam.open.focus(); });
}

/**
 * Draw into `out` (size×size) the square picture the model receives: the
 * engine squares the image by `aspect` then resizes it to the model's input
 * size (bicubic, like Pillow; the browser's resampling here is close, not exact).
 * @param {HTMLCanvasElement} src @param {HTMLCanvasElement} out
 * @param {number} size @param {string} aspect 'pad'|'stretch'|'crop'
 */
export function renderModelView(src, out, size, aspect) {
  out.width = size; out.height = size;
  const g = out.getContext('2d');
  g.imageSmoothingEnabled = true;
  g.imageSmoothingQuality = 'high';
  const w = src.width, h = src.height;
  if (aspect === 'stretch' || w === h) {
    g.drawImage(src, 0, 0, size, size);
  } else if (aspect === 'crop') {
    const s = Math.min(w, h);
    g.drawImage(src, (w - s) / 2, (h - s) / 2, s, s, 0, 0, size, size);
  } else { // pad: expand2square with the CLIP mean colour, image centred on the long axis
    const m = Math.max(w, h), k = size / m;
    g.fillStyle = 'rgb(122, 116, 104)';
    g.fillRect(0, 0, size, size);
    const x = w < h ? Math.floor((h - w) / 2) : 0, y = h < w ? Math.floor((w - h) / 2) : 0;
    g.drawImage(src, 0, 0, w, h, x * k, y * k, w * k, h * k);
  }
}
