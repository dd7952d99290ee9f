// The regulator view: the overview arrives first over server-sent events, then every
// change. All text from gateways goes in through textContent, never as HTML.
"use strict";

const gateways = new Map(); // "site/gateway" -> view
const LEVELS = ["blue", "yellow", "orange", "red"];
const STALE_MS = 5 * 60 * 1000;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return e;
}

function badge(level) {
  const name = level || "none";
  return el("span", { class: "badge level-" + name }, level ? level : "normal");
}

function time(ms) {
  return ms ? new Date(ms).toLocaleString() : "";
}

function age(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 90) return s + " s ago";
  if (s < 5400) return Math.round(s / 60) + " min ago";
  return Math.round(s / 3600) + " h ago";
}

function num(x, unit) {
  return x === null || x === undefined ? "" : String(x) + (unit ? " " + unit : "");
}

function where(device, point) {
  return device ? device + " · " + point : "";
}

function render() {
  const list = [...gateways.values()].sort((a, b) =>
    (a.site + "/" + a.gateway).localeCompare(b.site + "/" + b.gateway));
  const gBody = document.querySelector("#gateways tbody");
  gBody.replaceChildren(...list.map(g => {
    const stale = Date.now() - g.last_seen > STALE_MS;
    const presence = g.presence || "unknown";
    const sources = (g.hazard_sources || []).map(h =>
      el("span", { class: "source" }, badge(h.level), " " + h.name + " (" + h.id + ") "));
    return el("tr", {
        class: "gateway row-" + (g.level || "none"),
        "data-site": g.site, "data-gateway": g.gateway,
        "data-level": g.level || "none", "data-presence": presence,
        "data-clock": g.clock_ok === false ? "wrong" : "ok",
      },
      el("td", {}, g.site), el("td", {}, g.gateway), el("td", {}, badge(g.level)),
      el("td", {}, ...sources),
      el("td", { class: presence }, presence + (g.version ? " · v" + g.version : ""),
        ...(g.clock_ok === false
          ? [" ", el("span", { class: "clock-warning", title: "its readings are kept in the quarantine, not the store" }, "⚠ gateway clock wrong")]
          : [])),
      el("td", { class: stale ? "stale" : "", "data-last-seen": g.last_seen }, age(g.last_seen)));
  }));
  document.getElementById("no-gateways").hidden = list.length > 0;

  const alarms = list.flatMap(g => (g.alarms || []).map(a => ({ ...a, site: g.site, gateway: g.gateway })))
    .sort((a, b) => LEVELS.indexOf(b.level) - LEVELS.indexOf(a.level) || a.since - b.since);
  const aBody = document.querySelector("#alarms tbody");
  aBody.replaceChildren(...alarms.map(a => el("tr", {
      class: "alarm row-" + a.level,
      "data-site": a.site, "data-gateway": a.gateway, "data-device": a.device,
      "data-point": a.point, "data-level": a.level,
    },
    el("td", {}, badge(a.level)), el("td", {}, a.site), el("td", {}, a.gateway),
    el("td", {}, a.hazard_source || ""), el("td", {}, where(a.device, a.point)),
    el("td", {}, a.condition + (a.label ? " · " + a.label : "")),
    el("td", {}, num(a.crossed ?? a.value, a.unit)), el("td", {}, num(a.limit, a.unit)),
    el("td", {}, time(a.since)))));
  document.getElementById("no-alarms").hidden = alarms.length > 0;
}

function liveAlarm(a) {
  const live = document.getElementById("live");
  live.prepend(el("li", { class: "event", "data-level": a.level || "none" },
    time(a.ts) + " ", badge(a.level), " " + a.event + " " + a.envelope_site_gateway + " ",
    where(a.device, a.point) || a.hazard_source || "site", " " + a.condition + " " + num(a.crossed ?? a.value, a.unit)));
  while (live.children.length > 100) live.lastChild.remove();
  document.getElementById("no-live").hidden = true;
}

function connect() {
  const link = document.getElementById("link");
  const source = new EventSource("/api/events");
  source.addEventListener("open", () => { link.textContent = "live"; link.className = "link up"; });
  source.addEventListener("error", () => { link.textContent = "reconnecting…"; link.className = "link down"; });
  source.addEventListener("overview", e => {
    gateways.clear();
    for (const g of JSON.parse(e.data)) gateways.set(g.site + "/" + g.gateway, g);
    render();
  });
  source.addEventListener("change", e => {
    const change = JSON.parse(e.data);
    if (change.type === "gateway") {
      gateways.set(change.site + "/" + change.gateway, change);
      render();
    } else if (change.type === "alarm") {
      change.envelope_site_gateway = change.site + "/" + change.gateway;
      liveAlarm(change);
    }
  });
}

