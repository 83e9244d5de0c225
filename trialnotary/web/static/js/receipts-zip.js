// A receipts bundle (the zip the notary serves: GET /trials/T/receipts.zip) read in the
// browser exactly as `trialnotary timeline BUNDLE.zip` reads it (proof/verify/bundle.py, the
// same steps in the same order, the same words): the central directory by hand, each
// `*.receipt.json` entry inflated in memory with DecompressionStream("deflate-raw") (or taken
// as stored), never more than a receipt's byte limit whatever its header says, at most
// facts.json's limits.bundleEntries entries and limits.bundleInflatedBytes inflated in all.
// A zip two readers could read two ways is refused (docs/verification.md). No library: only
// what browsers (and Node >= 20) have.
import { FACTS } from "./facts.js";
import { MAX_RECEIPT_BYTES, ReceiptError, readReceiptBytes } from "./receipt-verify.js";

export const MAX_BUNDLE_ENTRIES = FACTS.limits.bundleEntries;
export const MAX_BUNDLE_INFLATED = FACTS.limits.bundleInflatedBytes;
export const RECEIPT_SUFFIX = FACTS.bundleReceiptSuffix;

/** The bundle as a whole cannot be used (the CLI's usage error, exit 2). */
export class BundleError extends Error {
  constructor(message) {
    super(message);
    this.name = "BundleError";
  }
}

const END = 0x06054b50;
const END64 = 0x06064b50;
const END64_LOCATOR = 0x07064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const STORED = 0;
const DEFLATED = 8;
const MASK16 = 0xffff;
const MASK32 = 0xffffffff;

/** Whether a file's name says it is a bundle (the CLI: a path ending in .zip). */
export function isBundleName(name) {
  return /\.zip$/i.test(name);
}

/**
 * The receipts of a zip (a Blob or File), in the order of their names (by code point):
 * `[{name, receipt}]`, or `{name, error}` (a ReceiptError) for an entry that cannot be read
 * as a receipt. Rejects with BundleError when it is not a zip, an ambiguous one, holds too
 * many entries, inflates past the budget or holds no receipt.
 */
export async function readBundle(blob, label = blob.name ?? "the zip") {
  const notZip = (why) => new BundleError(`${label}: not a readable zip (${why})`);
  const { receipts, start } = await receiptEntries(blob, label, notZip);
  if (!receipts.length) throw new BundleError(`${label}: holds no ${RECEIPT_SUFFIX} entry`);
  await locate(blob, receipts, start, notZip);
  receipts.sort((a, b) => compareBytes(a.nameBytes, b.nameBytes));
  const budget = { left: MAX_BUNDLE_INFLATED };
  const read = [];
  for (const entry of receipts) {
    try {
      read.push({ name: entry.name, receipt: readReceiptBytes(await entryBytes(blob, entry, budget, label)) });
    } catch (error) {
      if (!(error instanceof ReceiptError)) throw error;
      read.push({ name: entry.name, error });
    }
  }
  return read;
}

/** Whether a zip is a receipts bundle: its central directory reads and names at least one
 *  receipt entry (a zipped dataset is a data file). */
export async function holdsReceipts(blob) {
  try {
    const label = blob.name ?? "the zip";
    const { receipts } = await receiptEntries(blob, label, (why) => new BundleError(`${label}: ${why}`));
    return receipts.length > 0;
  } catch (error) {
    if (error instanceof BundleError) return false;
    throw error;
  }
}

/** The receipt entries the central directory lists, and where that directory starts. */
async function receiptEntries(blob, label, notZip) {
  const { count, size, start, shift } = await directoryEnd(blob, notZip);
  if (count > MAX_BUNDLE_ENTRIES) throw new BundleError(`${label}: more than ${MAX_BUNDLE_ENTRIES} entries`);
  const entries = centralDirectory(await bytesAt(blob, start, size), count, shift, notZip);
  return { receipts: entries.filter((entry) => !entry.name.endsWith("/") && entry.name.endsWith(RECEIPT_SUFFIX)), start };
}

/** UTF-8 bytes in order: the order of their code points (Python's str order). */
function compareBytes(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i += 1) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

async function bytesAt(blob, offset, length) {
  return new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
}

