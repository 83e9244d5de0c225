// SHA-256 in the browser: files in a Web Worker (hash-worker.js), small inputs here.
// File contents never leave the browser; only their hashes do.

const MiB = 1024 * 1024;

/**
 * Files up to a limit are hashed with one WebCrypto call. WebCrypto has no incremental API: the
 * whole file is read into memory, and Chromium copies the input once more before digesting, so
 * a file costs about twice its size in memory for a moment. Native SHA-256 is the fast path
 * (bench/browser_hash.py, whole files with the read included: ~370 MB/s against hash-wasm's
 * ~155 MB/s streamed in this Chromium, where hashlib does ~1,350 MB/s). So the limit grows with
 * the device's memory: 1/8 of it (navigator.deviceMemory, in GiB, which Chromium rounds down and
 * caps at 8), never under WEBCRYPTO_MAX_BYTES (256 MiB, ≈ 512 MiB peak, safe on any device that
 * runs a browser) nor over WEBCRYPTO_CEILING_BYTES (1 GiB, ≈ 2 GiB peak on a machine of 8 GiB
 * or more). Larger files are streamed through hash-wasm in CHUNK_BYTES slices, in constant
 * memory (about two slices), so multi-GB files work.
 */
export const WEBCRYPTO_MAX_BYTES = 256 * MiB;
export const WEBCRYPTO_CEILING_BYTES = 1024 * MiB;

/** The WebCrypto limit for a device with `deviceMemory` GiB (null where not reported). */
export function webCryptoLimit(deviceMemory = globalThis.navigator?.deviceMemory) {
  const share = Number.isFinite(deviceMemory) ? deviceMemory * 128 * MiB : 0;
  return Math.min(WEBCRYPTO_CEILING_BYTES, Math.max(WEBCRYPTO_MAX_BYTES, share));
}

/**
 * Slice size for streaming. Measured in Chromium 156 (bench/browser_hash.py, hash-wasm):
 * 1 MiB slices ~120 MB/s, 2–4 MiB ~143 MB/s, 8–32 MiB ~150–165 MB/s (hash-wasm's own ceiling
 * on data in memory is ~160 MB/s). 8 MiB is on the plateau; larger slices only cost memory.
 */
export const CHUNK_BYTES = 8 * MiB;

/** Progress messages from the worker at most this often. */
export const PROGRESS_INTERVAL_MS = 200;

export const WORKER_URL = new URL("./hash-worker.js", import.meta.url).href;
export const HASH_WASM_URL = new URL("../vendor/hash-wasm-sha256.umd.min.js", import.meta.url).href;

/**
 * hash-worker.js beside this module; or, on the self-contained verifier page, which has no
 * server to load it from, the worker's source that page embeds (hash-wasm first, then
 * hash-worker.js) as `<script type="text/plain" id="hash-worker-source">`.
 */
function defaultWorkerUrl() {
  const embedded = globalThis.document?.getElementById("hash-worker-source");
  if (!embedded) return WORKER_URL;
  return URL.createObjectURL(new Blob([embedded.textContent], { type: "text/javascript" }));
}

function abortError() {
  return new DOMException("hashing was cancelled", "AbortError");
}

/** The worker's error, as an Error that names the file. */
function fileError({ path, name, message }) {
  const error = new Error(path ? `cannot read ${path}: ${message}` : message);
  error.name = name === "AbortError" ? "Error" : name || "Error";
  error.path = path;
  return error;
}

