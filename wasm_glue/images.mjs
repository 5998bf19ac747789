// images.mjs - image arguments: whatever the page hands to chat.addImage (a
// canvas, OffscreenCanvas, ImageData, ImageBitmap, Blob, bytes, a URL or a
// file path in Node) becomes the engine worker's 'image' arguments: RGBA
// pixels (canvas pixels are not re-encoded) or encoded bytes (decoded by the
// engine as PIL decodes them). The page-side checks of an image live here;
// the engine checks what crosses the wasm ABI.
import { OwletError } from './errors.mjs';
import { fetchBytes } from './store.mjs';

export const isBrowser = typeof window !== 'undefined' || (typeof self !== 'undefined' && typeof importScripts === 'function');

/** Limits checked in JS before anything is allocated for an input (the engine
 * checks again: owl_image_decode, OWL_MAX_IMAGES, the context). */
export const LIMITS = Object.freeze({
  imagePixels: 64 * 1024 * 1024, // width x height (OWL_IMAGE_DEFAULT_MAX_PIXELS)
  imageSide: 65536,              // max(width, height) (OWL_IMAGE_MAX_SIDE)
  imageBytes: 64 * 1024 * 1024,  // encoded image (Blob, bytes, URL, data: URL)
  imagesPerTurn: 16,             // OWL_MAX_IMAGES
  textChars: 1 << 20,            // one question (UTF-16 units)
});

export function checkPixels(w, h) {
  if (!(Number.isInteger(w) && Number.isInteger(h) && w >= 1 && h >= 1))
    throw new OwletError('invalid', `image: ${w}x${h} is not a positive integer size`);
  if (w > LIMITS.imageSide || h > LIMITS.imageSide || w * h > LIMITS.imagePixels)
    throw new OwletError('limit', `image: ${w}x${h} over the limits (max side ${LIMITS.imageSide}, ` +
      `max ${LIMITS.imagePixels} pixels)`);
}
export function checkImageBytes(n) {
  if (n > LIMITS.imageBytes)
    throw new OwletError('limit', `image: ${n} bytes of encoded data, over the ${LIMITS.imageBytes}-byte limit`);
}

function decodeDataUrl(url) {
  const m = /^data:([^,]*?)(;base64)?,(.*)$/s.exec(url);
  if (!m) throw new OwletError('invalid', 'image: malformed data: URL');
  checkImageBytes(Math.floor(m[3].length * (m[2] ? 0.75 : 1 / 3)));
  if (m[2]) {
    let bin;
    try { bin = atob(m[3]); } catch { throw new OwletError('invalid', 'image: data: URL with bad base64'); }
    const b = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) b[i] = bin.charCodeAt(i);
    return b;
  }
  return new TextEncoder().encode(decodeURIComponent(m[3]));
}

/** Turn any supported image source into engine-worker 'image' args. */
export async function imageArgs(src, opts = {}) {
  if (typeof src === 'string' || src instanceof URL) {
    const url = String(src);
    if (url.startsWith('data:')) return { encoded: decodeDataUrl(url) };
    if (!isBrowser && !/^https?:/.test(url)) {
      const { readFile, stat } = await import('node:fs/promises');
      const f = url.startsWith('file:') ? new URL(url) : url;
      let b;
      try {
        checkImageBytes((await stat(f)).size);
        b = await readFile(f);
      } catch (e) {
        if (e instanceof OwletError) throw e;
        throw new OwletError('io', `image ${url}: ${e.message}`, e);
      }
      return { encoded: new Uint8Array(b.buffer, b.byteOffset, b.byteLength).slice() };
    }
    const abs = new URL(url, globalThis.location ? location.href : undefined);
    if (globalThis.location && abs.origin !== location.origin && !(opts.allowedOrigins || []).includes(abs.origin))
      throw new OwletError('bad_origin', `image URL ${abs.href} is not on this page's origin ${location.origin}`);
    // a redirect must stay on the allowed origins too; the body is capped
    const allowed = globalThis.location ? [location.origin, ...(opts.allowedOrigins || [])] : (opts.allowedOrigins || []);
    return { encoded: await fetchBytes(abs.href, { signal: opts.signal, maxBytes: LIMITS.imageBytes, allowedOrigins: allowed }) };
  }
  if (src instanceof Uint8Array || src instanceof ArrayBuffer) {
    checkImageBytes(src.byteLength);
    return { encoded: new Uint8Array(src).slice() };
  }
  if (typeof Blob !== 'undefined' && src instanceof Blob) {
    checkImageBytes(src.size);
    return { encoded: new Uint8Array(await src.arrayBuffer()) };
  }
  if (src && src.data && typeof src.width === 'number' && typeof src.height === 'number') { // ImageData (or alike)
    checkPixels(src.width, src.height);
    if (!ArrayBuffer.isView(src.data) || src.data.byteLength !== src.width * src.height * 4)
      throw new OwletError('invalid', `image: ${src.data && src.data.byteLength} bytes of RGBA for ${src.width}x${src.height}`);
  }
  if (src && src.data && typeof src.width === 'number' && typeof src.height === 'number')
    return { rgba: new Uint8Array(src.data.buffer, src.data.byteOffset, src.data.byteLength).slice(),
      width: src.width, height: src.height, stride: src.width * 4 };
  const isCanvas = (typeof HTMLCanvasElement !== 'undefined' && src instanceof HTMLCanvasElement) ||
    (typeof OffscreenCanvas !== 'undefined' && src instanceof OffscreenCanvas);
  if (isCanvas || (typeof ImageBitmap !== 'undefined' && src instanceof ImageBitmap)) checkPixels(src.width, src.height);
  if (isCanvas) {
    const g = src.getContext('2d');
    if (g) return imageArgs(g.getImageData(0, 0, src.width, src.height));
  }
  if ((typeof ImageBitmap !== 'undefined' && src instanceof ImageBitmap) || isCanvas) {
    const c = new OffscreenCanvas(src.width, src.height);
    const g = c.getContext('2d');
    g.drawImage(src, 0, 0);
    return imageArgs(g.getImageData(0, 0, src.width, src.height));
  }
  throw new OwletError('invalid', 'addImage: want a canvas, OffscreenCanvas, ImageData, ImageBitmap, Blob, bytes or URL');
}

export function cloneImageArgs(a) {
  return a.encoded ? { encoded: a.encoded.slice() } : { ...a, rgba: a.rgba.slice() };
}
