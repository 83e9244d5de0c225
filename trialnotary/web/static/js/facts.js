// The facts of the receipt format and its verifiers (trialnotary/proof/facts.json), read once
// from the page that embeds them as <script type="application/json" id="proof-facts">
// (verify.html; a stand-in document in Node). Every verifier module takes them from here.
export const FACTS = JSON.parse(document.getElementById("proof-facts").textContent);
