// The regulator view: overview (enterprises, call-response, alarms, live events, history)
// and drill-down (#/site/S → #/source/S/G/HS → #/point/S/G/D/P with its trend). The
// overview arrives over server-sent events, drill-down data from /api/site and /api/trend.
// All text from gateways goes in through textContent, never as HTML. Texts come from
// i18n.js; times are shown 24 h in the regulator's time zone; numbers to each point's
// decimals.
"use strict";

const gateways = new Map(); // "site/gateway" -> view
const masters = new Map(); // "site/gateway" -> master data (names, decimals, limits)
const LEVELS = ["blue", "yellow", "orange", "red"];
const STALE_MS = 5 * 60 * 1000;
let session = null;
let offsetMin = 480; // Asia/Shanghai unless the server says otherwise
let openOccurrences = [];
let completeness = new Map(); // site -> completeness over the last 7 days

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
  return el("span", { class: "badge level-" + name, "data-level": name }, level ? t(level) : t("normal"));
}

// YYYY-MM-DD HH:mm:ss in the regulator's time zone.
function time(ms) {
  if (!ms) return "";
  const d = new Date(ms + offsetMin * 60000);
  const p = (n) => String(n).padStart(2, "0");
  return d.getUTCFullYear() + "-" + p(d.getUTCMonth() + 1) + "-" + p(d.getUTCDate()) + " " +
    p(d.getUTCHours()) + ":" + p(d.getUTCMinutes()) + ":" + p(d.getUTCSeconds());
}

function age(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 90) return s + " " + t("ago_s");
  if (s < 5400) return Math.round(s / 60) + " " + t("ago_min");
  return Math.round(s / 3600) + " " + t("ago_h");
}

function pointInfo(site, gateway, device, point) {
  const m = masters.get(site + "/" + gateway);
  return m && (m.points || []).find(p => p.device === device && p.point === point);
}

// Decimals to show a point with: its master data's, or null where the device says them
// at run time (a decimals register) and values arrive already rounded.
function decimalsOf(p) { return p ? (p.device_decimals ? null : p.decimals) : undefined; }

// A number to the point's decimals (from its master data), as sent (null), else to 3 at most.
function num(x, unit, decimals) {
  if (x === null || x === undefined) return "";
  if (decimals === null) return String(Number(x)) + (unit ? " " + unit : "");
  const d = decimals ?? 3;
  let s = Number(x).toFixed(d);
  if (decimals === undefined && s.includes(".")) s = s.replace(/0+$/, "").replace(/\.$/, "");
  return s + (unit ? " " + unit : "");
}

function pnum(site, gateway, device, point, x, unit) {
  const info = device ? pointInfo(site, gateway, device, point) : null;
  return num(x, unit, decimalsOf(info));
}

function siteName(site) {
  for (const g of gateways.values()) if (g.site === site && g.name) return g.name;
  return null;
}

function enterprise(site) {
  const name = siteName(site);
  return el("a", { href: "#/site/" + encodeURIComponent(site), class: "enterprise" }, name ? name + " (" + site + ")" : site);
}

function where(site, gateway, device, point) {
  if (!device) return "";
  const info = pointInfo(site, gateway, device, point);
  const label = info ? info.name + " · " + device + "." + point : device + " · " + point;
  return el("a", { href: "#/point/" + [site, gateway, device, point].map(encodeURIComponent).join("/") }, label);
}

function condition(c, label) {
  return t(c) + (label ? " · " + label : "");
}

// The regulator's filters: jurisdiction (division-code prefix), industry, least level,
// only enterprises with unacknowledged alarms.
function filters() {
  const f = new FormData(document.getElementById("filters"));
  return { division: (f.get("division") || "").trim(), industry: f.get("industry") || "",
           level: f.get("level") || "", unacked: f.get("unacked") === "on" };
}

function passes(g, f, unacked) {
  if (f.division && !(g.division || "").startsWith(f.division)) return false;
  if (f.industry && g.industry !== f.industry) return false;
  if (f.level && LEVELS.indexOf(g.level) < LEVELS.indexOf(f.level)) return false;
  if (f.unacked && !(unacked.get(g.site) > 0)) return false;
  return true;
}

