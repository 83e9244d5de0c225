// The receipt verifier, in the browser: the same steps, order, meaning and messages as
// trialnotary/proof/verify (docs/verification.md). Plain JSON-RPC over fetch to the chain
// nodes the caller names; nothing here talks to the notary's server.
//
// The facts of the receipt format (step names, record keys, chains, default nodes, verdict
// states, exit codes, limits) are trialnotary/proof/facts.json (facts.js). A receipt of
// several anchors is checked anchor by anchor in anchors.js.
import canonicalize from "../vendor/canonicalize.js";
import {
  EvidenceShapeError, NOT_HOLDING, RECOVERED, anchorTxDetail, blockTime, checkCanonical,
  checkEvidence, parseEvidence, provenBlockTime, provenSender,
} from "./evidence.js";
import { FACTS } from "./facts.js";
import { verifySeveral } from "./anchors.js";
import { recordSteps } from "./not-before.js";
import { sha256Hex } from "./hashing.js";
import { JsonError, parseJson, writtenAsInteger } from "./strict-json.js";

export const OFFLINE_STEPS = Object.freeze([...FACTS.steps.offline]);
export const CHAIN_STEPS = Object.freeze([...FACTS.steps.chain]);
export const ORIGIN_STEPS = Object.freeze([...FACTS.steps.origin]);
/** Steps shown only where they apply (the evidence step: when the anchor carries evidence). */
export const OPTIONAL_STEPS = Object.freeze([...FACTS.steps.optional]);
export const STEPS = Object.freeze([...OFFLINE_STEPS, ...CHAIN_STEPS, ...ORIGIN_STEPS, ...OPTIONAL_STEPS]);
/** The record's own steps (`not-before`), after every anchor's, where they apply. */
export const RECORD_STEPS = Object.freeze([...FACTS.steps.record]);
export const [FILE_HASH, LEAF, MERKLE_PATH] = OFFLINE_STEPS;
const [CHAIN, ANCHOR_TX, SENDER, BLOCK, CONFIRMATIONS] = CHAIN_STEPS;
export const [NOTARY] = ORIGIN_STEPS;
export const [EVIDENCE] = OPTIONAL_STEPS;

export const RECEIPT_VERSION = FACTS.receiptVersion;
const RECEIPT_VERSIONS = Object.freeze([...FACTS.receiptVersions]);
export const IDENTITY_PATH = FACTS.identityPath;
export const CHAINPOINT_TYPE = FACTS.chainpoint.type;
export const CHAINPOINT_CONTEXT = FACTS.chainpoint.context;
export const ANCHOR_TYPE = FACTS.chainpoint.anchorType;
export const TIMESTAMP_TYPE = FACTS.chainpoint.timeStampType;
export const RECORD_KEYS = Object.freeze([...FACTS.recordKeys]);
const OPTIONAL_RECORD_KEYS = Object.freeze([...FACTS.optionalRecordKeys]);
const NULLABLE_RECORD_KEYS = Object.freeze([...FACTS.nullableRecordKeys]);
const INTEGER_RECORD_KEYS = Object.freeze([...FACTS.integerRecordKeys]);
export const CHAIN_NAMES = Object.freeze(Object.fromEntries(Object.entries(FACTS.chains).map(([name, id]) => [id, name])));
const LOCAL_CHAIN_NAME = FACTS.localChainName;
const CHAIN_IDS_BY_NAME = Object.fromEntries(Object.entries(FACTS.chains));
/** The chain names a receipt may write; any other is only read in a plain Chainpoint receipt. */
const OUR_CHAIN_NAMES = new Set([...Object.keys(FACTS.chains), LOCAL_CHAIN_NAME]);
const SENTENCES = FACTS.sentences;

/** Nodes asked when none is given, by chain id. */
export const DEFAULT_RPC_URLS = Object.freeze({ ...FACTS.defaultNodes });

export const RPC_TIMEOUT_MS = 5000;
export const MAX_RECEIPT_BYTES = FACTS.limits.receiptBytes;
const MAX_JSON_DEPTH = FACTS.limits.jsonDepth;
const PRUNED_HISTORY_ERROR = FACTS.prunedHistoryError;
export const FINALIZED = "finalized";

const HEX64 = /^[0-9a-f]{64}$/;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const BLOCK_HASH = /^0x[0-9a-f]{64}$/;
const BLOCK_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
const RPC_URL = /^https?:\/\/[^\s/?#]+(?:[/?#]\S*)?$/i;

/** What a result's first line answers (the verdict states). */
export const VERIFIED = FACTS.verdicts.verified;
export const VERIFIED_NO_FILE = FACTS.verdicts.verifiedNoFile;
export const WRONG_FILE = FACTS.verdicts.wrongFile;
export const FAILED = FACTS.verdicts.failed;
export const UNCHECKED = FACTS.verdicts.unchecked;

/** `trialnotary verify`'s exit codes, carried in the result as in its JSON. */
export const EXIT = Object.freeze({
  PASS: FACTS.exitCodes.pass, FAILED: FACTS.exitCodes.failed, UNUSABLE: FACTS.exitCodes.unusable,
  NOT_PINNED: FACTS.exitCodes.notPinned, UNCHECKED: FACTS.exitCodes.unchecked,
});
const NO_NODE_ANSWERED = "no node answered";

/** The receipt cannot be read as a receipt at all (as opposed to failing a step). */
export class ReceiptError extends Error {
  name = "ReceiptError";
}

/** A node gave no JSON-RPC answer: no connection, a timeout, not JSON. */
export class NodeUnreachable extends Error {
  name = "NodeUnreachable";
}

/** A node answered with a JSON-RPC error object. */
export class RpcError extends Error {
  name = "RpcError";
}

/** The node has expired the history asked for (EIP-4444's error): it cannot answer, which
 *  refutes nothing, so it counts as a node that did not answer. */
export class HistoryPruned extends NodeUnreachable {
  name = "HistoryPruned";
}

// --- small helpers --------------------------------------------------------------------

/** Python's repr() for the values messages quote, so both verifiers read alike. */
export function repr(value) {
  if (value === undefined || value === null) return "None";
  if (typeof value === "string") return `'${value}'`;
  if (typeof value === "boolean") return value ? "True" : "False";
  if (typeof value === "bigint" || typeof value === "number") return String(value);
  if (Array.isArray(value)) return `[${value.map(repr).join(", ")}]`;
  return `{${Object.entries(value).map(([key, item]) => `${repr(key)}: ${repr(item)}`).join(", ")}}`;
}

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** An integer every JSON reader holds exactly (|n| ≤ 2^53−1); not true, not a BigInt. */
function isInt(value) {
  return Number.isSafeInteger(value);
}

/** `obj[key]` is an integer written as one: not `32.0` or `3.2e1`, which the Python verifier
 *  reads as floats (claims.py, is_int). */
function intAt(obj, key) {
  return isInt(obj[key]) && writtenAsInteger(obj, key);
}

function has(obj, key) {
  return Object.prototype.hasOwnProperty.call(obj, key);
}

function hexToBytes(hex) {
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i += 1) bytes[i] = parseInt(hex.substr(2 * i, 2), 16);
  return bytes;
}

