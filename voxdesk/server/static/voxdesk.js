// Shared page helpers: fetch with the CSRF header for cookie-authenticated API calls.
(function () {
  "use strict";
  const meta = document.querySelector('meta[name="csrf-token"]');
  window.voxdesk = {
    csrf: meta ? meta.content : null,
    async api(path, options) {
      const opts = Object.assign({ credentials: "same-origin", headers: {} }, options || {});
      if (this.csrf && opts.method && opts.method !== "GET") { opts.headers["X-CSRF-Token"] = this.csrf; }
      const res = await fetch(path, opts);
      if (res.status === 401) { window.location = "/login?next=" + encodeURIComponent(window.location.pathname); }
      return res;
    },
  };
})();