// A burst of changes (events, master data arriving) makes one render per frame, not one
// per change: each render rebuilds every row of the overview.
let renderQueued = false;
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => { renderQueued = false; render(); });
}

function render() {
  const unacked = new Map();
  for (const o of openOccurrences) if (!o.acked_by) unacked.set(o.site, (unacked.get(o.site) || 0) + 1);
  const f = filters();
  const list = [...gateways.values()].filter(g => passes(g, f, unacked)).sort((a, b) =>
    (a.site + "/" + a.gateway).localeCompare(b.site + "/" + b.gateway));
  document.querySelector("#gateways tbody").replaceChildren(...list.map(g => {
    const stale = Date.now() - g.last_seen > STALE_MS;
    const presence = g.presence || "unknown";
    const sources = (g.hazard_sources || []).map(h =>
      el("a", { class: "source", href: "#/source/" + [g.site, g.gateway, h.id].map(encodeURIComponent).join("/") },
        badge(h.level), " " + h.name + " "));
    return el("tr", {
        class: "gateway row-" + (g.level || "none"),
        "data-site": g.site, "data-gateway": g.gateway,
        "data-level": g.level || "none", "data-presence": presence,
        "data-clock": g.clock_ok === false ? "wrong" : "ok",
        "data-unacked": String(unacked.get(g.site) || 0),
      },
      el("td", {}, enterprise(g.site)), el("td", {}, g.gateway), el("td", {}, badge(g.level)),
      el("td", {}, ...sources),
      el("td", { class: unacked.get(g.site) ? "unacked" : "" }, String(unacked.get(g.site) || 0)),
      el("td", {}, pct(completeness.get(g.site))),
      el("td", { class: presence }, t(presence) + (g.version ? " · v" + g.version : ""),
        ...(g.clock_ok === false ? [" ", el("span", { class: "clock-warning", "data-warning": "clock" }, t("clock_wrong"))] : [])),
      el("td", { class: stale ? "stale" : "", "data-last-seen": g.last_seen }, age(g.last_seen)));
  }));
  document.getElementById("no-gateways").hidden = list.length > 0;

  const alarms = list.flatMap(g => (g.alarms || []).map(a => ({ ...a, site: g.site, gateway: g.gateway })))
    .sort((a, b) => LEVELS.indexOf(b.level) - LEVELS.indexOf(a.level) || a.since - b.since);
  document.querySelector("#alarms tbody").replaceChildren(...alarms.map(a => el("tr", {
      class: "alarm row-" + a.level,
      "data-site": a.site, "data-gateway": a.gateway, "data-device": a.device,
      "data-point": a.point, "data-level": a.level,
    },
    el("td", {}, badge(a.level)), el("td", {}, enterprise(a.site)), el("td", {}, a.gateway),
    el("td", {}, a.hazard_source || ""), el("td", {}, where(a.site, a.gateway, a.device, a.point)),
    el("td", {}, condition(a.condition, a.label)),
    el("td", {}, pnum(a.site, a.gateway, a.device, a.point, a.crossed ?? a.value, a.unit)),
    el("td", {}, pnum(a.site, a.gateway, a.device, a.point, a.limit, a.unit)),
    el("td", {}, time(a.since)))));
  document.getElementById("no-alarms").hidden = alarms.length > 0;
}

function liveAlarm(a) {
  const live = document.getElementById("live");
  live.prepend(el("li", { class: "event", "data-level": a.level || "none" },
    time(a.ts) + " ", badge(a.level), " " + t(a.event) + " ", enterprise(a.site), " " + a.gateway + " ",
    a.device ? where(a.site, a.gateway, a.device, a.point) : (a.hazard_source || ""),
    " " + t(a.condition) + " " + pnum(a.site, a.gateway, a.device, a.point, a.crossed ?? a.value, a.unit)));
  while (live.children.length > 100) live.lastChild.remove();
  document.getElementById("no-live").hidden = true;
}

// Master data (and, with `live`, the points' latest values from the store).
async function loadMaster(site, gateway, live) {
  const r = await fetch("/api/site/" + encodeURIComponent(site) + "/" + encodeURIComponent(gateway) + (live ? "" : "?live=0"));
  if (!r.ok) return null;
  const body = await r.json();
  if (body.master) masters.set(site + "/" + gateway, body.master);
  return body;
}

