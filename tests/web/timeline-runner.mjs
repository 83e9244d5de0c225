// The browser's timeline (receipts-zip.js, timeline.js) run in Node on a receipts zip:
// stdin {facts, zipPath, label, rpcUrl, identity}, stdout {json, text} as `trialnotary
// timeline --json` and its text would print them, or {error} when the zip is refused.
import { readFile } from "node:fs/promises";
import { loadVerifier, readInput } from "./node-verifier.mjs";

const input = await readInput();
const rv = await loadVerifier(input.facts);
const zip = await import("../../trialnotary/web/static/js/receipts-zip.js");
const timeline = await import("../../trialnotary/web/static/js/timeline.js");
const blob = new Blob([await readFile(input.zipPath)]);
let answer;
try {
  const read = await zip.readBundle(blob, input.label);
  const given = read.map(({ name, receipt, error }) => ({ source: `${input.label}:${name}`, receipt, error }));
  const notary = input.identity ? rv.parseIdentity(JSON.parse(input.identity), input.identityPath) : null;
  const verified = await timeline.verifyAll(given, { rpcUrls: [input.rpcUrl], notary });
  answer = { json: timeline.toJson(verified), text: timeline.renderText(verified) };
} catch (error) {
  if (!(error instanceof zip.BundleError)) throw error;
  answer = { error: error.message };
}
process.stdout.write(JSON.stringify(answer));
