// The register page: gather files (picked, or dropped, folders included), hash them in a
// Web Worker (hashing.js), flag the ones the notary already holds and empty ones, and
// register the new rows' hashes in bulk: each press of Register is one upload, and a row
// once registered is done. File contents never leave the browser.
import { hashFiles } from "./hashing.js";
import { followRows } from "./live-status.js";

const $ = (id) => document.getElementById(id);
const form = $("register-form");
const config = form?.dataset ?? {};
const LIMITS = {
  label: Number(config.maxLabel), filename: Number(config.maxFilename),
  reason: Number(config.maxReason), bulk: Number(config.bulkMax),
};
/** How the page names the fields of a registration in its messages. */
const FIELD_NAMES = {
  dataset: "Label", filename: "File name", reason: "Reason for the correction",
  supersedes: "Correction", trial: "Trial and site", site: "Trial and site", kind: "Kind",
  sha256: "SHA-256", sizeBytes: "Size",
};
/** The form control each field comes from (the others come from a file's row). */
const FIELD_INPUTS = { dataset: "label", reason: "reason", supersedes: "supersedes", trial: "pair", site: "pair", kind: "kind" };
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}/g;
const WAIT_POLL_MS = 15000;

const tbody = document.querySelector("#file-list tbody");
const message = $("register-message");
const registerButton = $("register-button");

/** Files chosen so far: {file, path, label, filename, sha256, row, id, flags, anyway}. */
let entries = [];
let hashing = null;
let presses = 0;
const uploads = [];

const formatBytes = (size) => window.trialnotary.formatBytes(size);
const shown = (text) => window.trialnotary.showInvisible(text);
/** Characters as the server counts them (code points, not UTF-16 units). */
const chars = (text) => [...text].length;

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

/** Text with every registration id in it made a link to that registration's page. */
function linked(text) {
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(UUID)) {
    parts.push(text.slice(last, match.index), el("a", { href: `/r/${match[0]}` }, match[0]));
    last = match.index + match[0].length;
  }
  parts.push(text.slice(last));
  return parts;
}

function say(text, kind = "") {
  message.replaceChildren(...(Array.isArray(text) ? text : linked(text)));
  message.className = kind ? `flash ${kind}` : "";
}

function timeTag(value) {
  return el("time", { datetime: value, class: "t-claimed" }, value.replace("T", " ").replace(/\.\d+Z$|Z$/, "") + " UTC");
}

function isHidden(name) { return name.startsWith("."); }

const waiting = () => entries.filter((entry) => !entry.id);

function updateButton() {
  registerButton.disabled = hashing !== null || !waiting().some((entry) => entry.sha256 !== null);
}

// --- rows ----------------------------------------------------------------------------

/** One entry per file; a folder labels its files with its name, with relative file names. */
function addFile(file, folder = null, relative = null) {
  const filename = relative ?? file.name;
  const path = folder ? `${folder}/${relative}` : file.name;
  const row = document.createElement("tr");
  row.dataset.path = path;
  for (const text of [shown(path), formatBytes(file.size), "", "waiting", ""]) row.append(el("td", {}, text));
  row.cells[2].className = "hash";
  row.cells[3].dataset.cell = "status";
  const entry = { file, path, label: folder ?? file.name, filename, sha256: null, row, id: null, flags: [], anyway: false };
  const remove = el("button", { type: "button", class: "secondary remove", "aria-label": `Remove ${path}` }, "Remove");
  remove.addEventListener("click", () => removeEntry(entry));
  row.cells[4].append(remove);
  tbody.append(row);
  entries.push(entry);
  $("file-list").hidden = false;
}

function removeEntry(entry) {
  entries = entries.filter((other) => other !== entry);
  entry.row.remove();
  if (!entries.length) $("file-list").hidden = true;
  say(`Removed ${entry.path}: it will not be registered.`);
  updateButton();
}

function showStatus(entry, text) {
  entry.row.cells[3].replaceChildren(text);
}