function connect() {
  const link = document.getElementById("link");
  // When the stream opened and its first overview came (ms since navigation), for the
  // benchmark and for anyone asking why the page was slow.
  window.hazgateTimings = { streamAt: performance.now() };
  const source = new EventSource("/api/events");
  // A page left for another (kept in the back-forward cache) must not keep its stream: a
  // browser allows six connections per server, and held streams starve the next page.
  window.addEventListener("pagehide", () => source.close(), { once: true });
  source.addEventListener("open", () => { window.hazgateTimings.openAt = performance.now(); });
  source.addEventListener("open", () => { link.textContent = t("live"); link.className = "link up"; });
  source.addEventListener("error", () => { link.textContent = t("reconnecting"); link.className = "link down"; });
  source.addEventListener("overview", e => {
    if (!window.hazgateTimings.overviewAt) window.hazgateTimings.overviewAt = performance.now();
    gateways.clear();
    for (const g of JSON.parse(e.data)) {
      gateways.set(g.site + "/" + g.gateway, g);
      // Names come with the overview; decimals only matter where values are shown.
      if ((g.alarms || []).length && !masters.has(g.site + "/" + g.gateway)) loadMaster(g.site, g.gateway, false).then(scheduleRender);
    }
    scheduleRender();
  });
  source.addEventListener("change", e => {
    const change = JSON.parse(e.data);
    if (change.type === "gateway") {
      const key = change.site + "/" + change.gateway;
      const before = gateways.get(key);
      gateways.set(key, change);
      if ((change.alarms || []).length && (!before || before.name !== change.name || !masters.has(key))) loadMaster(change.site, change.gateway, false).then(scheduleRender);
      scheduleRender();
    } else if (change.type === "alarm") {
      change.site = change.site || (change.envelope && change.envelope.site);
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
  note.textContent = "…";
  try {
    const response = await fetch("/api/history?" + params);
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || response.statusText);
    document.querySelector("#history tbody").replaceChildren(...body.events.map(h => el("tr", {
        class: "history row-" + (h.level || "none"), "data-level": h.level || "none",
        "data-site": h.site, "data-event": h.event,
      },
      el("td", {}, time(h.ts)), el("td", {}, t(h.event)), el("td", {}, badge(h.level)),
      el("td", {}, enterprise(h.site)), el("td", {}, h.gateway), el("td", {}, h.hazard_source || ""),
      el("td", {}, where(h.site, h.gateway, h.device, h.point)), el("td", {}, condition(h.condition, h.label)),
      el("td", {}, pnum(h.site, h.gateway, h.device, h.point, h.value, h.unit)),
      el("td", {}, pnum(h.site, h.gateway, h.device, h.point, h.limit, h.unit)))));
    note.textContent = body.events.length + " " + t("events_n")
      + (body.span_capped ? " · " + t("span_capped") : "")
      + (body.more ? " · " + t("more_in_store") : "");
  } catch (e) {
    note.textContent = t("history_unavailable") + e.message;
  }
}

// Call-response (预警叫应): who answered each open alarm, and the button to answer it.
function answer(o) {
  if (o.acked_by && o.confirmed_ts) return t("answer_confirmed") + " · " + o.acked_by;
  if (o.acked_by) return t("answer_acked") + " · " + o.acked_by;
  return t("answer_open");
}

async function acknowledge(o) {
  const note = prompt(t("ack_prompt"), "");
  if (note === null) return;
  const path = "/api/occurrences/" + [o.site, o.gateway, o.occurrence, "ack"].map(encodeURIComponent).join("/");
  const r = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": session.csrf },
    body: JSON.stringify({ note }),
  });
  if (!r.ok) alert(t("ack_failed") + ((await r.json().catch(() => ({}))).error || r.status));
  loadOccurrences();
}