function view(bytes) {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A u64 of a zip64 record, refused beyond what a number holds exactly. */
function u64(data, at, notZip) {
  const value = data.getUint32(at, true) + data.getUint32(at + 4, true) * 2 ** 32;
  if (!Number.isSafeInteger(value)) throw notZip("a zip64 size is too large");
  return value;
}

/** The end of central directory record, its comment running to the end of the file (and
 *  its zip64 form when its fields call for one): how many entries, and where the central
 *  directory is: just before that record (`shift`: how far data put before the zip moved
 *  every offset). A zip64 locator the record does not call for is refused: readers differ
 *  on whether to follow it. */
async function directoryEnd(blob, notZip) {
  const tailLength = Math.min(blob.size, 22 + MASK16);
  const tail = await bytesAt(blob, blob.size - tailLength, tailLength);
  const data = view(tail);
  let at = tail.length - 22;
  while (at >= 0 && !(data.getUint32(at, true) === END && at + 22 + data.getUint16(at + 20, true) === tail.length)) at -= 1;
  if (at < 0) throw notZip("File is not a zip file");
  let end = blob.size - tailLength + at;
  let count = data.getUint16(at + 10, true);
  let size = data.getUint32(at + 12, true);
  let offset = data.getUint32(at + 16, true);
  if (data.getUint16(at + 4, true) !== 0 || data.getUint16(at + 6, true) !== 0 || data.getUint16(at + 8, true) !== count) {
    throw notZip("it spans several disks");
  }
  const located = end >= 20 && view(await bytesAt(blob, end - 20, 20)).getUint32(0, true) === END64_LOCATOR;
  const called = count === MASK16 || size === MASK32 || offset === MASK32;
  if (located && !called) throw notZip("a zip64 locator its end record does not call for");
  if (located) {
    if (end - 20 < 56) throw notZip("Corrupt zip64 end of central directory locator");
    const end64 = view(await bytesAt(blob, end - 20 - 56, 56));
    if (end64.getUint32(0, true) !== END64) throw notZip("Zip64 end of central directory record not found");
    [count, size, offset] = [u64(end64, 32, notZip), u64(end64, 40, notZip), u64(end64, 48, notZip)];
    if (u64(end64, 24, notZip) !== count) throw notZip("it spans several disks");
    end -= 20 + 56;
  }
  const start = end - size;
  if (start < 0 || start < offset) throw notZip("Bad offset for central directory");
  return { count, size, start, shift: start - offset };
}

/** Every entry of the central directory (walked over its whole size, which must hold
 *  exactly the entries its end record counts): name, method, flags, sizes, crc and where
 *  its local header is. */
function centralDirectory(bytes, count, shift, notZip) {
  const data = view(bytes);
  const entries = [];
  let at = 0;
  while (at < bytes.length && entries.length <= count) {
    if (at + 46 > bytes.length || data.getUint32(at, true) !== CENTRAL) throw notZip("Bad magic number for central directory");
    const nameLength = data.getUint16(at + 28, true);
    const extraLength = data.getUint16(at + 30, true);
    const next = at + 46 + nameLength + extraLength + data.getUint16(at + 32, true);
    if (next > bytes.length) throw notZip("Bad magic number for central directory");
    const flags = data.getUint16(at + 8, true);
    const nameBytes = bytes.slice(at + 46, at + 46 + nameLength);
    const entry = {
      name: entryName(nameBytes, flags, notZip),
      nameBytes,
      flags,
      method: data.getUint16(at + 10, true),
      crc: data.getUint32(at + 16, true),
      compressedSize: data.getUint32(at + 20, true),
      size: data.getUint32(at + 24, true),
      offset: data.getUint32(at + 42, true),
    };
    zip64Extra(entry, bytes.subarray(at + 46 + nameLength, at + 46 + nameLength + extraLength), notZip);
    entry.offset += shift;
    entries.push(entry);
    at = next;
  }
  if (entries.length !== count || at !== bytes.length) {
    throw notZip(`its central directory does not hold exactly the ${count} entries its end record counts`);
  }
  return entries;
}

/** An entry's name: UTF-8 when its flag (0x800) says so, else ASCII; no NUL (readers cut
 *  the name there, or not). */
function entryName(nameBytes, flags, notZip) {
  if (nameBytes.includes(0)) throw notZip("an entry's name holds a NUL byte");
  if (flags & 0x800) {
    try {
      return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(nameBytes);
    } catch {
      throw notZip("an entry's name is marked UTF-8 but is not");
    }
  }
  if (nameBytes.some((byte) => byte > 0x7f)) throw notZip("an entry's name is neither ASCII nor marked UTF-8");
  return String.fromCharCode(...nameBytes);
}

/** The zip64 extra field (0x0001): the sizes and offset a u32 could not hold, in order. */
function zip64Extra(entry, extra, notZip) {
  const data = view(extra);
  for (let at = 0; at + 4 <= extra.length;) {
    const id = data.getUint16(at, true);
    const length = data.getUint16(at + 2, true);
    if (id === 1) {
      let field = at + 4;
      for (const key of ["size", "compressedSize", "offset"]) {
        if (entry[key] === MASK32 && field + 8 <= Math.min(at + 4 + length, extra.length)) {
          entry[key] = u64(data, field, notZip);
          field += 8;
        }
      }
    }
    at += 4 + length;
  }
}

/** Where each receipt entry's data are, from its local header (whose name must be the
 *  directory's): before the central directory, no two overlapping (a zip whose entries share
 *  their data inflates one stream many times). */
async function locate(blob, receipts, directoryStart, notZip) {
  let end = 0;
  for (const entry of [...receipts].sort((a, b) => a.offset - b.offset)) {
    const header = await bytesAt(blob, entry.offset, 30 + entry.nameBytes.length);
    const data = view(header);
    if (header.length < 30 || data.getUint32(0, true) !== LOCAL) throw notZip("Bad magic number for file header");
    const nameLength = data.getUint16(26, true);
    if (nameLength !== entry.nameBytes.length || compareBytes(header.subarray(30), entry.nameBytes) !== 0) {
      throw notZip("an entry's local header names another file than the central directory");
    }
    if (entry.offset < end) throw notZip("two entries' data overlap");
    entry.start = entry.offset + 30 + nameLength + data.getUint16(28, true);
    end = entry.start + entry.compressedSize;
    if (end > directoryStart) throw notZip("an entry's data run into the central directory");
  }
}

/** An entry's bytes, at most one byte past a receipt's limit (a zip may lie about sizes) and
 *  within what is left of the bundle's budget (`budget.left`, BundleError past it);
 *  ReceiptError when it cannot be read. */
async function entryBytes(blob, entry, budget, label) {
  const cannot = (why) => new ReceiptError(`cannot read it from the zip: ${why}`);
  if (entry.flags & 1) throw cannot("it is encrypted");
  if (entry.method !== STORED && entry.method !== DEFLATED) throw cannot(`compression method ${entry.method} is not supported`);
  const limit = Math.min(MAX_RECEIPT_BYTES, budget.left) + 1;
  const compressed = blob.slice(entry.start, entry.start + entry.compressedSize);
  const bytes = entry.method === STORED
    ? new Uint8Array(await compressed.slice(0, limit).arrayBuffer())
    : await inflated(compressed, limit, cannot);
  if (bytes.length > budget.left) throw new BundleError(`${label}: its receipts inflate to more than ${MAX_BUNDLE_INFLATED} bytes in all`);
  budget.left -= bytes.length;
  if (bytes.length > MAX_RECEIPT_BYTES) return bytes;
  if (bytes.length !== entry.size) throw cannot(`it holds ${bytes.length} bytes, not the ${entry.size} its header states`);
  if (crc32(bytes) !== entry.crc) throw cannot(`Bad CRC-32 for file '${entry.name}'`);
  return bytes;
}

/** Raw deflate inflated, stopping at `limit` bytes; the stream must end with the data. */
async function inflated(compressed, limit, cannot) {
  const reader = compressed.stream().pipeThrough(new DecompressionStream("deflate-raw")).getReader();
  const chunks = [];
  let total = 0;
  try {
    while (total < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      total += value.length;
    }
  } catch {
    throw cannot("its data do not inflate");
  } finally {
    reader.cancel().catch(() => {});
  }
  const bytes = new Uint8Array(Math.min(total, limit));
  let at = 0;
  for (const chunk of chunks) {
    const part = chunk.subarray(0, bytes.length - at);
    bytes.set(part, at);
    at += part.length;
    if (at === bytes.length) break;
  }
  return bytes;
}

let CRC_TABLE = null;

function crc32(bytes) {
  CRC_TABLE ??= Uint32Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  let crc = MASK32;
  for (const byte of bytes) crc = CRC_TABLE[(crc ^ byte) & 0xff] ^ (crc >>> 8);
  return (crc ^ MASK32) >>> 0;
}
