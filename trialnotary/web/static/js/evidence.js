// The `evidence` step in the browser, and the words of the chain steps of an anchor that
// carries its evidence: the port of trialnotary/proof/verify/evidence.py (and of the
// evidence's shape check in claims.py), with the same verdicts and the same details, word
// for word (docs/verification.md, "Chain evidence"). Pure: no DOM, no network, so it runs
// in Node as in the page.
import { EvidenceError, equalBytes, fromHex, prove, toHex } from "./evm.js";

/** The evidence is not of the shape docs/receipt.md gives: the receipt is not usable
 *  (receipt-verify.js turns it into its ReceiptError, message unchanged). */
export class EvidenceShapeError extends Error {
  name = "EvidenceShapeError";
}

/** The evidence's keys, in the order messages name them. */
export const EVIDENCE_KEYS = Object.freeze(["transaction", "transactionIndex", "transactionProof", "receipt", "receiptProof", "header"]);
const HEX_BYTES = /^0x(?:[0-9a-f]{2})+$/;

/** A step the evidence answers for the node is skipped with this when it does not hold. */
export const NOT_HOLDING = "not checked: the receipt's evidence does not hold (see evidence)";
/** Added to the sender step's detail when the sender is the one the signature recovers. */
export const RECOVERED = " (recovered from the signature in the receipt's evidence)";

/** `0x1234abcd…`: the first 8 hex digits, enough to tell values apart in a message. */
export function short(hex) {
  const prefix = hex.startsWith("0x") ? "0x" : "";
  return `${prefix}${hex.slice(prefix.length, prefix.length + 8)}…`;
}

/** 9999-12-31T23:59:59Z: the last block time a receipt can write (four-digit years). */
const LAST_BLOCK_TIME = 253402300799;

/** A block's timestamp (number or BigInt) as the receipt writes it: RFC 3339, whole
 *  seconds, Z. A "ValueError" (Python's words) before 1970 or past the year 9999: a node's
 *  odd answer (evm.js decodeHeader refuses such a header first). */