function concat(a, b) {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** A sentence of facts.json with its {placeholders} filled. */
function sentence(name, values) {
  return SENTENCES[name].replace(/\{(\w+)\}/g, (_, key) => values[key]);
}

/** `0x1234abcd…`: the first 8 hex digits, enough to tell values apart in a message. */
export function short(hex) {
  const prefix = hex.startsWith("0x") ? "0x" : "";
  return `${prefix}${hex.slice(prefix.length, prefix.length + 8)}…`;
}

export function chainName(chainId) {
  return CHAIN_NAMES[chainId] ?? LOCAL_CHAIN_NAME;
}

/** How people are shown a chain: `ethereumSepolia (chain 11155111)`. */
export function chainLabel(chainId, name) {
  return FACTS.chainLabel.replace(/\{(name|id)\}/g, (_, key) => (key === "id" ? String(chainId) : name ?? chainName(chainId)));
}

// --- canonical records, leaves, paths ----------------------------------------------------

/** Refuse what RFC 8785 cannot hold, with the reason (canonicalize would only say "BigInt"). */
function assertCanonicalizable(value) {
  if (typeof value === "bigint") throw new Error(`${value} exceeds safe integer domain for JSON floats`);
  if (value !== null && typeof value === "object") {
    for (const child of Object.values(value)) assertCanonicalizable(child);
  }
}

/**
 * UTF-8 bytes of the RFC 8785 (JCS) form of a record (or any JSON value).
 * Throws for values without a canonical form: lone surrogates, integers read beyond 2^53
 * (parseReceiptText turns those into BigInt), NaN and infinities.
 * @returns {Uint8Array}
 */
export function canonicalRecordBytes(record) {
  assertCanonicalizable(record);
  return new TextEncoder().encode(canonicalize(record));
}

/** The leaf of a record: SHA-256 of its canonical JSON, 64 lowercase hex. */
export async function recordLeaf(record) {
  return sha256Hex(canonicalRecordBytes(record));
}

/** 32 bytes from 64 lowercase hex digits; Error naming `what` otherwise. */
function parseHash(value, what = "hash") {
  if (typeof value !== "string" || !HEX64.test(value)) throw new Error(`${what} must be 64 lowercase hex digits`);
  return value;
}

/** Validate one Chainpoint proof step: `[side, siblingHex]`, or an Error (the Python verifier's words). */
function proofStep(step) {
  if (!isObject(step) || Object.keys(step).length !== 1) {
    throw new Error(`proof step ${repr(step)} must have exactly one of 'left' or 'right'`);
  }
  const [[side, sibling]] = Object.entries(step);
  parseHash(sibling, `proof step ${side}`);
  if (side !== "left" && side !== "right") throw new Error(`proof step side ${repr(side)} is neither 'left' nor 'right'`);
  return [side, sibling];
}

/** Number of nodes on each level of a tree of `leafCount` leaves (proof/receipt.py, level_sizes). */
function levelSizes(leafCount) {
  const sizes = [leafCount];
  while (sizes.at(-1) > 1) sizes.push(Math.floor((sizes.at(-1) + 1) / 2));
  return sizes;
}

/**
 * The sides ("left"/"right") a proof of leaf `leafIndex` in a tree of `leafCount` leaves has,
 * in order: merkletools' rule, an odd last node carried up with no step (RFC 6962's shape);
 * proof/receipt.py's proof_sides.
 */
export function proofSides(leafIndex, leafCount) {
  const sides = [];
  let index = leafIndex;
  for (const size of levelSizes(leafCount).slice(0, -1)) {
    if (!(index === size - 1 && size % 2 === 1)) sides.push(index % 2 ? "left" : "right");
    index = Math.floor(index / 2);
  }
  return sides;
}

/**
 * Apply a Chainpoint proof (a list of `{"left"|"right": hex}`) to a leaf; merkletools' rule,
 * SHA-256(left ‖ right) over raw bytes. Throws on a malformed step.
 * @returns {Promise<string>} the root reached, 64 hex
 */
export async function foldProof(targetHex, proof) {
  let node = parseHash(targetHex, "targetHash");
  for (const step of proof) {
    const [side, sibling] = proofStep(step);
    const [left, right] = side === "left" ? [sibling, node] : [node, sibling];
    node = await sha256Hex(concat(hexToBytes(left), hexToBytes(right)));
  }
  return node;
}

// --- reading a receipt -------------------------------------------------------------------

/**
 * A receipt from its JSON text; ReceiptError when it is not a JSON object. The text is read
 * strictly (strict-json.js), as the Python verifier reads it: a repeated key, NaN or Infinity
 * would let two readers see two receipts, and a receipt must mean one thing.
 */
export function parseReceiptText(text) {
  if (text.length > MAX_RECEIPT_BYTES) throw new ReceiptError("larger than 16 MiB: not a receipt");
  const body = text.startsWith("\uFEFF") ? text.slice(1) : text;
  let value;
  try {
    value = parseJson(body, { maxDepth: MAX_JSON_DEPTH });
  } catch (error) {
    if (error instanceof JsonError) throw new ReceiptError(error.message);
    throw error;
  }
  if (!isObject(value)) throw new ReceiptError("a receipt is a JSON object");
  return value;
}

/** A receipt from a File (or Blob): size, UTF-8 and JSON checked. */
export async function readReceiptFile(file) {
  if (file.size > MAX_RECEIPT_BYTES) throw new ReceiptError("larger than 16 MiB: not a receipt");
  let bytes;
  try {
    bytes = await file.arrayBuffer();
  } catch (error) {
    throw new ReceiptError(`cannot read the file: ${error.message}`);
  }
  return readReceiptBytes(bytes);
}

/** A receipt from its bytes (a file's, a zip entry's: receipts-zip.js), as
 *  proof/verify/claims.py's read_receipt reads them: size, UTF-8 and JSON checked. */
export function readReceiptBytes(bytes) {
  if (bytes.byteLength > MAX_RECEIPT_BYTES) throw new ReceiptError("larger than 16 MiB: not a receipt");
  let text;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new ReceiptError("not UTF-8 text");
  }
  return parseReceiptText(text);
}

function required(obj, key, where) {
  if (!has(obj, key)) throw new ReceiptError(`${where}${key} is missing`);
  return obj[key];
}

function hashField(obj, key, where = "") {
  try {
    return parseHash(required(obj, key, where), where + key);
  } catch (error) {
    throw error instanceof ReceiptError ? error : new ReceiptError(error.message);
  }
}

function parseExtension(extension) {
  if (!isObject(extension)) throw new ReceiptError("trialnotary must be an object");
  const version = required(extension, "receiptVersion", "trialnotary.");
  if (!intAt(extension, "receiptVersion") || !RECEIPT_VERSIONS.includes(version)) {
    throw new ReceiptError(`trialnotary.receiptVersion ${repr(version)} is not supported `
      + `(this verifier reads versions ${RECEIPT_VERSIONS.join(", ")})`);
  }
  const notary = version >= 2 ? parseNotary(extension) : null;
  const record = required(extension, "record", "trialnotary.");
  if (!isObject(record)) throw new ReceiptError("trialnotary.record must be an object");
  const missing = RECORD_KEYS.filter((key) => !has(record, key));
  const extra = Object.keys(record).filter((key) => !RECORD_KEYS.includes(key) && !OPTIONAL_RECORD_KEYS.includes(key)).sort();
  if (missing.length || extra.length) {
    throw new ReceiptError("trialnotary.record must have exactly the version-1 keys"
      + (missing.length ? `; missing: ${missing.join(", ")}` : "")
      + (extra.length ? `; unknown: ${extra.join(", ")}` : ""));
  }
  for (const key of RECORD_KEYS) checkRecordType(record, key);
  hashField(record, "sha256", "trialnotary.record.");
  if (has(record, "notBefore")) checkNotBefore(record.notBefore);
  return { version, record, notary };
}

/** A record key's value is of its type (docs/receipt.md; claims.py, _check_record_type): a
 *  string, an integer from 0 (sizeBytes; one beyond 2^53−1, a BigInt here, has no canonical
 *  form: the leaf step fails), or null where the key allows it. */
function checkRecordType(record, key) {
  const nullable = NULLABLE_RECORD_KEYS.includes(key);
  if (record[key] === null && nullable) return;
  const integer = INTEGER_RECORD_KEYS.includes(key);
  const value = record[key];
  const whole = (typeof value === "bigint" || (Number.isInteger(value) && writtenAsInteger(record, key))) && value >= 0;
  if (integer ? whole : typeof value === "string") return;
  throw new ReceiptError(`trialnotary.record.${key} must be ${integer ? "a non-negative integer" : "a string"}`
    + (nullable ? " or null" : ""));
}

const NOT_BEFORE_KEYS = Object.freeze([...FACTS.notBeforeKeys].sort());

/** `notBefore`: exactly a positive chainId, a blockNumber from 0 and a blockHash of 0x and
 *  64 lowercase hex digits (proof/verify/claims.py, _check_not_before). */
function checkNotBefore(notBefore) {
  const where = "trialnotary.record.notBefore";
  if (!isObject(notBefore) || Object.keys(notBefore).sort().join() !== NOT_BEFORE_KEYS.join()) {
    throw new ReceiptError(`${where} must be an object of exactly blockHash, blockNumber and chainId`);
  }
  if (!intAt(notBefore, "chainId") || notBefore.chainId < 1) throw new ReceiptError(`${where}.chainId must be a positive integer`);
  if (!intAt(notBefore, "blockNumber") || notBefore.blockNumber < 0) {
    throw new ReceiptError(`${where}.blockNumber must be a non-negative integer`);
  }
  if (typeof notBefore.blockHash !== "string" || !BLOCK_HASH.test(notBefore.blockHash)) {
    throw new ReceiptError(`${where}.blockHash must be 0x and 64 lowercase hex digits`);
  }
}

/** A version 2 receipt's `{name, url}`: what the notary calls itself, never a pin. */
function parseNotary(extension) {
  const notary = required(extension, "notary", "trialnotary.");
  if (!isObject(notary)) throw new ReceiptError("trialnotary.notary must be an object");
  if (typeof required(notary, "name", "trialnotary.notary.") !== "string") {
    throw new ReceiptError("trialnotary.notary.name must be a string");
  }
  const url = required(notary, "url", "trialnotary.notary.");
  if (url !== null && typeof url !== "string") {
    throw new ReceiptError("trialnotary.notary.url must be a string (or null: no public URL)");
  }
  return { name: notary.name, url };
}

