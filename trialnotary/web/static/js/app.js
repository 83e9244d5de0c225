// Progressive touches on every page; the pages work without it.
"use strict";

// Times: the server writes UTC; show the viewer's local time with UTC beside it.
function localizeTimes(root = document) {
  for (const el of root.querySelectorAll("time[datetime]:not([data-local])")) {
    const moment = new Date(el.getAttribute("datetime"));
    if (Number.isNaN(moment.getTime())) continue;
    const local = moment.toLocaleString(undefined, {
      year: "numeric", month: "short", day: "numeric",
      hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
    });
    const utc = el.textContent.trim();
    el.textContent = local + " ";
    const small = document.createElement("span");
    small.className = "t-utc";
    small.textContent = "(" + utc + ")";
    el.append(small);
    el.dataset.local = "1";
  }
}

/** A size for people: "4000 bytes", "3.9 KiB", "286.1 MiB". */
function formatBytes(size) {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let value = size;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return unit === 0 ? `${size} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

/**
 * A table too wide for its box scrolls sideways; keyboard users reach it as a labelled
 * region (tab to it, then the arrow keys). Checked again whenever the table's size changes.
 */
function scrollableTables(root = document) {
  const label = (wrap) => {
    const caption = wrap.querySelector("caption")?.textContent.trim();
    if (caption) return caption;
    let before = wrap.previousElementSibling;
    while (before && !/^H[1-6]$/.test(before.tagName)) before = before.previousElementSibling;
    return before?.textContent.trim() || document.title;
  };
  const check = (wrap) => {
    const scrolls = wrap.scrollWidth > wrap.clientWidth + 1;
    if (scrolls && wrap.dataset.scrolls !== "1") {
      Object.assign(wrap, { tabIndex: 0 });
      wrap.setAttribute("role", "region");
      wrap.setAttribute("aria-label", `${label(wrap)} (scrolls sideways)`);
      wrap.dataset.scrolls = "1";
    } else if (!scrolls && wrap.dataset.scrolls === "1") {
      for (const name of ["tabindex", "role", "aria-label", "data-scrolls"]) wrap.removeAttribute(name);
    }
  };
  const observer = new ResizeObserver((changes) => changes.forEach((change) => check(change.target.closest(".table-wrap"))));
  for (const wrap of root.querySelectorAll(".table-wrap")) {
    check(wrap);
    observer.observe(wrap);
    const table = wrap.querySelector("table");
    if (table) observer.observe(table);
  }
}

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

// The characters free text may not hold, by kind, as the server lists them for the page
// (validation.py): {control, surrogate, invisible: [[first, last], ...]}.
const TEXT_RULES = (() => {
  const meta = document.querySelector('meta[name="refused-characters"]');
  const kinds = meta ? JSON.parse(meta.content) : {};
  const hex = (code) => `\\u{${code.toString(16)}}`;
  return Object.fromEntries(Object.entries(kinds).map(([kind, ranges]) => [kind,
    new RegExp(`[${ranges.map(([a, b]) => `${hex(a)}-${hex(b)}`).join("")}]`, "gu")]));
})();

const codePoint = (char) => `U+${char.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}`;

/** What is wrong with free text (a label, a file name), in the server's words, or null. */
function textProblem(text) {
  const found = Object.entries(TEXT_RULES)
    .map(([kind, pattern]) => [kind, text.search(pattern)])
    .filter(([, at]) => at >= 0)
    .sort((a, b) => a[1] - b[1])[0];
  if (!found) return null;
  const char = String.fromCodePoint(text.codePointAt(found[1]));
  if (found[0] === "control") return `must not hold control characters (${codePoint(char)})`;
  if (found[0] === "surrogate") return "must be valid Unicode (it holds a lone surrogate)";
  return `must not hold the invisible character ${codePoint(char)}`;
}

/** ``text`` with each invisible character spelled out (a<U+202E>b), as the pages show it. */
function showInvisible(text) {
  return TEXT_RULES.invisible ? String(text).replace(TEXT_RULES.invisible, (char) => `<${codePoint(char)}>`) : String(text);
}

window.trialnotary = Object.assign(window.trialnotary || {},
  { localizeTimes, csrfToken, formatBytes, textProblem, showInvisible });
document.addEventListener("DOMContentLoaded", () => { localizeTimes(); scrollableTables(); });
