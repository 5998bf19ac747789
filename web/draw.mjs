// draw.mjs - the picture canvas: pen, shape stamps, colours, undo, and images
// drawn into it. Every image source ends here as canvas pixels, which is what
// the engine receives (chat.addImage(canvas)).
//
// Two stacked canvases: `pixels` holds the picture; `overlay` (on top, focusable)
// takes pointer and keyboard input and shows the keyboard cursor and the shape
// being dragged, so previews never touch the picture.

/** The demo model's colours (weights_tool/train_demo/shapes.py), plus white to erase. */
export const COLOURS = [
  ['red', '#dc1e23'], ['orange', '#f58714'], ['yellow', '#f0d719'], ['green', '#23a537'], ['cyan', '#1ec8d7'],
  ['blue', '#2346d7'], ['purple', '#872db9'], ['pink', '#f573c3'], ['black', '#191919'], ['white (eraser)', '#ffffff'],
];

export const TOOLS = ['pen', 'circle', 'square', 'triangle', 'star', 'heart', 'cross', 'diamond'];

const DEFAULT_SIZE = 448;
const MAX_SIDE = 1024;
const UNDO_DEPTH = 20;

/** Outline of a shape centred at (cx, cy) with 'radius' r, as points (shapes.py's geometry). */
export function shapePoints(shape, cx, cy, r) {
  let pts = [];
  if (shape === 'circle') {
    for (let i = 0; i < 64; i++) { const t = (i / 64) * 2 * Math.PI; pts.push([Math.cos(t) * r, Math.sin(t) * r]); }
  } else if (shape === 'square') {
    const s = r * 0.82;
    pts = [[-s, -s], [s, -s], [s, s], [-s, s]];
  } else if (shape === 'diamond') {
    pts = [[0, -r], [0.62 * r, 0], [0, r], [-0.62 * r, 0]];
  } else if (shape === 'triangle') {
    pts = [-Math.PI / 2, Math.PI / 6, 5 * Math.PI / 6].map((a) => [r * Math.cos(a), r * Math.sin(a) + 0.15 * r]);
  } else if (shape === 'star') {
    for (let k = 0; k < 10; k++) {
      const a = -Math.PI / 2 + (k * Math.PI) / 5, rr = k % 2 === 0 ? r : 0.42 * r;
      pts.push([rr * Math.cos(a), rr * Math.sin(a) + 0.08 * r]);
    }
  } else if (shape === 'heart') {
    for (let i = 0; i < 64; i++) {
      const t = (i / 64) * 2 * Math.PI;
      const x = 16 * Math.sin(t) ** 3;
      const y = 13 * Math.cos(t) - 5 * Math.cos(2 * t) - 2 * Math.cos(3 * t) - Math.cos(4 * t);
      pts.push([(x * r) / 16.5, (-(y + 2.5) * r) / 16.5]);
    }
  } else if (shape === 'cross') {
    const w = 0.33 * r, s = 0.95 * r;
    pts = [[-w, -s], [w, -s], [w, -w], [s, -w], [s, w], [w, w], [w, s], [-w, s], [-w, w], [-s, w], [-s, -w], [-w, -w]];
  }
  return pts.map(([x, y]) => [cx + x, cy + y]);
}

export class DrawingBoard {
  /**
   * @param {{pixels:HTMLCanvasElement, overlay:HTMLCanvasElement, onChange:()=>void,
   *          onStatus?:(msg:string)=>void}} o
   */
  constructor({ pixels, overlay, onChange, onStatus }) {
    this.c = pixels;
    this.o = overlay;
    this.g = pixels.getContext('2d', { willReadFrequently: true });
    this.og = overlay.getContext('2d');
    this.onChange = onChange;
    this.onStatus = onStatus || (() => {});
    this.tool = 'pen';
    this.colour = COLOURS[0];
    this.penWidth = 8;
    this.shapeSize = 25;
    this.filled = true;
    this.undo = [];
    this.cursor = { x: DEFAULT_SIZE / 2, y: DEFAULT_SIZE / 2 };
    this.keyPenDown = false;
    this.drag = null;
    this.clear(false);
    this._bind();
  }

