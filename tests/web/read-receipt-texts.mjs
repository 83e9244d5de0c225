// The browser's receipt reader (receipt-verify.js, parseReceiptText) run in Node over texts:
// stdin {facts, texts}, stdout for each text [error message or null, integer-form report].

import { writtenAsInteger } from "../../trialnotary/web/static/js/strict-json.js";
import { loadVerifier, readInput } from "./node-verifier.mjs";

const input = await readInput();
const rv = await loadVerifier(input.facts);

/** Each number of an object's top level: "int" (an exact integer written as one), "float"
 *  (written with a fraction or exponent), "big" (an integer beyond 2^53−1), as Python sees them. */
function numbers(value) {
  const kinds = [];
  for (const [key, item] of Object.entries(value)) {
    if (typeof item === "bigint") kinds.push([key, "big"]);
    else if (typeof item === "number") kinds.push([key, writtenAsInteger(value, key) && Number.isInteger(item) ? "int" : "float"]);
  }
  return Object.fromEntries(kinds); // (defines "__proto__" as a key like any other)
}

const answers = input.texts.map((text) => {
  try {
    return [null, numbers(rv.parseReceiptText(text))];
  } catch (error) {
    return [error instanceof rv.ReceiptError ? error.message : `${error.name}: ${error.message}`, null];
  }
});
process.stdout.write(JSON.stringify(answers));
