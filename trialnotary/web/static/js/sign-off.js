/**
 * The `sign-off` step (docs/verification.md): a sign-off's record is of kind sign-off, its
 * signOff well formed, its sha256 the SHA-256 of the canonical signOff, and signedAt within
 * the interval the receipt proves. Word for word proof/signoff.py and
 * proof/verify/checks.py's check_sign_off.
 */

import { FACTS } from "./facts.js";
import { sha256Hex } from "./hashing.js";
import { canonicalRecordBytes, repr, short, step } from "./receipt-verify.js";

// (Read from facts.js, not receipt-verify.js: see not-before.js.)
const [, SIGN_OFF] = FACTS.steps.record;
const { kind: SIGN_OFF_KIND, keys: KEYS, meanings: MEANINGS, roles: ROLES } = FACTS.signOff;
const MAX_NAME_CHARS = FACTS.limits.signerNameChars;
const EXACT = [...KEYS].sort().join(", ");
const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const HEX64 = /^[0-9a-f]{64}$/;
const SIGNED_AT = /^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$/;

/** Whether the record is a sign-off's, or claims to be: the step is shown. */
export function signOffApplies(record) {
  return record !== null && record !== undefined
    && (Object.hasOwn(record, "signOff") || record.kind === SIGN_OFF_KIND);
}

/** The step, with the proven time of the other steps and, with notBefore, the named block's
 *  time once the not-before step found it (else null). */
export async function checkSignOff(record, provenTime, blockTime) {
  const problem = await signOffProblem(record);
  if (problem !== null) return step(SIGN_OFF, false, problem);
  const s = record.signOff;
  const signed = `${s.name} (${s.role}) signed registration ${s.signs} (leaf ${short(s.signsLeaf)}) as ${s.meaning} at ${s.signedAt}`;
  const late = signedAtProblem(s, provenTime ?? null, record.notBefore ?? null, blockTime ?? null);
  if (late !== null) return step(SIGN_OFF, false, late);
  if (provenTime === null || provenTime === undefined) {
    return step(SIGN_OFF, null, `not checked: ${signed}, but the receipt's time is not proven`);
  }
  return step(SIGN_OFF, true, `${signed}, no later than the proven time ${provenTime}`);
}

async function signOffProblem(record) {
  if (!Object.hasOwn(record, "signOff")) return `the record is of kind ${SIGN_OFF_KIND} but holds no signOff`;
  if (record.kind !== SIGN_OFF_KIND) return `the record holds a signOff but its kind is ${repr(record.kind)}, not ${SIGN_OFF_KIND}`;
  const problem = shapeProblem(record.signOff);
  if (problem !== null) return problem;
  const digest = await sha256Hex(canonicalRecordBytes(record.signOff));
  if (record.sha256 !== digest) {
    return `record.sha256 ${short(record.sha256)} is not the SHA-256 of the canonical signOff, ${short(digest)}: the manifestation was changed`;
  }
  return null;
}

const matches = (pattern) => (value) => typeof value === "string" && pattern.test(value);
const CHECKS = [
  ["signs", matches(UUID4), "a registration id (a lowercase UUID4)"],
  ["signsLeaf", matches(HEX64), "64 lowercase hex digits"],
  ["name", (value) => typeof value === "string" && [...value].length >= 1 && [...value].length <= MAX_NAME_CHARS,
    `a printed name of 1 to ${MAX_NAME_CHARS} characters`],
  ["role", (value) => ROLES.includes(value), `one of ${ROLES.join(", ")}`],
  ["meaning", (value) => MEANINGS.includes(value), `one of ${MEANINGS.join(", ")}`],
  ["signedAt", matches(SIGNED_AT), "a UTC time with milliseconds (2026-11-23T18:59:01.123Z)"],
];

function shapeProblem(signOff) {
  const isObject = typeof signOff === "object" && signOff !== null && !Array.isArray(signOff);
  if (!isObject || Object.keys(signOff).sort().join(", ") !== EXACT) return `signOff must be an object of exactly ${EXACT}`;
  const failed = CHECKS.find(([key, holds]) => !holds(signOff[key]));
  return failed ? `signOff.${failed[0]} must be ${failed[2]}` : null;
}

function signedAtProblem(signOff, provenTime, notBefore, blockTime) {
  const signed = signOff.signedAt.slice(0, 19);
  if (provenTime !== null && signed > provenTime.slice(0, 19)) {
    return `signed at ${signOff.signedAt}, later than the proven time ${provenTime}`;
  }
  if (notBefore !== null && blockTime !== null && signed < blockTime.slice(0, 19)) {
    return `signed at ${signOff.signedAt}, before block ${notBefore.blockNumber} at ${blockTime}, which the record names as notBefore`;
  }
  return null;
}
