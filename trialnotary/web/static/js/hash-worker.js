// SHA-256 of local files, off the main thread. A classic (not module) Worker so that it can
// load hash-wasm's UMD build with importScripts(). Driven by hashing.js; one message in:
//
//   {entries: [{file, path}], vendorUrl, threshold, chunkSize, webCrypto, progressMs}
//
// and, out: {type: "progress", fileIndex, path, fileBytes, fileSize, totalBytes, totalSize}
// (throttled; the last one has totalBytes === totalSize), {type: "file", index, path, name,
// size, sha256, method: "webcrypto"|"hash-wasm"} per file in order, then {type: "done"}; or
// {type: "error", index, path, name, message} and nothing more.
// Cancelling is the caller's worker.terminate(): nothing here needs to clean up.
"use strict";

/** Resolved once per worker: one hash-wasm instance, re-initialised for every file. */
let wasmHasher = null;

/** @returns {Promise<object>} hash-wasm's incremental SHA-256 (init/update/digest). */
async function hashWasm(vendorUrl) {
  if (wasmHasher === null) {
    if (typeof self.hashwasm === "undefined") importScripts(vendorUrl);
    wasmHasher = await self.hashwasm.createSHA256();
  }
  return wasmHasher;
}

function toHex(buffer) {
  return Array.from(new Uint8Array(buffer), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** Posts progress at most every `intervalMs`, unless forced: a few messages a second
 *  whatever the chunk size or the number of small files. */
function makeReporter(totalSize, intervalMs) {
  let last = 0;
  return (fileIndex, path, fileBytes, fileSize, totalBytes, force = false) => {
    const now = performance.now();
    if (!force && now - last < intervalMs) return;
    last = now;
    self.postMessage({ type: "progress", fileIndex, path, fileBytes, fileSize, totalBytes, totalSize });
  };
}

/** A file that fits the WebCrypto threshold: read whole, one native digest (fastest). */
async function digestWhole(file, subtle) {
  const data = await file.arrayBuffer();
  return toHex(await subtle.digest("SHA-256", data));
}

/**
 * A file of any size, streamed through hash-wasm in `chunkSize` slices. The next slice is
 * requested before the current one is hashed, so reading and hashing overlap; memory stays at
 * about two chunks.
 * @param {(bytes: number) => void} onBytes bytes of this file hashed so far
 */
async function digestStream(file, chunkSize, vendorUrl, onBytes) {
  const hasher = await hashWasm(vendorUrl);
  hasher.init();
  const read = (offset) => file.slice(offset, Math.min(offset + chunkSize, file.size)).arrayBuffer();
  let offset = 0;
  let next = file.size > 0 ? read(0) : null;
  while (next !== null) {
    const chunk = await next;
    if (chunk.byteLength === 0) throw new DOMException("the file got shorter while it was read", "NotReadableError");
    offset += chunk.byteLength;
    next = offset < file.size ? read(offset) : null;
    hasher.update(new Uint8Array(chunk));
    onBytes(offset);
  }
  return hasher.digest("hex");
}

async function hashAll({ entries, vendorUrl, threshold, chunkSize, webCrypto, progressMs }) {
  const subtle = webCrypto && self.crypto && self.crypto.subtle ? self.crypto.subtle : null;
  const totalSize = entries.reduce((sum, { file }) => sum + file.size, 0);
  const report = makeReporter(totalSize, progressMs);
  let before = 0;
  for (const [index, { file, path }] of entries.entries()) {
    const method = subtle && file.size <= threshold ? "webcrypto" : "hash-wasm";
    let sha256;
    try {
      sha256 = method === "webcrypto"
        ? await digestWhole(file, subtle)
        : await digestStream(file, chunkSize, vendorUrl,
          (bytes) => report(index, path, bytes, file.size, before + bytes));
    } catch (error) {
      self.postMessage({ type: "error", index, path, name: error.name || "Error", message: error.message || String(error) });
      return;
    }
    before += file.size;
    report(index, path, file.size, file.size, before, index === entries.length - 1);
    self.postMessage({ type: "file", index, path, name: file.name, size: file.size, sha256, method });
  }
  self.postMessage({ type: "done" });
}

self.onmessage = (event) => {
  hashAll(event.data).catch((error) => {
    self.postMessage({ type: "error", index: -1, path: "", name: error.name || "Error", message: error.message || String(error) });
  });
};
