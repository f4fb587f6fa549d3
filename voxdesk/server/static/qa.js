// QA call page: the recording plays in sync with the transcript (click a line or a finding to seek; the line being
// played is highlighted), reviewers confirm/reject findings, add missed ones and complete the review through
// /api/qa (fetch with the page's CSRF token, see voxdesk.js).
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("page-config").textContent);
  const t = config.t;
  const base = "/api/qa/calls/" + encodeURIComponent(config.call_id);
  const audio = document.getElementById("qa-audio");
  const lines = [...document.querySelectorAll("#qa-transcript li.line")];
  const view = { playing: null, seeks: 0 };
  window.voxdeskQa = view;

  const el = (...args) => window.voxdesk.el(...args);  // voxdesk.js loads after this script
  const api = (path, body) => window.voxdesk.api(base + path, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });

  function seek(ms) {
    view.seeks += 1;
    audio.currentTime = Math.max(0, ms / 1000);
    highlight();
    const played = audio.play();
    if (played && played.catch) played.catch(() => {});  // autoplay refused: the position is still set
  }

  // The line being played: of the lines spoken at ``ms``, the one that started last (the parties may overlap).
  function lineAt(ms) {
    let found = null;
    for (const li of lines) {
      const start = Number(li.dataset.startMs);
      if (start <= ms && ms <= Number(li.dataset.endMs) && (!found || start >= Number(found.dataset.startMs))) {
        found = li;
      }
    }
    return found;
  }

  function highlight() {
    const current = lineAt(audio.currentTime * 1000);
    if (current === view.playing) return;
    if (view.playing) view.playing.classList.remove("playing");
    view.playing = current;
    if (current) {
      current.classList.add("playing");
      const box = current.parentElement;
      if (current.offsetTop < box.scrollTop || current.offsetTop > box.scrollTop + box.clientHeight - 40) {
        box.scrollTop = current.offsetTop - box.offsetTop - 20;
      }
    }
  }

  for (const li of lines) {
    li.addEventListener("click", () => seek(Number(li.dataset.startMs)));
    li.addEventListener("keydown", (ev) => { if (ev.key === "Enter") seek(Number(li.dataset.startMs)); });
  }
  audio.addEventListener("timeupdate", highlight);
  audio.addEventListener("seeked", highlight);
  audio.addEventListener("error", () => { document.getElementById("qa-audio-error").hidden = false; });

  function renderScore(score) {
    document.getElementById("qa-score").textContent = score.score;
    document.getElementById("qa-score-verdict").textContent =
      score.auto_failed ? t["qa.auto_failed"] : score.passed ? t["qa.passed"] : t["qa.failed"];
    const rows = score.items.map((i) => el("tr", { class: i.failed ? "failed" : "", "data-item-id": i.item_id },
      el("td", {}, config.lang === "zh" ? i.label_zh : i.label_en), el("td", { class: "num" }, i.weight),
      el("td", { class: "num" }, i.findings), el("td", { class: "num" }, i.points)));
    document.getElementById("qa-score-rows").replaceChildren(...rows);
  }

  function markLines(findingId, decision) {
    for (const badge of document.querySelectorAll('#qa-transcript .badge[data-finding-id="' + findingId + '"]')) {
      badge.classList.toggle("rejected", decision === "rejected");
    }
  }

  for (const li of document.querySelectorAll("#qa-findings li.finding")) {
    li.querySelector("a.seek").addEventListener("click", (ev) => { ev.preventDefault(); seek(Number(li.dataset.startMs)); });
    for (const button of li.querySelectorAll("button[data-decision]")) {
      button.addEventListener("click", async () => {
        const decision = button.dataset.decision;
        const res = await api("/findings/" + li.dataset.findingId + "/decision", { decision });
        if (!res.ok) { li.querySelector(".decision").textContent = t["qa.error"] + " (" + res.status + ")"; return; }
        const data = await res.json();
        li.classList.remove("undecided", "confirmed", "rejected");
        li.classList.add(data.finding.decision);
        li.querySelector(".decision").textContent = t["qa." + data.finding.decision];
        markLines(li.dataset.findingId, data.finding.decision);
        renderScore(data.score);
      });
    }
  }

  const addForm = document.getElementById("qa-add-form");
  if (addForm) {
    document.getElementById("qa-use-time").addEventListener("click", () => {
      const now = Math.round(audio.currentTime * 10) / 10;
      addForm.elements.start_s.value = now;
      addForm.elements.end_s.value = Math.max(now, Number(addForm.elements.end_s.value) || 0);
    });
    addForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = addForm.elements;
      const startMs = Math.round(Number(f.start_s.value) * 1000);
      const res = await api("/findings", {
        rule_id: f.rule_id.value, severity: f.severity.value, channel: f.channel.value || null,
        start_ms: startMs, end_ms: Math.max(startMs, Math.round(Number(f.end_s.value) * 1000)),
        evidence: f.evidence.value,
      });
      if (res.ok) window.location.reload();
      else addForm.querySelector("h2").textContent = t["qa.add_finding"] + " — " + t["qa.error"] + " (" + res.status + ")";
    });
  }

  const doneForm = document.getElementById("qa-complete-form");
  if (doneForm) {
    doneForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = doneForm.elements;
      const body = { note: f.note.value || null };
      if (f.score.value !== "") body.score = Number(f.score.value);
      const res = await api("/review", body);
      const status = document.getElementById("qa-complete-status");
      if (!res.ok) { status.textContent = t["qa.error"] + " (" + res.status + ")"; return; }
      const call = await res.json();
      status.textContent = t["qa.review_done"];
      document.getElementById("qa-final-score").textContent = call.final_score;
      const badge = document.getElementById("qa-review-status");
      badge.textContent = t["qa.reviewed"];
      badge.classList.add("live");
    });
  }
})();
