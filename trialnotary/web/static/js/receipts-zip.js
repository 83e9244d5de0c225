// A receipts bundle (the zip the notary serves: GET /trials/T/receipts.zip) read in the
// browser as `trialnotary timeline BUNDLE.zip` reads it (proof/verify/timeline_command.py):
// the central directory by hand, each `*.receipt.json` entry inflated in memory with
// DecompressionStream("deflate-raw") (or taken as stored), never more than a receipt's byte
// limit whatever its header says, at most facts.json's limits.bundleEntries entries. No
// library: only what browsers (and Node >= 20) have.
import { FACTS } from "./facts.js";
import { MAX_RECEIPT_BYTES, ReceiptError, readReceiptBytes } from "./receipt-verify.js";

export const MAX_BUNDLE_ENTRIES = FACTS.limits.bundleEntries;
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
 * The receipts of a zip (a Blob or File), in the order of their names: `[{name, receipt}]`,
 * or `{name, error}` (a ReceiptError) for an entry that cannot be read as a receipt.
 * Rejects with BundleError when it is not a zip, holds too many entries or no receipt.
 */
export async function readBundle(blob, label = blob.name ?? "the zip") {
  const directory = await centralDirectory(blob, label);
  const receipts = directory.filter((entry) => !entry.name.endsWith("/") && entry.name.endsWith(RECEIPT_SUFFIX));
  if (!receipts.length) throw new BundleError(`${label}: holds no ${RECEIPT_SUFFIX} entry`);
  receipts.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const read = [];
  for (const entry of receipts) {
    try {
      read.push({ name: entry.name, receipt: readReceiptBytes(await entryBytes(blob, entry)) });
    } catch (error) {
      if (!(error instanceof ReceiptError)) throw error;
      read.push({ name: entry.name, error });
    }
  }
  return read;
}

async function bytesAt(blob, offset, length) {
  return new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
}

