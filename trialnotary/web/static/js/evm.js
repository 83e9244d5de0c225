// Ethereum's own formats, enough to check a transaction's inclusion in a block from bytes,
// in the browser (and in Node): strict RLP, Keccak-256, Merkle-Patricia proofs, signed
// transactions and their receipts, block headers, and the evidence that ties them together.
// The port of trialnotary/proof/evm: the same refusals, in the same order, with the same
// words (docs/receipt.md, "Chain evidence"); tests/web/test_browser_evidence.py holds them
// to it. Bytes are Uint8Array, numbers read from RLP are BigInt.
import { keccak_256 as keccak256 } from "../vendor/noble-hashes/sha3.js";
import { recoverPublicKey } from "../vendor/noble-secp256k1.js";

export { keccak256 };

/** Chain evidence does not hold (proof/errors.py's EvidenceError): bytes that are not
 *  canonical RLP, a transaction, receipt or header that does not decode, a proof that does
 *  not lead to its value. */
export class EvidenceError extends Error {
  name = "EvidenceError";
}

// --- bytes -----------------------------------------------------------------------------

const EMPTY = new Uint8Array(0);

export function concatBytes(...parts) {
  const out = new Uint8Array(parts.reduce((total, part) => total + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

export function equalBytes(a, b) {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

export function toHex(bytes) {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** Bytes from hex digits (no 0x), already known to be whole bytes. */
export function fromHex(hex) {
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i += 1) bytes[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

function bigFromBytes(bytes) {
  return bytes.length ? BigInt(`0x${toHex(bytes)}`) : 0n;
}

function bigTo32(value) {
  return fromHex(value.toString(16).padStart(64, "0"));
}

// --- RLP ---------------------------------------------------------------------------------
// An item is a Uint8Array or an Array of items. Decoding refuses every encoding that is not
// the one canonical form, so each value has exactly one encoding.

const SHORT = 55; // payloads up to this length carry their length in the prefix byte
/** Deeper than anything Ethereum writes: a hostile receipt cannot exhaust the stack. */
export const MAX_DEPTH = 16;

const isBytes = (item) => item instanceof Uint8Array;

export function rlpEncode(item) {
  if (isBytes(item)) {
    if (item.length === 1 && item[0] < 0x80) return item;
    return concatBytes(lengthPrefix(item.length, 0x80), item);
  }
  if (Array.isArray(item)) {
    const payload = concatBytes(...item.map(rlpEncode));
    return concatBytes(lengthPrefix(payload.length, 0xc0), payload);
  }
  throw new TypeError(`cannot RLP-encode ${typeof item}`);
}

/** The big-endian bytes of a non-negative integer (number or BigInt), without leading
 *  zeros (0 is empty): the form in which RLP carries numbers. */
export function encodeInt(value) {
  const hex = BigInt(value).toString(16);
  return value === 0 || value === 0n ? EMPTY : fromHex(hex.length % 2 ? `0${hex}` : hex);
}

function lengthPrefix(length, offset) {
  if (length <= SHORT) return Uint8Array.of(offset + length);
  const size = encodeInt(length);
  return concatBytes(Uint8Array.of(offset + SHORT + size.length), size);
}

/** The one item `data` encodes; EvidenceError on any non-canonical form. */
export function rlpDecode(data, what = "RLP") {
  const [item, end] = readItem(data, 0, data.length, what, 0);
  if (end !== data.length) throw new EvidenceError(`${what}: ${data.length - end} byte(s) after the item`);
  return item;
}

/** The item at `start`, which must end by `limit` (its enclosing list's end): [item, end]. */
function readItem(data, start, limit, what, depth) {
  if (depth > MAX_DEPTH) throw new EvidenceError(`${what}: lists nested deeper than ${MAX_DEPTH}`);
  if (start >= limit) throw new EvidenceError(`${what}: ends before its item`);
  const first = data[start];
  if (first < 0x80) return [data.subarray(start, start + 1), start + 1];
  const isList = first >= 0xc0;
  const kind = first - (isList ? 0xc0 : 0x80);
  const [length, body] = kind <= SHORT
    ? [BigInt(kind), start + 1] : longLength(data, start + 1, limit, kind - SHORT, what);
  if (BigInt(body) + length > BigInt(limit)) {
    throw new EvidenceError(`${what}: an item of ${length} bytes runs past the end`);
  }
  const end = body + Number(length);
  if (!isList) {
    if (length === 1n && data[body] < 0x80) {
      throw new EvidenceError(`${what}: a single byte below 0x80 must stand for itself`);
    }
    return [data.subarray(body, end), end];
  }
  const children = [];
  let at = body;
  while (at < end) {
    const [child, next] = readItem(data, at, end, what, depth + 1);
    children.push(child);
    at = next;
  }
  return [children, end];
}

function longLength(data, start, limit, size, what) {
  const digits = data.subarray(start, Math.min(start + size, limit));
  if (digits.length !== size) throw new EvidenceError(`${what}: ends inside a length`);
  if (digits[0] === 0) throw new EvidenceError(`${what}: a length with leading zeros`);
  const length = bigFromBytes(digits);
  if (length <= BigInt(SHORT)) throw new EvidenceError(`${what}: a long form for a payload of ${length} bytes`);
  return [length, start + size];
}

/** An RLP number (bytes without leading zeros), as a BigInt. */
export function asInt(item, what) {
  if (!isBytes(item)) throw new EvidenceError(`${what} must be a number, not a list`);
  if (item[0] === 0) throw new EvidenceError(`${what} has leading zeros`);
  return bigFromBytes(item);
}

export function asBytes(item, what, size = null) {
  if (!isBytes(item)) throw new EvidenceError(`${what} must be a string of bytes, not a list`);
  if (size !== null && item.length !== size) throw new EvidenceError(`${what} must be ${size} bytes, not ${item.length}`);
  return item;
}

export function asList(item, what) {
  if (!Array.isArray(item)) throw new EvidenceError(`${what} must be a list`);
  return item;
}

// --- Merkle-Patricia proofs --------------------------------------------------------------
// A proof is the list of RLP-encoded nodes on the path from the root, each referred to by
// its Keccak-256 hash from the one before it; a node shorter than 32 bytes sits inside its
// parent (the yellow paper's trie, appendix D).

const BRANCH_WIDTH = 17;
const HASH_SIZE = 32;

function nibbles(key) {
  return Array.from(key).flatMap((byte) => [byte >> 4, byte & 0x0f]);
}

function equalPaths(a, b) {
  return a.length === b.length && a.every((half, i) => half === b[i]);
}

/** The value stored at `key` in the trie of `root`, by `proof`; EvidenceError says where
 *  the proof does not hold. */
export function verifyProof(root, key, proof, what = "proof") {
  if (!proof.length) throw new EvidenceError(`${what} is empty`);
  const remaining = [...proof];
  let path = nibbles(key);
  let node = hashedNode(root, remaining, what, 0);
  for (let depth = 1; ; depth += 1) {
    const [next, value] = stepDown(node, path, what, depth);
    if (value !== null) {
      if (remaining.length) throw new EvidenceError(`${what}: ${remaining.length} node(s) left over after the value`);
      return value;
    }
    let reference;
    [path, reference] = next;
    node = follow(reference, remaining, what, depth);
  }
}

function hashedNode(reference, remaining, what, depth) {
  if (!remaining.length) throw new EvidenceError(`${what}: ends after ${depth} node(s), before the key's value`);
  const encoded = remaining.shift();
  if (!equalBytes(keccak256(encoded), reference)) {
    const target = depth === 0 ? "the root" : `its reference in node ${depth}`;
    throw new EvidenceError(`${what}: node ${depth + 1} does not hash to ${target}`);
  }
  const where = `${what} node ${depth + 1}`;
  return asList(rlpDecode(encoded, where), where);
}

/** The child a node refers to: by hash (the next node of the proof) or inline. */
function follow(reference, remaining, what, depth) {
  if (Array.isArray(reference)) {
    if (rlpEncode(reference).length >= HASH_SIZE) {
      throw new EvidenceError(`${what}: node ${depth} holds a child of 32 bytes or more inline`);
    }
    return reference;
  }
  if (reference.length !== HASH_SIZE) {
    throw new EvidenceError(`${what}: node ${depth} refers to a child by ${reference.length} bytes, not a 32-byte hash`);
  }
  return hashedNode(reference, remaining, what, depth);
}

/** One node down: `[[path left, child reference], null]` or `[null, value]`. */
function stepDown(node, path, what, depth) {
  const where = `${what} node ${depth}`;
  if (node.length === BRANCH_WIDTH) {
    if (!path.length) return [null, present(asBytes(node[16], `${where} value`), where)];
    const child = node[path[0]];
    if (isBytes(child) && child.length === 0) {
      throw new EvidenceError(`${where}: the key is not in the trie (empty branch ${path[0].toString(16)})`);
    }
    return [[path.slice(1), child], null];
  }
  if (node.length !== 2) {
    throw new EvidenceError(`${where} has ${node.length} items: neither a branch (17) nor a leaf or extension (2)`);
  }
  const [isLeaf, partial] = hexPrefix(asBytes(node[0], `${where} path`), where);
  if (isLeaf) {
    if (!equalPaths(partial, path)) throw new EvidenceError(`${where}: a leaf of another key (the key is not in the trie)`);
    return [null, present(asBytes(node[1], `${where} value`), where)];
  }
  if (!partial.length || !equalPaths(path.slice(0, partial.length), partial)) {
    throw new EvidenceError(`${where}: an extension that leads away from the key`);
  }
  return [[path.slice(partial.length), node[1]], null];
}

function present(value, where) {
  if (!value.length) throw new EvidenceError(`${where}: the key is not in the trie (no value)`);
  return value;
}

/** Hex-prefix decoding (yellow paper, appendix C): [is a leaf, the path's nibbles]. */
function hexPrefix(encoded, where) {
  if (!encoded.length) throw new EvidenceError(`${where}: an empty path`);
  const flag = encoded[0] >> 4;
  const halves = nibbles(encoded);
  if (flag > 3) throw new EvidenceError(`${where}: path flag ${flag} is not a hex-prefix flag`);
  const odd = flag & 1;
  if (!odd && halves[1] !== 0) throw new EvidenceError(`${where}: an even path with a non-zero padding nibble`);
  return [Boolean(flag & 2), odd ? halves.slice(1) : halves.slice(2)];
}

// --- transactions and receipts -------------------------------------------------------------
// Legacy (EIP-155), EIP-2930 (type 1) and EIP-1559 (type 2) transactions; other types
// (blobs, set-code) are refused: an anchor is none of them.

export const LEGACY = 0;
export const ACCESS_LIST = 1;
export const DYNAMIC_FEE = 2;
const FIELDS = { // the fields before the signature (v/yParity, r, s), by type
  [LEGACY]: ["nonce", "gasPrice", "gas", "to", "value", "data"],
  [ACCESS_LIST]: ["chainId", "nonce", "gasPrice", "gas", "to", "value", "data", "accessList"],
  [DYNAMIC_FEE]: ["chainId", "nonce", "maxPriorityFeePerGas", "maxFeePerGas", "gas", "to", "value", "data", "accessList"],
};
const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
/** libsecp256k1's words when no key recovers, which the Python verifier quotes. */
const NO_RECOVERY = "failed to recover ECDSA public key";

/**
 * The transaction `raw` encodes (its type byte first, unless legacy); EvidenceError on
 * anything malformed, unknown or wrongly signed.
 * @returns {{type: number, hash: Uint8Array, chainId: bigint|null, nonce: bigint,
 *   to: Uint8Array|null, value: bigint, data: Uint8Array, sender: Uint8Array}}
 *   `chainId` null: a legacy transaction signed without one; `to` null: a contract creation.
 */
export function decodeTransaction(raw) {
  if (!raw.length) throw new EvidenceError("the transaction is empty");
  const [type, body] = splitType(raw, "transaction");
  if (!Object.hasOwn(FIELDS, type)) {
    throw new EvidenceError(`transaction type ${type} is not one an anchor is sent as (legacy, 1 or 2)`);
  }
  const items = asList(rlpDecode(body, "the transaction"), "the transaction");
  const names = FIELDS[type];
  if (items.length !== names.length + 3) {
    throw new EvidenceError(`a type ${type} transaction has ${names.length + 3} fields, not ${items.length}`);
  }
  const unsignedItems = items.slice(0, names.length);
  const fields = Object.fromEntries(names.map((name, i) => [name, items[i]]));
  const [v, r, s] = ["v", "r", "s"].map((name, i) => asInt(items[names.length + i], name));
  let chainId;
  let parity;
  let unsigned;
  if (type === LEGACY) {
    [chainId, parity, unsigned] = legacySigning(unsignedItems, v);
  } else {
    chainId = asInt(fields.chainId, "chainId");
    if (v !== 0n && v !== 1n) throw new EvidenceError(`yParity must be 0 or 1, not ${v}`);
    [parity, unsigned] = [Number(v), concatBytes(Uint8Array.of(type), rlpEncode(unsignedItems))];
  }
  const to = asBytes(fields.to, "to");
  if (to.length !== 0 && to.length !== 20) throw new EvidenceError(`to must be 20 bytes or empty, not ${to.length}`);
  return {
    type,
    hash: keccak256(raw),
    chainId,
    nonce: asInt(fields.nonce, "nonce"),
    to: to.length ? to : null,
    value: asInt(fields.value, "value"),
    data: asBytes(fields.data, "data"),
    sender: recoverSender(keccak256(unsigned), r, s, parity),
  };
}

/** EIP-2718: a first byte up to 0x7f is the type; a list prefix (0xc0 up) is legacy. */
function splitType(raw, what) {
  if (raw[0] >= 0xc0) return [LEGACY, raw];
  if (raw[0] > 0x7f) {
    throw new EvidenceError(`the ${what} starts with byte 0x${raw[0].toString(16)}: neither a type nor a list`);
  }
  return [raw[0], raw.subarray(1)];
}

/** Chain id, y parity and signed bytes of a legacy transaction: EIP-155's
 *  `v = chainId * 2 + 35 + parity`, or 27/28 without a chain id. */
function legacySigning(fields, v) {
  if (v === 27n || v === 28n) return [null, Number(v - 27n), rlpEncode(fields)];
  if (v < 35n) throw new EvidenceError(`legacy v ${v} is neither 27/28 nor EIP-155's`);
  const chainId = (v - 35n) / 2n;
  return [chainId, Number((v - 35n) % 2n), rlpEncode([...fields, encodeInt(chainId), EMPTY, EMPTY])];
}

/** The 20-byte address whose key made the signature (r, s, parity) over the hash. Refuses
 *  what no block can hold: r or s out of range, and a high s (EIP-2). */
export function recoverSender(signingHash, r, s, parity) {
  if (!(r > 0n && r < SECP256K1_N && s > 0n && s <= SECP256K1_N / 2n)) {
    throw new EvidenceError("the signature's r or s is out of range (or s is high)");
  }
  const signature = concatBytes(Uint8Array.of(parity), bigTo32(r), bigTo32(s)); // recovery byte first
  let key;
  try {
    key = recoverPublicKey(signature, signingHash, { prehash: false, isCompressed: false });
  } catch {
    throw new EvidenceError(`no key recovers from the signature (${NO_RECOVERY})`);
  }
  return keccak256(key.subarray(1)).subarray(12);
}

/**
 * A transaction receipt, as the receipts trie holds it: `type || rlp([status,
 * cumulativeGasUsed, logsBloom, logs])` (no type byte for a legacy transaction's). A receipt
 * from before Byzantium (a state root, no status) is refused.
 * @returns {{type: number, status: number, cumulativeGasUsed: bigint}}
 */
export function decodeReceipt(raw) {
  if (!raw.length) throw new EvidenceError("the transaction receipt is empty");
  const [type, body] = splitType(raw, "transaction receipt");
  const items = asList(rlpDecode(body, "the transaction receipt"), "the transaction receipt");
  if (items.length !== 4) throw new EvidenceError(`a transaction receipt has 4 fields, not ${items.length}`);
  const status = asBytes(items[0], "the receipt's status");
  if (!(status.length === 0 || (status.length === 1 && status[0] === 1))) {
    throw new EvidenceError("the transaction receipt has no status (a pre-Byzantium state root?)");
  }
  asBytes(items[2], "the receipt's logsBloom", 256);
  asList(items[3], "the receipt's logs");
  return { type, status: status.length ? 1 : 0, cumulativeGasUsed: asInt(items[1], "cumulativeGasUsed") };
}

// --- block headers -------------------------------------------------------------------------
// [parentHash, ommersHash, beneficiary, stateRoot, transactionsRoot, receiptsRoot, logsBloom,
// difficulty, number, gasLimit, gasUsed, timestamp, extraData, mixHash, nonce, …], later
// forks appending fields. The block hash is Keccak-256 over the whole encoding, so every
// field is bound whatever its fork; only the first fifteen are read here.

const FIRST_FORK_FIELDS = 15;
/** 9999-12-31T23:59:59Z: the last block time a receipt can write (four-digit years). */
const LAST_TIME = 253402300799n;
const HEADER_INDEX = { transactionsRoot: 4, receiptsRoot: 5, number: 8, timestamp: 11 };

/** @returns {{hash: Uint8Array, number: bigint, timestamp: bigint,
 *   transactionsRoot: Uint8Array, receiptsRoot: Uint8Array}} */
export function decodeHeader(raw) {
  const items = asList(rlpDecode(raw, "the header"), "the header");
  if (items.length < FIRST_FORK_FIELDS) {
    throw new EvidenceError(`a header has at least ${FIRST_FORK_FIELDS} fields, not ${items.length}`);
  }
  const read = (name, convert, ...size) => convert(items[HEADER_INDEX[name]], `the header's ${name}`, ...size);
  const header = {
    hash: keccak256(raw),
    number: read("number", asInt),
    timestamp: read("timestamp", asInt),
    transactionsRoot: read("transactionsRoot", asBytes, 32),
    receiptsRoot: read("receiptsRoot", asBytes, 32),
  };
  if (header.timestamp > LAST_TIME) throw new EvidenceError(`the header's timestamp ${header.timestamp} is past the year 9999`);
  return header;
}

// --- the evidence ----------------------------------------------------------------------------

/** The key of a block's `index`-th transaction (and receipt) in its tries. */
export function transactionKey(index) {
  return rlpEncode(encodeInt(index));
}

/**
 * Decode the header, check both proofs against its roots and decode what they hold.
 * @param {{transaction: Uint8Array, transactionIndex: number|bigint,
 *   transactionProof: Uint8Array[], receipt: Uint8Array, receiptProof: Uint8Array[],
 *   header: Uint8Array}} evidence an anchor's evidence as bytes (evidence.js parseEvidence)
 * @returns {{header, transaction, receipt, index}} what the evidence proves
 * @throws {EvidenceError} saying what does not hold
 */
export function prove(evidence) {
  const header = decodeHeader(evidence.header);
  const index = evidence.transactionIndex;
  const at = `index ${index}`;
  if (!equalBytes(held(header.transactionsRoot, index, evidence.transactionProof, "transaction"), evidence.transaction)) {
    throw new EvidenceError(`the transaction proof holds another transaction at ${at}`);
  }
  if (!equalBytes(held(header.receiptsRoot, index, evidence.receiptProof, "receipt"), evidence.receipt)) {
    throw new EvidenceError(`the receipt proof holds another receipt at ${at}`);
  }
  const transaction = decodeTransaction(evidence.transaction);
  const receipt = decodeReceipt(evidence.receipt);
  if (receipt.type !== transaction.type) {
    throw new EvidenceError(`the receipt is of type ${receipt.type}, the transaction of type ${transaction.type}`);
  }
  return { header, transaction, receipt, index };
}

/** The value the proof shows at `index` under the header's root of `name`s. */
function held(root, index, proof, name) {
  try {
    return verifyProof(root, transactionKey(index), proof, `the ${name} proof`);
  } catch (error) {
    if (!(error instanceof EvidenceError)) throw error;
    throw new EvidenceError(`the ${name} proof does not prove index ${index} under the header's ${name}sRoot: ${error.message}`);
  }
}
