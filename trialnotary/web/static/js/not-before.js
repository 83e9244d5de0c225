/**
 * The `not-before` step (docs/verification.md): a record's `notBefore` names a block it was
 * made after; that block must be on its chain, no later than the receipt's proven time.
 * Word for word proof/verify/checks.py's check_not_before.
 */

import { Routing } from "./anchors.js";
import { blockTime } from "./evidence.js";
import { FACTS } from "./facts.js";
import { checkSignOff, signOffApplies } from "./sign-off.js";
import { NodeUnreachable, RpcError, chainLabel, once, repr, step } from "./receipt-verify.js";

// (Read from facts.js, not receipt-verify.js: the two modules import each other, and this
// one is evaluated first.)
export const [NOT_BEFORE] = FACTS.steps.record;

/** The record's own steps (`[]` without `notBefore` or a sign-off), once the other steps have
 *  decided the proven time: not-before on the nodes given that are on the block's chain, else
 *  its default node (once per run with a `cache`), then sign-off (sign-off.js); and `answer`,
 *  what the answer adds (`madeAfter`, report.py's made_after, with notBefore). */
export async function recordSteps(claims, provenTime, rpcUrls, timeoutMs, cache = null) {
  const { record } = claims;
  const notBefore = record?.notBefore;
  const steps = [];
  let answer = {};
  let time = null;
  if (notBefore !== undefined && notBefore !== null) {
    const [checked, found] = await once(cache, ["not-before", notBefore, rpcUrls ?? null, provenTime], async () => {
      const routing = await new Routing(rpcUrls ?? null, timeoutMs).route();
      const [urls, why] = routing.urlsFor(notBefore.chainId);
      const noNode = !urls.length && why ? why
        : urls.length ? "no node answered" : `no node is known for ${chainLabel(notBefore.chainId)}`;
      return checkNotBefore(notBefore, urls.map((url) => routing.node(url)), provenTime, noNode);
    });
    steps.push(checked);
    time = found;
    answer = { madeAfter: checked.ok ? { ...notBefore, blockTime: found } : null };
  }
  if (signOffApplies(record)) steps.push(await checkSignOff(record, provenTime, time));
  return { steps, answer };
}

async function checkNotBefore(notBefore, nodes, provenTime, noNode) {
  for (const node of nodes) {
    let block;
    try {
      block = await node.block(notBefore.blockNumber);
    } catch (error) {
      if (error instanceof NodeUnreachable || error instanceof RpcError) continue;
      throw error;
    }
    try {
      return notBeforeOn(notBefore, block, provenTime);
    } catch (error) {
      return [step(NOT_BEFORE, false, `unexpected answer from the node (${error.name}: ${error.message})`), null];
    }
  }
  return [step(NOT_BEFORE, null, `not checked: ${noNode}`), null];
}

function notBeforeOn({ chainId, blockNumber, blockHash }, block, provenTime) {
  const where = chainLabel(chainId);
  if (block === null || block === undefined) {
    return [step(NOT_BEFORE, false, `${where} has no block ${blockNumber}: the record names a block not on the chain`), null];
  }
  const actual = block.hash.toLowerCase();
  if (actual !== blockHash) {
    return [step(NOT_BEFORE, false, `block ${blockNumber} of ${where} is ${actual}, not `
      + `notBefore.blockHash ${blockHash}: the record names a block not on the chain`), null];
  }
  if (typeof block.timestamp !== "string" || !/^0x[0-9a-fA-F]+$/.test(block.timestamp)) {
    const error = new TypeError(`${repr(block.timestamp)} is not a hex quantity`);
    error.name = "ValueError";
    throw error;
  }
  const time = blockTime(BigInt(block.timestamp));
  const madeAfter = `made after block ${blockNumber} at ${time}`;
  if (provenTime === null || provenTime === undefined) {
    return [step(NOT_BEFORE, null, `not checked: ${madeAfter}, but the receipt's time is not proven`), time];
  }
  if (time > provenTime) return [step(NOT_BEFORE, false, `${madeAfter}, later than the proven time ${provenTime}`), time];
  return [step(NOT_BEFORE, true, `${madeAfter}; existed no later than ${provenTime}`), time];
}
