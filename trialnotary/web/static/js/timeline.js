// A trial's proven timeline and its pre-specification checks, in the browser: every receipt
// verified (each anchor once), ordered by proven time, its version chains linked and the
// rules of facts.json's timelineRules judged. Word for word proof/timeline.py (the order,
// the chains, the rules) and proof/verify/timeline_command.py (the verification, the JSON and
// the text of `trialnotary timeline`); docs/verification.md, "Was it pre-specified?".
import { FACTS } from "./facts.js";
import { EXIT, ReceiptError, parseReceipt, recordLeaf, verifyReceipt } from "./receipt-verify.js";

export const RULES = Object.freeze(FACTS.timelineRules.rules.map((rule) => Object.freeze({ ...rule })));
export const UNUSABLE = FACTS.timelineRules.unusableState;
const SIGN_OFF_KIND = FACTS.signOff.kind;
const SIGNS = Object.freeze({ ...FACTS.timelineRules.signOffRule });
/** How a sign-off check names an id or a leaf the sign-off does not give. */
const NOTHING = "(none)";
const EXIT_ORDER = FACTS.exitOrder.map((name) => FACTS.exitCodes[name]);
export const MARKS = Object.freeze({ true: "✓", false: "✗", null: "–" });
/** How many receipts are verified side by side (an anchor shared is still checked once). */
const WORKERS = 8;

/** The worst of several exit codes (report.py's exit_code_of). */
export function exitCodeOf(codes) {
  return codes.reduce((worst, code) => (EXIT_ORDER.indexOf(code) > EXIT_ORDER.indexOf(worst) ? code : worst), EXIT.PASS);
}

// --- verifying -----------------------------------------------------------------------------

/**
 * Verify every receipt as `trialnotary timeline` does: `given` is `[{source, receipt}]` or
 * `{source, error}` (a receipt that could not be read); `options` those of verifyReceipt
 * (rpcUrls, confirmations, expectSender, notary), one anchor cache shared by all, and
 * `nodesOf(claims)`, when given, each receipt's own rpcUrls (the page: its chain's node).
 * `onProgress(done, total)` after each. Answers `{timeline, exitCode}`.
 */
export async function verifyAll(given, options = {}, onProgress = () => {}) {
  const shared = { ...options, anchors: options.anchors ?? new Map() };
  const results = new Array(given.length);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < given.length) {
      const index = next++;
      results[index] = await verified(given[index], shared);
      onProgress(++done, given.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(WORKERS, given.length) }, worker));
  const timeline = build(results.map(([one]) => one));
  const exitCode = exitCodeOf([...results.map(([, code]) => code), rulesHold(timeline) ? EXIT.PASS : EXIT.FAILED]);
  return { timeline, exitCode };
}

async function verified({ source, receipt, error }, options) {
  const unusable = (why) => [{ source, record: null, provenTime: null, state: UNUSABLE, why: `not a usable receipt: ${why}`, madeAfter: null, leaf: null }, EXIT.UNUSABLE];
  if (error) return unusable(error.message);
  let claims;
  try {
    claims = parseReceipt(receipt);
  } catch (problem) {
    if (problem instanceof ReceiptError) return unusable(problem.message);
    throw problem;
  }
  const result = await verifyReceipt(receipt, options.nodesOf ? { ...options, rpcUrls: options.nodesOf(claims) } : options);
  const proven = [EXIT.PASS, EXIT.NOT_PINNED].includes(result.exitCode) ? result.provenTime : null;
  return [{
    source, record: claims.record, provenTime: proven, state: result.verdict.state,
    why: proven === null ? result.verdict.text : null, madeAfter: proven === null ? null : result.madeAfter ?? null,
    leaf: await leafOf(claims.record),
  }, result.exitCode];
}

/** The record's leaf in hex, which a sign-off of it names (null when it has none). */
async function leafOf(record) {
  try {
    return record === null ? null : await recordLeaf(record);
  } catch {
    return null;
  }
}

// --- the timeline (proof/timeline.py) -----------------------------------------------------

const field = (entry, key) => entry.verified.record?.[key] ?? null;
const idOf = (entry) => field(entry, "id");
const kindOf = (entry) => field(entry, "kind");
const isFinal = (entry) => entry.supersededBy === null;
const signOffField = (entry, key) => {
  const signOff = field(entry, "signOff");
  const value = signOff !== null && typeof signOff === "object" && !Array.isArray(signOff) ? signOff[key] : null;
  return typeof value === "string" ? value : null;
};
const signsOf = (entry) => signOffField(entry, "signs");

