// Supervisor view: every live assisted call (agent, duration, customer sentiment, alert counts, last question)
// from /api/v1/assist/live, kept current by /api/v1/assist/ws?mode=supervise; a live feed of alerts.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("page-config").textContent);
  const t = config.t;
  const $ = (id) => document.getElementById(id);
  const calls = new Map();
  const view = { feed: [], events: 0 };
  window.voxdeskSupervisor = view;

  const el = (...args) => window.voxdesk.el(...args);  // voxdesk.js loads after this script

  function clock(s) {
    s = Math.max(0, Math.floor(s));
    return String(Math.floor(s / 60)).padStart(2, "0") + ":" + String(s % 60).padStart(2, "0");
  }

  function sentimentCell(c) {
    if (c.sentiment_trend === null || c.sentiment_trend === undefined) return el("td", {}, "—");
    const label = c.sentiment_trend <= -0.3 ? "negative" : c.sentiment_trend >= 0.3 ? "positive" : "neutral";
    return el("td", { class: "sentiment " + label, "data-testid": "sentiment" },
      t["sentiment." + label] + " (" + c.sentiment_trend.toFixed(2) + ")");
  }

  function render() {
    const body = $("live-rows");
    body.replaceChildren();
    if (!calls.size) {
      body.append(el("tr", { class: "empty" }, el("td", { colSpan: 9, class: "muted" }, t["sup.none"])));
      return;
    }
    const now = Date.now();
    for (const c of [...calls.values()].sort((a, b) => b.started - a.started)) {
      const open = el("a", { href: "/assist?call_id=" + encodeURIComponent(c.call_id), "data-testid": "open-call" },
        t["sup.open"]);
      body.append(el("tr", { "data-testid": "live-call", "data-call-id": c.call_id },
        el("td", {}, c.call_id.slice(0, 12)), el("td", {}, c.line), el("td", { "data-testid": "agent" }, c.agent_user || "—"),
        el("td", {}, c.customer_name || "—"), el("td", { class: "num" }, clock((now - c.started) / 1000)),
        sentimentCell(c),
        el("td", { class: "num", "data-testid": "alert-count" }, c.alerts + " / " + c.supervisor_alerts),
        el("td", {}, c.last_intent || "—"), el("td", {}, open)));
    }
  }

  async function load() {
    const res = await window.voxdesk.api("/api/v1/assist/live");
    if (!res.ok) return;
    calls.clear();
    for (const item of await res.json()) {
      calls.set(item.call.call_id, Object.assign({}, item.call, { customer_name: item.customer_name,
        started: new Date(item.call.started_at).getTime() }));
    }
    render();
  }

  function feed(ev) {
    const list = $("feed");
    view.feed.push({ rule_id: ev.rule_id, call_id: ev.call_id, audience: ev.audience });
    list.prepend(el("li", { class: "alert " + ev.severity, "data-testid": "feed-alert", "data-rule-id": ev.rule_id },
      el("strong", {}, ev.message), ev.quote ? el("span", { class: "quote" }, "“" + ev.quote + "”") : null,
      el("span", { class: "when" }, ev.call_id.slice(0, 12) + " · " + ev.leg)));
    while (list.children.length > 50) list.lastChild.remove();
  }

  function handle(ev) {
    view.events += 1;
    const c = calls.get(ev.call_id);
    if (ev.kind === "call.started" || ev.kind === "call.leg" || ev.kind === "call.ended") { setTimeout(load, 300); return; }
    if (!c) return;
    if (ev.kind === "nlu.sentiment" && ev.leg === "customer") { c.sentiment = ev.score; c.sentiment_trend = ev.trend; }
    else if (ev.kind === "nlu.intent" && ev.question_id) c.last_intent = ev.label;
    else if (ev.kind === "assist.alert") {
      if (ev.audience === "supervisor") c.supervisor_alerts += 1; else c.alerts += 1;
      feed(ev);
    }
    render();
  }

  function connect() {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(proto + "://" + location.host + "/api/v1/assist/ws?mode=supervise");
    socket.onopen = () => { $("sup-status").textContent = t["sup.live"]; $("sup-status").classList.add("live"); load(); };
    socket.onmessage = (msg) => { const data = JSON.parse(msg.data); if (data.type === "event") handle(data.event); };
    socket.onclose = (ev) => {
      $("sup-status").textContent = t["status.offline"];
      $("sup-status").classList.remove("live");
      if (ev.code === 4401) { window.location = "/login?next=/supervisor"; return; }
      if (ev.code !== 4403) setTimeout(connect, 2000);
    };
  }

  setInterval(render, 1000);
  setInterval(load, 10000);
  connect();
})();