/** `trialnotary.batch`'s leafIndex and leafCount (its other fields are claims). */
function parsePosition(extension) {
  const batch = required(extension, "batch", "trialnotary.");
  if (!isObject(batch)) throw new ReceiptError("trialnotary.batch must be an object");
  const where = "trialnotary.batch.";
  const index = required(batch, "leafIndex", where);
  if (!intAt(batch, "leafIndex") || index < 0) throw new ReceiptError(`${where}leafIndex must be a non-negative integer`);
  const count = required(batch, "leafCount", where);
  if (!intAt(batch, "leafCount") || count < 1) throw new ReceiptError(`${where}leafCount must be a positive integer`);
  if (index >= count) throw new ReceiptError(`${where}leafIndex ${index} is not below leafCount ${count}`);
  return { index, count };
}

/** chainId is authoritative; a chain name beside it must be that id's name. */
function checkChainName(chain, chainId, where, full) {
  if (chain === null || chainId === null || (!OUR_CHAIN_NAMES.has(chain) && !full)) return;
  if (chain !== chainName(chainId)) {
    throw new ReceiptError(`${where}chain ${repr(chain)} does not name chainId ${chainId} (that is ${repr(chainName(chainId))})`);
  }
}

/** The one ETHData anchor of a version 1 or plain Chainpoint receipt. A trialnotary receipt
 *  must carry every field; a plain Chainpoint receipt may carry only `sourceId`. Other anchor
 *  types are ignored. */
function parseAnchor(anchors, full) {
  if (!Array.isArray(anchors)) throw new ReceiptError("anchors must be a list");
  const eth = anchors.filter((a) => isObject(a) && a.type === ANCHOR_TYPE);
  if (eth.length !== 1) throw new ReceiptError(`anchors must hold exactly one ETHData anchor, not ${eth.length}`);
  return parseEthData(eth[0], `anchors[${anchors.indexOf(eth[0])}].`, full, false);
}

/** An ETHData entry; with `named` (version 2) its `name`, `rollup` and `renewal` too. */
function parseEthData(anchor, where, full, named) {
  const txHash = hashField(anchor, "sourceId", where);
  const optional = (key, check, description) => {
    if (!has(anchor, key) && !full) return null;
    const value = required(anchor, key, where);
    if (!check(value, key)) throw new ReceiptError(`${where}${key} must be ${description}`);
    return value;
  };
  const matches = (pattern) => (v) => typeof v === "string" && pattern.test(v);
  const name = named ? entryName(anchor, where) : null;
  const evidence = has(anchor, "evidence") ? evidenceField(anchor.evidence, `${where}evidence`) : null;
  full ||= evidence !== null; // evidence is checked against every field of the anchor
  const chain = optional("chain", (v) => typeof v === "string", "a string");
  const chainId = optional("chainId", (v, key) => intAt(anchor, key) && v > 0, "a positive integer");
  checkChainName(chain, chainId, where, full);
  return {
    type: ANCHOR_TYPE,
    txHash,
    chainId: chainId ?? CHAIN_IDS_BY_NAME[chain] ?? null,
    chain,
    sender: optional("sender", matches(ADDRESS), "0x and 40 hex digits"),
    blockNumber: optional("blockNumber", (v, key) => intAt(anchor, key) && v >= 0, "a non-negative integer"),
    blockHash: optional("blockHash", matches(BLOCK_HASH), "0x and 64 lowercase hex digits"),
    blockTime: optional("blockTime", matches(BLOCK_TIME), "an RFC 3339 UTC time like 2026-11-23T19:00:12Z"),
    name,
    evidence,
    rollup: named ? parseRollup(anchor, where) : null,
    renewal: named ? parseRenewal(anchor, where) : null,
  };
}

/**
 * Every entry of a version 2 receipt's `anchors` (or of a renewal's): ETHData and RFC3161
 * ones, each named, the names unique (proof/verify/claims.py, _parse_entries).
 */
function parseEntries(anchors, where) {
  if (!Array.isArray(anchors)) throw new ReceiptError(`${where} must be a list`);
  if (!anchors.length) throw new ReceiptError(`${where} must hold at least one anchor`);
  const names = new Set();
  return anchors.map((entry, index) => {
    const at = `${where}[${index}].`;
    if (!isObject(entry)) throw new ReceiptError(`${where}[${index}] must be an object`);
    let parsed;
    if (entry.type === ANCHOR_TYPE) parsed = parseEthData(entry, at, true, true);
    else if (entry.type === TIMESTAMP_TYPE) parsed = parseTimeStamp(entry, at);
    else throw new ReceiptError(`${at}type must be ${repr(ANCHOR_TYPE)} or ${repr(TIMESTAMP_TYPE)}, not ${repr(entry.type)}`);
    if (names.has(parsed.name)) throw new ReceiptError(`${at}name ${repr(parsed.name)} is not unique in ${where}`);
    names.add(parsed.name);
    return parsed;
  });
}

function entryName(entry, where) {
  const name = required(entry, "name", where);
  if (typeof name !== "string") throw new ReceiptError(`${where}name must be a string`);
  return name;
}

/** Base64 as Python's b64decode(validate=True) reads it: the alphabet, whole quads, padding at the end only. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** An RFC3161 entry: `name`, `token` (base64 DER), `genTime`, `rollup`. Whether the token
 *  holds is the tsa step's (which this verifier does not check: anchors.js). */
function parseTimeStamp(entry, where) {
  const name = entryName(entry, where);
  const token = required(entry, "token", where);
  if (typeof token !== "string" || !token || !BASE64.test(token)) {
    throw new ReceiptError(`${where}token must be a time-stamp token in base64 (DER)`);
  }
  const genTime = required(entry, "genTime", where);
  if (typeof genTime !== "string" || !BLOCK_TIME.test(genTime)) {
    throw new ReceiptError(`${where}genTime must be an RFC 3339 UTC time like 2026-11-23T19:00:13Z`);
  }
  return { type: TIMESTAMP_TYPE, name, token, genTime, rollup: parseRollup(entry, where) };
}

function parseRollup(entry, at) {
  if (!has(entry, "rollup")) return null;
  const rollup = entry.rollup;
  const where = `${at}rollup`;
  if (!isObject(rollup)) throw new ReceiptError(`${where} must be an object`);
  exactKeys(rollup, ["root", "proof"], where);
  return { root: hashField(rollup, "root", `${where}.`), proof: parseEntryProof(rollup.proof, `${where}.proof`) };
}

function parseRenewal(entry, at) {
  if (!has(entry, "renewal")) return null;
  const renewal = entry.renewal;
  const where = `${at}renewal`;
  if (!isObject(renewal)) throw new ReceiptError(`${where} must be an object`);
  exactKeys(renewal, ["evidenceDigest", "proof", "root", "anchors"], where);
  return {
    evidenceDigest: hashField(renewal, "evidenceDigest", `${where}.`),
    proof: parseEntryProof(renewal.proof, `${where}.proof`),
    root: hashField(renewal, "root", `${where}.`),
    anchors: parseEntries(renewal.anchors, `${where}.anchors`),
  };
}

function exactKeys(value, keys, where) {
  const missing = keys.filter((key) => !has(value, key));
  const extra = Object.keys(value).filter((key) => !keys.includes(key)).sort();
  if (missing.length || extra.length) {
    throw new ReceiptError(`${where} must have exactly the keys ${keys.join(", ")}`
      + (missing.length ? `; missing: ${missing.join(", ")}` : "")
      + (extra.length ? `; unknown: ${extra.join(", ")}` : ""));
  }
}

/** A roll-up's or a renewal's proof: `{"left"|"right": 64 hex}` steps. */
function parseEntryProof(proof, where) {
  if (!Array.isArray(proof)) throw new ReceiptError(`${where} must be a list`);
  proof.forEach((item, index) => {
    const side = isObject(item) && Object.keys(item).length === 1 ? Object.keys(item)[0] : null;
    if (side !== "left" && side !== "right") {
      throw new ReceiptError(`${where}[${index}] must have exactly one of 'left' or 'right'`);
    }
    hashField(item, side, `${where}[${index}].`);
  });
  return proof;
}

/** An anchor's `evidence` as bytes (evidence.js parseEvidence); ReceiptError on a bad shape. */
function evidenceField(value, where) {
  try {
    return parseEvidence(value, where, { integerAt: intAt });
  } catch (error) {
    throw error instanceof EvidenceShapeError ? new ReceiptError(error.message) : error;
  }
}

/**
 * What a receipt asserts, validated for shape; ReceiptError names the first bad field.
 * @returns {{target: string, root: string, rootName: string, proof: object[], anchor: object|null,
 *   anchors: object[], record: object|null, position: {index: number, count: number}|null,
 *   version: number|null, notary: object|null}}
 *   anchors: every entry (ETHData and RFC3161), anchor: the first ETHData one (null when
 *   there is none); root: the root the anchor checked must carry, rootName how messages call
 *   it (a roll-up's anchor carries rollup.root, a renewal's renewal.root: anchors.js);
 *   position: where a trialnotary receipt puts its leaf (null for a plain Chainpoint receipt)
 */