  // ------------------------------------------------------------ picture ops

  /** Save the picture for undo (before a change). */
  checkpoint() {
    this.undo.push({ w: this.c.width, h: this.c.height, data: this.g.getImageData(0, 0, this.c.width, this.c.height) });
    if (this.undo.length > UNDO_DEPTH) this.undo.shift();
  }

  undoLast() {
    const u = this.undo.pop();
    if (!u) return false;
    this._resize(u.w, u.h);
    this.g.putImageData(u.data, 0, 0);
    this.onChange();
    return true;
  }

  /** A white square canvas. */
  clear(undoable = true) {
    if (undoable) this.checkpoint();
    this._resize(DEFAULT_SIZE, DEFAULT_SIZE);
    this.g.fillStyle = '#ffffff';
    this.g.fillRect(0, 0, this.c.width, this.c.height);
    this.cursor = { x: this.c.width / 2, y: this.c.height / 2 };
    this._drawOverlay();
    if (undoable) this.onChange();
  }

  /**
   * Replace the picture by an image (bitmap, video frame, img), keeping its
   * aspect ratio; the canvas takes the image's size, at most MAX_SIDE a side.
   * @param {CanvasImageSource & {width?:number, height?:number, videoWidth?:number, videoHeight?:number}} src
   */
  setImage(src) {
    const w0 = src.videoWidth || src.naturalWidth || src.width, h0 = src.videoHeight || src.naturalHeight || src.height;
    if (!(w0 > 0 && h0 > 0)) throw new Error('the image has no pixels');
    const k = Math.min(1, MAX_SIDE / Math.max(w0, h0));
    const w = Math.max(1, Math.round(w0 * k)), h = Math.max(1, Math.round(h0 * k));
    this.checkpoint();
    this._resize(w, h);
    this.g.fillStyle = '#ffffff'; // transparent PNGs: composite onto white, as a drawing would be
    this.g.fillRect(0, 0, w, h);
    this.g.drawImage(src, 0, 0, w, h);
    this.cursor = { x: w / 2, y: h / 2 };
    this._drawOverlay();
    this.onChange();
  }

  _resize(w, h) {
    if (this.c.width !== w || this.c.height !== h) {
      this.c.width = w; this.c.height = h;
      this.o.width = w; this.o.height = h;
    }
  }

  _style(g) {
    g.strokeStyle = g.fillStyle = this.colour[1];
    g.lineWidth = this.penWidth * this._scale();
    g.lineCap = g.lineJoin = 'round';
  }

  /** Canvas pixels per CSS pixel, so pen widths look the same on any picture size. */
  _scale() {
    const r = this.o.getBoundingClientRect();
    return r.width > 0 ? this.c.width / r.width : 1;
  }

  _shape(g, x, y, r) {
    const pts = shapePoints(this.tool, x, y, r);
    if (!pts.length) return;
    this._style(g);
    g.beginPath();
    g.moveTo(pts[0][0], pts[0][1]);
    for (const [px, py] of pts.slice(1)) g.lineTo(px, py);
    g.closePath();
    if (this.filled) g.fill(); else g.stroke();
  }

  _line(x0, y0, x1, y1) {
    this._style(this.g);
    this.g.beginPath();
    this.g.moveTo(x0, y0);
    this.g.lineTo(x1, y1);
    this.g.stroke();
  }

  /** Stamp radius: shapeSize is the diameter in % of the picture's shorter side (the demo
   * model was trained on objects of about 20-30 % of the picture). */
  _stampRadius() { return ((this.shapeSize / 100) * Math.min(this.c.width, this.c.height)) / 2; }

  // ------------------------------------------------------------ overlay

  _drawOverlay(preview) {
    const g = this.og;
    g.clearRect(0, 0, this.o.width, this.o.height);
    if (preview) this._shape(g, preview.x, preview.y, preview.r);
    if (this.showCursor) {
      const { x, y } = this.cursor, s = this._scale(), r = this.tool === 'pen' ? (this.penWidth * s) / 2 + 3 * s : this._stampRadius();
      g.save();
      g.lineWidth = 2 * s;
      g.setLineDash([6 * s, 4 * s]);
      g.strokeStyle = '#000';
      g.beginPath(); g.arc(x, y, r, 0, 2 * Math.PI); g.stroke();
      g.strokeStyle = '#fff';
      g.lineDashOffset = 5 * s;
      g.beginPath(); g.arc(x, y, r, 0, 2 * Math.PI); g.stroke();
      g.restore();
    }
  }

