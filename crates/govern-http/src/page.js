// govern status page: asks for an operator key (kept in sessionStorage), fetches
// /v1/status and renders it. Every node is built with textContent and setAttribute:
// no markup is ever parsed from data.
"use strict";

const KEY = "govern.operator_key";
const HASH_SHOWN = 12;

const GOOD = new Set(["active", "normal", "entitled", "paid", "settled", "compliant", "completed", "published"]);
const WARN = new Set(["warning", "throttled", "trial", "free_trial", "past_due", "grace", "degraded", "maintenance",
  "provisioning", "pending", "cancellation_requested", "in_review", "running", "compensating"]);
const BAD = new Set(["suspended", "exceeded", "deprovisioned", "canceled", "cancelled", "failed",
  "revoked", "expired", "disputed", "refunded", "non_compliant", "retired", "compensated"]);

// An element with attributes and children (strings become text nodes).
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined) continue;
    if (name === "class") node.className = value; else node.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" || typeof child === "number" ? String(child) : child);
  }
  return node;
}

function stateBadge(state) {
  const tone = GOOD.has(state) ? " good" : WARN.has(state) ? " warn" : BAD.has(state) ? " bad" : "";
  return el("span", { class: "state" + tone }, state);
}

function shortHash(hash) {
  return el("code", { class: "hash", title: hash, "data-hash": hash }, hash.slice(0, HASH_SHOWN) + "…");
}

const NUMBER = new Intl.NumberFormat("en");

function num(n) {
  return typeof n === "number" ? NUMBER.format(n) : String(n);
}

function when(ms) {
  return new Date(ms).toISOString().replace(".000Z", "Z");
}