export function blockTime(timestamp) {
  const seconds = Number(timestamp);
  if (!(seconds >= 0 && seconds <= LAST_BLOCK_TIME)) {
    const error = new Error(`block time ${timestamp} is not between 1970 and the year 9999`);
    error.name = "ValueError";
    throw error;
  }
  return new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** Whether `obj[key]` is a JSON integer (Python's is_int): a whole number or a BigInt. A
 *  caller with a strict JSON reader passes its own, which also refuses `32.0`. */
const integerInJson = (obj, key) => Number.isInteger(obj[key]) || typeof obj[key] === "bigint";

/**
 * An anchor's `evidence` as bytes, its shape checked (docs/receipt.md): lowercase `0x` hex
 * bytes, lists of them, an index. Whether the bytes prove anything is checkEvidence's.
 * @param {*} evidence the anchor's `evidence` value, as read from JSON
 * @param {string} where how messages name it, e.g. `anchors[0].evidence`
 * @param {{integerAt?: (obj: object, key: string) => boolean}} [options] whether a value
 *        is an integer as the receipt wrote it (receipt-verify.js's intAt)
 * @returns {{transaction: Uint8Array, transactionIndex: number|bigint,
 *   transactionProof: Uint8Array[], receipt: Uint8Array, receiptProof: Uint8Array[],
 *   header: Uint8Array}}
 * @throws {EvidenceShapeError} with the Python verifier's message
 */
export function parseEvidence(evidence, where, { integerAt = integerInJson } = {}) {
  if (evidence === null || typeof evidence !== "object" || Array.isArray(evidence)) {
    throw new EvidenceShapeError(`${where} must be an object`);
  }
  const missing = EVIDENCE_KEYS.filter((key) => !Object.hasOwn(evidence, key));
  const extra = Object.keys(evidence).filter((key) => !EVIDENCE_KEYS.includes(key)).sort();
  if (missing.length || extra.length) {
    throw new EvidenceShapeError(`${where} must have exactly the keys ${EVIDENCE_KEYS.join(", ")}`
      + (missing.length ? `; missing: ${missing.join(", ")}` : "")
      + (extra.length ? `; unknown: ${extra.join(", ")}` : ""));
  }
  const index = evidence.transactionIndex;
  if (!integerAt(evidence, "transactionIndex") || index < 0) throw new EvidenceShapeError(`${where}.transactionIndex must be a non-negative integer`);
  const parsed = { transactionIndex: index };
  for (const key of ["transaction", "receipt", "header"]) parsed[key] = hexBytes(evidence[key], `${where}.${key}`);
  for (const key of ["transactionProof", "receiptProof"]) {
    const nodes = evidence[key];
    if (!Array.isArray(nodes) || !nodes.length) throw new EvidenceShapeError(`${where}.${key} must be a non-empty list`);
    parsed[key] = nodes.map((node, i) => hexBytes(node, `${where}.${key}[${i}]`));
  }
  return parsed;
}

function hexBytes(value, what) {
  if (typeof value !== "string" || !HEX_BYTES.test(value)) throw new EvidenceShapeError(`${what} must be 0x and lowercase hex bytes`);
  return fromHex(value.slice(2));
}

const address = (bytes) => `0x${toHex(bytes)}`;

/**
 * The evidence step (proof/verify/evidence.py's check_evidence): the header hashes to
 * `blockHash` and has its number and time, both proofs hold under the header's roots, the
 * receipt's status is 1, and the signed transaction is the anchor's: its hash `sourceId`,
 * signed by `sender` on the anchor's chain, to itself, value 0, data exactly the root.
 * @param {{root: string, rootName: string, anchor: {txHash: string, chainId: number,
 *   sender: string, blockNumber: number, blockHash: string, blockTime: string,
 *   evidence: object}}} claims receipt-verify.js's claims (hex without 0x for `root` and
 *   `txHash`; `rootName` how messages call the root: merkleRoot, rollup.root,
 *   renewal.root), the anchor's `evidence` as parseEvidence gives it
 * @returns {{ok: boolean, detail: string, proven: object|null}} `proven` (evm.js prove's)
 *   when the evidence holds, for the chain steps below
 */
export function checkEvidence(claims) {
  let proven;
  try {
    proven = prove(claims.anchor.evidence);
  } catch (error) {
    if (!(error instanceof EvidenceError)) throw error;
    return { ok: false, detail: error.message, proven: null };
  }
  const problems = [...headerProblems(claims, proven), ...transactionProblems(claims, proven)];
  if (proven.receipt.status !== 1) problems.push("the transaction reverted (its receipt's status is 0)");
  if (problems.length) return { ok: false, detail: problems.join("; "), proven: null };
  return { ok: true, detail: provenDetail(claims, proven), proven };
}

function headerProblems({ anchor }, { header }) {
  const problems = [];
  const hash = address(header.hash);
  if (hash !== anchor.blockHash) problems.push(`the header hashes to ${short(hash)}, not blockHash ${short(anchor.blockHash)}`);
  if (header.number !== BigInt(anchor.blockNumber)) {
    problems.push(`the header is of block ${header.number}, not blockNumber ${anchor.blockNumber}`);
  }
  const time = blockTime(header.timestamp);
  if (time !== anchor.blockTime) problems.push(`the header's time is ${time}, not blockTime ${anchor.blockTime}`);
  return problems;
}

function transactionProblems({ anchor, root, rootName }, { transaction: tx }) {
  const signer = address(tx.sender);
  const problems = [];
  if (toHex(tx.hash) !== anchor.txHash) {
    problems.push(`the transaction's hash is ${short(address(tx.hash))}, not sourceId ${short(`0x${anchor.txHash}`)}`);
  }
  if (tx.chainId !== (anchor.chainId === null ? null : BigInt(anchor.chainId))) {
    problems.push(tx.chainId !== null ? `the transaction is signed for chain ${tx.chainId}, not the anchor's chain ${anchor.chainId}`
      : "the transaction is signed without a chain id (before EIP-155)");
  }
  if (signer !== anchor.sender.toLowerCase()) problems.push(`the transaction is signed by ${signer}, not sender ${anchor.sender}`);
  if (tx.to === null || !equalBytes(tx.to, tx.sender)) {
    const to = tx.to !== null ? address(tx.to) : "no address (a contract creation)";
    problems.push(`the transaction is sent to ${to}, not to its sender itself`);
  }
  if (tx.value !== 0n) problems.push(`the transaction sends value ${tx.value} wei, not 0`);
  if (toHex(tx.data) !== root) problems.push(`its data is ${describe(tx.data)}, not exactly ${rootName} ${short(root)}`);
  return problems;
}

function describe(data) {
  return data.length ? `${data.length} bytes ${short(toHex(data))}` : "empty";
}

function provenDetail({ anchor, rootName }, { header, index }) {
  return `the header hashes to blockHash ${short(anchor.blockHash)} (block ${header.number}, ${blockTime(header.timestamp)}); `
    + `transaction ${short(`0x${anchor.txHash}`)} at index ${index} is proven under its transactionsRoot and its receipt `
    + `(status 1) under its receiptsRoot; signed by the sender, to itself, value 0, data exactly ${rootName}`;
}

// --- the chain steps from the evidence (evidence.py's node_steps) ---------------------------
// With evidence, a node is asked only its chain id, its head and the header at the block's
// height; the rest is answered from what the evidence proves.

/** The anchor-tx step's detail (it passes) when the evidence holds. */
export function anchorTxDetail(claims, proven) {
  return `transaction ${short(`0x${claims.anchor.txHash}`)} succeeded with input 0x + ${claims.rootName}, sent to its sender `
    + `with value 0 (proven by the receipt's evidence, index ${proven.index} of block ${proven.header.number})`;
}

/** The address the signature recovers, `0x` and lowercase hex: what the sender step
 *  checks (with RECOVERED added to its detail). */
export function provenSender(proven) {
  return address(proven.transaction.sender);
}

/** The block time the evidence proves (the block step's "seen" time once it passes). */
export function provenBlockTime(proven) {
  return blockTime(proven.header.timestamp);
}

/**
 * The block step over the node's answer to `eth_getBlockByNumber(blockNumber, false)`:
 * the canonical block at that height must be the receipt's `blockHash`.
 * @returns {[boolean, string]}
 */
export function checkCanonical(block, claims) {
  const { anchor } = claims;
  if (block === null || block === undefined) return [false, `the node has no block ${anchor.blockNumber}`];
  const seen = block.hash.toLowerCase();
  if (seen !== anchor.blockHash) {
    return [false, `block ${anchor.blockNumber} on the node's canonical chain is ${short(seen)}, not the receipt's blockHash ${short(anchor.blockHash)}`];
  }
  return [true, `block ${anchor.blockNumber} ${short(seen)} at ${anchor.blockTime} is on the canonical chain (its header is in the receipt's evidence)`];
}