async function loadOccurrences() {
  const r = await fetch("/api/occurrences");
  if (r.status === 401) { location.href = "/login"; return; }
  if (!r.ok) return;
  openOccurrences = (await r.json()).occurrences;
  document.querySelector("#occurrences tbody").replaceChildren(...openOccurrences.map(o => el("tr", {
      class: "occurrence row-" + (o.level || "none"), "data-occurrence": o.occurrence,
      "data-site": o.site, "data-answer": o.confirmed_ts ? "confirmed" : o.acked_by ? "acknowledged" : "open",
    },
    el("td", {}, badge(o.level)), el("td", {}, enterprise(o.site)), el("td", {}, o.gateway),
    el("td", {}, where(o.site, o.gateway, o.device, o.point)), el("td", {}, condition(o.condition, o.label)),
    el("td", {}, time(o.opened_ts)), el("td", { class: "answer" }, answer(o)),
    el("td", {}, o.acked_by ? "" : el("button", { type: "button", class: "ack", onclick: () => acknowledge(o) }, t("acknowledge"))))));
  document.getElementById("no-occurrences").hidden = openOccurrences.length > 0;
  scheduleRender();
}

// ---- drill-down -----------------------------------------------------------------------

let drillTimer = null;
let chart = null;

function crumbs(...parts) {
  if (!parts.length) { document.getElementById("crumbs").replaceChildren(); return; }
  document.getElementById("crumbs").replaceChildren(
    el("a", { href: "#/" }, t("overview")),
    ...parts.flatMap(([label, href]) => [" › ", href ? el("a", { href }, label) : el("span", {}, label)]));
}

function table(headers, rows) {
  return el("table", {}, el("thead", {}, el("tr", {}, ...headers.map(h => el("th", {}, t(h))))), el("tbody", {}, ...rows));
}

function duration(ms) {
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60);
  return (h ? h + t("unit_h") : "") + (h || m ? m + t("unit_min") : "") + (s % 60) + t("unit_s");
}

async function interruptionTable(site) {
  const r = await fetch("/api/interruptions?site=" + encodeURIComponent(site));
  if (!r.ok) return el("p", { class: "empty" }, String(r.status));
  const list = (await r.json()).interruptions;
  if (!list.length) return el("p", { class: "empty" }, t("no_interruptions"));
  return table(["col_gateway", "col_point", "col_cause", "col_start", "col_end", "col_duration"], list.map(i =>
    el("tr", { class: "interruption", "data-gateway": i.gateway, "data-point": i.device ? i.device + "." + i.point : "", "data-open": String(i.end_ts === null) },
      el("td", {}, i.gateway), el("td", {}, i.device ? where(i.site, i.gateway, i.device, i.point) : "—"),
      el("td", {}, t("cause_" + i.cause)), el("td", {}, time(i.start_ts)),
      el("td", {}, i.end_ts ? time(i.end_ts) : t("ongoing")),
      el("td", { class: "duration" }, i.duration_ms !== null ? duration(i.duration_ms) : duration(Date.now() - i.start_ts)))));
}

async function sitePage(site) {
  const gws = [...gateways.values()].filter(g => g.site === site);
  crumbs([siteName(site) || site]);
  const drill = document.getElementById("drill");
  const interruptions = await interruptionTable(site);
  drill.replaceChildren(el("h2", {}, (siteName(site) || site) + " · " + t("gateways_of")),
    el("h3", {}, t("interruptions")), interruptions,
    ...gws.map(g => {
      const m = masters.get(g.site + "/" + g.gateway);
      const sources = (m && m.hazard_sources) || (g.hazard_sources || []).map(h => ({ id: h.id, name: h.name, grade: h.grade }));
      return el("section", { class: "gateway-detail", "data-gateway": g.gateway },
        el("h3", {}, g.gateway + " · ", el("span", { class: g.presence || "unknown" }, t(g.presence || "unknown"))),
        table(["col_hazard_source", "col_kind", "col_grade", "col_level"], sources.map(h => {
          const level = ((g.hazard_sources || []).find(x => x.id === h.id) || {}).level;
          return el("tr", { class: "source-row", "data-source": h.id },
            el("td", {}, el("a", { href: "#/source/" + [site, g.gateway, h.id].map(encodeURIComponent).join("/") }, h.name + " (" + h.id + ")")),
            el("td", {}, h.kind || ""), el("td", {}, String(h.grade || "")), el("td", {}, badge(level)));
        })));
    }));
}

const QUALITY = ["good", "uncertain", "bad"];
const FLAGS = [[1, "flag_calibration"], [2, "flag_stuck_value"], [4, "flag_impossible_jump"]];