export function parseReceipt(receipt) {
  if (!isObject(receipt)) throw new ReceiptError("a receipt is a JSON object");
  if (receipt.type !== CHAINPOINT_TYPE) {
    throw new ReceiptError(`type must be ${repr(CHAINPOINT_TYPE)}, not ${repr(receipt.type)}`);
  }
  if (receipt["@context"] !== CHAINPOINT_CONTEXT) {
    throw new ReceiptError(`@context must be ${repr(CHAINPOINT_CONTEXT)}, not ${repr(receipt["@context"])}`);
  }
  const target = hashField(receipt, "targetHash");
  const root = hashField(receipt, "merkleRoot");
  const proof = required(receipt, "proof", "");
  if (!Array.isArray(proof)) throw new ReceiptError("proof must be a list");
  for (const step of proof) {
    try {
      proofStep(step);
    } catch (error) {
      throw new ReceiptError(error.message);
    }
  }
  const extension = receipt.trialnotary;
  const extended = extension !== undefined && extension !== null;
  const { version, record, notary } = extended
    ? parseExtension(extension) : { version: null, record: null, notary: null };
  const position = extended ? parsePosition(extension) : null;
  let anchor;
  let anchors;
  if (version !== null && version >= 2) {
    anchors = parseEntries(receipt.anchors, "anchors");
    anchor = anchors.find((entry) => entry.type === ANCHOR_TYPE) ?? null;
  } else {
    anchor = parseAnchor(receipt.anchors, record !== null);
    anchors = [anchor];
  }
  return { target, root, rootName: "merkleRoot", proof, anchor, anchors, record, position, version, notary };
}

/**
 * Whether a receipt needs the verification of several anchors (proof/verify/claims.py,
 * Claims.several): more than one entry, or one that is not a lone ETHData anchor of the
 * batch (a roll-up, a time-stamp, a renewal). Other receipts are verified as they always were.
 */
export function isSeveral(claims) {
  if (claims.anchors.length !== 1) return true;
  const [entry] = claims.anchors;
  return entry.type !== ANCHOR_TYPE || entry.rollup !== null || entry.renewal !== null;
}

/** A positive number of confirmations, or "finalized"; RangeError otherwise. */
export function parseConfirmations(value) {
  if (typeof value === "string" && value.trim().toLowerCase() === FINALIZED) return FINALIZED;
  const text = typeof value === "string" ? value.trim() : value;
  const number = typeof text === "number" ? text : /^[+-]?\d+$/.test(text ?? "") ? Number(text) : NaN;
  if (!Number.isInteger(number) || number < 1) {
    throw new RangeError(`confirmations must be a positive number or 'finalized', not ${repr(value)}`);
  }
  return number;
}

/** An address (any case); RangeError otherwise. */
export function parseAddress(value) {
  if (typeof value !== "string" || !ADDRESS.test(value)) {
    throw new RangeError(`an address is 0x and 40 hex digits, not ${repr(value)}`);
  }
  return value;
}

export function defaultRpcUrls(chainId) {
  return DEFAULT_RPC_URLS[chainId] ? [DEFAULT_RPC_URLS[chainId]] : [];
}

/** A node's URL: http(s), with a host; RangeError otherwise (proof/verify/claims.py's parse_rpc_url). */
export function parseRpcUrl(value) {
  const text = typeof value === "string" ? value.trim() : "";
  if (RPC_URL.test(text) && URL.parse(text)?.hostname) return text;
  throw new RangeError(`${repr(value)} is not an http(s) URL`);
}

/** Node URLs from a text field: comma, space or newline separated, duplicates dropped. */
export function splitRpcUrls(text) {
  return [...new Set(String(text ?? "").split(/[\s,]+/).filter(Boolean))];
}

// --- steps without a node ------------------------------------------------------------------

export const step = (name, ok, detail) => ({ name, ok, detail });

/**
 * The file-hash step, and whether the file is another one than the receipt's: `[step, wrongFile]`.
 * The record's sizeBytes, when it holds a number, must be the file's size too (when known).
 */
function checkFile(claims, { fileSha256, fileName, fileError, fileSize }) {
  const name = fileName || "the file";
  if (fileError) return [step(FILE_HASH, false, `cannot read ${name}: ${fileError}`), false];
  if (fileSha256 === undefined || fileSha256 === null) return [step(FILE_HASH, null, "no file given"), false];
  const [expected, against] = claims.record !== null
    ? [claims.record.sha256, "record.sha256"] : [claims.target, "targetHash"];
  const actual = String(fileSha256).toLowerCase();
  const expectedSize = claims.record?.sizeBytes;
  const sized = claims.record !== null && intAt(claims.record, "sizeBytes") && isInt(fileSize);
  const wrongSize = sized && String(fileSize) !== String(expectedSize)
    ? `${name} is ${fileSize} bytes, not record.sizeBytes ${expectedSize}` : null;
  if (actual !== expected) {
    const detail = `the SHA-256 of ${name} is ${short(actual)}, not ${against} ${short(expected)}`;
    return [step(FILE_HASH, false, detail + (wrongSize ? `; ${wrongSize}` : "")), true];
  }
  const matched = `the SHA-256 of ${name} is ${against} ${short(expected)}`;
  if (wrongSize) return [step(FILE_HASH, false, `${matched}, but ${wrongSize}`), false];
  return [step(FILE_HASH, true, matched + (sized ? `; its ${fileSize} bytes match record.sizeBytes` : "")), false];
}

async function checkLeaf(claims) {
  if (claims.record === null) return step(LEAF, null, "no trialnotary record: a plain Chainpoint receipt");
  let leaf;
  try {
    leaf = await recordLeaf(claims.record);
  } catch (error) {
    return step(LEAF, false, `the record has no canonical form: ${error.message}`);
  }
  if (leaf !== claims.target) {
    return step(LEAF, false, `the canonical record hashes to ${short(leaf)}, not targetHash ${short(claims.target)}`);
  }
  return step(LEAF, true, `the canonical record hashes to targetHash ${short(claims.target)}`);
}

/** The proof folds to the root, and (where the receipt says where its leaf is) its sides are
 *  those of leaf leafIndex of leafCount: a path from an inner node, or another leaf's, has
 *  another shape. */
async function checkMerklePath(claims) {
  const folded = await foldProof(claims.target, claims.proof);
  const problems = [];
  if (folded !== claims.root) problems.push(`folding the proof gives ${short(folded)}, not the merkleRoot ${short(claims.root)}`);
  const { position } = claims;
  let fits = "";
  if (position !== null) {
    const sides = claims.proof.flatMap((s) => Object.keys(s));
    const expected = proofSides(position.index, position.count);
    const leaf = `leaf ${position.index} of ${position.count}`;
    if (sides.join() !== expected.join()) {
      problems.push(`the proof's sides (${describeSides(sides)}) are not those of ${leaf} (${describeSides(expected)})`);
    }
    fits = `; its sides fit ${leaf}`;
  }
  if (problems.length) return step(MERKLE_PATH, false, problems.join("; "));
  return step(MERKLE_PATH, true, `folding ${claims.proof.length} proof step(s) from targetHash gives merkleRoot ${short(claims.root)}${fits}`);
}

function describeSides(sides) {
  return sides.join(", ") || "none";
}

// --- one node ------------------------------------------------------------------------------

function quantity(value) {
  if (typeof value !== "string" || !/^0x[0-9a-fA-F]+$/.test(value)) throw new TypeError(`${repr(value)} is not a hex quantity`);
  return Number.parseInt(value, 16);
}

function describeRpcError(method, error) {
  if (isObject(error)) return `${method}: ${error.message ?? "error"} (code ${error.code ?? "None"})`;
  return `${method}: ${error}`;
}

/** One JSON-RPC endpoint; each answer is asked for once. */
export class Node {
  constructor(url, timeoutMs) {
    this.url = url;
    this.timeoutMs = timeoutMs;
    this.answers = new Map();
    this.nextId = 0;
    this.seenBlockTime = null;
    this.seenSender = null;
    this.seenConfirmations = null;
  }

  call(method, ...params) {
    const key = JSON.stringify([method, params]);
    if (!this.answers.has(key)) {
      const answer = this.post(method, params);
      answer.catch(() => this.answers.delete(key)); // errors are asked again, as the Python verifier does
      this.answers.set(key, answer);
    }
    return this.answers.get(key);
  }

