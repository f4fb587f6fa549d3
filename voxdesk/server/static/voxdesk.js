// Shared page helpers: fetch with the CSRF header for cookie-authenticated API calls; safe DOM building.
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
    // A DOM element with attributes ("class", "data-*", or properties) and children (nodes or text; never HTML).
    el(tag, attrs, ...children) {
      const node = document.createElement(tag);
      for (const [key, value] of Object.entries(attrs || {})) {
        if (value === null || value === undefined) continue;
        if (key === "class") node.className = value;
        else if (key.startsWith("data-")) node.setAttribute(key, value);
        else node[key] = value;
      }
      for (const child of children) {
        if (child === null || child === undefined) continue;
        node.append(child instanceof Node ? child : document.createTextNode(String(child)));
      }
      return node;
    },
  };
})();