// A point's latest value (from the store, through /api/site), quality, flags and alarm.
function pointStatus(p, body, g) {
  const l = ((body && body.live) || []).find(x => x.device === p.device && x.point === p.point);
  const v = l && l.live;
  const fresh = v && Date.now() - v.ts < 15 * 60 * 1000;
  const alarm = (g.alarms || []).filter(x => x.device === p.device && x.point === p.point)
    .sort((x, y) => LEVELS.indexOf(y.level) - LEVELS.indexOf(x.level))[0];
  return {
    alarm, ts: fresh ? v.ts : null,
    value: fresh && v.value !== null && v.value !== undefined ? num(v.value, p.unit, decimalsOf(p)) : "—",
    quality: fresh ? QUALITY[v.quality ?? 0] : "silent",
    flags: fresh && v.flags ? FLAGS.filter(([b]) => v.flags & b).map(([, k]) => t(k)).join(" ") : "",
  };
}

// Value, quality, flags, alarm and limits cells of a point.
function pointCells(p, s) {
  return [el("td", { class: "value" }, s.value),
    el("td", {}, t(s.quality)), el("td", {}, s.flags),
    el("td", {}, s.alarm ? badge(s.alarm.level) : badge(null), s.alarm ? " " + t(s.alarm.condition) : ""),
    el("td", {}, (p.limits || []).map(x => (x.direction === "above" ? "≥" : "≤") + num(x.value, "", decimalsOf(p)) + " " + t(x.level)).join("，"))];
}

async function sourcePage(site, gateway, source) {
  const body = await loadMaster(site, gateway, true);
  const m = masters.get(site + "/" + gateway);
  const g = gateways.get(site + "/" + gateway) || {};
  const hs = m && m.hazard_sources.find(h => h.id === source);
  crumbs([siteName(site) || site, "#/site/" + encodeURIComponent(site)], [hs ? hs.name : source]);
  const drill = document.getElementById("drill");
  if (!m) { drill.replaceChildren(el("p", { class: "empty" }, t("no_master"))); return; }
  const devices = new Set(m.devices.filter(d => d.hazard_source === source).map(d => d.id));
  const rows = m.points.filter(p => devices.has(p.device)).map(p => {
    const s = pointStatus(p, body, g);
    return el("tr", { class: "point-row row-" + (s.alarm ? s.alarm.level : "none"), "data-device": p.device, "data-point": p.point, "data-quality": s.quality },
      el("td", {}, el("a", { href: "#/point/" + [site, gateway, p.device, p.point].map(encodeURIComponent).join("/") }, p.name)),
      el("td", {}, p.device + "." + p.point),
      ...pointCells(p, s));
  });
  drill.replaceChildren(el("h2", {}, (hs ? hs.name : source) + " · " + t("points_of")),
    ...(body && body.live_available === false ? [el("p", { class: "empty" }, t("live_unavailable"))] : []),
    table(["col_name", "col_point", "col_value", "col_quality", "col_flags", "col_alarm", "col_limits"], rows));
}

// An x value (seconds, already shifted to the regulator's zone) as 24 h text.
function shifted(v, withTime) {
  const full = time((v - offsetMin * 60) * 1000);
  return withTime ? full.slice(5, 16) : full.slice(0, 10);
}

const SPANS = [["span_1h", 3600], ["span_6h", 21600], ["span_24h", 86400], ["span_7d", 604800], ["span_30d", 2592000]];

