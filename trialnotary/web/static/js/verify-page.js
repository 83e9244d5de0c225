// The verify page: a file and/or its receipt in, every check of receipt-verify.js out, live.
// The file is hashed here (hashing.js); this server is asked only to find a file's
// registrations and their receipts, and its identity (pinned by default: the anchor must come
// from an address it publishes); the anchor is checked against the chain node(s) given.
import { hashFiles } from "./hashing.js";
import {
  CHAIN_STEPS, DEFAULT_RPC_URLS, LEAF, OPTIONAL_STEPS, ORIGIN_STEPS, RECORD_STEPS, ReceiptError, STEPS, UNCHECKED, chainLabel,
  isSeveral, parseAddress, parseConfirmations, parseIdentity, parseReceipt, parseReceiptText, parseRpcUrl,
  readReceiptFile, readableTime, splitRpcUrls, verifyReceipt,
} from "./receipt-verify.js";
import { BundleError, holdsReceipts, isBundleName, readBundle } from "./receipts-zip.js";
import { MARKS as CHECK_MARKS, checkWords, intervalWords, summaryOf, toJson, verifyAll, versionWords } from "./timeline.js";

const $ = (id) => document.getElementById(id);
const form = $("verify-form");
const config = form.dataset;
const MARKS = { true: "✓", false: "✗", null: "–" };
const MARK_LABELS = { true: "passed", false: "failed", null: "skipped" };
const STATE_CLASSES = { true: "s-pass", false: "s-fail", null: "s-skipped" };

/** What the user gave: the file and its hashing, and the receipt (and where it came from). */
const state = {
  file: null,
  hashing: null, // {promise, cancel} of the current file
  receipt: null,
  receiptSource: "", // "file" | "server"
  receiptLoading: null, // the receipt file being read
  bundle: null, // a receipts zip: verified whole, shown as a timeline
  busy: false,
};

