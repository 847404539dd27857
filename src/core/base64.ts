/**
 * Base64 (RFC 4648, standard alphabet, padded) of raw bytes, browser-safe (no Node `Buffer`, no
 * `btoa` over binary strings): how `auto` stores its candidates' tensors in a trainer state, 4/3 of
 * a byte per byte instead of the ~11 characters per float32 word of decimal JSON.
 *
 * @module
 */

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const CODES = new Uint8Array(ALPHABET.split('').map((c) => c.charCodeAt(0)));
const VALUES = (() => {
  const v = new Int16Array(128).fill(-1);
  for (let i = 0; i < ALPHABET.length; i++) v[ALPHABET.charCodeAt(i)] = i;
  return v;
})();
const CHUNK = 0x8000;

/** Node's `Buffer`, when there is one (its native codec is 5-20× faster); never imported. */
type NodeBuffer = { from(x: ArrayBufferLike | string, a?: number | string, b?: number): Uint8Array & { toString(enc: string): string } };
const NativeBuffer = (globalThis as { Buffer?: NodeBuffer }).Buffer;

/** Base64 text of `bytes`. */
export function encodeBase64(bytes: Uint8Array): string {
  if (NativeBuffer) return NativeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
  return encodeBase64Portable(bytes);
}

/** {@link encodeBase64} without Node's `Buffer` (browsers). */
export function encodeBase64Portable(bytes: Uint8Array): string {
  const n = bytes.length;
  const out = new Uint8Array(Math.ceil(n / 3) * 4);
  let o = 0;
  let i = 0;
  for (; i + 2 < n; i += 3) {
    const x = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out[o++] = CODES[x >> 18];
    out[o++] = CODES[(x >> 12) & 63];
    out[o++] = CODES[(x >> 6) & 63];
    out[o++] = CODES[x & 63];
  }
  if (i < n) {
    const x = (bytes[i] << 16) | (i + 1 < n ? bytes[i + 1] << 8 : 0);
    out[o++] = CODES[x >> 18];
    out[o++] = CODES[(x >> 12) & 63];
    out[o++] = i + 1 < n ? CODES[(x >> 6) & 63] : 61;
    out[o++] = 61;
  }
  let s = '';
  for (let k = 0; k < out.length; k += CHUNK) s += String.fromCharCode.apply(null, out.subarray(k, k + CHUNK) as unknown as number[]);
  return s;
}

/**
 * The bytes of base64 `text`, or null when it is not strict base64 (length a multiple of 4, only
 * the alphabet, `=` padding at the end only).
 */
export function decodeBase64(text: string): Uint8Array | null {
  if (typeof text !== 'string' || text.length % 4 !== 0) return null;
  if (NativeBuffer) {
    // Buffer skips characters outside the alphabet (and takes the URL-safe ones): the text must be
    // what encoding the bytes gives back, i.e. strict base64 (cheaper than a regular expression).
    const b = NativeBuffer.from(text, 'base64');
    if (b.length !== (text.length / 4) * 3 - (text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0)) return null;
    if (b.toString('base64') !== text) return null;
    // a copy with its own, aligned buffer (typed arrays of 4-byte words are made over it)
    return new Uint8Array(b);
  }
  return decodeBase64Portable(text);
}

/** {@link decodeBase64} without Node's `Buffer` (browsers). */
export function decodeBase64Portable(text: string): Uint8Array | null {
  if (typeof text !== 'string' || text.length % 4 !== 0) return null;
  const pad = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  const out = new Uint8Array((text.length / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < text.length; i += 4) {
    const last = i + 4 === text.length;
    let x = 0;
    for (let j = 0; j < 4; j++) {
      const c = text.charCodeAt(i + j);
      let v = c < 128 ? VALUES[c] : -1;
      if (c === 61 && last && j >= 4 - pad) v = 0;
      if (v < 0) return null;
      x = (x << 6) | v;
    }
    out[o++] = x >> 16;
    if (o < out.length) out[o++] = (x >> 8) & 255;
    if (o < out.length) out[o++] = x & 255;
  }
  return out;
}
