// The browser's verifier run in Node over the receipt corpus: stdin {facts, entries, rpcUrl},
// stdout the outcomes by name (JSON).
import { verifyCorpus } from "./corpus-runner.mjs";
import { loadVerifier, readInput } from "./node-verifier.mjs";

const input = await readInput();
const rv = await loadVerifier(input.facts);
process.stdout.write(JSON.stringify(await verifyCorpus(rv, input.entries, input.rpcUrl, input.shared ?? false)));
