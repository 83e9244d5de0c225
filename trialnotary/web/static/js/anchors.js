// A receipt of several anchors in the browser (docs/receipt.md, "Several anchors, roll-ups,
// time-stamps and renewals"; docs/verification.md, "Several anchors"): each anchor checked
// with its own steps, the nodes given routed to the anchors of their chain, and the verdict
// over them all. The port of trialnotary/proof/verify/anchors.py and of report.py's verdict
// over several anchors, with the same steps, states and words.
//
// One difference, documented: an RFC3161 anchor's token is not checked here (no small,
// well-kept CMS library to vendor), so its tsa step is never passed nor failed: it says to
// check the receipt with `trialnotary verify --tsa-ca FILE` (facts.json, tsaInBrowser).
//
// receipt-verify.js imports this module and this module imports it back: only functions
// of it are used, and only when called, never while the modules load.
import { checkEvidence } from "./evidence.js";
import { FACTS } from "./facts.js";
import { sha256Hex } from "./hashing.js";
import {
  ANCHOR_TYPE, DEFAULT_RPC_URLS, EXIT, FAILED, Node, NodeUnreachable,
  PIN_HINT, REQUIRE_ALL, TIMESTAMP_TYPE, UNCHECKED, UNCHECKED_NOTE, VERIFIED, anchorKey, canonicalRecordBytes,
  chainLabel, chainName, chainSteps, defaultConfirmations, firstVerdict, foldProof, missingRequired,
  note, notaryJson, notaryStep, once, parseConfirmations, quotedNames, readableTime, short, step,
  whatIsProven,
} from "./receipt-verify.js";

const [ROLLUP, TSA, RENEWAL] = FACTS.steps.anchor;
const [EVIDENCE] = FACTS.steps.optional;
/** The browser's tsa step: not checked, and how to check it. */
export const TSA_IN_BROWSER = FACTS.sentences.tsaInBrowser;
const TSA_HINT = "A time-stamp proves the time, never the origin; it is checked against its authority's certificate (--tsa-ca FILE).";

/** The ETHData anchors among `results` that verified: what can pin an origin. */
const sent = (results) => results.filter((result) => result.state === VERIFIED && result.type === ANCHOR_TYPE);

/** Whether anchors of several pin the origin (report.py, origin_pinned): at least one ETHData
 *  anchor verified, and every one that did was the pinned notary's. Time-stamps never pin. */
function originPinned(results) {
  const verified = sent(results);
  return verified.length > 0 && verified.every((result) => result.pinned);
}

/** Off its chain, the sender the evidence proved is the expected one, when one is expected:
 *  the signature, not the renewal, pins a renewed anchor's origin. */
const provenSenderIs = (entry, expected) => expected === null || expected === undefined
  || (entry.sender ?? "").toLowerCase() === expected.toLowerCase();

// --- which nodes check which anchors ---------------------------------------------------------

/**
 * Without node URLs (`urls` null) each chain's default node; with them, only those, each
 * asked its chain id once and used for the anchors of that chain alone (anchors.py, Routing).
 */
export class Routing {
  constructor(urls, timeoutMs) {
    this.given = urls !== null && urls !== undefined;
    this.timeoutMs = timeoutMs;
    this.nodes = new Map();
    this.byChain = new Map();
    this.silent = [];
    this.urls = this.given ? [...urls] : [];
  }

  node(url) {
    if (!this.nodes.has(url)) this.nodes.set(url, new Node(url, this.timeoutMs));
    return this.nodes.get(url);
  }

  async route() {
    const chains = await Promise.all(this.urls.map((url) => this.chainOf(url)));
    this.urls.forEach((url, index) => {
      const [chainId, silentNote] = chains[index];
      if (chainId === null) this.silent.push(silentNote);
      else this.byChain.set(chainId, [...(this.byChain.get(chainId) ?? []), url]);
    });
    return this;
  }

  /** The node's chain id, or null and the note on why it did not say. */
  async chainOf(url) {
    const node = this.node(url);
    try {
      return [await node.chainId(), null];
    } catch (error) {
      if (error instanceof NodeUnreachable) return [null, await note(node, error)];
      return [null, { url, answered: false, detail: `cannot answer eth_chainId: ${error.message}`, chainId: null, head: null }];
    }
  }

  /** `[urls, why there is none]` for a chain. */
  urlsFor(chainId) {
    if (!this.given) return [DEFAULT_RPC_URLS[chainId] ? [DEFAULT_RPC_URLS[chainId]] : [], null];
    const silent = this.silent.length ? ` (${this.silent.length} did not answer)` : "";
    return [this.byChain.get(chainId) ?? [], `no node given is on ${chainLabel(chainId)}${silent}`];
  }