  async post(method, params) {
    if (!/^https?:$/.test(URL.parse(this.url)?.protocol ?? "")) throw new NodeUnreachable("not an http(s) URL");
    this.nextId += 1;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    let reply;
    let body;
    try {
      reply = await fetch(this.url, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: this.nextId, method, params }),
        signal: controller.signal, cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer",
      });
      body = await reply.json().catch(() => undefined);
    } catch {
      throw new NodeUnreachable(controller.signal.aborted
        ? `no answer within ${this.timeoutMs / 1000} s`
        : "no connection (refused, unknown host, or the node does not accept requests from this page)");
    } finally {
      clearTimeout(timer);
    }
    if (!isObject(body) || (!has(body, "result") && !has(body, "error"))) {
      throw new NodeUnreachable(`HTTP ${reply.status}, not a JSON-RPC answer`);
    }
    const error = body.error;
    if (isObject(error) && error.code === PRUNED_HISTORY_ERROR) {
      throw new HistoryPruned(`it has expired the history ${method} asks for `
        + `(error ${PRUNED_HISTORY_ERROR}: ${error.message ?? "None"})`);
    }
    if (error !== undefined && error !== null) throw new RpcError(describeRpcError(method, error));
    return body.result;
  }

  async chainId() { return quantity(await this.call("eth_chainId")); }

  async head() { return quantity(await this.call("eth_blockNumber")); }

  transaction(txHash) { return this.call("eth_getTransactionByHash", `0x${txHash}`); }

  txReceipt(txHash) { return this.call("eth_getTransactionReceipt", `0x${txHash}`); }

  block(number) {
    return this.call("eth_getBlockByNumber", typeof number === "number" ? `0x${number.toString(16)}` : number, false);
  }
}

async function checkChain(node, claims) {
  const actual = await node.chainId();
  const expected = claims.anchor.chainId;
  if (expected === null) return [true, `the node is on chain ${actual} (the receipt names no chain id)`];
  if (actual !== expected) return [false, `the node is on chain ${actual}, not the anchor's chain ${expected}`];
  return [true, `the node is on chain ${actual} (${claims.anchor.chain ?? chainName(actual)})`];
}

function describeData(data) {
  const size = Math.floor(Math.max(data.length - 2, 0) / 2);
  if (size === 0) return "empty";
  return size !== 32 ? `${size} bytes ${short(data)}` : short(data);
}

async function checkAnchorTx(node, claims) {
  const { txHash } = claims.anchor;
  const tx = await node.transaction(txHash);
  const label = `transaction ${short(`0x${txHash}`)}`;
  if (tx === null || tx === undefined) return [false, `${label} is not known to the node`];
  const problems = [];
  const receipt = await node.txReceipt(txHash);
  if (receipt === null || receipt === undefined) problems.push("it is not mined yet");
  else if (receipt.status === undefined || receipt.status === null || quantity(receipt.status) !== 1) {
    problems.push(`it failed (receipt status ${receipt.status ?? "None"})`);
  }
  const data = String(tx.input ?? "").toLowerCase();
  if (data !== `0x${claims.root}`) {
    problems.push(`its input is ${describeData(data)}, not 0x + ${claims.rootName} ${short(claims.root)}`);
  }
  if (claims.record !== null) problems.push(...selfSendProblems(tx));
  if (problems.length) return [false, `${label}: ${problems.join("; ")}`];
  const toItself = claims.record !== null ? ", sent to its sender with value 0" : "";
  return [true, `${label} succeeded with input 0x + ${claims.rootName}${toItself}`];
}

/** A trialnotary anchor goes from the notary's account to itself, with value 0
 *  (docs/receipt.md); a plain Chainpoint anchor may go elsewhere (Blockcerts used a burn address). */
function selfSendProblems(tx) {
  const problems = [];
  if (!tx.to || String(tx.to).toLowerCase() !== String(tx.from).toLowerCase()) {
    problems.push(`it is sent to ${tx.to || "no address"}, not to its sender`);
  }
  const raw = tx.value ?? "0x0";
  quantity(raw); // a hex quantity, or the step fails as an odd answer
  const value = BigInt(raw); // exact: wei overflow a Number's integers
  if (value) problems.push(`it carries ${value} wei, not 0`);
  return problems;
}

async function checkSender(node, claims, pinned) {
  const sender = (await node.transaction(claims.anchor.txHash)).from;
  node.seenSender = sender;
  return senderVerdict(sender, claims, pinned);
}

/** The sender step over the address that sent the anchor transaction: `[ok, detail]`. */
function senderVerdict(sender, claims, pinned) {
  const problems = [];
  if (claims.anchor.sender && claims.anchor.sender.toLowerCase() !== sender.toLowerCase()) {
    problems.push(`the receipt's sender is ${claims.anchor.sender}`);
  }
  if (pinned && pinned.toLowerCase() !== sender.toLowerCase()) problems.push(`the expected sender is ${pinned}`);
  if (problems.length) return [false, `sent by ${sender}, but ${problems.join(" and ")}`];
  return [true, `sent by ${claims.anchor.sender || sender}${pinned ? " (the expected sender)" : ""}`];
}

async function checkBlock(node, claims) {
  const { anchor } = claims;
  const txBlock = quantity((await node.transaction(anchor.txHash)).blockNumber);
  const number = anchor.blockNumber ?? txBlock;
  const problems = [];
  if (txBlock !== number) problems.push(`the transaction is in block ${txBlock}, not ${number}`);
  const block = await node.block(number);
  if (block === null || block === undefined) return [false, [...problems, `the node has no block ${number}`].join("; ")];
  const hash = block.hash.toLowerCase();
  const seenTime = blockTime(quantity(block.timestamp));
  if (anchor.blockHash && hash !== anchor.blockHash) {
    problems.push(`block ${number} on the node's canonical chain is ${short(hash)}, not the receipt's blockHash ${short(anchor.blockHash)}`);
  }
  if (anchor.blockTime && seenTime !== anchor.blockTime) {
    problems.push(`block ${number}'s time is ${seenTime}, not the receipt's blockTime ${anchor.blockTime}`);
  }
  if (problems.length) return [false, problems.join("; ")];
  node.seenBlockTime = seenTime;
  return [true, `block ${number} ${short(hash)} at ${seenTime} is on the canonical chain`];
}

async function checkConfirmations(node, claims, need) {
  const number = quantity((await node.transaction(claims.anchor.txHash)).blockNumber);
  node.seenConfirmations = (await node.head()) - number + 1;
  return confirmationsVerdict(node, number, need);
}

/** The confirmations step for block `number`: the node's head, or its finalized block. */
async function confirmationsVerdict(node, number, need) {
  const head = await node.head();
  if (need === FINALIZED) {
    const finalized = quantity((await node.block(FINALIZED)).number);
    if (number > finalized) {
      return [false, `block ${number} is not finalized yet (the node's finalized block is ${finalized}, head ${head})`];
    }
    return [true, `block ${number} is finalized (the node's finalized block is ${finalized})`];
  }
  const have = head - number + 1;
  if (have < need) return [false, `${have} confirmation(s), ${need} required (head ${head})`];
  return [true, `${have} confirmations, ${need} required`];
}

/** One chain step on one node; node errors and odd answers fail the step. NodeUnreachable
 *  passes through: an unreachable node fails no step by itself. */
async function run(name, check, ...args) {
  try {
    const [ok, detail] = await check(...args);
    return step(name, ok, detail);
  } catch (error) {
    if (error instanceof NodeUnreachable) throw error;
    if (error instanceof RpcError) return step(name, false, `the node answered with an error: ${error.message}`);
    return step(name, false, `unexpected answer from the node (${error.name}: ${error.message})`);
  }
}

export function skipped(names, reason) {
  return names.map((name) => step(name, null, reason));
}

/**
 * The chain steps on one node, later ones skipped where an earlier one makes them moot.
 * `emit(step)` is called for each step as soon as it is known.
 */
async function nodeSteps(node, claims, need, pinned, emit) {
  const rest = (from, reason) => skipped(CHAIN_STEPS.slice(from), reason).forEach(emit);
  const chain = await run(CHAIN, checkChain, node, claims);
  emit(chain);
  if (chain.ok !== true) return rest(1, "not checked: the node is not on the anchor's chain");
  emit(await run(ANCHOR_TX, checkAnchorTx, node, claims));
  let tx;
  try {
    tx = await node.transaction(claims.anchor.txHash);
  } catch (error) {
    if (!(error instanceof RpcError)) throw error;
    tx = null;
  }
  if (!isObject(tx)) return rest(2, "not checked: no transaction to check");
  emit(await run(SENDER, checkSender, node, claims, pinned));
  if (tx.blockNumber === undefined || tx.blockNumber === null) return rest(3, "not checked: the transaction is not mined");
  emit(await run(BLOCK, checkBlock, node, claims));
  emit(await run(CONFIRMATIONS, checkConfirmations, node, claims, need));
  return undefined;
}