/** A flagged row: why, and the deliberate choice to register it anyway. */
function showFlags(entry) {
  entry.row.classList.toggle("flagged", entry.flags.length > 0);
  if (!entry.flags.length) {
    showStatus(entry, "hashed");
    return;
  }
  const box = el("input", { type: "checkbox", class: "anyway" });
  box.checked = entry.anyway;
  box.addEventListener("change", () => { entry.anyway = box.checked; });
  const reasons = entry.flags.map((flag) => el("p", { class: "flag" }, "⚠ ", ...flag));
  entry.row.cells[3].replaceChildren(...reasons, el("label", { class: "hint" }, box, " Register anyway"));
}

function readAllEntries(reader) {
  return new Promise((resolve, reject) => {
    const all = [];
    const next = () => reader.readEntries((batch) => {
      if (!batch.length) return resolve(all);
      all.push(...batch);
      next();
    }, reject);
    next();
  });
}

async function walk(directory, folder, prefix = "") {
  const children = await readAllEntries(directory.createReader());
  children.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const child of children) {
    if (isHidden(child.name)) continue;
    const relative = prefix ? `${prefix}/${child.name}` : child.name;
    if (child.isDirectory) {
      await walk(child, folder, relative);
    } else if (child.isFile) {
      const file = await new Promise((resolve, reject) => child.file(resolve, reject));
      addFile(file, folder, relative);
    }
  }
}

async function addDropped(items) {
  const roots = [...items].map((item) => item.webkitGetAsEntry?.()).filter(Boolean);
  for (const root of roots) {
    if (root.isDirectory) await walk(root, root.name);
    else root.file ? addFile(await new Promise((ok, no) => root.file(ok, no))) : null;
  }
}

function addPicked(files) {
  for (const file of files) {
    const parts = (file.webkitRelativePath || "").split("/");
    if (parts.length > 1) {
      if (parts.some(isHidden)) continue;
      addFile(file, parts[0], parts.slice(1).join("/"));
    } else {
      addFile(file);
    }
  }
}

// --- hashing and flags -----------------------------------------------------------------

async function hashPending() {
  if (hashing) return; // the running round takes files added meanwhile when it ends
  const pending = entries.filter((entry) => entry.sha256 === null);
  if (!pending.length) return;
  const panel = $("hashing");
  const bar = $("overall-progress");
  const text = $("overall-text");
  panel.hidden = false;
  say(`Hashing ${pending.length} file(s) in your browser…`);
  hashing = hashFiles(pending.map(({ file, path }) => ({ file, path })), {
    onProgress: ({ fileIndex, fileBytes, fileSize, totalBytes, totalSize }) => {
      bar.max = Math.max(totalSize, 1);
      bar.value = totalBytes;
      text.textContent = `${formatBytes(totalBytes)} of ${formatBytes(totalSize)}`;
      const entry = pending[fileIndex];
      if (entry && fileSize) showStatus(entry, `hashing ${Math.floor((100 * fileBytes) / fileSize)}%`);
    },
    onFileDone: ({ index, sha256 }) => {
      pending[index].sha256 = sha256;
      pending[index].row.cells[2].textContent = sha256;
      showStatus(pending[index], "hashed");
    },
  });
  updateButton();
  let hashed = false;
  try {
    const results = await hashing.promise;
    results.forEach((result, index) => {
      pending[index].sha256 = result.sha256;
      pending[index].row.cells[2].textContent = result.sha256;
    });
    hashed = true;
  } catch (error) {
    const cancelled = error.name === "AbortError";
    for (const entry of entries) if (entry.sha256 === null) entry.row.remove();
    entries = entries.filter((entry) => entry.sha256 !== null);
    if (!entries.length) $("file-list").hidden = true;
    say(cancelled ? "Hashing cancelled: nothing was registered." : `Hashing failed: ${error.message}`,
      cancelled ? "" : "error");
  } finally {
    hashing = null;
    panel.hidden = true;
  }
  if (hashed) {
    const kept = pending.filter((entry) => entries.includes(entry));
    await flag(kept);
    const flagged = kept.filter((entry) => entry.flags.length).length;
    say(`${waiting().length} file(s) hashed. `
      + (flagged ? `${flagged} flagged: check them, and tick “Register anyway” to register them too. ` : "")
      + "Check the list, then register.", flagged ? "warning" : "");
  }
  if (entries.some((entry) => entry.sha256 === null)) await hashPending();
  updateButton();
}

