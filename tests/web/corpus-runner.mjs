// The browser's verifier over the receipt corpus (tests/corpus.py): the same code in Node
// (verify-corpus.mjs) and in Chromium (test_verifier_parity.py), each entry's outcome in the
// form the Python side reads the CLI's JSON into.

function unusable(error) {
  return {
    state: "unusable", exitCode: 2, failedStep: null, error: error.message, text: null, note: null, steps: [],
    anchors: [], provenBy: null, provenTime: null, pinned: null, nodes: [], madeAfter: null,
  };
}

/** An anchor of the answer as `trialnotary verify --json` writes it (report.py, AnchorResult.to_json). */
function anchorJson({ name, type, state, provenTime, pinned, summary, steps, renewal }) {
  return {
    name, type, state, provenTime, pinned, summary,
    steps: steps.map((s) => ({ name: s.name, ok: s.ok, detail: s.detail })),
    ...(renewal?.length ? { renewal: renewal.map(anchorJson) } : {}),
  };
}

/** One receipt's outcome: read from its text as a file, then verified against the node
 *  (pinned to the notary's identity when the options hold its document). */
async function outcome(rv, text, { notaryDocument, ...options }, rpcUrl, anchors) {
  const notary = notaryDocument ? rv.parseIdentity(notaryDocument, "the identity document") : null;
  let result;
  try {
    const receipt = await rv.readReceiptFile(new Blob([text]));
    result = await rv.verifyReceipt(receipt, { ...options, notary, rpcUrls: [rpcUrl], anchors });
  } catch (error) {
    if (error instanceof rv.ReceiptError) return unusable(error);
    throw error;
  }
  const failed = result.steps.find((s) => s.ok === false);
  return {
    state: result.verdict.state, exitCode: result.exitCode, failedStep: failed?.name ?? null,
    error: null, text: result.verdict.text, note: result.verdict.note,
    steps: result.steps.map((s) => [s.name, s.ok, s.detail, s.anchor ?? null]),
    anchors: result.anchors.map(anchorJson), provenBy: result.provenBy ?? null,
    provenTime: result.provenTime, pinned: result.pinned,
    nodes: result.nodes.map((n) => [n.url, n.answered, n.detail]),
    madeAfter: result.madeAfter ?? null,
  };
}

/** `entries`: [{name, text, options}]; the outcomes by name. `shared`: one anchor cache for
 *  every entry, as one `trialnotary verify` (or timeline) run keeps one. */
export async function verifyCorpus(rv, entries, rpcUrl, shared = false) {
  const outcomes = {};
  const anchors = shared ? new Map() : undefined;
  for (const { name, text, options } of entries) outcomes[name] = await outcome(rv, text, options, rpcUrl, anchors);
  return outcomes;
}