/**
 * The chain steps of an anchor with evidence, on one node (proof/verify/evidence.py's
 * node_steps): the node is asked only its chain id, its head and the header at the block's
 * height; the rest is what the evidence proves (`proven`; null when the evidence does not
 * hold, and the steps past chain are then skipped).
 */
async function evidenceNodeSteps(node, claims, need, pinned, proven, emit) {
  const rest = (reason) => skipped(CHAIN_STEPS.slice(1), reason).forEach(emit);
  const chain = await run(CHAIN, checkChain, node, claims);
  emit(chain);
  if (chain.ok !== true) return rest("not checked: the node is not on the anchor's chain");
  if (proven === null) return rest(NOT_HOLDING);
  emit(step(ANCHOR_TX, true, anchorTxDetail(claims, proven)));
  node.seenSender = provenSender(proven);
  const [sent, sentDetail] = senderVerdict(node.seenSender, claims, pinned);
  emit(step(SENDER, sent, sentDetail + RECOVERED));
  const block = await run(BLOCK, async () => checkCanonical(await node.block(claims.anchor.blockNumber), claims));
  emit(block);
  if (block.ok === true) node.seenBlockTime = provenBlockTime(proven);
  const number = Number(proven.header.number);
  node.seenConfirmations = await confirmationsOf(node, number);
  emit(await run(CONFIRMATIONS, confirmationsVerdict, node, number, need));
  return undefined;
}

/** The confirmations block `number` has on the node; null when the node did not say. */
async function confirmationsOf(node, number) {
  try {
    return (await node.head()) - number + 1;
  } catch (error) {
    if (error instanceof NodeUnreachable) throw error;
    return null;
  }
}

export async function note(node, error) {
  if (error) {
    const why = error instanceof HistoryPruned ? "cannot answer" : "unreachable";
    return { url: node.url, answered: false, detail: `${why}: ${error.message}`, chainId: null, head: null };
  }
  try {
    const [chainId, head] = [await node.chainId(), await node.head()];
    return { url: node.url, answered: true, detail: `answered (chain ${chainId}, head ${head})`, chainId, head };
  } catch {
    return { url: node.url, answered: true, detail: "answered", chainId: null, head: null };
  }
}

// --- several nodes -------------------------------------------------------------------------

/** One verdict for a step from every node that answered (proof/verify/checks.py's combine). */
function combine(name, results) {
  const decided = results.filter(([, s]) => s.ok !== null);
  const skippedOn = results.filter(([, s]) => s.ok === null).map(([url]) => url);
  if (!decided.length) return step(name, null, results[0][1].detail);
  const passing = decided.filter(([, s]) => s.ok).map(([url]) => url);
  const failing = decided.filter(([, s]) => !s.ok).map(([url, s]) => [url, s.detail]);
  if (failing.length && passing.length) {
    return step(name, false, `nodes disagree: passes on ${passing.join(", ")}; fails on `
      + failing.map(([url, detail]) => `${url} (${detail})`).join("; "));
  }
  if (failing.length) {
    if (failing.length === 1) return step(name, false, failing[0][1]);
    return step(name, false, failing.map(([url, detail]) => `${url}: ${detail}`).join("; "));
  }
  let detail = decided[0][1].detail;
  if (decided.length > 1) detail += ` (${decided.length} nodes agree)`;
  if (skippedOn.length) detail += `; not checked on ${skippedOn.join(", ")}`;
  return step(name, true, detail);
}

const UNREACHABLE = Symbol("unreachable");

function deferred() {
  let resolve;
  const promise = new Promise((ok) => { resolve = ok; });
  return { promise, resolve };
}

/** Ask one node, in the background; its per-step answers arrive through `slots`. */
function askNode(url, claims, { need, pinned, proven }, timeoutMs) {
  const node = new Node(url, timeoutMs);
  const slots = CHAIN_STEPS.map(() => deferred());
  let next = 0;
  const emit = (s) => { slots[next].resolve(s); next += 1; };
  const steps = claims.anchor.evidence === null ? nodeSteps(node, claims, need, pinned, emit)
    : evidenceNodeSteps(node, claims, need, pinned, proven, emit);
  const done = steps
    .then(() => null, (error) => (error instanceof NodeUnreachable ? error
      : new NodeUnreachable(`${error.name}: ${error.message}`)))
    .then((error) => {
      slots.forEach((slot) => slot.resolve(UNREACHABLE)); // no-op for the steps already given
      return error;
    });
  return { url, node, slots, done };
}

function combineStep(index, runs, answers) {
  const results = runs.map((r, k) => [r.url, answers[k]]).filter(([, s]) => s !== UNREACHABLE);
  return results.length ? combine(CHAIN_STEPS[index], results) : step(CHAIN_STEPS[index], null, NO_NODE_ANSWERED);
}

/**
 * The chain steps over every node at once; skipped, not failed, when no node answers. Each
 * combined step is reported as soon as every node has answered it (or proved unreachable); a
 * node that stops answering half-way is left out of every step at the end, as the Python verifier does,
 * and steps whose verdict changes are reported again. `asked`: `{need, pinned, proven}`, the
 * confirmations required, the expected sender, and what the anchor's evidence proves (if it
 * carries evidence that holds). `noNode`: why there is no node to ask, when `urls` is empty.
 */
export async function chainSteps(urls, claims, asked, timeoutMs, emit, noNode = null) {
  if (!urls.length) {
    const chain = claims.anchor.chainId;
    const reason = noNode ?? ("no chain node to ask: give a node URL"
      + (chain ? ` (there is no default node for chain ${chain})` : ""));
    const steps = skipped(CHAIN_STEPS, reason);
    steps.forEach(emit);
    return { steps, nodes: [], seen: {} };
  }
  const runs = urls.map((url) => askNode(url, claims, asked, timeoutMs));
  const live = [];
  for (let i = 0; i < CHAIN_STEPS.length; i += 1) {
    const answers = await Promise.all(runs.map((r) => r.slots[i].promise));
    live.push(combineStep(i, runs, answers));
    emit(live[i]);
  }
  const errors = await Promise.all(runs.map((r) => r.done));
  const answered = runs.filter((_, k) => errors[k] === null);
  const steps = [];
  for (let i = 0; i < CHAIN_STEPS.length; i += 1) {
    const answers = await Promise.all(answered.map((r) => r.slots[i].promise));
    const final = combineStep(i, answered, answers);
    if (final.ok !== live[i].ok || final.detail !== live[i].detail) emit(final);
    steps.push(final);
  }
  const nodes = await Promise.all(runs.map((r, k) => note(r.node, errors[k])));
  const first = (key) => answered.map((r) => r.node[key]).find((v) => v !== null && v !== undefined) ?? null;
  const seen = { blockTime: first("seenBlockTime"), sender: first("seenSender"), confirmations: first("seenConfirmations") };
  return { steps, nodes, seen };
}

// --- the notary's identity: pinning the origin (proof/verify/notary.py) ----------------------

export class IdentityError extends Error {
  constructor(message) {
    super(message);
    this.name = "IdentityError";
  }
}

const IDENTITY_TIME = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d{1,9})?Z$/;

/** An RFC 3339 UTC time as whole seconds (a fraction is cut off), or null. */
function identitySeconds(value, what) {
  if (value === null || value === undefined) return null;
  const match = typeof value === "string" ? IDENTITY_TIME.exec(value) : null;
  if (!match) throw new IdentityError(`${what} must be an RFC 3339 UTC time like 2026-12-01T10:00:00Z`);
  return Date.parse(`${match[1]}Z`) / 1000;
}

/**
 * A notary's identity document (parsed JSON) as what pinning needs:
 * `{name, version, source, anchors: [{name, chainId, addresses: [{address, since, until, compromisedFrom}]}]}`.
 * IdentityError names the first thing wrong.
 */
export function parseIdentity(document, source = "the identity document") {
  const where = `${source}: `;
  if (!isObject(document)) throw new IdentityError(`${where}an identity document is a JSON object`);
  if (typeof document.name !== "string" || !document.name) throw new IdentityError(`${where}name must be a non-empty string`);
  if (!Array.isArray(document.anchors)) throw new IdentityError(`${where}anchors must be a list`);
  const anchors = [];
  document.anchors.forEach((anchor, index) => {
    if (!isObject(anchor) || anchor.kind !== "evm") return;
    const at = `${where}anchors[${index}].`;
    if (!isInt(anchor.chainId) || anchor.chainId < 1) throw new IdentityError(`${at}chainId must be a positive integer`);
    if (!Array.isArray(anchor.addresses)) throw new IdentityError(`${at}addresses must be a list`);
    const addresses = anchor.addresses.map((entry, k) => {
      const item = `${at}addresses[${k}].`;
      if (!isObject(entry)) throw new IdentityError(`${item.slice(0, -1)} must be an object`);
      if (typeof entry.address !== "string" || !ADDRESS.test(entry.address)) throw new IdentityError(`${item}address must be 0x and 40 hex digits`);
      const since = identitySeconds(entry.from, `${item}from`);
      if (since === null) throw new IdentityError(`${item}from is required`);
      return { address: entry.address, since, until: identitySeconds(entry.until, `${item}until`),
        compromisedFrom: identitySeconds(entry.compromisedFrom, `${item}compromisedFrom`) };
    });
    anchors.push({ name: String(anchor.name ?? ""), chainId: anchor.chainId, addresses });
  });
  return { name: document.name, version: isInt(document.version) ? document.version : null, source, anchors };
}