/** Ask which hashes the notary already holds in the trials of this person's sites. */
async function registeredAlready(hashes) {
  const response = await fetch(config.checkUrl, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": window.trialnotary.csrfToken() },
    body: JSON.stringify({ sha256: hashes }),
  });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return (await response.json()).registered;
}

/** Flag empty files, files of the same content as an earlier row, and files registered
 *  before: registering those is a choice made row by row. */
async function flag(list) {
  let known = {};
  const hashes = [...new Set(list.map((entry) => entry.sha256))];
  try {
    for (let start = 0; start < hashes.length; start += LIMITS.bulk) {
      Object.assign(known, await registeredAlready(hashes.slice(start, start + LIMITS.bulk)));
    }
  } catch (error) {
    known = {};
    say(`Could not ask whether these files were registered before (${error.message}).`, "warning");
  }
  for (const entry of list) {
    entry.flags = [];
    if (entry.file.size === 0) entry.flags.push(["Empty file (0 bytes): its hash is the same for every empty file."]);
    const twin = entries.find((other) => other.sha256 === entry.sha256 && other !== entry);
    if (twin && entries.indexOf(twin) < entries.indexOf(entry)) entry.flags.push([`Same content as ${twin.path}, above.`]);
    const earlier = known[entry.sha256] ?? [];
    for (const registration of earlier) {
      entry.flags.push(["Already registered on ", timeTag(registration.submittedAt), " as ",
        el("a", { href: registration.page }, `“${registration.dataset}”`),
        ` (${registration.trial}, site ${registration.site}).`]);
    }
    showFlags(entry);
  }
  window.trialnotary.localizeTimes(tbody);
}

// --- registering ---------------------------------------------------------------------

function submissionsOf(list) {
  const [trial, site] = $("pair").value.split("|");
  const kind = $("kind").value;
  const label = $("label").value.trim();
  const supersedes = $("supersedes")?.value || null;
  return list.map((entry) => ({
    trial, site, kind, dataset: label || entry.label, sha256: entry.sha256,
    sizeBytes: entry.file.size, filename: entry.filename, supersedes,
  }));
}

async function post(items, reason) {
  const response = await fetch(form.dataset.action || window.location.pathname, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": window.trialnotary.csrfToken() },
    body: JSON.stringify(reason ? { submissions: items, reason } : { submissions: items }),
  });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const error = body?.error;
    throw Object.assign(new Error(error?.message ?? `HTTP ${response.status}`), { field: error?.field ?? null });
  }
  return body.submissions;
}

function clearProblems() {
  for (const error of form.querySelectorAll(".field-error")) {
    if (error.closest("tr")) error.remove();
    else error.hidden = true;
  }
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  for (const row of tbody.querySelectorAll(".row-error")) row.classList.remove("row-error");
}

/** A problem of a form field: named, shown under it, the field marked and focused. */
function fieldProblem(name, text) {
  const input = $(FIELD_INPUTS[name]);
  const where = $(`${FIELD_INPUTS[name]}-error`);
  const said = `${FIELD_NAMES[name] ?? name}: ${text}`;
  if (where) {
    where.replaceChildren(...linked(said));
    where.hidden = false;
  }
  if (input && input.type !== "hidden") {
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }
  return said;
}

/** A problem of one file's row (its name, or the label it gives). */
function rowProblem(entry, name, text) {
  const said = `${shown(entry.path)}: ${FIELD_NAMES[name] ?? name}: ${text}`;
  entry.row.classList.add("row-error");
  entry.row.cells[0].append(el("p", { class: "field-error" }, ...linked(`${FIELD_NAMES[name] ?? name}: ${text}`)));
  entry.row.scrollIntoView?.({ block: "nearest" });
  return said;
}