  /** Notes on the nodes no anchor was checked on: silent, or of another chain. */
  async unusedNotes(used) {
    const others = [];
    for (const [chainId, urls] of this.byChain) {
      if (used.has(chainId)) continue;
      for (const url of urls) {
        const answered = await note(this.node(url), null);
        others.push({ ...answered, detail: `${answered.detail}; no anchor of this receipt is on chain ${chainId}` });
      }
    }
    return [...this.silent, ...others];
  }
}

// --- each anchor -----------------------------------------------------------------------------

/** One entry attesting `root` (called `rootName` in messages): its result, as report.py's
 *  AnchorResult (`heading` and `where` are the text's and the renewal step's). */
async function checkEntry(entry, claims, root, rootName, run, notes) {
  const rolled = entry.rollup === null ? { steps: [], root, rootName } : await rollupStep(entry.rollup, root, rootName);
  if (entry.type === TIMESTAMP_TYPE) return timeStampResult(entry, rolled.steps);
  const entryClaims = { ...claims, anchor: entry, root: rolled.root, rootName: rolled.rootName };
  return checkEthData(entry, entryClaims, rolled.steps, run, notes);
}

/** The rollup step, and the root the anchor attests (rollup.root). */
async function rollupStep(rollup, root, rootName) {
  const folded = await foldProof(root, rollup.proof);
  const count = `${rollup.proof.length} step(s) of rollup.proof`;
  const folding = `folding ${rootName} ${short(root)} through ${count} gives`;
  const steps = [folded !== rollup.root
    ? step(ROLLUP, false, `${folding} ${short(folded)}, not rollup.root ${short(rollup.root)}`)
    : step(ROLLUP, true, `${folding} rollup.root ${short(rollup.root)}, which the anchor attests`)];
  return { steps, root: rollup.root, rootName: "rollup.root" };
}

async function checkEthData(entry, claims, rollup, run, notes) {
  const need = parseConfirmations(run.confirmations ?? defaultConfirmations(entry.chainId));
  const [urls, noNode] = run.routing.urlsFor(entry.chainId);
  if (urls.length) run.chainsUsed.add(entry.chainId);
  const { proof, found } = await once(run.anchors, [...anchorKey(claims), need, run.pinned, urls, noNode], async () => {
    const proven = entry.evidence === null ? null : checkEvidence(claims);
    const asked = { need, pinned: run.pinned, proven: proven?.proven ?? null };
    return { proof: proven, found: await chainSteps(urls, claims, asked, run.timeoutMs, () => {}, noNode) };
  });
  for (const nodeNote of found.nodes) if (!notes.has(nodeNote.url)) notes.set(nodeNote.url, nodeNote);
  const chain = found.steps;
  const seen = { blockTime: found.seen.blockTime ?? null, sender: found.seen.sender ?? null };
  const evidence = proof ? [step(EVIDENCE, proof.ok, proof.detail)] : [];
  const renewed = entry.renewal === null ? { steps: [], results: [], first: null }
    : await renewalStep(entry, claims, evidence, run, notes);
  const origin = run.notary === null ? []
    : [notaryStep(run.notary, claims, chain, seen, renewed.steps.length ? evidence : [])];
  const steps = [...chain, ...origin, ...evidence, ...rollup, ...renewed.steps];
  const onChain = chain.every((s) => s.ok === true);
  const state = steps.some((s) => s.ok === false) ? FAILED
    : onChain || renewed.first !== null ? VERIFIED : UNCHECKED;
  const where = `${entry.name} block ${entry.blockNumber}`;
  let summary = null;
  let provenTime = null;
  if (state === VERIFIED) {
    const blockTime = entry.blockTime ?? seen.blockTime;
    summary = `anchored on ${where} at ${blockTime}`;
    provenTime = blockTime;
    if (!onChain) {
      summary += ` (chain retired); that evidence existed no later than ${renewed.first.provenTime} (${renewed.first.where})`;
      provenTime = renewed.first.provenTime;
    }
  }
  const pinned = state === VERIFIED && (run.pinned !== null || run.notary !== null)
    && (onChain || provenSenderIs(entry, run.pinned));
  return { name: entry.name, type: ANCHOR_TYPE, heading: heading(entry), steps, state, provenTime, pinned, summary, where, renewal: renewed.results };
}