async function loadHistory(event) {
  if (event) event.preventDefault();
  const form = document.getElementById("history-filter");
  const note = document.getElementById("history-note");
  const params = new URLSearchParams();
  const f = new FormData(form);
  if (f.get("site")) params.set("site", f.get("site").trim());
  if (f.get("level")) params.set("level", f.get("level"));
  for (const k of ["from", "to"]) if (f.get(k)) params.set(k, String(new Date(f.get(k)).getTime()));
  note.textContent = "loading…";
  try {
    const response = await fetch("/api/history?" + params);
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || response.statusText);
    const tbody = document.querySelector("#history tbody");
    tbody.replaceChildren(...body.events.map(h => el("tr", {
        class: "history row-" + (h.level || "none"), "data-level": h.level || "none",
        "data-site": h.site, "data-event": h.event,
      },
      el("td", {}, time(h.ts)), el("td", {}, h.event), el("td", {}, badge(h.level)),
      el("td", {}, h.site), el("td", {}, h.gateway), el("td", {}, h.hazard_source || ""),
      el("td", {}, where(h.device, h.point)), el("td", {}, h.condition + (h.label ? " · " + h.label : "")),
      el("td", {}, num(h.value, h.unit)), el("td", {}, num(h.limit, h.unit)))));
    note.textContent = body.events.length + " events"
      + (body.span_capped ? " · span cut to the 31 days before its end" : "")
      + (body.more ? " · more in the store: narrow the span" : "");
  } catch (e) {
    note.textContent = "history unavailable: " + e.message;
  }
}

// Call-response (预警叫应): who answered each open alarm, and the button to answer it.
let session = null;

function answer(o) {
  if (o.acked_by && o.confirmed_ts) return "现场已确认 · confirmed at the edge · " + o.acked_by;
  if (o.acked_by) return "已确认，待现场回执 · acknowledged, not yet at the edge · " + o.acked_by;
  return "未确认 · unacknowledged";
}

async function acknowledge(o) {
  const note = prompt("确认预警 (acknowledge) — 处置说明 (note, optional):", "");
  if (note === null) return;
  const path = ["/api/occurrences", o.site, o.gateway, o.occurrence, "ack"].map(encodeURIComponent).join("/").replace(/%2F/g, "/");
  const r = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": session.csrf },
    body: JSON.stringify({ note }),
  });
  if (!r.ok) alert("未能确认 (not acknowledged): " + ((await r.json().catch(() => ({}))).error || r.status));
  loadOccurrences();
}

async function loadOccurrences() {
  const r = await fetch("/api/occurrences");
  if (r.status === 401) { location.href = "/login"; return; }
  if (!r.ok) return;
  const list = (await r.json()).occurrences;
  document.querySelector("#occurrences tbody").replaceChildren(...list.map(o => el("tr", {
      class: "occurrence row-" + (o.level || "none"), "data-occurrence": o.occurrence,
      "data-site": o.site, "data-answer": o.confirmed_ts ? "confirmed" : o.acked_by ? "acknowledged" : "open",
    },
    el("td", {}, badge(o.level)), el("td", {}, o.site), el("td", {}, o.gateway),
    el("td", {}, where(o.device, o.point)), el("td", {}, o.condition + (o.label ? " · " + o.label : "")),
    el("td", {}, time(o.opened_ts)), el("td", { class: "answer" }, answer(o)),
    el("td", {}, o.acked_by ? "" : el("button", { type: "button", class: "ack", onclick: () => acknowledge(o) }, "确认 (acknowledge)")))));
  document.getElementById("no-occurrences").hidden = list.length > 0;
}

async function start() {
  const r = await fetch("/api/session");
  if (r.status === 401) { location.href = "/login"; return; }
  session = await r.json();
  document.getElementById("who").textContent = session.user + " (" + session.role + ")";
  document.getElementById("logout").addEventListener("click", async () => {
    await fetch("/api/logout", { method: "POST", headers: { "X-CSRF-Token": session.csrf } });
    location.href = "/login";
  });
  connect();
  loadHistory();
  loadOccurrences();
  setInterval(loadOccurrences, 3000);
}

document.getElementById("history-filter").addEventListener("submit", loadHistory);
setInterval(render, 5000); // keeps "last seen" ages current
start();