/** Where a refusal belongs: `submissions[3].dataset` of the chunk starting at `offset`. */
function placeProblem(error, chosen, offset) {
  const match = /^(?:submissions\[(\d+)\]\.)?(\w+)$/.exec(error.field ?? "");
  if (!match) return error.message;
  const [, index, name] = match;
  const entry = index === undefined ? null : chosen[offset + Number(index)];
  const fromRow = !FIELD_INPUTS[name] || (name === "dataset" && !$("label").value.trim());
  if (entry && fromRow) return rowProblem(entry, name, error.message);
  return fieldProblem(name, error.message);
}

/** What is wrong before sending anything: too long is refused, never cut short. */
function checkBeforeSending(chosen, label, reason) {
  const reasonInput = $("reason");
  if (reasonInput && !reason) return fieldProblem("reason", "is required for a correction.");
  if (reasonInput && chars(reason) > LIMITS.reason) {
    return fieldProblem("reason", `must be at most ${LIMITS.reason} characters (it has ${chars(reason)}).`);
  }
  if (chars(label) > LIMITS.label) {
    return fieldProblem("dataset", `must be at most ${LIMITS.label} characters (it has ${chars(label)}).`);
  }
  const { textProblem } = window.trialnotary;
  if (textProblem(label)) return fieldProblem("dataset", textProblem(label));
  if (reason && textProblem(reason)) return fieldProblem("reason", textProblem(reason));
  if ($("supersedes") && chosen.length > 1) {
    return fieldProblem("supersedes", `a correction is one file, not ${chosen.length}: a registration is superseded at most once. Remove the others.`);
  }
  for (const entry of chosen) {
    if (chars(entry.filename) > LIMITS.filename) {
      return rowProblem(entry, "filename", `must be at most ${LIMITS.filename} characters (it has ${chars(entry.filename)}); rename the file.`);
    }
    if (textProblem(entry.filename)) return rowProblem(entry, "filename", textProblem(entry.filename));
    if (!label && textProblem(entry.label)) return rowProblem(entry, "dataset", `the name used as label ${textProblem(entry.label)}`);
    if (!label && chars(entry.label) > LIMITS.label) {
      return rowProblem(entry, "dataset", `the ${entry.label === entry.file.name ? "file's" : "folder's"} name, used as no label is given, is longer than ${LIMITS.label} characters; give a shorter label.`);
    }
  }
  return null;
}

async function register(event) {
  event.preventDefault();
  clearProblems();
  const reason = $("reason")?.value.trim() ?? null;
  const label = $("label").value.trim();
  const ready = waiting().filter((entry) => entry.sha256 !== null);
  const chosen = ready.filter((entry) => !entry.flags.length || entry.anyway);
  const held = ready.length - chosen.length;
  if (!chosen.length) {
    say(held ? `Nothing registered: ${held} flagged file(s) wait for “Register anyway”.` : "Nothing new to register: add files first.", "error");
    return;
  }
  const problem = checkBeforeSending(chosen, label, reason);
  if (problem) {
    say(`Nothing was registered: ${problem}`, "error");
    return;
  }
  registerButton.disabled = true;
  const press = ++presses;
  const items = submissionsOf(chosen);
  const done = [];
  try {
    for (let start = 0; start < items.length; start += LIMITS.bulk) {
      say(`Registering ${items.length} file(s)…`);
      const created = await post(items.slice(start, start + LIMITS.bulk), reason);
      created.forEach((registration, index) => showRegistered(chosen[start + index], registration));
      done.push(...chosen.slice(start, start + created.length));
    }
    say(`${done.length} file(s) registered as upload ${press}.`
      + (held ? ` ${held} flagged file(s) not registered: tick “Register anyway” to register them.` : "")
      + " Each is sealed and anchored on its own; this list updates itself.", "success");
    $("clear-button").hidden = false;
  } catch (error) {
    const where = placeProblem(error, chosen, done.length);
    say(`${done.length ? `${done.length} registered; the rest were refused` : "Nothing was registered"}: ${where}`, "error");
  } finally {
    updateButton();
  }
  if (done.length) {
    addUpload(press, done);
    followRows(done.map((entry) => entry.row), uploadsChanged);
    followWait();
  }
  message.focus();
}

