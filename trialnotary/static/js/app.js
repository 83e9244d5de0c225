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

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

window.trialnotary = Object.assign(window.trialnotary || {}, { localizeTimes, csrfToken, formatBytes });
document.addEventListener("DOMContentLoaded", () => localizeTimes());