// --- small helpers ---------------------------------------------------------------------------

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.dataset[key.slice(5).replace(/-(\w)/g, (_, c) => c.toUpperCase())] = value;
    else node.setAttribute(key, value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

const formatBytes = (size) => window.trialnotary.formatBytes(size);

/** A `<time>` app.js turns into "local (UTC)"; kind "proven" (a block's time) or "claimed". */
function timeTag(value, kind) {
  const text = value.replace("T", " ").replace(/Z$/, "") + " UTC";
  return el("time", {
    datetime: value, class: `t-${kind}`,
    title: kind === "proven" ? "proven: the time of the block holding the root" : "the notary’s claim, not proven",
  }, text);
}

function localize(root) {
  window.trialnotary?.localizeTimes?.(root);
}

function say(text, kind = "") {
  const message = $("message");
  message.replaceChildren(...(Array.isArray(text) ? text : [text]));
  message.className = kind ? `flash ${kind}` : "";
}

function fieldError(input, text) {
  const error = $(`${input.id}-error`);
  error.textContent = text;
  error.hidden = !text;
  if (text) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
}

// --- the file ----------------------------------------------------------------------------------

function setFile(file) {
  state.hashing?.cancel();
  state.hashing = null;
  state.file = file;
  if (state.receiptSource === "server") forgetReceipt(); // it was found for the previous file
  $("file-status").textContent = file ? `${file.name}, ${formatBytes(file.size)}` : "";
  if (file) startHashing(file);
}

/** Hash as soon as the file is chosen, so the hash is ready (or nearly) when Verify is pressed. */
function startHashing(file) {
  const panel = $("hashing");
  const bar = $("hash-progress");
  const text = $("hash-text");
  bar.max = Math.max(file.size, 1);
  bar.value = 0;
  text.textContent = `0 of ${formatBytes(file.size)}`;
  panel.hidden = false;
  const hashing = hashFiles([{ file, path: file.name }], {
    onProgress: ({ totalBytes, totalSize }) => {
      bar.value = totalBytes;
      text.textContent = `${formatBytes(totalBytes)} of ${formatBytes(totalSize)}`;
    },
  });
  state.hashing = hashing;
  hashing.promise.then(([result]) => {
    if (state.hashing !== hashing) return;
    $("file-status").replaceChildren(`${file.name}, ${formatBytes(file.size)}, SHA-256 `,
      el("code", { class: "hash", id: "file-sha256" }, result.sha256));
  }, (error) => {
    if (state.hashing !== hashing) return;
    if (error.name === "AbortError") {
      $("file-status").textContent = "Hashing cancelled: no file.";
      $("file-input").value = "";
      state.file = null;
      state.hashing = null;
    } else {
      $("file-status").textContent = `Cannot read the file: ${error.message}`;
    }
  }).finally(() => {
    if (state.hashing === hashing || state.hashing === null) panel.hidden = true;
  });
}

/** The file's hash, or its read error; null without a file. Rejects with AbortError. */
async function fileHash() {
  if (!state.file) return null;
  const hashing = state.hashing;
  try {
    const [result] = await hashing.promise;
    return { sha256: result.sha256 };
  } catch (error) {
    if (error.name === "AbortError") throw error;
    return { error: error.message.replace(/^cannot read [^:]*: /, "") };
  }
}

// --- the receipt -------------------------------------------------------------------------------

function forgetReceipt() {
  state.receipt = null;
  state.bundle = null;
  state.receiptSource = "";
  $("receipt-status").textContent = "";
}

function describeReceipt(receipt) {
  const record = receipt?.trialnotary?.record;
  if (record && typeof record === "object") {
    return `the receipt of ${window.trialnotary.showInvisible(record.dataset ?? "a registration")} (${record.trial ?? "?"}, ${record.site ?? "?"})`;
  }
  return "a Chainpoint receipt";
}

function setReceipt(receipt, source, note) {
  state.receipt = receipt;
  state.receiptSource = source;
  $("receipt-status").textContent = note ?? `Loaded ${describeReceipt(receipt)}.`;
}

function takeReceiptFile(file) {
  state.receiptLoading = readReceipt(file).finally(() => { state.receiptLoading = null; });
  return state.receiptLoading;
}

async function readReceipt(file) {
  forgetReceipt();
  if (!file) return;
  if (isBundleName(file.name)) {
    state.bundle = file;
    $("receipt-status").textContent = `${file.name}: a receipts zip (${formatBytes(file.size)}): `
      + "Verify checks every receipt in it and shows the trial's proven timeline.";
    return;
  }
  try {
    const receipt = await readReceiptFile(file);
    setReceipt(receipt, "file", `${file.name}: ${describeReceipt(receipt)}.`);
  } catch (error) {
    $("receipt-status").textContent = `${file.name} is not a usable receipt: ${error.message}`;
    $("receipt-input").value = "";
  }
}

/** A receipt of this server by registration id; null (with a message) while there is none. */
async function fetchReceipt(id) {
  say(`Fetching the receipt of registration ${id} from this server…`);
  const response = await fetch(`${config.submissionsUrl}/${encodeURIComponent(id)}/receipt`,
    { headers: { Accept: "application/json" }, credentials: "same-origin" });
  if (response.status === 200) {
    const receipt = parseReceiptText(await response.text());
    setReceipt(receipt, "server", `Fetched from this server: ${describeReceipt(receipt)} (registration ${id}).`);
    say("");
    return receipt;
  }
  if (response.status === 202) {
    const status = await response.json().catch(() => ({}));
    const retry = response.headers.get("Retry-After");
    say([`Registration ${id} is `, el("span", { class: `badge s-${status.status}` }, status.status ?? "pending"),
      ": not confirmed yet. A receipt is issued once the batch's root is anchored on chain and its "
      + "transaction has enough confirmations"
      + (retry ? `; try again in about ${retry} seconds.` : "; try again later.")], "warning");
    return null;
  }
  if (response.status === 404) say(`This server has no registration ${id}.`, "error");
  else say(`This server could not give the receipt (HTTP ${response.status}).`, "error");
  return null;
}

/** The file's registrations on this server: verify the only one, or let the user pick. */
async function lookUp(sha256) {
  if (!config.submissionsUrl) {
    say("This page has no server to look the file up on: add the file's receipt above.", "error");
    return null;
  }
  say("Looking the file's SHA-256 up on this server…");
  const response = await fetch(`${config.submissionsUrl}?sha256=${sha256}`, { headers: { Accept: "application/json" } });
  if (response.status === 429) {
    const retry = response.headers.get("Retry-After");
    say(`Too many look-ups from your address: try again in ${retry ?? "a few"} seconds, or add the file's receipt above.`, "warning");
    return null;
  }
  if (!response.ok) {
    say(`This server could not look the hash up (HTTP ${response.status}).`, "error");
    return null;
  }
  const { submissions } = await response.json();
  if (!submissions.length) {
    say([`This server has no registration of this file (SHA-256 `, el("code", { class: "hash" }, sha256),
      "). If you have its receipt, add it above."], "error");
    return null;
  }
  if (submissions.length === 1) return fetchReceipt(submissions[0].id);
  showChoices(submissions);
  say(`This file was registered ${submissions.length} times: pick one below.`);
  return null;
}

function showChoices(submissions) {
  const list = $("registrations");
  list.replaceChildren(...submissions.map((submission) => {
    const record = submission.record;
    const button = el("button", { type: "button", class: "secondary", "data-submission-id": submission.id },
      "Verify this registration");
    button.addEventListener("click", () => run(() => fetchReceipt(submission.id)));
    return el("li", { "data-submission-id": submission.id },
      el("p", {}, el("strong", {}, window.trialnotary.showInvisible(record.dataset)),
        ` — ${record.trial}, ${record.site}, ${record.kind}; `,
        el("span", { class: `badge s-${submission.status}` }, submission.status), "; submitted ",
        timeTag(record.submittedAt, "claimed"), " (the notary's claim)"),
      el("p", { class: "actions" }, button));
  }));
  $("choose").hidden = false;
  localize(list);
}

// --- verifying -----------------------------------------------------------------------------

function rows() {
  return Object.fromEntries([...STEPS, ...RECORD_STEPS].map((name) => [name, document.querySelector(`[data-step="${name}"]`)]));
}

function resetSteps(several = false) {
  for (const name of CHAIN_STEPS) rows()[name].hidden = several; // each anchor has its own (showAnchors)
  for (const name of [...ORIGIN_STEPS, ...OPTIONAL_STEPS, ...RECORD_STEPS]) rows()[name].hidden = true; // shown only where they apply
  $("anchors").replaceChildren();
  $("anchors-wrap").hidden = true;
  for (const row of Object.values(rows())) {
    delete row.dataset.ok;
    row.classList.remove("s-pass", "s-fail", "s-skipped");
    row.querySelector(".mark").textContent = "·";
    row.querySelector(".mark").setAttribute("aria-label", "not checked yet");
    row.querySelector(".outcome").textContent = "";
  }
  $("nodes-wrap").hidden = true;
  $("record-wrap").hidden = true;
}

function showStep({ name, ok, detail, anchor }) {
  if (anchor !== undefined) return; // an anchor's step of a receipt of several: showAnchors
  const row = rows()[name];
  row.hidden = false;
  markRow(row, { ok, detail });
}

function markRow(row, { ok, detail }) {
  const key = String(ok);
  row.dataset.ok = key;
  row.classList.remove("s-pass", "s-fail", "s-skipped");
  row.classList.add(STATE_CLASSES[key]);
  row.querySelector(".mark").textContent = MARKS[key];
  row.querySelector(".mark").setAttribute("aria-label", MARK_LABELS[key]);
  row.querySelector(".outcome").textContent = detail;
}

function anchorStepRow({ name, ok, detail }) {
  const row = el("li", { "data-step": name },
    el("span", { class: "mark", role: "img" }), " ", el("span", { class: "name" }, el("code", {}, name)), " ",
    el("span", { class: "detail" }, el("span", { class: "outcome" })));
  markRow(row, { ok, detail });
  return row;
}

/** Each anchor of a receipt of several: its heading, state and what it proves, its steps,
 *  and a renewal's anchors below it (the CLI's text, docs/verification.md). */
function anchorItem(anchor) {
  const state = anchor.state + (anchor.summary ? ` — ${anchor.summary}` : "");
  return el("li", { "data-anchor": anchor.name, "data-state": anchor.state },
    el("p", {}, el("span", { class: `badge s-${anchor.state === "verified" ? "pass" : anchor.state === "failed" ? "fail" : "pending"}` }, anchor.state),
      " ", el("strong", {}, anchor.heading), `: ${state}`),
    el("ol", { class: "steps" }, ...anchor.steps.map(anchorStepRow)),
    anchor.renewal.length ? el("ol", { class: "anchors" }, ...anchor.renewal.map(anchorItem)) : null);
}

function showAnchors(anchors) {
  $("anchors").replaceChildren(...anchors.map(anchorItem));
  $("anchors-wrap").hidden = false;
}

function setVerdict(ok, ...content) {
  const verdict = $("verdict");
  if (ok === undefined) delete verdict.dataset.ok; else verdict.dataset.ok = String(ok);
  delete verdict.dataset.state;
  verdict.replaceChildren(...content.filter((child) => child !== null));
  localize(verdict);
}

function chainOf(result) {
  if (result.chainId === null) return result.chain ?? "an unnamed chain";
  return chainLabel(result.chainId, result.chain);
}

/** The verdict's sentence, its proven time (if any) as a `<time>` app.js localises. */
function verdictText({ verdict, provenTime }) {
  const shown = provenTime ? readableTime(provenTime) : null;
  const at = shown ? verdict.text.indexOf(shown) : -1;
  if (at < 0) return [verdict.text];
  return [verdict.text.slice(0, at), timeTag(provenTime, "proven"), verdict.text.slice(at + shown.length)];
}

/** First the answer in words (receipt-verify.js's verdictOf), then a summary line. */
function showVerdict(result) {
  const several = result.provenBy !== undefined;
  const where = several ? [result.provenBy ? ` Proven by anchor ${result.provenBy}.` : ""]
    : [" Transaction ", el("code", { class: "hash", id: "transaction" }, result.transaction), ` on ${chainOf(result)}.`];
  const claimed = [result.blockTime ? "The receipt's block time " : "No block time",
    result.blockTime ? el("span", { class: "hash" }, result.blockTime) : null, " is not proven."];
  const failed = result.steps.filter((s) => s.ok === false).map((s) => s.name);
  let summary;
  if (result.ok) {
    summary = [el("span", { class: "badge s-pass" }, "PASS"), several
      ? " No anchor failed. The proven time is that of the earliest anchor that verified."
      : " Every check passed. The proven time is the time of the block holding the root."];
  } else if (result.verdict.state === UNCHECKED) {
    summary = [el("span", { class: "badge s-pending" }, "NOT CHECKED"), " ", ...claimed];
  } else {
    summary = [el("span", { class: "badge s-fail" }, "FAIL"), ` Failed: ${failed.join(", ")}. `, ...claimed];
  }
  setVerdict(result.ok,
    el("p", { id: "verdict-text" }, el("strong", {}, ...verdictText(result))),
    result.verdict.note ? el("p", { id: "verdict-note", class: "hint" }, result.verdict.note) : null,
    el("p", {}, ...summary, ...where));
  $("verdict").dataset.state = result.verdict.state;
}

function showNodes(nodes) {
  $("nodes").replaceChildren(...nodes.map((node) => el("li", { "data-url": node.url, "data-answered": String(node.answered) },
    el("span", { class: `badge ${node.answered ? "s-pass" : "s-fail"}` }, node.answered ? "answered" : "unreachable"),
    " ", el("code", {}, node.url), ` — ${node.detail}`)));
  $("nodes-wrap").hidden = !nodes.length;
}

function showRecord(receipt, result) {
  const record = receipt.trialnotary?.record;
  const batch = receipt.trialnotary?.batch;
  if (!record) {
    $("record-wrap").hidden = true;
    return;
  }
  const cell = (value) => (value === null || value === undefined ? el("span", { class: "muted" }, "—")
    : window.trialnotary.showInvisible(value));
  const lines = [
    ["Trial", cell(record.trial)], ["Site", cell(record.site)], ["Kind", cell(record.kind)],
    ["Label", cell(record.dataset)], ["File name", cell(record.filename)],
    ["Size", record.sizeBytes === null ? cell(null) : `${record.sizeBytes} bytes`],
    ["SHA-256", el("code", { class: "hash" }, String(record.sha256))],
    ["Registration id", el("code", {}, cell(record.id))],
    ["Corrects", cell(record.supersedes)],
    ["Submitted", typeof record.submittedAt === "string"
      ? el("span", { id: "submitted-at" }, timeTag(record.submittedAt, "claimed"), " — the notary's claim, not proven")
      : cell(record.submittedAt)],
  ];
  const signOff = record.signOff;
  if (signOff && typeof signOff === "object") {
    lines.push(["Signature", el("span", { id: "sign-off-shown" }, cell(`${signOff.name} (${signOff.role}) signed ${signOff.signs} as ${signOff.meaning} at ${signOff.signedAt} (UTC)`))]);
  }
  if (batch && typeof batch === "object" && batch.id !== undefined) {
    lines.push(["Batch", `${batch.id}, leaf ${batch.leafIndex} of ${batch.leafCount}`]);
  }
  const leaf = result.steps.find((s) => s.name === LEAF);
  $("record-warning").hidden = leaf.ok !== false;
  $("record").tBodies[0].replaceChildren(...lines.map(([label, value]) =>
    el("tr", {}, el("th", { scope: "row" }, label), el("td", {}, value))));
  $("record-wrap").hidden = false;
  localize($("record"));
}

/** What the node field was last filled with by the page, and for which chain: the server's
 *  own node at first. A field the user has not edited follows the receipt's chain. */
const autoFilled = { value: config.defaultRpc.trim(), chainId: Number(config.chainId) || null };

/** The nodes to ask: the field; else, or when the field still holds the page's default for
 *  another chain, the public node of the receipt's chain (shown in the field). */
function nodesFor(chainId) {
  const field = $("rpc-urls");
  const given = splitRpcUrls(field.value);
  const untouched = field.value.trim() === autoFilled.value;
  const fallback = DEFAULT_RPC_URLS[chainId];
  const stale = untouched && chainId !== null && chainId !== autoFilled.chainId;
  if (fallback && (!given.length || stale)) {
    field.value = fallback;
    Object.assign(autoFilled, { value: fallback, chainId });
    return [fallback];
  }
  return given;
}

/** For a zip's receipts, each one's nodes: those given in the field, else (the field empty or
 *  as the page filled it) this server's node for its chain and null for another (each
 *  anchor's default node, as `trialnotary timeline` without --rpc). */
function receiptNodes() {
  const field = $("rpc-urls");
  const given = splitRpcUrls(field.value);
  if (given.length && field.value.trim() !== autoFilled.value) return () => given;
  const own = splitRpcUrls(autoFilled.value);
  return (claims) => (own.length && claims.anchor?.chainId === autoFilled.chainId ? own : null);
}

/** Options from the form, or null after marking what is wrong. */
function readOptions() {
  let ok = true;
  const confirmationsInput = $("confirmations");
  const senderInput = $("expect-sender");
  const rpcInput = $("rpc-urls");
  let confirmations;
  let expectSender = null;
  try {
    const given = confirmationsInput.value.trim();
    confirmations = given ? parseConfirmations(given) : undefined; // undefined: the receipt's chain decides
    fieldError(confirmationsInput, "");
  } catch {
    fieldError(confirmationsInput, "A positive number, or finalized.");
    ok = false;
  }
  try {
    expectSender = senderInput.value.trim() ? parseAddress(senderInput.value.trim()) : null;
    fieldError(senderInput, "");
  } catch {
    fieldError(senderInput, "An address is 0x and 40 hex digits.");
    ok = false;
  }
  const notUrl = splitRpcUrls(rpcInput.value).find((url) => {
    try {
      return !parseRpcUrl(url);
    } catch {
      return true;
    }
  });
  fieldError(rpcInput, notUrl === undefined ? ""
    : `“${notUrl}” is not an http(s) URL. Give node URLs like https://node.example, one per line.`);
  ok &&= notUrl === undefined;
  return ok ? { confirmations, expectSender } : null;
}

/** The notary's own word, apart from the proof: whether the registration was corrected
 *  since. Asked of this server only after the checks; no answer changes nothing. */
let supersededAsk = 0;

async function showSuperseded(receipt, result) {
  const notice = $("superseded-notice");
  const ask = ++supersededAsk;
  notice.hidden = true;
  const id = receipt?.trialnotary?.record?.id;
  const leaf = result?.steps.find((s) => s.name === LEAF);
  if (!config.submissionsUrl) return;
  if (typeof id !== "string" || !/^[0-9a-f-]{36}$/.test(id) || leaf?.ok !== true) return;
  try {
    const view = await fetchJson(`${config.submissionsUrl}/${encodeURIComponent(id)}`);
    if (!view.supersededBy || ask !== supersededAsk) return;
    const later = await fetchJson(`${config.submissionsUrl}/${encodeURIComponent(view.supersededBy)}`)
      .catch(() => null);
    if (ask !== supersededAsk) return;
    const link = el("a", { href: `/r/${encodeURIComponent(view.supersededBy)}` },
      later?.record?.dataset ?? view.supersededBy);
    notice.replaceChildren(el("strong", {}, "Superseded"), " (the notary's information, not part of the proof): "
      + "this registration has since been corrected by ", link,
      ...(later?.record?.submittedAt ? [", registered ", timeTag(later.record.submittedAt, "claimed")] : []),
      ". The receipt still proves what it proved; the correction is a newer version.");
    notice.hidden = false;
    localize(notice);
  } catch { /* the notice is extra: without an answer the page shows the checks alone */ }
}

async function fetchJson(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return response.json();
}

/** The identity document this page pins: the one the self-contained page embeds (as it was
 *  when the page was saved), else this server's, fetched afresh. */
async function notaryIdentity() {
  const embedded = $("notary-identity");
  if (embedded) return parseIdentity(JSON.parse(embedded.textContent), "the identity saved in this page");
  return parseIdentity(await fetchJson(config.identityUrl), config.identityUrl);
}

/** This notary's identity, to pin the origin with (unless the user unticked it); null, with
 *  a word why, when it cannot be had: the verdict then says the origin is not pinned. */
async function servingNotary() {
  const status = $("notary-status");
  if (!$("pin-notary").checked) {
    status.textContent = "Not pinned to this notary: only an expected sender, if given, pins the origin.";
    return null;
  }
  try {
    const identity = await notaryIdentity();
    status.textContent = `Pinned to this notary, “${identity.name}”`
      + `${identity.version !== null ? ` (identity version ${identity.version})` : ""}: `
      + "the anchor must come from one of the addresses it publishes.";
    return identity;
  } catch (error) {
    status.textContent = `This notary's identity could not be read (${error.message}): the origin is not pinned.`;
    return null;
  }
}

async function verify(receipt, options, file) {
  showSuperseded(null, null);
  let claims;
  try {
    claims = parseReceipt(receipt);
  } catch (error) {
    resetSteps();
    setVerdict(false, el("p", {}, el("span", { class: "badge s-fail" }, "FAIL"),
      ` Not a usable receipt: ${error.message}`));
    return null;
  }
  const several = isSeveral(claims);
  resetSteps(several);
  setVerdict(undefined, el("p", { class: "hint" }, "Checking…"));
  const notary = await servingNotary();
  const result = await verifyReceipt(receipt, {
    ...options,
    notary,
    rpcUrls: nodesFor(claims.anchor?.chainId ?? null),
    fileSha256: file?.sha256, fileError: file?.error, fileName: state.file?.name, fileSize: state.file?.size,
    onStep: showStep,
  });
  result.steps.forEach(showStep);
  if (several) showAnchors(result.anchors);
  showNodes(result.nodes);
  showRecord(receipt, result);
  showVerdict(result);
  showSuperseded(receipt, result);
  return result;
}

/** `work(options)` with the form's options, Verify disabled meanwhile; nothing while another
 *  run goes on or when an option is wrong. */
async function whileBusy(work) {
  if (state.busy) return;
  const options = readOptions();
  if (!options) return;
  state.busy = true;
  $("verify-button").disabled = true;
  try {
    await work(options);
  } finally {
    state.busy = false;
    $("verify-button").disabled = false;
  }
}

/** Run one verification from a receipt source (the given receipt, or a lookup). */
async function run(getReceipt) {
  return whileBusy(async (options) => {
    const receipt = await getReceipt();
    if (!receipt) return;
    $("choose").hidden = true;
    $("timeline").hidden = true;
    $("result").hidden = false;
    const file = await fileHash();
    await verify(receipt, options, file);
    $("result").scrollIntoView?.({ block: "start" });
    $("result").focus({ preventScroll: true });
  }).catch((error) => {
    if (error.name === "AbortError") say("Hashing cancelled.");
    else if (error instanceof ReceiptError) say(`Not a usable receipt: ${error.message}`, "error");
    else say(`Something went wrong: ${error.message}`, "error");
  });
}

async function onSubmit(event) {
  event.preventDefault();
  say("");
  await state.receiptLoading;
  if (state.bundle) return runTimeline(state.bundle, state.file);
  if (state.receipt) return run(async () => state.receipt);
  if (!state.file) {
    say("Choose a file, its receipt, or both.", "error");
    return undefined;
  }
  return run(async () => {
    const file = await fileHash();
    if (file.error) {
      say(`Cannot read the file: ${file.error}`, "error");
      return null;
    }
    return lookUp(file.sha256);
  });
}

// --- a receipts zip: the trial's timeline (timeline.js) ------------------------------------------

/** Verify every receipt of the zip and show the timeline and its checks (and that the data
 *  file, when one was given too, is not used). */
async function runTimeline(bundle, file) {
  const status = $("timeline-status");
  const unused = file ? `${file.name} is not used: a receipts zip is verified whole, as the trial's timeline; `
    + "to check a file, give it with its own receipt." : "";
  return whileBusy(async (options) => {
    $("result").hidden = true;
    $("timeline").hidden = false;
    for (const id of ["timeline-verdict", "timeline-checks"]) $(id).replaceChildren();
    $("timeline-entries").tBodies[0].replaceChildren();
    $("timeline-json").hidden = true;
    status.textContent = `Reading ${bundle.name}…`;
    const read = await readBundle(bundle, bundle.name);
    const notary = await servingNotary();
    const given = read.map(({ name, receipt, error }) => ({ source: `${bundle.name}:${name}`, receipt, error }));
    const answer = await verifyAll(given, { ...options, notary, nodesOf: receiptNodes() },
      (done, total) => { status.textContent = `Verified ${done} of ${total} receipts…`; });
    status.textContent = `${given.length} receipts of ${bundle.name} verified.`;
    showTimeline(answer);
    if (unused) say(unused, "warning");
    $("timeline").focus({ preventScroll: true });
  }).catch((error) => {
    $("timeline").hidden = true;
    status.textContent = "";
    if (error instanceof BundleError) say(`Not a usable receipts zip: ${error.message}`, "error");
    else say(`Something went wrong: ${error.message}`, "error");
  });
}

const shown = (text) => window.trialnotary.showInvisible(text);

function showTimeline(answer) {
  const { timeline, exitCode } = answer;
  const [word, counts] = summaryOf(answer);
  const badge = { PASS: "s-pass", FAIL: "s-fail" }[word] ?? "s-pending";
  $("timeline-verdict").replaceChildren(el("p", { id: "timeline-summary", "data-exit-code": String(exitCode) },
    el("span", { class: `badge ${badge}` }, word), ` ${counts}`));
  $("timeline-checks").replaceChildren(...timeline.checks.map((check) => el("li", {
    "data-rule": check.rule.name, "data-ok": String(check.ok), class: STATE_CLASSES[String(check.ok)],
    ...(check.site !== null ? { "data-site": check.site } : {}),
    ...(check.marginSeconds !== null ? { "data-margin-seconds": String(check.marginSeconds) } : {}),
  }, el("span", { class: "mark", role: "img", "aria-label": MARK_LABELS[String(check.ok)] }, CHECK_MARKS[check.ok]), " ",
  shown(checkWords(check)), el("br"), el("span", { class: "hint" }, `Proves: ${check.rule.proves}. Cannot prove: ${check.rule.cannotProve}.`))));
  const cell = (value) => el("td", {}, value === null || value === undefined || value === "" ? el("span", { class: "muted" }, "—")
    : window.trialnotary.showInvisible(value));
  $("timeline-entries").tBodies[0].replaceChildren(...timeline.entries.map((entry) => {
    const { record, provenTime, state: verdict, why } = entry.verified;
    const interval = intervalWords(entry);
    return el("tr", { "data-id": record?.id ?? "", "data-state": verdict, "data-proven-time": provenTime ?? "" },
      el("td", {}, provenTime ? timeTag(provenTime, "proven") : el("span", { class: "badge s-fail" }, `NOT PROVEN (${verdict})`),
        interval ? el("p", { class: "hint interval" }, interval) : null, why ? el("p", { class: "hint" }, shown(why)) : null),
      cell(record?.kind), cell(record?.site), cell(record?.dataset || entry.verified.source), cell(versionWords(entry)),
      el("td", {}, typeof record?.submittedAt === "string" ? timeTag(record.submittedAt, "claimed") : "—"),
      el("td", {}, el("code", {}, typeof record?.id === "string" ? shown(record.id) : "—")));
  }));
  const link = $("timeline-json");
  if (link.href.startsWith("blob:")) URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(new Blob([JSON.stringify(toJson(answer), null, 2)], { type: "application/json" }));
  link.hidden = false;
  localize($("timeline"));
}

// --- dropping and picking ----------------------------------------------------------------------

/** Put a dropped file into the visible input too, so what is shown is what is used. */
function showInInput(input, file) {
  const transfer = new DataTransfer();
  transfer.items.add(file);
  input.files = transfer.files;
}

/** A dropped file is the receipt when it reads as a Chainpoint receipt (or is a zip holding
 *  receipts), else the data file (a zipped dataset too). */
async function isReceipt(file) {
  if (isBundleName(file.name)) return holdsReceipts(file);
  if (!/\.json$/i.test(file.name) && file.type !== "application/json") return false;
  try {
    return (await readReceiptFile(file)).type === "ChainpointSHA256v2";
  } catch {
    return false;
  }
}

async function onDrop(event) {
  event.preventDefault();
  $("dropzone").classList.remove("over");
  const files = [...(event.dataTransfer?.files ?? [])];
  const receipts = [];
  const data = [];
  for (const file of files) (await isReceipt(file) ? receipts : data).push(file);
  if (data.length > 1 || receipts.length > 1) {
    say("Drop one file and at most one receipt at a time.", "error");
    return;
  }
  say("");
  if (receipts.length) {
    showInInput($("receipt-input"), receipts[0]);
    await takeReceiptFile(receipts[0]);
  }
  if (data.length) {
    showInInput($("file-input"), data[0]);
    setFile(data[0]);
  }
}

function startAgain() {
  showSuperseded(null, null);
  setFile(null);
  forgetReceipt();
  $("file-input").value = "";
  $("receipt-input").value = "";
  $("choose").hidden = true;
  $("timeline").hidden = true;
  $("result").hidden = false;
  resetSteps();
  setVerdict(undefined, el("p", { class: "hint" }, "Each check below turns green or red as it completes."));
  say("");
}

function init() {
  const zone = $("dropzone");
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", onDrop);
  $("file-input").addEventListener("change", (event) => { say(""); setFile(event.target.files[0] ?? null); });
  $("receipt-input").addEventListener("change", (event) => { say(""); takeReceiptFile(event.target.files[0] ?? null); });
  $("cancel-hash").addEventListener("click", () => state.hashing?.cancel());
  $("reset-button").addEventListener("click", startAgain);
  form.addEventListener("submit", onSubmit);
  form.dataset.ready = "true";
  if (config.submissionId) run(() => fetchReceipt(config.submissionId));
}

init();