function showRegistered(entry, registration) {
  entry.id = registration.id;
  entry.row.classList.remove("flagged");
  entry.row.dataset.liveId = registration.id;
  entry.row.dataset.status = registration.status;
  entry.row.cells[0].replaceChildren(el("a", { href: registration.links.page }, entry.path));
  const badge = el("span", { class: `badge s-${registration.status}` }, registration.status);
  entry.row.cells[3].replaceChildren(badge);
  entry.row.cells[4].replaceChildren();
}

// --- after a press: its receipts, and the wait ----------------------------------------

function addUpload(press, done) {
  const count = el("span", {});
  const button = el("button", { type: "button", class: "secondary", "data-press": String(press) }, "Download these receipts");
  button.addEventListener("click", () => downloadReceipts(done, button));
  const item = el("li", { "data-press": String(press) }, count, " ", button);
  $("upload-list").append(item);
  $("uploads").hidden = false;
  const upload = {
    complete: false,
    update() {
      const confirmed = done.filter((entry) => entry.row.dataset.status === "confirmed").length;
      count.textContent = `Upload ${press}: ${done.length} file(s), ${confirmed} confirmed. `;
      upload.complete = confirmed === done.length;
      button.disabled = !upload.complete;
      item.dataset.complete = String(upload.complete);
    },
  };
  uploads.push(upload);
  upload.update();
}

async function downloadReceipts(done, button) {
  button.disabled = true;
  try {
    const response = await fetch(config.receiptsUrl, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": window.trialnotary.csrfToken() },
      body: JSON.stringify({ ids: done.map((entry) => entry.id) }),
    });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const name = /filename="?([^";]+)"?/.exec(response.headers.get("Content-Disposition") ?? "")?.[1] ?? "receipts.zip";
    const url = URL.createObjectURL(await response.blob());
    const link = el("a", { href: url, download: name, hidden: "" });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (error) {
    say(`The receipts could not be downloaded (${error.message}); try again.`, "error");
  } finally {
    button.disabled = false;
  }
}

let followingWait = false;
const allConfirmed = () => uploads.every((upload) => upload.complete);

function uploadsChanged() {
  uploads.forEach((upload) => upload.update());
  if (allConfirmed()) $("wait-notice").replaceChildren();
}

/** Show what registered rows wait for (a chain outage first) until all are confirmed. */
async function followWait() {
  if (followingWait) return;
  followingWait = true;
  const notice = $("wait-notice");
  while (!allConfirmed()) {
    try {
      const response = await fetch(config.waitUrl, { credentials: "same-origin" });
      const html = response.ok ? await response.text() : null;
      if (html !== null && !allConfirmed()) {
        notice.innerHTML = html;
        window.trialnotary.localizeTimes(notice);
      }
    } catch { /* shown again on the next round */ }
    await new Promise((resolve) => setTimeout(resolve, WAIT_POLL_MS));
  }
  notice.replaceChildren();
  followingWait = false;
}

function startAgain() {
  entries = [];
  tbody.replaceChildren();
  $("file-list").hidden = true;
  $("clear-button").hidden = true;
  clearProblems();
  updateButton();
  say("");
}

if (form) {
  const zone = $("dropzone");
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", async (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    await addDropped(event.dataTransfer.items);
    await hashPending();
  });
  for (const id of ["file-input", "folder-input"]) {
    $(id).addEventListener("change", async (event) => {
      addPicked(event.target.files);
      event.target.value = "";
      await hashPending();
    });
  }
  $("cancel-button").addEventListener("click", () => hashing?.cancel());
  $("clear-button").addEventListener("click", startAgain);
  form.addEventListener("submit", register);
  // Files chosen but not registered would be lost with the page: the browser asks first.
  window.addEventListener("beforeunload", (event) => {
    if (!waiting().length) return;
    event.preventDefault();
    event.returnValue = "";
  });
  form.dataset.ready = "true";
}