function heading(entry) {
  const chain = entry.chainId !== null ? `${entry.chain || chainName(entry.chainId)} chain ${entry.chainId}` : "an unnamed chain";
  return `anchor ${entry.name} (${entry.type}, ${chain})`;
}

/** What a renewal attests of a retired anchor: SHA-256 of the RFC 8785 JSON of its chainId,
 *  blockNumber, blockHash, sourceId and the root it attests (docs/receipt.md). */
export async function evidenceDigest(entry, root) {
  return sha256Hex(canonicalRecordBytes({
    chainId: entry.chainId, blockNumber: entry.blockNumber, blockHash: entry.blockHash, sourceId: entry.txHash, root,
  }));
}

/** The earliest of the results (the first of equal times), or null. */
function earliest(results) {
  return results.reduce((best, result) => (best === null || result.provenTime < best.provenTime ? result : best), null);
}

/** The renewal step, its anchors' results, and the earliest of them that verified when the
 *  renewal holds (`first`, null otherwise). */
async function renewalStep(entry, claims, evidence, run, notes) {
  const { renewal } = entry;
  const problems = [];
  const digest = await evidenceDigest(entry, claims.root);
  if (digest !== renewal.evidenceDigest) {
    problems.push(`evidenceDigest ${short(renewal.evidenceDigest)} is not the digest of the anchor's chainId, `
      + `blockNumber, blockHash, sourceId and ${claims.rootName} (${short(digest)})`);
  }
  const folded = await foldProof(renewal.evidenceDigest, renewal.proof);
  const count = `${renewal.proof.length} step(s)`;
  if (folded !== renewal.root) {
    problems.push(`folding evidenceDigest through ${count} of renewal.proof gives ${short(folded)}, not renewal.root ${short(renewal.root)}`);
  }
  const results = [];
  for (const sub of renewal.anchors) results.push(await checkEntry(sub, claims, renewal.root, "renewal.root", run, notes));
  const failed = results.find((result) => result.state === FAILED);
  if (failed) {
    const first = failed.steps.find((s) => s.ok === false);
    problems.push(`its anchor ${failed.name} does not verify: ${first.name} failed — ${first.detail}`);
  }
  const answer = (ok, detail, first = null) => ({ steps: [step(RENEWAL, ok, detail)], results, first });
  if (problems.length) return answer(false, problems.join("; "));
  const verified = results.filter((result) => result.state === VERIFIED);
  if (!verified.length) return answer(null, "not checked: no anchor of the renewal could be checked");
  if (!evidence.some((s) => s.ok === true)) {
    return answer(null, "not checked: a renewal vouches for the anchor's evidence, and the anchor has none that holds");
  }
  const first = earliest(verified);
  return answer(true, `evidenceDigest is the digest of the anchor's chainId, blockNumber, blockHash, sourceId and `
    + `${claims.rootName}; folding it through ${count} gives renewal.root ${short(renewal.root)}, attested no later `
    + `than ${first.provenTime} (${first.where})`, first);
}

/** An RFC3161 anchor: its rollup step, and its tsa step not checked (TSA_IN_BROWSER). */
function timeStampResult(entry, rollup) {
  const steps = [...rollup, step(TSA, null, TSA_IN_BROWSER)];
  return {
    name: entry.name, type: TIMESTAMP_TYPE, heading: `anchor ${entry.name} (${TIMESTAMP_TYPE} time-stamp)`, steps,
    state: steps.some((s) => s.ok === false) ? FAILED : UNCHECKED, provenTime: null, pinned: false, summary: null,
    where: `${entry.name} time-stamp`, renewal: [],
  };
}

// --- the verdict over several anchors (report.py, _several_verdict) ---------------------------

/** `sepolia (no node answered), tsa (…)`: each anchor not checked, and why. */
function uncheckedWhy(results) {
  return results.filter((result) => result.state === UNCHECKED).map((result) => {
    const reason = result.steps.find((s) => s.ok === null)?.detail ?? "not checked";
    return `${result.name} (${reason.replace(/^not checked: /, "")})`;
  }).join(", ");
}

