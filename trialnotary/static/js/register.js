// The register page: gather files (picked, or dropped, folders included), hash them in a
// Web Worker (hashing.js), and register their hashes in bulk. File contents never leave
// the browser.
import { hashFiles } from "./hashing.js";
import { followRows } from "./live-status.js";

const BULK_MAX = 10000;
const MAX_FILENAME = 255;

const form = document.getElementById("register-form");
const tbody = document.querySelector("#file-list tbody");
const message = document.getElementById("register-message");
const registerButton = document.getElementById("register-button");

/** Files chosen so far: {file, path, label, filename, sha256, row}. */
let entries = [];
let hashing = null;

const formatBytes = (size) => window.trialnotary.formatBytes(size);
const shown = (text) => window.trialnotary.showInvisible(text);

function say(text, kind = "") {
  message.textContent = text;
  message.className = kind ? `flash ${kind}` : "";
}

function isHidden(name) { return name.startsWith("."); }

/** One entry per file; a folder labels its files with its name, with relative file names. */
function addFile(file, folder = null, relative = null) {
  const filename = relative ?? file.name;
  const row = document.createElement("tr");
  row.dataset.path = folder ? `${folder}/${relative}` : file.name;
  for (const text of [shown(row.dataset.path), formatBytes(file.size), "", "waiting"]) {
    const cell = document.createElement("td");
    cell.textContent = text;
    row.append(cell);
  }
  row.cells[2].className = "hash";
  row.cells[3].dataset.cell = "status";
  tbody.append(row);
  entries.push({ file, path: row.dataset.path, label: folder ?? file.name, filename, sha256: null, row });
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

async function hashPending() {
  const pending = entries.filter((entry) => entry.sha256 === null);
  if (!pending.length) return;
  document.getElementById("file-list").hidden = false;
  const panel = document.getElementById("hashing");
  const bar = document.getElementById("overall-progress");
  const text = document.getElementById("overall-text");
  panel.hidden = false;
  registerButton.disabled = true;
  say(`Hashing ${pending.length} file(s) in your browser…`);
  hashing = hashFiles(pending.map(({ file, path }) => ({ file, path })), {
    onProgress: ({ fileIndex, fileBytes, fileSize, totalBytes, totalSize }) => {
      bar.max = Math.max(totalSize, 1);
      bar.value = totalBytes;
      text.textContent = `${formatBytes(totalBytes)} of ${formatBytes(totalSize)}`;
      const row = pending[fileIndex]?.row;
      if (row && fileSize) row.cells[3].textContent = `hashing ${Math.floor((100 * fileBytes) / fileSize)}%`;
    },
    onFileDone: ({ index, sha256 }) => {
      pending[index].sha256 = sha256;
      pending[index].row.cells[2].textContent = sha256;
      pending[index].row.cells[3].textContent = "hashed";
    },
  });
  try {
    const results = await hashing.promise;
    results.forEach((result, index) => {
      pending[index].sha256 = result.sha256;
      pending[index].row.cells[2].textContent = result.sha256;
      pending[index].row.cells[3].textContent = "hashed";
    });
    say(`${entries.length} file(s) hashed. Check the list, then register.`);
    registerButton.disabled = false;
  } catch (error) {
    const cancelled = error.name === "AbortError";
    entries = entries.filter((entry) => entry.sha256 !== null);
    for (const entry of pending) if (entry.sha256 === null) entry.row.remove();
    say(cancelled ? "Hashing cancelled: nothing was registered." : `Hashing failed: ${error.message}`,
      cancelled ? "" : "error");
    registerButton.disabled = entries.length === 0;
  } finally {
    hashing = null;
    panel.hidden = true;
  }
}

function submissions() {
  const [trial, site] = document.getElementById("pair").value.split("|");
  const kind = document.getElementById("kind").value;
  const label = document.getElementById("label").value.trim();
  const supersedes = document.getElementById("supersedes")?.value || null;
  return entries.map((entry) => ({
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
    const detail = error ? `${error.field ? `${error.field}: ` : ""}${error.message}` : `HTTP ${response.status}`;
    throw Object.assign(new Error(detail), { field: error?.field });
  }
  return body.submissions;
}

/** The first label, file name or reason the server would refuse for its characters. */
function textProblems(reason) {
  const { textProblem } = window.trialnotary;
  const label = document.getElementById("label").value.trim();
  if (label && textProblem(label)) return `Label: ${textProblem(label)}.`;
  if (reason && textProblem(reason)) return `Reason: ${textProblem(reason)}.`;
  for (const entry of entries) {
    // Without a label of the form's, each file is labelled with its folder's or its name.
    for (const name of [entry.filename, label ? null : entry.label]) {
      if (name && textProblem(name)) return `${shown(entry.path)}: the name ${textProblem(name)}.`;
    }
  }
  return null;
}

function rowOfField(field, offset) {
  const match = /^submissions\[(\d+)\]/.exec(field || "");
  return match ? entries[offset + Number(match[1])] : null;
}

async function register(event) {
  event.preventDefault();
  const reasonInput = document.getElementById("reason");
  const reason = reasonInput ? reasonInput.value.trim() : null;
  if (reasonInput && !reason) {
    say("Give a reason for the correction.", "error");
    reasonInput.focus();
    return;
  }
  const tooLong = entries.find((entry) => entry.filename.length > MAX_FILENAME);
  if (tooLong) {
    say(`${shown(tooLong.path)}: the file name is longer than ${MAX_FILENAME} characters.`, "error");
    return;
  }
  const problem = textProblems(reason);
  if (problem) {
    say(problem, "error");
    return;
  }
  registerButton.disabled = true;
  const items = submissions();
  let done = 0;
  try {
    for (let start = 0; start < items.length; start += BULK_MAX) {
      say(`Registering ${items.length} file(s)…`);
      const created = await post(items.slice(start, start + BULK_MAX), reason);
      created.forEach((registration, index) => showRegistered(entries[start + index], registration));
      done += created.length;
    }
    say(`${done} file(s) registered. Each is sealed and anchored on its own; this list updates itself.`, "success");
    document.getElementById("clear-button").hidden = false;
    followRows(entries.map((entry) => entry.row));
  } catch (error) {
    const entry = rowOfField(error.field, done);
    say(`${done ? `${done} registered; the rest were refused` : "Nothing was registered"}: `
      + `${entry ? `${entry.path} — ` : ""}${error.message}`, "error");
    registerButton.disabled = false;
  }
  message.focus();
}

function showRegistered(entry, registration) {
  const row = entry.row;
  row.dataset.liveId = registration.id;
  row.dataset.status = registration.status;
  const link = document.createElement("a");
  link.href = registration.links.page;
  link.textContent = entry.path;
  row.cells[0].replaceChildren(link);
  const badge = document.createElement("span");
  badge.className = `badge s-${registration.status}`;
  badge.textContent = registration.status;
  row.cells[3].replaceChildren(badge);
}

function startAgain() {
  entries = [];
  tbody.replaceChildren();
  document.getElementById("file-list").hidden = true;
  document.getElementById("clear-button").hidden = true;
  registerButton.disabled = true;
  say("");
}

if (form) {
  const zone = document.getElementById("dropzone");
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", async (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    await addDropped(event.dataTransfer.items);
    await hashPending();
  });
  for (const id of ["file-input", "folder-input"]) {
    document.getElementById(id).addEventListener("change", async (event) => {
      addPicked(event.target.files);
      event.target.value = "";
      await hashPending();
    });
  }
  document.getElementById("cancel-button").addEventListener("click", () => hashing?.cancel());
  document.getElementById("clear-button").addEventListener("click", startAgain);
  form.addEventListener("submit", register);
}
