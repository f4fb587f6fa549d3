// Campaign pages: create a campaign, move it (start/pause/resume/stop), upload a dialing list, refresh the live
// figures. Every request goes to the campaign API with the page's CSRF token (voxdesk.api, loaded after this
// script: hence DOMContentLoaded).
document.addEventListener("DOMContentLoaded", function () {
  "use strict";
  const config = JSON.parse(document.getElementById("page-config").textContent);
  const t = config.t;
  const vx = window.voxdesk;

  function hours(text) {
    return text.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  }

  async function problem(res) {
    try {
      const body = await res.json();
      return body.message || body.detail || res.statusText;
    } catch (e) {
      return res.statusText;
    }
  }

  const form = document.getElementById("new-campaign");
  if (form) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const f = new FormData(form);
      const weekday = hours(f.get("weekday_hours") || "");
      const weekend = hours(f.get("weekend_hours") || "");
      const lang = f.get("lang");
      const dialog = { callback_number: f.get("callback_number") || null, voicemail: f.get("voicemail") };
      for (const key of ["product_id", "script_id"]) { if (f.get(key)) dialog[key] = f.get(key); }
      if (f.get("product_name")) dialog["product_name_" + lang] = f.get("product_name");
      const body = {
        campaign_id: f.get("campaign_id"), name: f.get("name"), kind: f.get("kind"), lang: lang,
        max_channels: Number(f.get("max_channels")), max_attempts: Number(f.get("max_attempts")),
        calendar: { weekdays: { mon: weekday, tue: weekday, wed: weekday, thu: weekday, fri: weekday,
                                sat: weekend, sun: weekend } },
        dialog: dialog,
      };
      const res = await vx.api("/api/v1/campaigns", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      if (res.ok) { window.location = "/campaigns/" + encodeURIComponent(body.campaign_id); return; }
      document.getElementById("new-error").textContent = t["camp.error"] + ": " + (await problem(res));
    });
  }

  if (!config.campaign_id) return;
  const base = "/api/v1/campaigns/" + encodeURIComponent(config.campaign_id);

  for (const button of document.querySelectorAll(".status-move")) {
    button.addEventListener("click", async () => {
      const res = await vx.api(base + "/status", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ status: button.dataset.move }),
      });
      if (res.ok) { window.location.reload(); return; }
      document.getElementById("move-error").textContent = t["camp.error"] + ": " + (await problem(res));
    });
  }

  const upload = document.getElementById("upload-list");
  upload.addEventListener("submit", async (event) => {
    event.preventDefault();
    const out = document.getElementById("upload-result");
    const res = await vx.api(base + "/contacts/csv", { method: "POST", body: new FormData(upload) });
    if (res.ok) {
      const body = await res.json();
      out.textContent = t["camp.added"].replace("{n}", String(body.contacts));
      refresh();
      return;
    }
    out.textContent = t["camp.error"] + ": " + (await problem(res));
  });

  function pct(value) { return value === null || value === undefined ? "—" : (100 * value).toFixed(1) + "%"; }

  async function refresh() {
    const res = await vx.api(base + "/report");
    if (!res.ok) return;
    const r = (await res.json()).report;
    const values = {
      progress_pct: Math.round(100 * r.progress) + "%", done: r.done, contacts: r.contacts, dialed: r.dialed,
      reached: r.reached, converted: r.converted, conversion_pct: pct(r.conversion), opt_outs: r.opt_outs,
      live: r.live, abandon_pct: pct(r.abandon_rate_today),
    };
    for (const [field, value] of Object.entries(values)) {
      const node = document.querySelector('[data-field="' + field + '"]');
      if (node) node.textContent = String(value);
    }
  }

  setInterval(refresh, 3000);
});
