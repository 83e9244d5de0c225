// The browser's verifier (receipt-verify.js) loaded in Node, without a bundler: Node reads the
// page's ES modules and the vendored libraries as they are. The page embeds facts.json as
// <script id="proof-facts">; here a stand-in document holds it.

/** The JSON given on stdin. */
export async function readInput() {
  let text = "";
  for await (const chunk of process.stdin) text += chunk;
  return JSON.parse(text);
}

/** receipt-verify.js as a module, reading `facts` (the text of facts.json). */
export async function loadVerifier(facts) {
  globalThis.document = { getElementById: (id) => (id === "proof-facts" ? { textContent: facts } : null) };
  return import(new URL("../../trialnotary/web/static/js/receipt-verify.js", import.meta.url));
}