  // ------------------------------------------------------------ input

  _pos(e) {
    const r = this.o.getBoundingClientRect();
    return { x: ((e.clientX - r.left) * this.c.width) / r.width, y: ((e.clientY - r.top) * this.c.height) / r.height };
  }

  _bind() {
    const o = this.o;
    o.addEventListener('pointerdown', (e) => {
      if (e.button !== 0) return;
      e.preventDefault();
      o.focus({ preventScroll: true });
      o.setPointerCapture(e.pointerId);
      const p = this._pos(e);
      this.checkpoint();
      this.drag = { x: p.x, y: p.y, last: p, moved: false };
      if (this.tool === 'pen') this._line(p.x, p.y, p.x, p.y);
    });
    o.addEventListener('pointermove', (e) => {
      if (!this.drag) return;
      const p = this._pos(e), d = this.drag;
      if (Math.hypot(p.x - d.x, p.y - d.y) > 3) d.moved = true;
      if (this.tool === 'pen') { this._line(d.last.x, d.last.y, p.x, p.y); d.last = p; } else {
        this._drawOverlay({ x: d.x, y: d.y, r: d.moved ? Math.hypot(p.x - d.x, p.y - d.y) : this._stampRadius() });
      }
    });
    const end = (e) => {
      const d = this.drag;
      if (!d) return;
      this.drag = null;
      if (this.tool !== 'pen') {
        const p = this._pos(e);
        const r = d.moved ? Math.hypot(p.x - d.x, p.y - d.y) : this._stampRadius();
        this._drawOverlay();
        this._shape(this.g, d.x, d.y, Math.max(2, r));
        this.onStatus(`${this.colour[0]} ${this.tool} placed`);
      }
      this.cursor = { x: d.x, y: d.y };
      this.onChange();
    };
    o.addEventListener('pointerup', end);
    o.addEventListener('pointercancel', end);
    // The keyboard cursor shows for keyboard focus only, not after a click.
    o.addEventListener('focus', () => { this.showCursor = o.matches(':focus-visible'); this._drawOverlay(); });
    o.addEventListener('blur', () => { this.showCursor = false; this.keyPenDown = false; this._drawOverlay(); });
    o.addEventListener('keydown', (e) => this._key(e));
  }

  _key(e) {
    if (!this.showCursor) { this.showCursor = true; this._drawOverlay(); }
    const step = (e.shiftKey ? 32 : 8) * this._scale();
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    if (moves[e.key]) {
      e.preventDefault();
      const c = this.cursor;
      const x = Math.min(this.c.width, Math.max(0, c.x + moves[e.key][0] * step));
      const y = Math.min(this.c.height, Math.max(0, c.y + moves[e.key][1] * step));
      if (this.tool === 'pen' && this.keyPenDown) { this._line(c.x, c.y, x, y); this.onChange(); }
      this.cursor = { x, y };
      this._drawOverlay();
    } else if (e.key === ' ' || e.key === 'Enter') {
      e.preventDefault();
      const { x, y } = this.cursor;
      if (this.tool === 'pen') {
        this.keyPenDown = !this.keyPenDown;
        if (this.keyPenDown) { this.checkpoint(); this._line(x, y, x, y); this.onChange(); }
        this.onStatus(this.keyPenDown ? 'pen down: arrow keys draw' : 'pen up');
      } else {
        this.checkpoint();
        this._shape(this.g, x, y, this._stampRadius());
        this.onStatus(`${this.colour[0]} ${this.tool} placed`);
        this.onChange();
      }
    } else if (e.key === 'Delete') {
      e.preventDefault();
      this.clear();
      this.onStatus('picture cleared');
    } else if ((e.ctrlKey || e.metaKey) && e.key === 'z') {
      e.preventDefault();
      if (this.undoLast()) this.onStatus('undone');
    }
  }
}
