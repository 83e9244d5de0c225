// Live status without reloading: a registration page polls the public API for its one
// registration; lists poll /registrations/status for their unconfirmed rows, and a list
// that says where (data-newer-url) adds the rows registered since it was loaded.
const POLL_MS = 3000;
const FINAL = "confirmed";

function badge(status) {
  const span = document.createElement("span");
  span.className = `badge s-${status}`;
  span.dataset.status = status;
  span.textContent = status;
  return span;
}

async function fetchJson(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return response.json();
}

/** One registration's page: reload once it is confirmed, to show its receipt. */
async function followOne(holder) {
  const id = holder.dataset.submissionId;
  let status = holder.dataset.status;
  while (status !== FINAL) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    try {
      const view = await fetchJson(`/api/v1/submissions/${encodeURIComponent(id)}`);
      if (view.status !== status) {
        status = view.status;
        holder.replaceChildren(badge(status));
        if (status === FINAL) window.location.reload();
      }
    } catch { /* a missed poll is retried on the next one */ }
  }
}

/** A list: rows carry data-live-id; update their badges and proven times in place, and
 *  call onChange(row) after each change. */
export async function followRows(rows, onChange = () => {}) {
  let open = rows.filter((row) => row.dataset.status !== FINAL);
  while (open.length) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    try {
      const ids = open.map((row) => row.dataset.liveId).join(",");
      const current = await fetchJson(`/registrations/status?ids=${encodeURIComponent(ids)}`);
      for (const row of open) {
        const now = current[row.dataset.liveId];
        if (!now || now.status === row.dataset.status) continue;
        row.dataset.status = now.status;
        row.querySelector("[data-cell=status]")?.replaceChildren(badge(now.status));
        const proven = row.querySelector("[data-cell=proven]");
        if (proven && now.blockTime) {
          const time = document.createElement("time");
          time.setAttribute("datetime", now.blockTime);
          time.className = "t-proven";
          time.textContent = now.blockTime.replace("T", " ").replace("Z", " UTC");
          proven.replaceChildren(time);
          window.trialnotary?.localizeTimes(proven);
        }
        const receipt = row.querySelector("[data-cell=receipt]");
        if (receipt && now.status === FINAL) {
          const link = document.createElement("a");
          link.href = `/api/v1/submissions/${encodeURIComponent(row.dataset.liveId)}/receipt`;
          link.textContent = "receipt";
          receipt.replaceChildren(link);
        }
        onChange(row);
      }
      open = open.filter((row) => row.dataset.status !== FINAL);
    } catch { /* retried on the next poll */ }
  }
}

/** Rows registered elsewhere (API, CLI) since the list was loaded: asked for every poll,
 *  added on top (the list is newest first), then followed like the others. */
async function addNewerRows(table) {
  const body = table.tBodies[0];
  const url = new URL(table.dataset.newerUrl, window.location.href);
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    const newest = body.querySelector("tr[data-live-id]")?.dataset.liveId;
    if (newest) url.searchParams.set("after", newest);
    try {
      const response = await fetch(url, { credentials: "same-origin" });
      if (!response.ok) continue;
      const html = (await response.text()).trim();
      if (!html) continue;
      const holder = document.createElement("tbody");
      holder.innerHTML = html;
      const added = [...holder.querySelectorAll("tr[data-live-id]")]
        .filter((row) => !body.querySelector(`tr[data-live-id="${CSS.escape(row.dataset.liveId)}"]`));
      if (!added.length) continue;
      body.querySelector("tr[data-empty]")?.remove();
      body.prepend(...added);
      for (const row of added) row.classList.add("new");
      window.trialnotary?.localizeTimes(body);
      followRows(added);
    } catch { /* retried on the next poll */ }
  }
}

const one = document.getElementById("live-status");
if (one) followOne(one);
const rows = [...document.querySelectorAll("[data-live-id]")];
if (rows.length) followRows(rows);
for (const table of document.querySelectorAll("table[data-newer-url]")) addNewerRows(table);