function table(id, className, headings, rows) {
  return el("table", { id, class: className },
    el("thead", {}, el("tr", {}, ...headings.map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows));
}

function ledgerSection(s) {
  const cp = s.checkpoint;
  const checkpoint = cp
    ? el("span", { id: "checkpoint" }, "size " + cp.size + " · root ", shortHash(cp.root),
      " · signed " + when(cp.timestamp_ms) + " (wall clock)")
    : el("span", { id: "checkpoint" }, s.checkpoint_error ? "unreadable: " + s.checkpoint_error : "none yet");
  const item = (label, ...value) => el("div", {}, el("span", { class: "label" }, label), el("span", {}, ...value));
  return el("section", { id: "ledger" },
    el("h2", {}, "Ledger"),
    el("div", { class: "grid" },
      s.ledger.next_seq === 0 ? item("Head", "empty ledger")
        : item("Head", el("span", { id: "head-seq" }, "seq " + (s.ledger.next_seq - 1)), " · ",
          el("span", { id: "head-hash" }, shortHash(s.ledger.head_hash))),
      item("Receipts (durable)", num(s.ledger.next_seq) + " (" + num(s.ledger.durable) + ")"),
      item("Last checkpoint", checkpoint),
      item("Ledger", s.ledger.poisoned ? stateBadge("failed") : stateBadge("active"))));
}

function tenantsSection(s) {
  const rows = s.tenants.map((t) => el("tr", { "data-tenant": t.tenant },
    el("td", {}, el("strong", {}, t.tenant)),
    el("td", {}, stateBadge(t.state)),
    el("td", {}, t.plans.length ? t.plans.join(", ") : "—"),
    el("td", {}, num(t.receipts))));
  const more = s.tenants_total > s.tenants.length
    ? el("p", { class: "note" }, "Showing " + s.tenants.length + " of " + s.tenants_total + " tenants.") : null;
  return el("section", {},
    el("h2", {}, "Tenants"),
    table("tenants", "", ["Tenant", "State", "Plans", "Receipts"], rows), more);
}

function meterRow(m) {
  const limited = m.limit !== null && m.limit !== undefined;
  const pct = limited ? (m.limit > 0 ? Math.round((m.value * 100) / m.limit) : (m.value > 0 ? 100 : 0)) : null;
  const fill = el("div", { class: "fill" + (pct >= 100 ? " bad" : pct >= 75 ? " warn" : "") });
  fill.style.width = limited ? Math.min(pct, 100) + "%" : "0";
  const bar = el("div", limited
    ? { class: "bar", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": m.limit, "aria-valuenow": m.value }
    : { class: "bar unlimited" }, fill);
  const text = limited ? num(m.value) + " / " + num(m.limit) + " · " + pct + "%" : num(m.value) + " · no limit";
  return el("div", { class: "meter", "data-meter": m.meter },
    el("span", {}, m.meter, el("span", { class: "muted" }, " (" + m.reset + ")")),
    bar, el("span", { class: "meter-text" }, text));
}

function tenantDetail(t, s) {
  const rows = t.governors.map((g) => el("tr", { "data-governor": g.kind + "/" + g.resource },
    el("td", {}, g.kind), el("td", {}, el("code", {}, g.resource)), el("td", {}, stateBadge(g.state)),
    el("td", {}, g.seq)));
  const notes = [];
  if (t.governors_total > t.governors.length) {
    notes.push("Showing the " + t.governors.length + " of " + t.governors_total + " governors that moved last.");
  }
  if (t.governors_partial) {
    notes.push("Read from the ledger's last " + s.bounds.tenant_receipts_scanned_max + " receipts only.");
  }
  return el("div", { class: "tenant", "data-tenant": t.tenant },
    el("h3", {}, t.tenant + " ", stateBadge(t.state)),
    table(null, "governors", ["Governor", "Resource", "State", "Last seq"], rows),
    ...notes.map((n) => el("p", { class: "note" }, n)),
    el("h3", {}, "Quotas"),
    t.meters.length ? el("div", { class: "meters" }, ...t.meters.map(meterRow))
      : el("p", { class: "note" }, "No metered limits (no live plan)."));
}

function receiptsSection(s) {
  const rows = s.receipts.map((r) => el("tr", { "data-seq": r.seq },
    el("td", {}, r.seq), el("td", {}, r.tenant), el("td", {}, r.kind), el("td", {}, el("code", {}, r.resource)),
    el("td", {}, r.command), el("td", {}, r.from + " → " + r.to), el("td", {}, shortHash(r.hash))));
  return el("section", {},
    el("h2", {}, "Last receipts"),
    table("receipts", "", ["Seq", "Tenant", "Governor", "Resource", "Command", "From → to", "Hash"], rows));
}

function render(s) {
  const view = document.getElementById("view");
  view.replaceChildren(
    el("p", { class: "muted", id: "as-of" }, "As of " + when(s.now_ms) + " (runtime clock)"),
    ledgerSection(s),
    tenantsSection(s),
    el("section", { id: "governors" }, el("h2", {}, "Governors and quotas"), ...s.tenants.map((t) => tenantDetail(t, s))),
    receiptsSection(s));
}

function showMessage(text, info) {
  const message = document.getElementById("message");
  message.className = info ? "info" : "";
  message.textContent = text;
}

function signedIn(yes) {
  document.getElementById("key-form").hidden = yes;
  document.getElementById("refresh").hidden = !yes;
  document.getElementById("forget").hidden = !yes;
}

async function load() {
  const key = sessionStorage.getItem(KEY);
  if (!key) { signedIn(false); return; }
  signedIn(true);
  showMessage("Loading…", true);
  let response;
  try {
    response = await fetch("/v1/status", { headers: { Authorization: "Bearer " + key }, cache: "no-store" });
  } catch (e) {
    showMessage("The server did not answer: " + e.message);
    return;
  }
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) {
    const why = body && body.error ? body.error.message : "HTTP " + response.status;
    if (response.status === 401 || response.status === 403) {
      sessionStorage.removeItem(KEY);
      document.getElementById("key").value = "";
      document.getElementById("view").replaceChildren();
      signedIn(false);
      showMessage("Key refused (" + response.status + "): " + why);
    } else {
      showMessage("Status unavailable (" + response.status + "): " + why);
    }
    return;
  }
  showMessage("");
  render(body);
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = document.getElementById("key");
    sessionStorage.setItem(KEY, input.value.trim());
    input.value = "";
    load();
  });
  document.getElementById("refresh").addEventListener("click", load);
  document.getElementById("forget").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    document.getElementById("view").replaceChildren();
    showMessage("");
    signedIn(false);
  });
  load();
});