function label(entry) {
  const version = entry.versions > 1 ? ` v${entry.version}` : "";
  return `${kindOf(entry) || "receipt"} ${field(entry, "dataset") || entry.verified.source}${version}`;
}

/** Strings by code point, as Python compares them (`<` compares UTF-16 units, which puts
 *  U+1F600 before U+FF5E); other values as `<` does. */
export function compare(a, b) {
  if (typeof a !== "string" || typeof b !== "string") return a < b ? -1 : a > b ? 1 : 0;
  for (let i = 0; i < Math.min(a.length, b.length); i += 1) {
    const [x, y] = [a.charCodeAt(i), b.charCodeAt(i)];
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

/** A UTF-16 unit ranked as the code points it starts or ends: surrogates above U+FFFF. */
function codePointRank(unit) {
  if (unit < 0xd800) return unit;
  return unit >= 0xe000 ? unit - 0x800 : unit + 0x2000;
}

/** The entries in proven order (unproven last, then by claimed submission time) with their
 *  version chains, and every rule judged over them: `{entries, checks}`. */
export function build(verifiedReceipts) {
  const entries = verifiedReceipts.map((one) => ({
    verified: one, chain: null, version: 1, versions: 1, supersededBy: null, predecessorMissing: false, signOffs: [],
  }));
  linkVersions(entries);
  const order = (entry) => [entry.verified.provenTime === null ? 1 : 0, entry.verified.provenTime ?? "",
    field(entry, "submittedAt") || "", idOf(entry) || "", entry.verified.source];
  const keyed = entries.map((entry) => [order(entry), entry]);
  keyed.sort(([a], [b]) => a.reduce((found, value, index) => found || compare(value, b[index]), 0));
  const sorted = keyed.map(([, entry]) => entry);
  const byId = new Map();
  for (const entry of sorted) if (idOf(entry) !== null) byId.set(idOf(entry), entry);
  for (const entry of sorted) {
    if (signsOf(entry) !== null && byId.has(signsOf(entry))) byId.get(signsOf(entry)).signOffs.push(idOf(entry));
  }
  return { entries: sorted, checks: [...judge(sorted), ...judgeSignOffs(sorted, byId)] };
}

/** One check per sign-off: the registration it signs is given, with its leaf. */
function judgeSignOffs(entries, byId) {
  const check = (ok, detail, earlier = null, later = null) => ({ rule: SIGNS, ok, detail, earlier, later, site: null, marginSeconds: null });
  const checks = entries.filter((entry) => kindOf(entry) === SIGN_OFF_KIND).map((entry) => {
    const signs = signsOf(entry);
    const signed = signs === null ? undefined : byId.get(signs);
    const leaf = signOffField(entry, "signsLeaf");
    if (signed === undefined) {
      return check(null, `${label(entry)} signs ${signs || NOTHING}, which is not among the receipts given`, null, entry);
    }
    const held = leaf !== null && signed.verified.leaf === leaf;
    return check(held, `${label(entry)} signs ${label(signed)}` + (held ? "" : `, but names leaf ${leaf || NOTHING}, not its leaf`), signed, entry);
  });
  return checks.length ? checks : [check(null, "n/a: no sign-off among the receipts given")];
}

export function rulesHold(timeline) {
  return timeline.checks.every((check) => check.ok !== false);
}

/** The ids more than one receipt given holds, in the order they first appear (timeline.py,
 *  shared_ids). */
export function sharedIds(entries) {
  const seen = new Set();
  const shared = [];
  for (const entry of entries) {
    const id = idOf(entry);
    if (seen.has(id) && !shared.includes(id)) shared.push(id);
    else if (id !== null) seen.add(id);
  }
  return shared;
}

/** The version chains, over the ids one receipt alone holds (an entry with a shared id is in
 *  no chain). */
function linkVersions(entries) {
  const shared = sharedIds(entries);
  const linked = entries.filter((entry) => !shared.includes(idOf(entry)));
  const byId = new Map();
  for (const entry of linked) if (idOf(entry) !== null) byId.set(idOf(entry), entry);
  const get = (id) => (id === null ? undefined : byId.get(id));
  for (const entry of linked) {
    const earlier = get(field(entry, "supersedes"));
    if (earlier !== undefined && earlier.supersededBy === null) earlier.supersededBy = idOf(entry);
    else if (field(entry, "supersedes") !== null && !shared.includes(field(entry, "supersedes")) && earlier === undefined) {
      entry.predecessorMissing = true;
    }
  }
  for (const entry of linked) {
    if (idOf(entry) === null || get(field(entry, "supersedes")) !== undefined) continue;
    const chain = [entry];
    const seen = new Set([idOf(entry)]);
    for (let following = get(chain.at(-1).supersededBy); following && !seen.has(idOf(following));
      following = get(chain.at(-1).supersededBy)) {
      chain.push(following);
      seen.add(idOf(following));
    }
    chain.forEach((version, index) => Object.assign(version, { chain: idOf(entry), version: index + 1, versions: chain.length }));
  }
}

/** Every rule over the entries, in order (a rule perSite once per site that has entries of
 *  its later kind). */
export function judge(entries) {
  const shared = sharedIds(entries);
  return RULES.flatMap((rule) => judgeRule(rule, entries, shared));
}

/** A rule whose kinds are both given, with entries of a shared id, cannot be judged (nor
 *  which version is final): it fails and says which receipts. */
function judgeRule(rule, entries, shared) {
  const kinds = [rule.earlier, rule.later];
  const clashing = shared
    .filter((id) => entries.some((entry) => idOf(entry) === id && kinds.includes(kindOf(entry))))
    .map((id) => [id, entries.filter((entry) => idOf(entry) === id).map((entry) => entry.verified.source)]);
  if (clashing.length && kinds.every((kind) => entries.some((entry) => kindOf(entry) === kind))) {
    const detail = `cannot be judged: ${clashing.map(([id, sources]) => `the receipts ${sources.join(", ")} share the id ${id}`).join("; ")}`;
    return [{ rule, ok: false, detail, earlier: null, later: null, site: null, marginSeconds: null }];
  }
  const earlier = entries.filter((entry) => kindOf(entry) === rule.earlier && (isFinal(entry) || !rule.finalOnly));
  const later = entries.filter((entry) => kindOf(entry) === rule.later);
  if (!rule.perSite) return [before(rule, earlier, later)];
  const siteOf = (entry) => field(entry, "site") || "";
  const sites = [...new Set(later.map(siteOf))].sort(compare);
  const checks = sites.map((site) => ({ ...before(rule, earlier, later.filter((entry) => siteOf(entry) === site)), site }));
  return checks.length ? checks : [before(rule, earlier, later)];
}

/** The latest of `earlier` against the first of `later` (the first found among equals). */
function before(rule, earlier, later) {
  const missing = [[rule.earlier, earlier], [rule.later, later]].filter(([, found]) => !found.length).map(([kind]) => kind);
  const check = (ok, detail, more = {}) => ({ rule, ok, detail, earlier: null, later: null, site: null, marginSeconds: null, ...more });
  if (missing.length) return check(null, `n/a: ${missing.map((kind) => `no ${kind}`).join(" and ")} among the receipts given`);
  const unproven = [...earlier, ...later].filter((entry) => entry.verified.provenTime === null);
  if (unproven.length) {
    return check(false, `cannot be judged: ${unproven.map((entry) => `the receipt of ${label(entry)} (${entry.verified.source}) did not verify`
      + (entry.verified.why ? `: ${entry.verified.why}` : "")).join("; ")}`);
  }
  const last = earlier.reduce((found, entry) => (entry.verified.provenTime > found.verified.provenTime ? entry : found));
  const first = later.reduce((found, entry) => (entry.verified.provenTime < found.verified.provenTime ? entry : found));
  const margin = moment(first.verified.provenTime) - moment(last.verified.provenTime);
  const held = margin > 0;
  const words = held
    ? `${label(last)} proven at ${last.verified.provenTime}, ${duration(margin)} before ${label(first)} proven at ${first.verified.provenTime}`
    : `${label(last)} proven at ${last.verified.provenTime} is NOT before ${label(first)} proven at ${first.verified.provenTime}`
      + (margin === 0 ? " (the same second)" : ` (${duration(-margin)} after)`);
  return check(held, words, { earlier: last, later: first, marginSeconds: margin });
}

/** A proven time in whole seconds since the epoch. */
function moment(provenTime) {
  return Math.floor(Date.parse(provenTime) / 1000);
}

/** `3d 04h 05m 06s`, from the largest unit present. */
export function duration(seconds) {
  let rest = Math.abs(seconds);
  const days = Math.floor(rest / 86400);
  rest %= 86400;
  const hours = Math.floor(rest / 3600);
  rest %= 3600;
  const parts = [[days, "d"], [hours, "h"], [Math.floor(rest / 60), "m"], [rest % 60, "s"]];
  while (parts.length > 1 && parts[0][0] === 0) parts.shift();
  return parts.map(([value, unit], index) => (index ? `${String(value).padStart(2, "0")}${unit}` : `${value}${unit}`)).join(" ");
}

// --- the answer: --json and the text (proof/verify/timeline_command.py) ---------------------

export function entryJson(entry) {
  const record = entry.verified.record ?? {};
  const get = (key) => record[key] ?? null;
  return {
    receipt: entry.verified.source, id: idOf(entry), kind: kindOf(entry),
    trial: get("trial"), site: get("site"), dataset: get("dataset"), filename: get("filename"),
    sha256: get("sha256"), supersedes: get("supersedes"), submittedAt: get("submittedAt"),
    provenTime: entry.verified.provenTime, state: entry.verified.state, why: entry.verified.why,
    versionChain: {
      first: entry.chain, version: entry.version, versions: entry.versions, supersededBy: entry.supersededBy,
      final: isFinal(entry), predecessorMissing: entry.predecessorMissing,
    },
    ...("notBefore" in record ? { madeAfter: entry.verified.madeAfter } : {}),
    ...(kindOf(entry) === SIGN_OFF_KIND ? { signs: signsOf(entry) } : {}),
    ...(entry.signOffs.length ? { signOffs: entry.signOffs } : {}),
  };
}

function sideJson(entry) {
  if (entry === null) return null;
  return {
    id: idOf(entry), kind: kindOf(entry), dataset: field(entry, "dataset"), site: field(entry, "site"),
    version: entry.version, provenTime: entry.verified.provenTime, receipt: entry.verified.source,
  };
}

export function checkJson(check) {
  return {
    rule: check.rule.name, ok: check.ok, statement: check.rule.statement, detail: check.detail,
    earlier: sideJson(check.earlier), later: sideJson(check.later), marginSeconds: check.marginSeconds,
    margin: check.marginSeconds === null ? null : duration(check.marginSeconds),
    ...(check.site !== null ? { site: check.site } : {}),
  };
}

/** `trialnotary timeline --json`'s answer. */
export function toJson({ timeline, exitCode }) {
  return { ok: exitCode === EXIT.PASS, exitCode, entries: timeline.entries.map(entryJson), checks: timeline.checks.map(checkJson) };
}

/** The version of an entry in its chain, as the text says it ("" for a lone version). */
export function versionWords(entry) {
  if (entry.versions <= 1 && !entry.predecessorMissing) return "";
  return `v${entry.version}/${entry.versions}` + (field(entry, "supersedes") ? ` supersedes ${field(entry, "supersedes")}` : "")
    + (isFinal(entry) ? " (final)" : "");
}

/** The interval a record with a checked notBefore was made in ("" without). */
export function intervalWords(entry) {
  const madeAfter = entry.verified.madeAfter;
  if (!madeAfter) return "";
  return `made after block ${madeAfter.blockNumber} at ${madeAfter.blockTime}; existed no later than ${entry.verified.provenTime}`;
}

export function checkWords(check) {
  return `${check.rule.statement}${check.site !== null ? ` (site ${check.site})` : ""}: ${check.detail}`;
}

/** The last line's two parts: PASS, FAIL or NOT PROVEN, and the counts. */
export function summaryOf({ timeline, exitCode }) {
  const failed = timeline.checks.filter((check) => check.ok === false).length;
  const unproven = timeline.entries.filter((entry) => entry.verified.provenTime === null).length;
  const word = exitCode === EXIT.PASS ? "PASS" : [EXIT.FAILED, EXIT.UNUSABLE].includes(exitCode) ? "FAIL" : "NOT PROVEN";
  return [word, `${timeline.entries.length} receipts, ${unproven} not verified; `
    + `${timeline.checks.length} checks, ${failed} failed (exit ${exitCode})`];
}

/** `trialnotary timeline`'s text, word for word. */
export function renderText(answer) {
  const lines = ["Proven timeline (proven time: no later than; claimed: submittedAt)"];
  for (const entry of answer.timeline.entries) {
    const proven = entry.verified.provenTime ?? `NOT PROVEN (${entry.verified.state})`;
    const version = versionWords(entry);
    const interval = intervalWords(entry);
    lines.push(`${proven.padEnd(21)} ${(kindOf(entry) || "-").padEnd(18)} ${(field(entry, "site") || "-").padEnd(10)} `
      + `${field(entry, "dataset") || entry.verified.source}  id ${idOf(entry) || "-"}  `
      + `claimed ${field(entry, "submittedAt") || "-"}${version ? `  ${version}` : ""}`
      + `${interval ? `\n    ${interval}` : ""}${entry.verified.why ? `\n    ${entry.verified.why}` : ""}`);
  }
  lines.push("", "Pre-specification checks", ...answer.timeline.checks.map((check) => `${MARKS[check.ok]} ${checkWords(check)}`));
  lines.push("", summaryOf(answer).join("  "));
  return lines.join("\n");
}