function view(bytes) {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A u64 of a zip64 record, refused beyond what a number holds exactly. */
function u64(data, at) {
  const value = data.getUint32(at, true) + data.getUint32(at + 4, true) * 2 ** 32;
  if (!Number.isSafeInteger(value)) throw new BundleError("a zip64 size is too large");
  return value;
}

/** The end of central directory record (and its zip64 form when the zip has one): how
 *  many entries, and where the central directory is: just before that record, as Python's
 *  zipfile finds it (`shift`: how far data put before the zip moved every offset). */
async function directoryEnd(blob, label) {
  const notZip = (why = "File is not a zip file") => new BundleError(`${label}: not a readable zip (${why})`);
  const tailLength = Math.min(blob.size, 22 + MASK16);
  const tail = await bytesAt(blob, blob.size - tailLength, tailLength);
  const data = view(tail);
  let at = tail.length - 22;
  while (at >= 0 && data.getUint32(at, true) !== END) at -= 1;
  if (at < 0) throw notZip();
  let end = blob.size - tailLength + at;
  let count = data.getUint16(at + 10, true);
  let size = data.getUint32(at + 12, true);
  let offset = data.getUint32(at + 16, true);
  if ((count === MASK16 || size === MASK32 || offset === MASK32) && end >= 20) {
    const locator = view(await bytesAt(blob, end - 20, 20));
    if (locator.getUint32(0, true) === END64_LOCATOR) {
      if (end - 20 < 56) throw notZip("Corrupt zip64 end of central directory locator");
      const end64 = view(await bytesAt(blob, end - 20 - 56, 56));
      if (end64.getUint32(0, true) !== END64) throw notZip("Zip64 end of central directory record not found");
      [count, size, offset] = [u64(end64, 32), u64(end64, 40), u64(end64, 48)];
      end -= 20 + 56;
    }
  }
  const start = end - size;
  if (start < 0 || start < offset) throw notZip("Bad offset for central directory");
  return { count, size, start, shift: start - offset };
}

/** Every entry of the central directory: name, method, flags, sizes, crc and where its
 *  local header is. */
async function centralDirectory(blob, label) {
  const { count, size, start, shift } = await directoryEnd(blob, label);
  if (count > MAX_BUNDLE_ENTRIES) throw new BundleError(`${label}: more than ${MAX_BUNDLE_ENTRIES} entries`);
  const bytes = await bytesAt(blob, start, size);
  const data = view(bytes);
  const entries = [];
  let at = 0;
  for (let index = 0; index < count; index += 1) {
    if (at + 46 > bytes.length || data.getUint32(at, true) !== CENTRAL) {
      throw new BundleError(`${label}: not a readable zip (Bad magic number for central directory)`);
    }
    const nameLength = data.getUint16(at + 28, true);
    const extraLength = data.getUint16(at + 30, true);
    const commentLength = data.getUint16(at + 32, true);
    const flags = data.getUint16(at + 8, true);
    const nameBytes = bytes.subarray(at + 46, at + 46 + nameLength);
    const entry = {
      name: new TextDecoder(flags & 0x800 ? "utf-8" : "latin1").decode(nameBytes),
      flags,
      method: data.getUint16(at + 10, true),
      crc: data.getUint32(at + 16, true),
      compressedSize: data.getUint32(at + 20, true),
      size: data.getUint32(at + 24, true),
      offset: data.getUint32(at + 42, true),
    };
    zip64Extra(entry, bytes.subarray(at + 46 + nameLength, at + 46 + nameLength + extraLength));
    entry.offset += shift;
    entries.push(entry);
    at += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

/** The zip64 extra field (0x0001): the sizes and offset a u32 could not hold, in order. */
function zip64Extra(entry, extra) {
  const data = view(extra);
  for (let at = 0; at + 4 <= extra.length;) {
    const id = data.getUint16(at, true);
    const length = data.getUint16(at + 2, true);
    if (id === 1) {
      let field = at + 4;
      for (const key of ["size", "compressedSize", "offset"]) {
        if (entry[key] === MASK32 && field + 8 <= at + 4 + length) {
          entry[key] = u64(data, field);
          field += 8;
        }
      }
    }
    at += 4 + length;
  }
}

/** An entry's bytes, at most one byte past a receipt's limit (a zip may lie about sizes);
 *  ReceiptError when it cannot be read. */
async function entryBytes(blob, entry) {
  const cannot = (why) => new ReceiptError(`cannot read it from the zip: ${why}`);
  if (entry.flags & 1) throw cannot("it is encrypted");
  const header = view(await bytesAt(blob, entry.offset, 30));
  if (header.byteLength < 30 || header.getUint32(0, true) !== LOCAL) throw cannot("Bad magic number for file header");
  const start = entry.offset + 30 + header.getUint16(26, true) + header.getUint16(28, true);
  const compressed = blob.slice(start, Math.min(start + entry.compressedSize, blob.size));
  let bytes;
  if (entry.method === STORED) {
    bytes = new Uint8Array(await compressed.slice(0, MAX_RECEIPT_BYTES + 1).arrayBuffer());
  } else if (entry.method === DEFLATED) {
    bytes = await inflated(compressed, cannot);
  } else {
    throw cannot(`compression method ${entry.method} is not supported`);
  }
  if (bytes.length <= MAX_RECEIPT_BYTES && crc32(bytes) !== entry.crc) throw cannot(`Bad CRC-32 for file '${entry.name}'`);
  return bytes;
}

/** Raw deflate inflated, stopping once past a receipt's limit. */
async function inflated(compressed, cannot) {
  const reader = compressed.stream().pipeThrough(new DecompressionStream("deflate-raw")).getReader();
  const chunks = [];
  let total = 0;
  try {
    while (total <= MAX_RECEIPT_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      total += value.length;
    }
  } catch (error) {
    throw cannot(`its data do not inflate (${error.message})`);
  } finally {
    reader.cancel().catch(() => {});
  }
  const bytes = new Uint8Array(Math.min(total, MAX_RECEIPT_BYTES + 1));
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