/** Whether `sender` was the notary's address on `chainId` at `blockTime` (whole seconds):
 *  `[ok, detail]`, in proof/verify/notary.py's words. */
export function pinNotary(identity, chainId, sender, time) {
  const notary = `the notary "${identity.name}"`;
  const onChain = identity.anchors.filter((a) => a.chainId === chainId);
  const chain = chainId !== null && chainId !== undefined ? chainLabel(chainId) : "the anchor's chain";
  if (!onChain.length) return [false, `${notary} publishes no anchoring address on ${chain}`];
  const at = identitySeconds(time, "blockTime");
  const listed = onChain.flatMap((anchor) => anchor.addresses
    .filter((entry) => entry.address.toLowerCase() === sender.toLowerCase()).map((entry) => [anchor, entry]));
  if (!listed.length) {
    const known = onChain.flatMap((a) => a.addresses.map((e) => e.address)).join(", ");
    return [false, `sent by ${sender}, which is not an address of ${notary} on ${chain} (${known || "none listed"})`];
  }
  const reasons = [];
  for (const [anchor, entry] of listed) {
    if (entry.compromisedFrom !== null && entry.compromisedFrom <= at) {
      reasons.push(`${sender} is compromised from ${blockTime(entry.compromisedFrom)}, at or before the block's time ${time}`);
    } else if (entry.since > at || (entry.until !== null && entry.until < at)) {
      const until = entry.until !== null ? blockTime(entry.until) : "now";
      reasons.push(`${sender} was the notary's address from ${blockTime(entry.since)} until ${until}, not at the block's time ${time}`);
    } else {
      return [true, `sent by ${sender}, the address of ${notary} (${anchor.name || chain}) at the block's time ${time}`];
    }
  }
  return [false, reasons.join("; ")];
}

/** The notary step over the sender and block time the chain steps checked (or, for an anchor
 *  renewed on other chains, that its evidence proves: pass its evidence step then). */
export function notaryStep(identity, claims, chainSteps, seen, evidence = []) {
  const passed = new Set([...chainSteps, ...evidence].filter((s) => s.ok === true).map((s) => s.name));
  if (!((passed.has(SENDER) && passed.has(BLOCK)) || passed.has(EVIDENCE))) {
    return step(NOTARY, null, "not checked: the sender and the block must be checked on chain first");
  }
  const [ok, detail] = pinNotary(identity, claims.anchor.chainId, claims.anchor.sender ?? seen.sender,
    claims.anchor.blockTime ?? seen.blockTime);
  return step(NOTARY, ok, detail);
}

/** What a verifier requires unless told: finalized on the public chains, else a number. */
export function defaultConfirmations(chainId) {
  return FACTS.confirmations.finalizedChains.includes(chainId) ? FINALIZED : FACTS.confirmations.otherwise;
}

// --- the verdict in words -------------------------------------------------------------------
// proof/verify/report.py's sentences (verdict_of), word for word: a reviewer reads one
// answer, whichever verifier they use.