/**
 * Hash files in one dedicated Worker, one after the other, streaming large ones.
 *
 * @param {{file: File, path: string}[]} entries
 * @param {object} [options]
 * @param {(p: {fileIndex: number, path: string, fileBytes: number, fileSize: number,
 *              totalBytes: number, totalSize: number}) => void} [options.onProgress]
 *        a few times a second; the last call has totalBytes === totalSize
 * @param {(r: {index: number, path: string, name: string, size: number, sha256: string}) => void}
 *        [options.onFileDone] once per file, in order
 * @param {AbortSignal} [options.signal] cancels like cancel()
 * @param {boolean} [options.webCrypto=true] false forces hash-wasm for every file (tests)
 * @param {number} [options.threshold=webCryptoLimit()]
 * @param {number} [options.chunkSize=CHUNK_BYTES]
 * @returns {{promise: Promise<{path: string, name: string, size: number, sha256: string,
 *            method: "webcrypto"|"hash-wasm"}[]>, cancel: () => void}} in the entries' order;
 *          rejects with name "AbortError" when cancelled, or with an Error naming the file
 *          (error.path) that could not be read
 */
export function hashFiles(entries, options = {}) {
  const {
    onProgress, onFileDone, signal, webCrypto = true, threshold = webCryptoLimit(),
    chunkSize = CHUNK_BYTES, vendorUrl = HASH_WASM_URL, workerUrl = defaultWorkerUrl(),
  } = options;
  let worker = null;
  let finish = null;
  const promise = new Promise((resolve, reject) => {
    const results = [];
    finish = (error) => {
      if (finish === null) return;
      finish = null;
      worker?.terminate();
      if (workerUrl.startsWith("blob:")) URL.revokeObjectURL(workerUrl);
      signal?.removeEventListener("abort", cancel);
      if (error) reject(error); else resolve(results);
    };
    if (signal?.aborted) return finish(abortError());
    if (!entries.length) return finish(null);
    worker = new Worker(workerUrl);
    worker.onmessage = ({ data }) => {
      if (data.type === "progress") onProgress?.(data);
      else if (data.type === "file") {
        const result = { path: data.path, name: data.name, size: data.size, sha256: data.sha256, method: data.method };
        results.push(result);
        onFileDone?.({ index: data.index, ...result });
      } else if (data.type === "done") finish?.(null);
      else if (data.type === "error") finish?.(fileError(data));
    };
    worker.onerror = (event) => {
      event.preventDefault();
      finish?.(new Error(`the hashing worker failed: ${event.message || "unknown error"}`));
    };
    worker.postMessage({
      entries: entries.map(({ file, path }) => ({ file, path: path ?? file.name })),
      vendorUrl, threshold, chunkSize, webCrypto, progressMs: PROGRESS_INTERVAL_MS,
    });
  });
  function cancel() {
    finish?.(abortError());
  }
  signal?.addEventListener("abort", cancel);
  return { promise, cancel };
}

function toBytes(input) {
  if (typeof input === "string") return new TextEncoder().encode(input);
  if (input instanceof Uint8Array) return input;
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  throw new TypeError("sha256Hex takes a string (hashed as UTF-8) or bytes");
}

function toHex(bytes) {
  return Array.from(new Uint8Array(bytes), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

let wasmLoaded = null;

/** hash-wasm's UMD build, loaded once; it sets globalThis.hashwasm when imported. */
function loadHashWasm(vendorUrl = HASH_WASM_URL) {
  if (globalThis.hashwasm) return Promise.resolve(globalThis.hashwasm);
  wasmLoaded ??= import(vendorUrl).then(() => globalThis.hashwasm);
  return wasmLoaded;
}

/**
 * SHA-256 (lowercase hex) of a small input held in memory: a string as UTF-8, or bytes.
 * WebCrypto where the page is a secure context, hash-wasm elsewhere (plain http from a host
 * that is not this machine), with the same result.
 * @param {string|Uint8Array|ArrayBuffer|ArrayBufferView} input
 * @returns {Promise<string>}
 */
export async function sha256Hex(input) {
  const bytes = toBytes(input);
  const subtle = globalThis.crypto?.subtle;
  if (subtle) return toHex(await subtle.digest("SHA-256", bytes));
  const hashwasm = await loadHashWasm();
  return hashwasm.sha256(bytes);
}
