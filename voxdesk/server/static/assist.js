// The agent's live assist panel: transcript of both legs, customer card, detected question, suggestion cards
// and compliance alerts, from /api/v1/assist/ws (events) and /api/v1/assist/calls/{id} (snapshot on attach).
// Plain DOM, no innerHTML with data. window.voxdeskPanel.rendered records when each card was painted (epoch ms).
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("page-config").textContent);
  const t = config.t;
  const $ = (id) => document.getElementById(id);
  const MAX_CARDS = 3;
  const panel = { callId: null, rendered: [], alerts: [], events: 0, socket: null, startedAt: null };
  window.voxdeskPanel = panel;
  let seen = new Set();
  let partials = {};
  let timer = null;

  const el = (...args) => window.voxdesk.el(...args);  // voxdesk.js loads after this script

  function clock(ms) {
    if (ms === null || ms === undefined) return "";
    const s = Math.max(0, Math.floor(ms / 1000));
    return String(Math.floor(s / 60)).padStart(2, "0") + ":" + String(s % 60).padStart(2, "0");
  }

  function setStatus(text, live) {
    const node = $("call-status");
    node.textContent = text;
    node.classList.toggle("live", !!live);
  }

  function reset() {
    seen = new Set();
    partials = {};
    $("transcript").replaceChildren();
    $("suggestions").replaceChildren(el("p", { class: "muted empty" }, t["suggestions.none"]));
    $("alerts").replaceChildren(el("li", { class: "muted empty" }, t["alerts.none"]));
    $("intent").textContent = t["intent.none"];
    $("intent").className = "muted";
    $("customer-body").replaceChildren(el("p", { class: "muted" }, t["customer.unknown"]));
    $("summary-card").hidden = true;
    $("handoff-card").hidden = true;
    $("handoff-body").replaceChildren();
  }

  // --- handoff from the voice navigator -------------------------------------------------------------------
  function showHandoff(ev) {
    const dl = el("dl", { class: "grid" });
    const row = (label, value, testid) => dl.append(el("dt", {}, label), el("dd", { "data-testid": testid }, value));
    row(t["handoff.reason"], ev.reason, "handoff-reason");
    row(t["handoff.group"], ev.skill_group, "handoff-group");
    if (ev.intent) {
      const pct = ev.intent_confidence === null ? "" : " (" + Math.round(ev.intent_confidence * 100) + "%)";
      row(t["handoff.intent"], ev.intent + pct, "handoff-intent");
    }
    row(t["handoff.identity"], ev.identity_verified ? "✓ " + t["handoff.verified"] : t["handoff.unverified"],
      "handoff-identity");
    if (ev.slots.length) row(t["handoff.slots"], ev.slots.map(([k, v]) => k + ": " + v).join(" · "), "handoff-slots");
    const lines = el("ol", { class: "handoff-transcript", "data-testid": "handoff-transcript" });
    for (const [speaker, text] of ev.transcript) {
      lines.append(el("li", { class: speaker }, el("span", { class: "who" }, t["speaker." + speaker] || speaker), text));
    }
    $("handoff-body").replaceChildren(dl, el("h3", {}, t["handoff.transcript"]), lines);
    $("handoff-card").hidden = false;
  }

  // --- transcript -----------------------------------------------------------------------------------------
  function legName(leg) { return t["leg." + leg] || leg; }

  function showPartial(ev) {
    let node = partials[ev.leg];
    if (!node) {
      node = el("li", { class: ev.leg + " partial", "data-testid": "partial" });
      partials[ev.leg] = node;
      $("transcript").append(node);
    }
    node.replaceChildren(el("span", { class: "who" }, legName(ev.leg) + " " + clock(ev.start_ms)), ev.text);
    node.scrollIntoView({ block: "nearest" });
  }

  function showFinal(leg, text, startMs) {
    const key = "f:" + leg + ":" + startMs;
    if (seen.has(key) || !text) return;
    seen.add(key);
    if (partials[leg]) { partials[leg].remove(); delete partials[leg]; }
    const node = el("li", { class: leg, "data-testid": "line-" + leg, "data-start-ms": startMs },
      el("span", { class: "who" }, legName(leg) + " " + clock(startMs)), text);
    $("transcript").append(node);
    node.scrollIntoView({ block: "nearest" });
  }

  // --- customer card --------------------------------------------------------------------------------------
  function showCustomer(c) {
    if (!c) return;
    const body = [];
    const title = el("h3", { "data-testid": "customer-name" }, c.name);
    if (c.vip) title.append(el("span", { class: "badge vip", "data-testid": "vip-badge" }, t["vip"]));
    body.push(title);
    const dl = el("dl", { class: "grid" });
    const row = (label, value, testid) => dl.append(el("dt", {}, label), el("dd", { "data-testid": testid }, value));
    row(t["customer.tier"], c.tier, "customer-tier");
    row(t["customer.grade"], c.grade, "customer-grade");
    row(t["customer.groups"], c.groups.length ? c.groups.join(", ") : t["customer.none"], "customer-groups");
    row(t["customer.risk"], c.risk_tolerance || t["customer.risk_none"], "customer-risk");
    if (c.age !== null) row(t["customer.age"], c.age, "customer-age");
    const consents = Object.entries(c.consents).map(([k, v]) => (t["consent." + k] || k) + (v ? " ✓" : " ✗"));
    row(t["customer.consent"], consents.length ? consents.join(" · ") : t["customer.none"], "customer-consent");
    const holdings = c.holdings.map((h) => h.name + " ¥" + Number(h.amount_cny).toLocaleString());
    row(t["customer.holdings"], holdings.length ? holdings.join("; ") : t["customer.none"], "customer-holdings");
    const recent = c.interactions.map((e) => e.at.slice(0, 10) + " " + e.summary);
    row(t["customer.interactions"], recent.length ? recent.join(" | ") : t["customer.none"], "customer-interactions");
    const visits = c.visits.map((e) => e.at.slice(0, 10) + " " + e.summary);
    row(t["customer.visits"], visits.length ? visits.join(" | ") : t["customer.none"], "customer-visits");
    body.push(dl);
    $("customer-body").replaceChildren(...body);
  }

  // --- intent, suggestions, alerts ------------------------------------------------------------------------
  function showIntent(ev) {
    const node = $("intent");
    if (ev.question_id) {
      node.textContent = ev.label + " (" + Math.round(ev.score * 100) + "%)";
      node.className = "";
      node.setAttribute("data-question-id", ev.question_id);
    } else {
      node.textContent = t["intent.oos"];
      node.className = "muted";
    }
  }

  async function feedback(card, ev, action) {
    const res = await window.voxdesk.api("/api/v1/assist/suggestions/" + encodeURIComponent(ev.suggestion_id) +
      "/feedback", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ action }) });
    if (!res.ok) return;
    if (action === "dismissed") card.remove();
    else card.classList.add("used");
  }

  function showSuggestion(ev, state) {
    const key = "s:" + ev.suggestion_id;
    if (seen.has(key) || (state && state.dismissed.includes(ev.suggestion_id))) return;
    seen.add(key);
    const box = $("suggestions");
    box.querySelector(".empty")?.remove();
    const card = el("article", { class: "suggestion", "data-testid": "suggestion",
      "data-suggestion-id": ev.suggestion_id, "data-question-id": ev.question_id || "" });
    card.append(el("h3", {}, ev.question_title || ev.script_title));
    if (ev.script_text) {
      card.append(el("div", { class: "meta" }, t["suggestion.script"] + " · " + (ev.script_title || ev.script_id) +
        " · " + t["suggestion.version"] + " " + ev.script_version));
      card.append(el("p", { class: "script", "data-testid": "suggestion-script" }, ev.script_text));
    }
    if (ev.products.length) {
      card.append(el("div", { class: "meta" }, t["suggestion.products"]));
      const list = el("ul", { class: "products" });
      for (const p of ev.products) {
        const name = config.lang === "zh" ? p.name_zh : p.name_en;
        const why = config.lang === "zh" ? p.reason_zh : p.reason_en;
        list.append(el("li", { "data-testid": "suggested-product", "data-product-id": p.product_id },
          name + (p.risk_grade ? " [" + p.risk_grade + "]" : "") + (why ? " — " + why : "")));
      }
      card.append(list);
    }
    card.append(el("p", { class: "reason", "data-testid": "suggestion-reason" }, t["suggestion.reason"] + ": " + ev.reason));
    const used = el("button", { type: "button", "data-testid": "suggestion-used" }, t["suggestion.used"]);
    const dismiss = el("button", { type: "button", class: "dismiss", "data-testid": "suggestion-dismiss" },
      t["suggestion.dismiss"]);
    used.addEventListener("click", () => feedback(card, ev, "used"));
    dismiss.addEventListener("click", () => feedback(card, ev, "dismissed"));
    card.append(el("div", { class: "actions" }, used, dismiss));
    if (state && state.used.includes(ev.suggestion_id)) card.classList.add("used");
    box.prepend(card);
    while (box.querySelectorAll(".suggestion").length > MAX_CARDS) box.querySelector(".suggestion:last-of-type").remove();
    const inserted = performance.timeOrigin + performance.now();
    requestAnimationFrame(() => panel.rendered.push({ suggestion_id: ev.suggestion_id, question_id: ev.question_id,
      call_id: ev.call_id, inserted_ms: inserted, painted_ms: performance.timeOrigin + performance.now() }));
  }

  function showAlert(ev) {
    const key = "a:" + (ev.alert_id || ev.rule_id + ev.start_ms);
    if (seen.has(key)) return;
    seen.add(key);
    const list = $("alerts");
    list.querySelector(".empty")?.remove();
    list.prepend(el("li", { class: "alert " + ev.severity, "data-testid": "alert", "data-rule-id": ev.rule_id },
      el("strong", {}, ev.message),
      ev.quote ? el("span", { class: "quote" }, "“" + ev.quote + "”") : null,
      el("span", { class: "when" }, legName(ev.leg) + " " + clock(ev.start_ms))));
    panel.alerts.push({ rule_id: ev.rule_id, at_ms: performance.timeOrigin + performance.now() });
  }

  function handle(ev, state) {
    panel.events += 1;
    switch (ev.kind) {
      case "speech.partial": showPartial(ev); break;
      case "speech.final": showFinal(ev.leg, ev.text, ev.start_ms); break;
      case "nlu.intent": showIntent(ev); break;
      case "assist.suggestion": showSuggestion(ev, state); break;
      case "assist.alert": showAlert(ev); break;
      case "navigator.handoff": showHandoff(ev); break;
      case "assist.summary": $("summary").textContent = ev.text; $("summary-card").hidden = false; break;
      case "call.ended": setStatus(t["status.ended"], false); stopTimer(); break;
      default: break;
    }
  }

  // --- attach / snapshot ----------------------------------------------------------------------------------
  function startTimer(startedAt) {
    stopTimer();
    panel.startedAt = new Date(startedAt);
    timer = setInterval(() => { $("call-timer").textContent = clock(Date.now() - panel.startedAt.getTime()); }, 1000);
  }
  function stopTimer() { if (timer) clearInterval(timer); timer = null; }

  async function attach(callId) {
    panel.callId = callId;
    reset();
    $("pick").hidden = true;
    setStatus(t["status.on_call"] + " · " + callId, true);
    let res = null;
    // The agent process may not have stored the call yet (a busy machine, a navigator handoff being opened):
    // keep asking for up to ~30 s, 250 ms apart at first, then 1 s, while the panel is still on this call.
    for (let attempt = 0; attempt < 50; attempt++) {
      res = await window.voxdesk.api("/api/v1/assist/calls/" + encodeURIComponent(callId));
      if (res.status !== 404 || panel.callId !== callId) break;
      await new Promise((resolve) => setTimeout(resolve, attempt < 20 ? 250 : 1000));
    }
    if (!res.ok || panel.callId !== callId) return;
    const snap = await res.json();
    startTimer(snap.call.started_at);
    showCustomer(snap.customer);
    for (const line of snap.transcript) showFinal(line.leg, line.text, line.start_ms);
    for (const ev of snap.events) handle(ev, snap);
    if (snap.call.ended_at) { setStatus(t["status.ended"], false); stopTimer(); }
  }

  async function refreshPicker() {
    if (panel.callId && !$("call-status").textContent.startsWith(t["status.ended"])) return;
    const res = await window.voxdesk.api("/api/v1/assist/live");
    if (!res.ok) return;
    const calls = await res.json();
    const list = $("pick-list");
    list.replaceChildren();
    if (!calls.length) list.append(el("li", { class: "muted" }, t["pick.none"]));
    for (const c of calls) {
      const link = el("a", { href: "/assist?call_id=" + encodeURIComponent(c.call.call_id), "data-testid": "pick-call" },
        t["pick.open"]);
      list.append(el("li", {}, (c.customer_name || "—") + " · " + c.call.line + " · " + clock(c.duration_s * 1000) + " ",
        link));
    }
    $("pick").hidden = false;
  }

  function connect() {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const query = config.call_id ? "call_id=" + encodeURIComponent(config.call_id) : "mode=auto";
    const socket = new WebSocket(proto + "://" + location.host + "/api/v1/assist/ws?" + query);
    panel.socket = socket;
    socket.onmessage = (msg) => {
      const data = JSON.parse(msg.data);
      if (data.type === "attached") attach(data.call_id);
      else if (data.type === "event") { if (data.event.call_id === panel.callId) handle(data.event, null); }
      else if (data.type === "waiting") {
        if (!panel.callId) setStatus(config.sip_user ? t["status.waiting"].replace("{sip}", config.sip_user)
          : t["status.no_sip"], false);
        refreshPicker();
      } else if (data.type === "detached") { setStatus(t["status.ended"], false); stopTimer(); }
    };
    socket.onclose = (ev) => {
      if (ev.code === 4401) { window.location = "/login?next=" + encodeURIComponent(location.pathname + location.search); return; }
      if (ev.code === 4403) { setStatus(t["status.offline"], false); return; }
      if (ev.code === 1000 && config.call_id) return;
      setStatus(t["status.offline"], false);
      setTimeout(connect, 2000);
    };
  }

  setInterval(refreshPicker, 3000);
  connect();
})();
