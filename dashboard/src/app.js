/*
 * Dashboard shell. Before htmx polls the realtime card this:
 *   1. takes an API key from the URL fragment (#key=…) into sessionStorage and out of the address
 *      bar and history (a fragment never reaches a server or a Referer header);
 *   2. resolves the site: ?site=DOMAIN, else the first of GET /api/v1/sites/public;
 *   3. points #realtime at /api/realtime/card?site_id=DOMAIN and hands it to htmx.
 * The key rides on every htmx request as "Authorization: Bearer KEY" (htmx:configRequest).
 *
 * A strict CSP (script-src 'self') applies: no inline scripts, no eval, and server text goes into
 * the page through textContent only, never innerHTML.
 *
 * Charts: a card fragment may hold <canvas data-chart='{"type":…,"data":…,"options":…}'> inside a
 * sized box (e.g. <div class="relative h-40">); it is drawn after each swap and destroyed before the
 * next one. JSON cannot carry functions, so no callbacks in chart options.
 */
(() => {
  "use strict";

  const KEY_STORAGE = "liveinsight.key";
  const SITES_URL = "/api/v1/sites/public";
  const CARD_URL = "/api/realtime/card";

  const card = document.getElementById("realtime");
  const siteName = document.getElementById("site-name");
  const status = document.getElementById("status");

  function takeKey() {
    const fragment = new URLSearchParams(location.hash.slice(1));
    const fromUrl = fragment.get("key");
    if (fromUrl) {
      fragment.delete("key");
      const rest = fragment.toString();
      history.replaceState(history.state, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
      try {
        sessionStorage.setItem(KEY_STORAGE, fromUrl);
      } catch {
        // Storage blocked: the key still works for this page view.
      }
      return fromUrl;
    }
    try {
      return sessionStorage.getItem(KEY_STORAGE);
    } catch {
      return null;
    }
  }

  async function resolveSite(headers) {
    const wanted = new URLSearchParams(location.search).get("site");
    if (wanted) return wanted;
    const response = await fetch(SITES_URL, { headers, credentials: "same-origin" });
    if (!response.ok) throw new Error(`GET ${SITES_URL} answered ${response.status}`);
    const body = await response.json();
    const first = body && Array.isArray(body.sites) ? body.sites[0] : null;
    return first && typeof first.domain === "string" ? first.domain : null;
  }

  function setStatus(text, tone) {
    status.textContent = text;
    status.className = `min-h-5 text-sm ${tone === "warn" ? "text-amber-700" : "text-gray-500"}`;
  }

  function showMessage(...parts) {
    const p = document.createElement("p");
    p.className = "text-sm text-gray-600";
    p.append(...parts);
    card.replaceChildren(p);
  }

  function code(text) {
    const el = document.createElement("code");
    el.className = "rounded bg-gray-100 px-1.5 py-0.5 font-mono text-[0.8125rem] text-gray-800";
    el.textContent = text;
    return el;
  }

  function drawCharts(root) {
    if (!window.Chart || !root.querySelectorAll) return;
    for (const canvas of root.querySelectorAll("canvas[data-chart]")) {
      try {
        new window.Chart(canvas, JSON.parse(canvas.dataset.chart));
      } catch (error) {
        console.error("chart", error);
      }
    }
  }

  function destroyCharts(root) {
    if (!window.Chart || !root.querySelectorAll) return;
    for (const canvas of root.querySelectorAll("canvas[data-chart]")) {
      const chart = window.Chart.getChart(canvas);
      if (chart) chart.destroy();
    }
  }

  function configureCharts() {
    const Chart = window.Chart;
    if (!Chart) return;
    // The card is replaced every 2 s: animating each redraw would make it flicker.
    Chart.defaults.animation = false;
    Chart.defaults.maintainAspectRatio = false;
    Chart.defaults.color = "#6b7280"; // gray-500
    Chart.defaults.scale.grid.color = "#f3f4f6"; // gray-100
    Chart.defaults.elements.bar.backgroundColor = "#818cf8"; // indigo-400
    Chart.defaults.elements.bar.borderRadius = 2;
    Chart.defaults.elements.line.borderColor = "#4f46e5"; // indigo-600
    Chart.defaults.elements.line.backgroundColor = "rgba(79, 70, 229, 0.08)";
    Chart.defaults.elements.line.tension = 0.3;
    Chart.defaults.elements.point.radius = 0;
    Chart.defaults.font.family =
      'ui-sans-serif, system-ui, sans-serif, "Apple Color Emoji", "Segoe UI Emoji"';
    Chart.defaults.plugins.legend.display = false;
  }

  function listen(key) {
    document.addEventListener("htmx:configRequest", (event) => {
      if (key) event.detail.headers.Authorization = `Bearer ${key}`;
    });
    // Polling a hidden tab costs reads and Lambda calls for nobody; the next tick after the tab
    // is shown again refreshes the card.
    document.addEventListener("htmx:beforeRequest", (event) => {
      if (document.hidden && event.detail.elt === card) event.preventDefault();
    });
    document.addEventListener("htmx:afterRequest", (event) => {
      if (event.detail.elt !== card) return;
      if (event.detail.successful) {
        setStatus("");
        return;
      }
      const xhr = event.detail.xhr;
      if (xhr && (xhr.status === 401 || xhr.status === 403)) {
        setStatus("This site's stats need a key: open the dashboard with #key=YOUR_KEY in the URL.", "warn");
      } else if (xhr && xhr.status) {
        setStatus(`The server answered ${xhr.status}; retrying every 2 s.`, "warn");
      } else {
        setStatus("Cannot reach the server; retrying every 2 s.", "warn");
      }
    });
    document.addEventListener("htmx:beforeSwap", (event) => destroyCharts(event.detail.target));
    document.addEventListener("htmx:afterSwap", (event) => drawCharts(event.detail.target));
  }

  function start(site) {
    if (!site) {
      showMessage("No site yet — run ", code("liveinsight site add DOMAIN"));
      return;
    }
    siteName.textContent = site;
    document.title = `${site} · LiveInsight`;
    card.setAttribute("hx-get", `${CARD_URL}?site_id=${encodeURIComponent(site)}`);
    card.removeAttribute("hx-disable");
    window.htmx.process(card);
  }

  // htmx initialises on DOMContentLoaded (it reads its <meta> config then); this deferred script
  // runs just before that, so the card is handed over only once htmx is ready.
  const domReady = new Promise((resolve) => {
    if (document.readyState === "complete") resolve();
    else document.addEventListener("DOMContentLoaded", () => resolve(), { once: true });
  });

  const key = takeKey();
  configureCharts();
  listen(key);
  const site = resolveSite(key ? { Authorization: `Bearer ${key}` } : {});
  Promise.all([site, domReady]).then(
    ([domain]) => start(domain),
    (error) => {
      console.error(error);
      showMessage("Could not load the list of sites. Is the API running? Reload to retry.");
    },
  );
})();