function asText(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** `"Label" (file name) in trial T, site S`: the record's own words. */
function registeredAs(record) {
  const label = asText(record.dataset);
  const filename = asText(record.filename);
  const named = `"${label}"${filename === label ? "" : ` (${filename})`}`;
  return `${named} in trial ${asText(record.trial)}, site ${asText(record.site)}`;
}

/** A block time as people read it: `2026-11-23 19:00:12 UTC` (the page's timeTag text). */
export function readableTime(time) {
  return `${(time ?? "an unknown time").replace("T", " ").replace(/Z$/, "")} UTC`;
}

/** What a plain Chainpoint receipt proves (its targetHash existed), and what it does not. */
function plainText(withFile, when, target) {
  const proves = sentence(withFile ? "plainWithFile" : "plainNoFile", { when, target: short(target) });
  return `${proves} ${SENTENCES.plainUnbound}`;
}

export const PIN_HINT = "Pin the notary's identity (--notary URL or file) or its address (--expect-sender) to check that the notary sent the anchor.";
export const UNCHECKED_NOTE = "Nothing was checked on chain: the receipt is neither confirmed nor refuted. Try another node.";

/** The first line when every check passed but nothing said whose the sender is. */
function notPinned(sender) {
  const by = sender ? `it was sent by ${sender}, ` : "";
  return `The anchor is genuine, but its origin is not pinned: ${by}and nothing checked that this address is the notary's.`;
}

/** `'hoodi', 'tsa'`: names as the Python verifier quotes them. */
export function quotedNames(names) {
  return names.map(repr).join(", ");
}

/** The verdict when the file is not the receipt's, or an anchor --require names is missing
 *  (null otherwise): what proof/verify/report.py's verdict_of answers first. */
export function firstVerdict(wrongFile, missing) {
  if (wrongFile) {
    return { state: WRONG_FILE, text: "This is NOT the file this receipt was issued for: its SHA-256 is not the one in the receipt.", note: null, exitCode: EXIT.FAILED };
  }
  if (missing.length) {
    return { state: FAILED, text: `This receipt does NOT verify: it holds no anchor named ${quotedNames(missing)}, which --require asks for.`, note: null, exitCode: EXIT.FAILED };
  }
  return null;
}

/** `[state, text]`: what a receipt that verified proves, its proven time `when` in words. */
export function whatIsProven(claims, steps, when) {
  const { record } = claims;
  const withFile = steps.find((s) => s.name === FILE_HASH).ok === true;
  let text;
  if (record === null) text = plainText(withFile, when, claims.target);
  else if (withFile) text = `This file is the one registered as ${registeredAs(record)}, and it existed no later than ${when}.`;
  else text = `The receipt is genuine, but no file was checked: the file registered as ${registeredAs(record)} existed no later than ${when}.`;
  return [withFile ? VERIFIED : VERIFIED_NO_FILE, text];
}

/** The names --require gives that no anchor of the receipt has (`all`: every anchor). */
export function missingRequired(required, names) {
  return required.filter((name) => name !== REQUIRE_ALL && !names.includes(name));
}

/** `--require all`: every anchor of the receipt. */
export const REQUIRE_ALL = "all";

/**
 * What a verification of one anchor answers, in a journal reviewer's words:
 * `{state, text, note, exitCode}`. `text` is the first line; `note` an optional second one.
 */
function verdictOf({ steps, claims, wrongFile, missing, nodes, pinned, provenTime, sender }) {
  const first = firstVerdict(wrongFile, missing);
  if (first) return first;
  const failed = steps.filter((s) => s.ok === false);
  if (failed.length) {
    const also = failed.length > 1 ? ` (also failed: ${failed.slice(1).map((s) => s.name).join(", ")})` : "";
    return { state: FAILED, text: `This receipt does NOT verify: ${failed[0].name} failed — ${failed[0].detail}${also}`, note: null, exitCode: EXIT.FAILED };
  }
  if (!nodes.some((n) => n.answered)) {
    const chain = claims.anchor.chainId;
    const text = nodes.length ? `Could not check the anchor: ${NO_NODE_ANSWERED}.`
      : `Could not check the anchor: no chain node was given${chain && !DEFAULT_RPC_URLS[chain] ? ` and there is no default node for chain ${chain}.` : "."}`;
    return { state: UNCHECKED, text, note: UNCHECKED_NOTE, exitCode: EXIT.UNCHECKED };
  }
  const [state, text] = whatIsProven(claims, steps, readableTime(provenTime));
  if (pinned) return { state, text, note: null, exitCode: EXIT.PASS };
  return { state, text: notPinned(sender), note: `${text} ${PIN_HINT}`, exitCode: EXIT.NOT_PINNED };
}

/** The one anchor of a receipt of one anchor as an entry of the answer's `anchors`
 *  (proof/verify/report.py, Report.anchor_results). */
function oneAnchorResult(claims, anchorSteps, { chainChecked, blockTime, pinned }) {
  const { anchor } = claims;
  const state = anchorSteps.some((s) => s.ok === false) ? FAILED : chainChecked ? VERIFIED : UNCHECKED;
  const verified = state === VERIFIED;
  const chain = anchor.chainId === null ? anchor.chain ?? "an unnamed chain" : chainLabel(anchor.chainId, anchor.chain || null);
  return {
    name: anchor.name, type: ANCHOR_TYPE, state, provenTime: verified ? blockTime : null, pinned: verified && pinned,
    summary: verified ? `anchored on ${chain} block ${anchor.blockNumber ?? "?"} at ${blockTime}` : null,
    steps: anchorSteps,
  };
}

// --- the entry point -----------------------------------------------------------------------

/**
 * Verify a receipt (already parsed from JSON, ideally with parseReceiptText). An anchor that
 * carries its chain evidence adds the evidence step, and its chain steps ask a node only
 * eth_chainId, eth_blockNumber and eth_getBlockByNumber(n, false). A receipt of several
 * anchors (isSeveral) is checked anchor by anchor (anchors.js), as the Python verifier does.
 *
 * @param {object} receipt
 * @param {object} [options]
 * @param {string} [options.fileSha256] the file's SHA-256; without it file-hash is skipped
 * @param {number} [options.fileSize] the file's size in bytes, compared with record.sizeBytes
 * @param {string} [options.fileName] named in the file-hash detail
 * @param {string} [options.fileError] the file could not be read: file-hash fails with it
 * @param {string[]|null} [options.rpcUrls] nodes to ask; null/undefined: the chain's default
 *        node (DEFAULT_RPC_URLS); [] asks none (nothing is then checked on chain). With
 *        several anchors each node is asked its chain id and used for the anchors of its chain
 * @param {number|string} [options.confirmations] a positive number or "finalized"; by default
 *        what the receipt's chain calls for (defaultConfirmations)
 * @param {string} [options.expectSender] pin the anchoring address
 * @param {object} [options.notary] pin the origin with the notary's identity (parseIdentity):
 *        adds the notary step
 * @param {string[]} [options.require] anchors that must be checked (`--require`; "all": every one)
 * @param {(step: {name: string, ok: boolean|null, detail: string}) => void} [options.onStep]
 *        each step as soon as it is known, in order (a step may be reported again, corrected);
 *        with several anchors, each anchor's steps once it is checked, naming their `anchor`
 * @param {number} [options.timeoutMs=RPC_TIMEOUT_MS] per JSON-RPC call
 * @param {Map} [options.anchors] kept across calls (one run over many receipts, as the CLI's
 *        `anchors`): receipts of one batch have their anchor checked once (its chain steps
 *        then reported once, not step by step), and each `notBefore` block once
 * @returns {Promise<object>} `{ok, verdict: {state, text, note}, exitCode, pinned, steps, nodes,
 *          provenTime, blockTime, transaction, chain, chainId, blockNumber, targetHash,
 *          merkleRoot, confirmations: {required, actual}, notary, anchors}` like
 *          proof/verify/report.py's Report.to_json() (and `provenBy` with several anchors),
 *          and `record`. An entry of `anchors` is `{name, type, state, provenTime, pinned,
 *          summary, steps}` (and `renewal`, `heading`, `where` with several anchors).
 *          Rejects with ReceiptError for a malformed receipt and RangeError for bad options;
 *          every other problem is a failed step.
 */
export async function verifyReceipt(receipt, options = {}) {
  const { expectSender = null, onStep } = options;
  const claims = parseReceipt(receipt);
  const pinned = expectSender ? parseAddress(expectSender) : null;
  const required = parseRequire(options.require ?? []);
  const emit = (s) => onStep?.({ ...s });
  const [fileStep, wrongFile] = checkFile(claims, options);
  const offline = [fileStep];
  emit(offline[0]);
  offline.push(await checkLeaf(claims));
  emit(offline[1]);
  offline.push(await checkMerklePath(claims));
  emit(offline[2]);
  const given = { ...options, pinned, required, emit, timeoutMs: options.timeoutMs ?? RPC_TIMEOUT_MS };
  if (isSeveral(claims)) return withRecordSteps(await verifySeveral(claims, offline, wrongFile, given), claims, given);
  return verifyOne(claims, offline, wrongFile, given);
}

/** A receipt of several anchors with the record's own steps after every anchor's: a failed
 *  one fails the receipt, after the offline and the anchors' (report.py, _several_verdict). */
async function withRecordSteps(result, claims, { rpcUrls, timeoutMs, emit, anchors }) {
  const { steps: own, answer } = await recordSteps(claims, result.provenTime, rpcUrls, timeoutMs, anchors);
  own.forEach(emit);
  const failed = own.find((s) => s.ok === false);
  const decided = [FAILED, WRONG_FILE].includes(result.verdict.state);
  const verdict = failed && !decided
    ? { state: FAILED, text: `This receipt does NOT verify: ${failed.name} failed — ${failed.detail}`, note: null }
    : result.verdict;
  const exitCode = failed && !decided ? EXIT.FAILED : result.exitCode;
  const ok = result.ok && !failed;
  return { ...result, ok, verdict, exitCode, provenTime: ok ? result.provenTime : null, steps: [...result.steps, ...own], ...answer };
}

/** `--require`'s names; RangeError for an empty one. */
function parseRequire(names) {
  const required = [...names].map((name) => String(name).trim());
  if (required.some((name) => !name)) throw new RangeError("--require names an anchor (or 'all'), not an empty name");
  return required;
}

/** A receipt of one ETHData anchor of its batch, verified and told as it always was. */
async function verifyOne(claims, offline, wrongFile, { rpcUrls = null, notary = null, pinned, required, emit, timeoutMs, anchors, ...options }) {
  const need = parseConfirmations(options.confirmations ?? defaultConfirmations(claims.anchor.chainId));
  const urls = rpcUrls === null || rpcUrls === undefined ? defaultRpcUrls(claims.anchor.chainId) : [...rpcUrls];
  const { evidence, chain: { steps, nodes, seen } } = await once(anchors, [...anchorKey(claims), need, pinned, urls], async () => {
    const proofs = claims.anchor.evidence === null ? null : checkEvidence(claims);
    const asked = { need, pinned, proven: proofs?.proven ?? null };
    return { evidence: proofs, chain: await chainSteps(urls, claims, asked, timeoutMs, emit) };
  });
  const origin = notary ? [notaryStep(notary, claims, steps, seen)] : [];
  origin.forEach(emit);
  const proofs = evidence ? [step(EVIDENCE, evidence.ok, evidence.detail)] : [];
  proofs.forEach(emit);
  const anchorSteps = [...steps, ...origin, ...proofs];
  const missing = missingRequired(required, [claims.anchor.name]);
  const chainChecked = nodes.some((n) => n.answered);
  const passes = (checked) => chainChecked && checked.every((s) => s.ok !== false) && !missing.length;
  const { anchor } = claims;
  const time = anchor.blockTime ?? seen.blockTime ?? null;
  const { steps: own, answer } = await recordSteps(claims, passes([...offline, ...anchorSteps]) ? time : null, rpcUrls, timeoutMs, anchors);
  own.forEach(emit);
  const all = [...offline, ...anchorSteps, ...own];
  const ok = passes(all);
  const provenTime = ok ? time : null;
  const isPinned = pinned !== null || notary !== null;
  const sender = anchor.sender ?? seen.sender ?? null;
  const { exitCode, ...verdict } = verdictOf({ steps: all, claims, wrongFile, missing, nodes, pinned: isPinned, provenTime, sender });
  return {
    ok,
    verdict,
    exitCode,
    pinned: isPinned,
    notary: notaryJson(notary),
    steps: all,
    nodes,
    provenTime,
    blockTime: time,
    transaction: `0x${anchor.txHash}`,
    chain: anchor.chain ?? (anchor.chainId ? chainName(anchor.chainId) : null),
    chainId: anchor.chainId,
    blockNumber: anchor.blockNumber,
    targetHash: claims.target,
    merkleRoot: claims.root,
    confirmations: { required: need, actual: seen.confirmations ?? null },
    anchors: [oneAnchorResult(claims, anchorSteps, { chainChecked, blockTime: time, pinned: isPinned })],
    record: claims.record,
    ...answer,
  };
}

/** Everything of `claims` an anchor's chain and evidence steps depend on (verify/anchors.py,
 *  anchor_key): the anchor, the root it must carry and its name, and whether there is a
 *  record (a trialnotary anchor must be sent to itself with value 0, a plain Chainpoint one
 *  need not), so a plain copy of an anchor never answers for a record's. */
export function anchorKey(claims) {
  return ["anchor", claims.anchor, claims.root, claims.rootName, claims.record !== null];
}

/** What `make()` answers, asked once per `key` in `cache` (a Map kept across receipts; none:
 *  every time). The promise is kept, so receipts verified side by side share one check. */
export function once(cache, key, make) {
  if (!cache) return make();
  const name = JSON.stringify(key);
  if (!cache.has(name)) cache.set(name, make());
  return cache.get(name);
}

export function notaryJson(notary) {
  return notary ? { name: notary.name, version: notary.version, source: notary.source } : null;
}