async function pointPage(site, gateway, device, point, span) {
  if (!masters.has(site + "/" + gateway)) await loadMaster(site, gateway);
  const info = pointInfo(site, gateway, device, point);
  const m = masters.get(site + "/" + gateway);
  const dev = m && m.devices.find(d => d.id === device);
  const hs = dev && dev.hazard_source && m.hazard_sources.find(h => h.id === dev.hazard_source);
  crumbs([siteName(site) || site, "#/site/" + encodeURIComponent(site)],
    ...(hs ? [[hs.name, "#/source/" + [site, gateway, hs.id].map(encodeURIComponent).join("/")]] : []),
    [info ? info.name : device + "." + point]);
  const drill = document.getElementById("drill");
  const spans = el("div", { class: "spans" }, ...SPANS.map(([k, s]) =>
    el("button", { type: "button", class: s === span ? "active" : "", onclick: () => pointPage(site, gateway, device, point, s) }, t(k))));
  const holder = el("div", { id: "trend" });
  const note = el("p", { id: "trend-note", class: "empty" });
  const now = el("table", { id: "point-live" });
  drill.replaceChildren(el("h2", {}, (info ? info.name + " · " : "") + device + "." + point), now,
    el("h3", {}, t("trend")), spans, holder, note);
  pointLive(site, gateway, device, point);
  const q = new URLSearchParams({ site, gateway, device, point, span: String(span) });
  const r = await fetch("/api/trend?" + q);
  const body = await r.json().catch(() => ({}));
  if (!r.ok) { note.textContent = body.error || String(r.status); return; }
  if (!body.times.length) note.textContent = t("trend_empty");
  const limits = ((body.point && body.point.limits) || []);
  // The span's two ends bracket the samples, so limits are drawn across all of it.
  const end = Date.now() / 1000 + offsetMin * 60;
  const samples = body.times.map((ms, i) => [ms / 1000 + offsetMin * 60, body.values[i]])
    .filter(([x]) => x > end - span && x < end);
  const xs = [end - span, ...samples.map(s => s[0]), end];
  const values = [null, ...samples.map(s => s[1]), null];
  const data = [xs, values, ...limits.map(l => xs.map(() => l.value))];
  const colour = { red: "#d32f2f", orange: "#f57c00", yellow: "#fbc02d", blue: "#1976d2" };
  const unit = (body.point && body.point.unit) || "";
  if (chart) chart.destroy();
  chart = new uPlot({
    width: Math.min(1100, drill.clientWidth || 900), height: 360,
    // Times are shifted to the regulator's zone and drawn as UTC.
    tzDate: ts => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
    series: [{ label: t("col_time"), value: (u, v) => v == null ? "--" : shifted(v, true) },
      { label: (info ? info.name : point) + (unit ? " (" + unit + ")" : ""), stroke: "#1c2430", width: 1.5,
        value: (u, v) => v == null ? "--" : num(v, "", decimalsOf(info)) },
      ...limits.map(l => ({ label: t(l.level) + " " + (l.direction === "above" ? "≥" : "≤") + l.value, stroke: colour[l.level], dash: [6, 4], width: 1 }))],
    // The whole chosen span, so a young point's few samples do not crowd the axis.
    scales: { x: { time: true, range: () => [end - span, end] } },
    axes: [{ space: 110, values: (u, splits) => splits.map(v => shifted(v, span <= 86400)) }, { label: unit }],
  }, data, holder);
  holder.dataset.points = String(body.times.length);
  holder.dataset.limits = String(limits.length);
}

// The point page's live line: refreshed while the page is open.
async function pointLive(site, gateway, device, point) {
  const body = await loadMaster(site, gateway, true);
  const p = pointInfo(site, gateway, device, point);
  const holder = document.getElementById("point-live");
  if (!p || !holder) return;
  const s = pointStatus(p, body, gateways.get(site + "/" + gateway) || {});
  holder.replaceChildren(
    el("thead", {}, el("tr", {}, ...["col_time", "col_value", "col_quality", "col_flags", "col_alarm", "col_limits"].map(h => el("th", {}, t(h))))),
    el("tbody", {}, el("tr", { class: "point-row row-" + (s.alarm ? s.alarm.level : "none"), "data-quality": s.quality },
      el("td", { class: "ts" }, s.ts ? time(s.ts) : "—"), ...pointCells(p, s))));
}

function route() {
  clearInterval(drillTimer);
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  const overview = document.getElementById("overview");
  const drill = document.getElementById("drill");
  if (parts.length === 0) {
    overview.hidden = false; drill.hidden = true; crumbs(); return;
  }
  overview.hidden = true; drill.hidden = false;
  const [kind, ...rest] = parts;
  if (kind === "site") {
    sitePage(rest[0]);
    drillTimer = setInterval(() => sitePage(rest[0]), 3000);
  }
  else if (kind === "source") {
    sourcePage(...rest);
    drillTimer = setInterval(() => sourcePage(...rest), 2000);
  } else if (kind === "point") {
    pointPage(...rest, 3600);
    drillTimer = setInterval(() => pointLive(...rest), 2000);
  }
}