function severalVerdict({ claims, offline, results, proving, required, originPinned }) {
  const offlineFailed = offline.find((s) => s.ok === false);
  if (offlineFailed) {
    return { state: FAILED, text: `This receipt does NOT verify: ${offlineFailed.name} failed — ${offlineFailed.detail}`, note: null, exitCode: EXIT.FAILED };
  }
  for (const result of results) {
    const failed = result.steps.filter((s) => s.ok === false);
    if (failed.length) {
      const also = failed.length > 1 ? ` (also failed: ${failed.slice(1).map((s) => s.name).join(", ")})` : "";
      return { state: FAILED, text: `This receipt does NOT verify: anchor ${result.name}: ${failed[0].name} failed — ${failed[0].detail}${also}`, note: null, exitCode: EXIT.FAILED };
    }
  }
  if (proving === null) {
    return { state: UNCHECKED, text: `Could not check any anchor of the receipt: ${uncheckedWhy(results)}.`, note: UNCHECKED_NOTE, exitCode: EXIT.UNCHECKED };
  }
  const [state, text] = whatIsProven(claims, offline, `${readableTime(proving.provenTime)} (anchor ${proving.name})`);
  const requiredUnchecked = results.filter((result) => result.state === UNCHECKED
    && (required.includes(result.name) || required.includes(REQUIRE_ALL)));
  if (requiredUnchecked.length) {
    return { state: UNCHECKED, text: `Could not check the required anchor(s) ${uncheckedWhy(requiredUnchecked)}.`, note: text, exitCode: EXIT.UNCHECKED };
  }
  if (originPinned) return { state, text, note: null, exitCode: EXIT.PASS };
  const unpinned = sent(results).filter((result) => !result.pinned).map((result) => result.name);
  const why = unpinned.length
    ? `the origin of ${quotedNames(unpinned)} is not pinned: nothing checked that the notary made it.`
    : "its origin is not pinned: a time-stamp proves when, not who, and no anchor sent by the notary verified.";
  return {
    state,
    text: `The anchors are genuine, but ${why}`,
    note: `${text} ${PIN_HINT} ${TSA_HINT}`,
    exitCode: EXIT.NOT_PINNED,
  };
}

// --- the entry point ---------------------------------------------------------------------------

/**
 * A receipt of several anchors (receipt-verify.js isSeveral), its offline steps done: each
 * anchor with its own steps, in the receipt's order, and the answer in the form of
 * verifyReceipt's (report.py's Report.to_json for several anchors: `provenBy`, each step
 * naming its `anchor`, `anchors` with each anchor's state, time, pin and steps).
 */
export async function verifySeveral(claims, offline, wrongFile, options) {
  const { rpcUrls = null, notary = null, pinned, required, emit, timeoutMs, anchors = null } = options;
  const run = {
    routing: await once(anchors, ["routing", rpcUrls], () => new Routing(rpcUrls, timeoutMs).route()),
    confirmations: options.confirmations ?? null, pinned, notary, timeoutMs, chainsUsed: new Set(), anchors,
  };
  const notes = new Map();
  const results = [];
  for (const entry of claims.anchors) {
    const result = await checkEntry(entry, claims, claims.root, claims.rootName, run, notes);
    result.steps.forEach((s) => emit({ ...s, anchor: result.name }));
    results.push(result);
  }
  const unused = await run.routing.unusedNotes(run.chainsUsed);
  const nodes = [...notes.values(), ...unused.filter((n) => !notes.has(n.url))];
  const verified = results.filter((result) => result.state === VERIFIED);
  const proving = earliest(verified);
  const pinnedOrigin = originPinned(results);
  const missing = missingRequired(required, results.map((result) => result.name));
  const { exitCode, ...verdict } = firstVerdict(wrongFile, missing)
    ?? severalVerdict({ claims, offline, results, proving, required, originPinned: pinnedOrigin });
  const ok = exitCode === EXIT.PASS || exitCode === EXIT.NOT_PINNED;
  const first = claims.anchor;
  const need = options.confirmations !== undefined && options.confirmations !== null
    ? parseConfirmations(options.confirmations) : defaultConfirmations(first?.chainId ?? null);
  const blockTime = proving?.provenTime ?? null;
  return {
    ok,
    verdict,
    exitCode,
    pinned: pinnedOrigin,
    notary: notaryJson(notary),
    steps: [...offline, ...results.flatMap((result) => result.steps.map((s) => ({ ...s, anchor: result.name })))],
    nodes,
    provenTime: ok ? blockTime : null,
    blockTime,
    transaction: first ? `0x${first.txHash}` : null,
    chain: first ? first.chain || (first.chainId ? chainName(first.chainId) : null) : null,
    chainId: first?.chainId ?? null,
    blockNumber: first?.blockNumber ?? null,
    targetHash: claims.target,
    merkleRoot: claims.root,
    confirmations: { required: need, actual: null },
    provenBy: proving?.name ?? null,
    anchors: results,
    record: claims.record,
  };
}
