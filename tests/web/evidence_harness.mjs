// The browser's evidence step on test cases, in Node or in a page: each case's answer in the
// form tests/web/test_browser_evidence.py builds from the Python verifier.
import {
  EvidenceShapeError, anchorTxDetail, checkCanonical, checkEvidence, parseEvidence, provenBlockTime,
  provenSender,
} from "../../trialnotary/web/static/js/evidence.js";
import { toHex } from "../../trialnotary/web/static/js/evm.js";

/** The claims receipt-verify.js's parseReceipt gives, for the fields the evidence needs. */
function claimsOf(receipt) {
  const given = receipt.anchors[0];
  const anchor = {
    txHash: given.sourceId, chainId: given.chainId, chain: given.chain, sender: given.sender,
    blockNumber: given.blockNumber, blockHash: given.blockHash, blockTime: given.blockTime,
  };
  if (Object.hasOwn(given, "evidence")) anchor.evidence = parseEvidence(given.evidence, "anchors[0].evidence");
  return { root: receipt.merkleRoot, rootName: "merkleRoot", anchor };
}

const hex = (bytes) => `0x${toHex(bytes)}`;
const text = (value) => (value === null ? null : String(value));

function facts({ header, transaction: tx, receipt, index }) {
  return {
    headerHash: hex(header.hash), number: text(header.number), timestamp: text(header.timestamp),
    transactionsRoot: hex(header.transactionsRoot), receiptsRoot: hex(header.receiptsRoot),
    transactionIndex: text(index), transactionHash: hex(tx.hash), type: text(tx.type),
    chainId: text(tx.chainId), nonce: text(tx.nonce), to: tx.to === null ? null : hex(tx.to),
    value: text(tx.value), data: hex(tx.data), sender: provenSender({ transaction: tx }),
    status: text(receipt.status),
  };
}

function answer({ receipt, block }) {
  let claims;
  try {
    claims = claimsOf(receipt);
  } catch (error) {
    if (error instanceof EvidenceShapeError) return { refused: error.message };
    throw error;
  }
  const { ok, detail, proven } = checkEvidence(claims);
  if (proven === null) return { ok, detail };
  const [blockOk, blockDetail] = checkCanonical(block, claims);
  return {
    ok, detail, proves: facts(proven), anchorTx: anchorTxDetail(claims, proven),
    block: [blockOk, blockDetail], seen: blockOk ? provenBlockTime(proven) : null,
  };
}

/** Each case's answer; an exception is an answer too (`crashed`), so that one case cannot
 *  hide the others. */
export function answers(cases) {
  return cases.map((one) => {
    try {
      return answer(one);
    } catch (error) {
      return { crashed: `${error.name}: ${error.message}` };
    }
  });
}