// Data health and call-response per enterprise over the last 7 days, worst first.
function sparkline(values) {
  const w = 84, h = 18;
  const pts = values.map((v, i) => (values.length < 2 ? 0 : i * w / (values.length - 1)).toFixed(1) + "," + (h - (v ?? 0) * h).toFixed(1));
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("width", w); svg.setAttribute("height", h); svg.setAttribute("class", "sparkline");
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", pts.join(" ")); line.setAttribute("fill", "none"); line.setAttribute("stroke", "#0d47a1");
  svg.append(line);
  return svg;
}

function pct(x) { return x === null || x === undefined ? "—" : (x * 100).toFixed(1) + "%"; }

async function loadStatistics() {
  const r = await fetch("/api/statistics?days=7");
  if (!r.ok) return;
  const days = (await r.json()).days;
  const sites = new Map();
  for (const d of days) {
    const s = sites.get(d.site) || { site: d.site, days: [], received: 0, expected: 0, good: 0, online: 0, hours: 0, alarms: 0, acked: 0, inTime: 0, all: 0, ackSecs: 0 };
    s.days.push(d.completeness);
    s.received += d.received; s.expected += d.expected; s.good += (d.good_share ?? 0) * d.received;
    s.online += (d.online_rate ?? 0) * d.hours; s.hours += d.hours;
    const n = Object.values(d.alarms).reduce((a, b) => a + b, 0);
    s.alarms += n; s.all += n; s.acked += d.acked;
    s.inTime += (d.acked_in_time ?? 0) * n; s.ackSecs += (d.mean_ack_s ?? 0) * d.acked;
    sites.set(d.site, s);
  }
  const rows = [...sites.values()].map(s => ({ ...s,
    completeness: s.expected > 0 ? Math.min(1, s.received / s.expected) : null,
    online_rate: s.hours ? s.online / s.hours : null,
    good_share: s.received ? s.good / s.received : null,
    in_time: s.all ? s.inTime / s.all : null,
    mtta: s.acked ? s.ackSecs / s.acked : null,
  })).sort((a, b) => (a.completeness ?? 2) - (b.completeness ?? 2));
  completeness = new Map(rows.map(s => [s.site, s.completeness]));
  scheduleRender();
  document.querySelector("#statistics tbody").replaceChildren(...rows.map(s => el("tr", { class: "stats", "data-site": s.site,
      "data-completeness": s.completeness === null ? "" : s.completeness.toFixed(4), "data-online": s.online_rate === null ? "" : s.online_rate.toFixed(4) },
    el("td", {}, enterprise(s.site)), el("td", {}, sparkline(s.days)), el("td", {}, pct(s.online_rate)),
    el("td", {}, pct(s.completeness)), el("td", {}, pct(s.good_share)), el("td", {}, String(s.alarms)),
    el("td", {}, pct(s.in_time)), el("td", {}, s.mtta === null ? "—" : duration(s.mtta * 1000)))));
  document.getElementById("no-statistics").hidden = rows.length > 0;
}

async function start() {
  applyI18n();
  const r = await fetch("/api/session");
  if (r.status === 401) { location.href = "/login"; return; }
  session = await r.json();
  if (typeof session.utc_offset_minutes === "number") offsetMin = session.utc_offset_minutes;
  document.getElementById("who").textContent = session.user + " (" + session.role + ")";
  document.getElementById("logout").addEventListener("click", async () => {
    await fetch("/api/logout", { method: "POST", headers: { "X-CSRF-Token": session.csrf } });
    location.href = "/login";
  });
  document.getElementById("lang").addEventListener("click", () => {
    LANG = LANG === "zh" ? "en" : "zh";
    localStorage.setItem("lang", LANG);
    applyI18n(); render(); loadOccurrences(); route();
  });
  window.addEventListener("hashchange", route);
  // Back from the back-forward cache: the stream was closed on leaving; open it again.
  window.addEventListener("pageshow", e => { if (e.persisted) connect(); });
  connect();
  loadHistory();
  loadOccurrences();
  setInterval(loadOccurrences, 3000);
  loadStatistics();
  setInterval(loadStatistics, 60000);
  route();
}

document.getElementById("history-filter").addEventListener("submit", loadHistory);
document.getElementById("filters").addEventListener("input", () => render());
document.getElementById("filters").addEventListener("submit", e => e.preventDefault());
setInterval(render, 5000); // keeps "last seen" ages current
start();
