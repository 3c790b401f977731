/*
 * The dashboard shell: one static page whose views are picked by the URL, whose cards are HTML
 * fragments the query API renders (one route per card) and htmx swaps in.
 *
 *   /                                   the sites list, with current visitors per site
 *   /?view=login                        sign-in (the admin password)
 *   /?view=settings[&site=D]            sites, goals, read keys, shared links (admin JSON API)
 *   /?site=D[&period=…][&date=…][&from=…&to=…][&filters=…][&metric=…][&compare=…]
 *                                       a site's dashboard; period=realtime (the default) is the
 *                                       realtime view, every other period the stats cards;
 *                                       compare=previous_period|year_over_year adds the other
 *                                       range's line to the graph
 *   …&auth=TOKEN                        the same, read-only, through a shared link
 *
 * The URL is the state: every change is a pushState, and popstate re-renders from the URL, so a
 * dashboard can be shared and the back button works.
 *
 * Credentials: a read key in the fragment (#key=…) is moved into sessionStorage (scoped to the
 * ?site= it came with) and out of the address bar, then rides on card requests as
 * "Authorization: Bearer KEY". A shared link's token stays in the URL (as Plausible's) and goes
 * on every card request as ?auth=. The admin's session is an HttpOnly cookie; changes send the
 * CSRF token from /api/auth/me in X-CSRF-Token, and never a Bearer key (the admin API refuses one).
 *
 * A strict CSP applies (script-src 'self', style-src 'self'): no inline scripts or handlers, no
 * style attributes, no eval; text from the server or the URL goes into the page through
 * textContent only. Card HTML comes from the server's autoescaping templates.
 *
 * Charts: a fragment may hold <canvas data-chart='{"type":…,"data":…,"options":…}'> inside a sized
 * box; it is drawn after each swap (Chart.js is loaded on first use) and destroyed before the next.
 * A dataset may carry `dates` (a comparison's own dates, one per point): the tooltip names them.
 *
 * Filters: the v1 syntax (`visit:source==Google|Bing;event:page!=*blog*`) in ?filters=, one filter
 * per property. A row of a card adds (or replaces) its property's filter; the filter dialog adds or
 * edits one with an operator: "contains X" is the wildcard `*X*`, "does not contain" `!=*X*`.
 *
 * Saved segments (v2 filters, /api/stats/segments) are applied as v1 filters when the syntax says
 * them exactly (see segmentToV1); the admin saves the current filters as one (v1ToSegment).
 *
 * The funnel and journey cards are the event archive's JSON (/api/stats/funnel, /journeys), drawn
 * here as text nodes rather than server fragments: the routes are JSON ones, shared with the API.
 */
(() => {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const KEYS_STORAGE = "liveinsight.keys";
  // Not a credential (the session is an HttpOnly cookie): a hint that asking /api/auth/me is
  // worth it, so that visitors who never signed in see no 401 in their console.
  const SIGNED_IN_HINT = "liveinsight.signed-in";
  const DEFAULT_PERIOD = "realtime";
  const DEFAULT_METRIC = "visitors";
  const LIVE_POLL_MS = 10000;
  // The realtime card: a refresh costs ~$1.9 per million (CloudFront, the query Lambda, DynamoDB
  // reads; decision 0026). Someone using the page sees a new visitor within ~3 s even on a busy
  // machine (the event takes ~1.3 s to the API, then waits for the next poll: at 2 s the p95 was
  // 3.16 s under load, the goal 3 s); a tab left open on a wall polls at Umami's pace.
  const REALTIME_WATCHED_MS = 1500;
  const REALTIME_UNWATCHED_MS = 10000;
  const WATCHED_FOR_MS = 120000; // input, focus or the tab shown within this: someone is there
  const STALE_SECONDS = 30;

  const PERIODS = {
    realtime: "Realtime",
    day: "Today",
    yesterday: "Yesterday",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    month: "This month",
    "6mo": "Last 6 months",
    "12mo": "Last 12 months",
    year: "This year",
    custom: "Custom range",
  };
  const METRICS = {
    visitors: "Unique visitors",
    visits: "Total visits",
    pageviews: "Total pageviews",
    views_per_visit: "Views per visit",
    bounce_rate: "Bounce rate",
    visit_duration: "Visit duration",
  };
  const COMPARISONS = ["previous_period", "year_over_year"];
  const PROPERTIES = {
    source: "Source",
    referrer: "Referrer",
    utm_source: "UTM source",
    utm_medium: "UTM medium",
    utm_campaign: "UTM campaign",
    utm_content: "UTM content",
    utm_term: "UTM term",
    page: "Page",
    entry_page: "Entry page",
    exit_page: "Exit page",
    hostname: "Hostname",
    channel: "Channel",
    country: "Country",
    region: "Region",
    city: "City",
    browser: "Browser",
    browser_version: "Browser version",
    os: "Operating system",
    os_version: "OS version",
    device: "Screen size",
    goal: "Goal",
    name: "Event",
  };

  // ---- state: the URL ------------------------------------------------------------------------

  let state = readState();
  let session = null; // {csrf} once /api/auth/me says the admin is signed in
  const keys = loadKeys();
  const tabs = {}; // card name → the property its selected tab shows
  let withImported = true; // the metric row and graph add imported data (its note switches it)
  let chosenPropKey = null; // the custom prop key shown under the Properties tab
  const siteToday = new Map(); // site → its "today" (YYYY-MM-DD), in its own time zone
  let clockSkew = 0; // this browser's clock minus the server's, when they disagree by > 2 s

  function readState() {
    const q = new URLSearchParams(location.search);
    const site = q.get("site");
    const auth = q.get("auth");
    let view = q.get("view") || (site ? "site" : "sites");
    if (!["sites", "site", "login", "settings"].includes(view)) view = site ? "site" : "sites";
    if (auth && site) view = "site"; // a shared link opens its dashboard and nothing else
    return {
      view,
      site,
      auth,
      period: q.get("period") || DEFAULT_PERIOD,
      date: q.get("date"),
      from: q.get("from"),
      to: q.get("to"),
      filters: q.get("filters") || "",
      metric: q.get("metric") in METRICS ? q.get("metric") : DEFAULT_METRIC,
      compare: COMPARISONS.includes(q.get("compare")) ? q.get("compare") : "",
    };
  }

  function urlFor(s) {
    const q = new URLSearchParams();
    if (s.view === "login" || s.view === "settings") q.set("view", s.view);
    if (s.site) q.set("site", s.site);
    if (s.view === "site") {
      if (s.period !== DEFAULT_PERIOD) q.set("period", s.period);
      if (s.period === "custom") {
        if (s.from) q.set("from", s.from);
        if (s.to) q.set("to", s.to);
      } else if (s.date) {
        q.set("date", s.date);
      }
      if (s.filters) q.set("filters", s.filters);
      if (s.metric !== DEFAULT_METRIC) q.set("metric", s.metric);
      if (s.compare) q.set("compare", s.compare);
    }
    if (s.auth) q.set("auth", s.auth);
    const query = q.toString();
    return `/${query ? `?${query}` : ""}`;
  }

  function navigate(changes, { replace = false } = {}) {
    const next = { ...state, ...changes };
    const url = urlFor(next);
    if (url !== location.pathname + location.search) {
      history[replace ? "replaceState" : "pushState"](null, "", url);
    }
    apply(readState());
  }

  /** Everything that changes what the stats cards show (not the graphed metric or comparison). */
  function dataKey(s) {
    return [s.site, s.auth, s.period, s.date, s.from, s.to, s.filters].join("\n");
  }

  // ---- credentials and requests ----------------------------------------------------------------

  function loadKeys() {
    try {
      const stored = JSON.parse(sessionStorage.getItem(KEYS_STORAGE) || "{}");
      return stored && typeof stored === "object" ? stored : {};
    } catch {
      return {};
    }
  }

  /** #key=… → sessionStorage, scoped to the ?site= it came with; out of the address bar. */
  function takeKey() {
    const fragment = new URLSearchParams(location.hash.slice(1));
    const key = fragment.get("key");
    if (!key) return;
    fragment.delete("key");
    const rest = fragment.toString();
    history.replaceState(history.state, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
    keys[new URLSearchParams(location.search).get("site") || "*"] = key;
    try {
      sessionStorage.setItem(KEYS_STORAGE, JSON.stringify(keys));
    } catch {
      // Storage blocked: the key still works for this page view.
    }
  }

  function bearer(s = state) {
    if (s.auth || !s.site) return null; // a shared link's token is the credential then
    return keys[s.site] || keys["*"] || null;
  }

  function readHeaders(s = state) {
    const key = bearer(s);
    return key ? { Authorization: `Bearer ${key}` } : {};
  }

  /** site_id (+ the shared link's token): what every read of the site needs. */
  function siteParams(s = state) {
    const q = new URLSearchParams({ site_id: s.site });
    if (s.auth) q.set("auth", s.auth);
    return q;
  }

  /** The stats parameters of /api/stats and the cards, for the current period and filters. */
  function statsParams(s = state) {
    const q = siteParams(s);
    q.set("period", s.period);
    if (s.period === "custom") {
      q.set("from", s.from || "");
      q.set("to", s.to || "");
    } else if (s.date) {
      q.set("date", s.date);
    }
    if (s.filters) q.set("filters", s.filters);
    return q;
  }

  async function errorText(response) {
    try {
      const body = await response.json();
      if (body && typeof body.error === "string") return body.error;
      if (body && typeof body.detail === "string") return body.detail;
    } catch {
      // not JSON
    }
    return `The server answered ${response.status}.`;
  }

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  /** The admin JSON API: the session cookie, the CSRF token on changes, never a Bearer key. */
  let adminEdits = 0; // changes sent so far (see loadSiteSettings)

  async function admin(method, path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && session) headers["X-CSRF-Token"] = session.csrf;
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
    if (method !== "GET") adminEdits++; // a load that was reading meanwhile may be older
    if (!response.ok) {
      if (response.status === 401) setSession(null);
      throw new ApiError(response.status, await errorText(response));
    }
    return response.status === 204 ? null : response.json(); // a segment's DELETE has no body
  }

  function hint(on) {
    try {
      if (on) localStorage.setItem(SIGNED_IN_HINT, "1");
      else localStorage.removeItem(SIGNED_IN_HINT);
    } catch {
      // storage blocked: /api/auth/me is then asked only on the settings view
    }
  }

  function hinted() {
    try {
      return localStorage.getItem(SIGNED_IN_HINT) === "1";
    } catch {
      return false;
    }
  }

  async function fetchSession() {
    try {
      const response = await fetch("/api/auth/me", { credentials: "same-origin" });
      if (!response.ok) return null;
      const body = await response.json();
      return body && body.signed_in ? { csrf: body.csrf_token } : null;
    } catch {
      return null;
    }
  }

  /** Fetch a download with the page's credentials, then save the blob under the server's name. */
  async function download(url, button) {
    if (button) button.disabled = true;
    try {
      const response = await fetch(url, { headers: readHeaders(), credentials: "same-origin" });
      if (!response.ok) {
        setStatus(`Download failed: ${await errorText(response)}`, "warn");
        return;
      }
      const blob = await response.blob();
      const disposition = response.headers.get("content-disposition") || "";
      const match = /filename="?([^";]+)"?/.exec(disposition);
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = match ? match[1] : "liveinsight-export";
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    } catch {
      setStatus("Download failed: cannot reach the server.", "warn");
    } finally {
      if (button) button.disabled = false;
    }
  }

  // ---- page-wide helpers -----------------------------------------------------------------------

  let statusFrom = null;
  let statusesSet = 0;

  function setStatus(text, tone, source = null) {
    statusesSet++;
    const status = $("status");
    status.textContent = text;
    status.className = `mb-4 text-sm empty:mb-0 ${tone === "warn" ? "text-amber-700" : "text-gray-500"}`;
    statusFrom = text ? source : null;
  }

  function clearStatusFrom(source) {
    if (statusFrom === source) setStatus("");
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function message(text, ...extra) {
    const p = el("p", "py-6 text-center text-sm text-gray-500", text);
    p.append(...extra);
    return p;
  }

  function navLink(href, text) {
    const a = el("a", "font-medium text-indigo-700 underline", text);
    a.href = href;
    a.dataset.nav = "";
    return a;
  }

  function formatDay(iso) {
    const [y, m, d] = iso.split("-").map(Number);
    return new Date(Date.UTC(y, m - 1, d)).toLocaleDateString("en-GB", {
      day: "numeric",
      month: "short",
      year: "numeric",
      timeZone: "UTC",
    });
  }

  function shiftDay(iso, days) {
    const [y, m, d] = iso.split("-").map(Number);
    return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
  }

  // ---- htmx: loading cards ---------------------------------------------------------------------

  /** Point a card at a URL and (re)load it; a changed URL re-initialises the element in htmx. */
  function load(element, url) {
    if (element.getAttribute("hx-get") !== url) {
      element.setAttribute("hx-get", url);
      window.htmx.process(element);
    }
    window.htmx.trigger(element, "refresh");
  }

  function isPolled(element) {
    return element.hasAttribute("data-poll");
  }

  function cardError(xhr) {
    const status = xhr ? xhr.status : 0;
    if (status === 401 || status === 403) {
      if (state.auth) return message("This shared link is not valid any more.");
      return message(
        "This site's stats need a read key (open the dashboard with #key=YOUR_KEY) or ",
        navLink("/?view=login", "signing in"),
        ".",
      );
    }
    if (!status) return message("Cannot reach the server. It is retried on the next change.");
    let text = `The server answered ${status}.`;
    try {
      const body = JSON.parse(xhr.responseText);
      if (body && typeof body.error === "string") text = body.error;
      else if (status === 404) text = "This card is not available on this server yet.";
    } catch {
      // keep the generic text
    }
    const p = message(text);
    p.dataset.error = String(status);
    return p;
  }

  function listenToHtmx() {
    document.addEventListener("htmx:configRequest", (event) => {
      const key = bearer();
      if (key) event.detail.headers.Authorization = `Bearer ${key}`;
    });
    document.addEventListener("htmx:beforeRequest", (event) => {
      const element = event.detail.elt;
      // Polling a hidden tab or a view nobody looks at costs reads and Lambda calls for nobody;
      // the refresh on becoming visible again catches up at once.
      if (isPolled(element) && (document.hidden || element.closest("[hidden]"))) {
        event.preventDefault();
        return;
      }
      if (!isPolled(element)) element.setAttribute("aria-busy", "true");
    });
    document.addEventListener("htmx:afterRequest", (event) => {
      const { elt: element, xhr, successful } = event.detail;
      if (stale(event.detail)) return;
      element.removeAttribute("aria-busy");
      if (element.id === "realtime" && xhr) {
        const served = Date.parse(xhr.getResponseHeader("Date") || "");
        if (!Number.isNaN(served)) {
          const skew = Date.now() - served;
          clockSkew = Math.abs(skew) > 2000 ? skew : 0;
        }
      }
      if (successful) clearStatusFrom(element.id || "card");
    });
    document.addEventListener("htmx:responseError", (event) => showCardError(event));
    document.addEventListener("htmx:sendError", (event) => showCardError(event));
    document.addEventListener("htmx:beforeSwap", (event) => {
      if (stale(event.detail)) {
        event.detail.shouldSwap = false;
        return;
      }
      destroyCharts(event.detail.target);
    });
    document.addEventListener("htmx:afterSwap", (event) => afterSwap(event.detail.target));
  }

  /**
   * An answer for a URL the element no longer shows (a tab or period changed while it was on its
   * way). Re-pointing an element re-initialises it in htmx, which forgets the request in flight,
   * so hx-sync cannot drop it: this does.
   */
  function stale(detail) {
    const asked = detail.pathInfo && detail.pathInfo.requestPath;
    return Boolean(asked) && detail.elt.getAttribute("hx-get") !== asked;
  }

  function showCardError(event) {
    if (stale(event.detail)) return;
    const { elt: element, xhr } = event.detail;
    element.removeAttribute("aria-busy");
    const shown = cardError(xhr);
    // A polled card keeps its last numbers and says what went wrong above them.
    if (isPolled(element) && element.dataset.loaded) {
      setStatus(`${shown.textContent} Showing the last numbers received.`, "warn", element.id);
      return;
    }
    destroyCharts(element);
    element.replaceChildren(shown);
  }

  function afterSwap(target) {
    target.dataset.loaded = "1";
    drawCharts(target);
    if (target.id === "realtime") {
      const current = target.querySelector("[data-testid=current-visitors]");
      if (current) setLive(current.textContent.trim());
      tickAsOf();
    } else if (target.id === "metrics") {
      const group = target.querySelector("[aria-label^='Metrics for']");
      const match = group && /(\d{4}-\d{2}-\d{2}) to (\d{4}-\d{2}-\d{2})/.exec(group.getAttribute("aria-label"));
      if (match) {
        const [, first, last] = match;
        $("range-text").textContent = first === last ? formatDay(first) : `${formatDay(first)} – ${formatDay(last)}`;
        if (state.period === "day" && !state.date) siteToday.set(state.site, first);
        rememberRange(first, last);
      }
      markTiles();
    } else if (target.matches("[data-card=goals] [data-panel]") && tabs.goals === "props") {
      const keysShown = [...target.querySelectorAll("button[data-prop-key]")].map((b) => b.dataset.propKey);
      if (chosenPropKey && !keysShown.includes(chosenPropKey)) chosenPropKey = null;
      if (!chosenPropKey && keysShown.length) chosenPropKey = keysShown[0];
      loadPropValues();
    }
  }

  // ---- charts ------------------------------------------------------------------------------------

  // Chart.js (200 kB) is fetched only when a view has a chart: the realtime view and the sites
  // list never need it, and the period view asks for it beside its first card requests.
  let chartLoader = null;

  function chartLibrary() {
    if (window.Chart) return Promise.resolve(window.Chart);
    if (!chartLoader) {
      chartLoader = new Promise((resolve, reject) => {
        const script = document.createElement("script");
        script.src = "/vendor/chart.umd.min.js";
        script.addEventListener("load", () => {
          configureCharts();
          resolve(window.Chart);
        });
        script.addEventListener("error", () => {
          chartLoader = null;
          reject(new Error("Chart.js did not load"));
        });
        document.head.append(script);
      });
    }
    return chartLoader;
  }

  function drawCharts(root) {
    if (!root.querySelectorAll || !root.querySelector("canvas[data-chart]")) return;
    chartLibrary().then(
      (Chart) => {
        for (const canvas of root.querySelectorAll("canvas[data-chart]")) {
          if (!canvas.isConnected || Chart.getChart(canvas)) continue;
          try {
            new Chart(canvas, withDates(JSON.parse(canvas.dataset.chart)));
          } catch (error) {
            console.error("chart", error);
          }
        }
      },
      (error) => console.error(error),
    );
  }

  /** A dataset with its own `dates` (a comparison's) names each point's date in the tooltip: the
   * axis shows the current period's. Functions cannot come in the JSON (no eval under the CSP). */
  function withDates(config) {
    const datasets = (config.data && config.data.datasets) || [];
    if (!datasets.some((dataset) => Array.isArray(dataset.dates))) return config;
    const options = (config.options = config.options || {});
    const plugins = (options.plugins = options.plugins || {});
    const tooltip = (plugins.tooltip = plugins.tooltip || {});
    tooltip.callbacks = {
      ...tooltip.callbacks,
      label(item) {
        const dates = item.dataset.dates;
        const when = dates && dates[item.dataIndex] ? ` (${dates[item.dataIndex]})` : "";
        return `${item.dataset.label}${when}: ${item.formattedValue}`;
      },
    };
    return config;
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
    Chart.defaults.animation = false; // numbers, not motion; and no redraw flicker on refresh
    Chart.defaults.maintainAspectRatio = false;
    Chart.defaults.color = "#6b7280"; // gray-500
    Chart.defaults.scale.grid.color = "#f3f4f6"; // gray-100
    Chart.defaults.elements.bar.backgroundColor = "#818cf8"; // indigo-400
    Chart.defaults.elements.bar.borderRadius = 2;
    Chart.defaults.elements.line.borderColor = "#4f46e5"; // indigo-600
    Chart.defaults.elements.line.backgroundColor = "rgba(79, 70, 229, 0.08)";
    Chart.defaults.elements.line.tension = 0; // a curve would invent values between points
    Chart.defaults.elements.point.radius = 0;
    Chart.defaults.elements.point.hoverRadius = 4;
    Chart.defaults.interaction.mode = "index";
    Chart.defaults.interaction.intersect = false;
    Chart.defaults.font.family =
      'ui-sans-serif, system-ui, sans-serif, "Apple Color Emoji", "Segoe UI Emoji"';
    Chart.defaults.plugins.legend.display = false;
    Chart.defaults.plugins.colors.enabled = false; // its palette would override the colours above
  }

  // ---- views -------------------------------------------------------------------------------------

  const HEADINGS = { sites: "sites-title", site: "site-title", login: "login-title", settings: "settings-title" };

  function apply(next, { initial = false } = {}) {
    const previous = initial ? null : state;
    state = next;
    if (state.view === "site" && !state.site) state.view = "sites";
    for (const section of document.querySelectorAll("[data-view]")) {
      section.hidden = section.dataset.view !== state.view;
    }
    updateNav();
    if (state.view === "sites") showSites();
    else if (state.view === "login") showLogin();
    else if (state.view === "settings") showSettings();
    else showSite(previous);
    document.title =
      state.view === "site"
        ? `${state.site} · ${periodLabel()} · LiveInsight`
        : `${{ sites: "Sites", login: "Sign in", settings: "Settings" }[state.view]} · LiveInsight`;
    // Moving between views moves focus to the new view's heading, for keyboards and readers.
    if (previous && previous.view !== state.view) $(HEADINGS[state.view]).focus({ preventScroll: false });
  }

  function updateNav() {
    const shared = Boolean(state.auth);
    $("nav-sites").hidden = shared;
    $("nav-shared").hidden = !shared;
    $("nav-settings").hidden = shared || !session;
    $("nav-signout").hidden = shared || !session;
    $("nav-signin").hidden = shared || Boolean(session) || state.view === "login";
    for (const element of document.querySelectorAll("[data-admin-only]")) element.hidden = shared || !session;
    const settings = { view: "settings", site: state.site, auth: null };
    for (const link of document.querySelectorAll("[data-settings-link]")) link.href = urlFor(settings);
    $("home").href = shared ? urlFor({ ...state, period: DEFAULT_PERIOD, date: null, from: null, to: null, filters: "" }) : "/";
  }

  function setSession(value) {
    session = value;
    hint(Boolean(value));
    updateNav();
    if (segmentsMenuOpen()) renderSegmentsMenu(); // the admin's save and delete controls
  }

  // ---- sites list --------------------------------------------------------------------------------

  function showSites() {
    load($("sites-card"), "/api/cards/sites");
  }

  // ---- sign-in -----------------------------------------------------------------------------------

  function showLogin() {
    $("login-error").textContent = "";
    $("password").value = "";
  }

  async function signIn(event) {
    event.preventDefault();
    const error = $("login-error");
    error.textContent = "";
    const button = event.submitter;
    if (button) button.disabled = true;
    try {
      const response = await fetch("/api/auth/login", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ password: $("password").value }),
        credentials: "same-origin",
      });
      if (response.status === 429) {
        const wait = Number(response.headers.get("Retry-After")) || 60;
        error.textContent = `Too many failed sign-ins. Try again in ${Math.ceil(wait / 60)} min.`;
        return;
      }
      if (!response.ok) {
        error.textContent = response.status === 401 ? "Wrong password." : await errorText(response);
        return;
      }
      const body = await response.json();
      setSession({ csrf: body.csrf_token });
      navigate({ view: "sites", site: null });
    } catch {
      error.textContent = "Cannot reach the server.";
    } finally {
      if (button) button.disabled = false;
    }
  }

  async function signOut() {
    try {
      await fetch("/api/auth/logout", {
        method: "POST",
        headers: session ? { "X-CSRF-Token": session.csrf } : {},
        credentials: "same-origin",
      });
    } catch {
      // The cookie expires on its own; the page forgets the session either way.
    }
    setSession(null);
    navigate({ view: "sites", site: null });
  }

  // ---- a site's dashboard ---------------------------------------------------------------------------

  function periodLabel(s = state) {
    if (s.period === "custom" && s.from && s.to) return `${s.from} to ${s.to}`;
    if (s.period === "day" && s.date) {
      const today = siteToday.get(s.site);
      if (today && s.date === today) return PERIODS.day;
      if (today && s.date === shiftDay(today, -1)) return PERIODS.yesterday;
      return formatDay(s.date);
    }
    const label = PERIODS[s.period] || s.period;
    return s.date ? `${label} to ${s.date}` : label;
  }

  function showSite(previous) {
    $("site-title").textContent = state.site;
    const realtime = state.period === "realtime";
    $("realtime-panel").hidden = !realtime;
    $("period-panels").hidden = realtime;
    for (const element of document.querySelectorAll("[data-period-only]")) element.hidden = realtime;
    $("live-badge").href = urlFor({ ...state, period: "realtime", date: null, from: null, to: null });
    syncPicker();
    renderChips();
    $("graph-title").textContent = METRICS[state.metric];
    $("compare").value = state.compare;

    const sameData = previous && previous.view === "site" && dataKey(previous) === dataKey(state);
    if (realtime) {
      // The archive's cards are hidden: an answer still on its way is dropped, and asks no more.
      loadFunnelCard();
      loadJourneys();
      if (!sameData) {
        load($("realtime"), `/api/realtime/card?${siteParams()}`);
        scheduleRealtime();
      }
      return;
    }
    // The badge polls on its own outside realtime: (re)start it on arriving from elsewhere.
    const arriving =
      !previous ||
      previous.view !== "site" ||
      previous.period === "realtime" ||
      previous.site !== state.site ||
      previous.auth !== state.auth;
    chartLibrary().catch(() => {}); // in parallel with the cards; the graph draws once both are in
    if (sameData) {
      if (previous.metric !== state.metric) markTiles();
      if (previous.metric !== state.metric || previous.compare !== state.compare) loadGraph();
      return;
    }
    if (!previous || previous.period !== state.period || previous.date !== state.date) $("range-text").textContent = "";
    // Requested in the order a reader looks: numbers first, the slower graph after the cards
    // (one warm Lambda instance answers them in turn locally), the live badge last.
    load($("metrics"), `/api/cards/metrics?${statsParams()}&metric=${encodeURIComponent(state.metric)}&with_imported=${withImported}`);
    for (const card of document.querySelectorAll("[data-card]")) loadCard(card);
    loadGraph();
    // The archive's cards, and the site's segments (for the menu and the applied one's name).
    loadFunnelCard({ relist: arriving });
    loadJourneys();
    if (arriving || segments.site !== state.site) loadSegments();
    if (arriving) pollLive();
  }

  function loadGraph() {
    const compare = state.compare ? `&compare=${state.compare}` : "";
    load($("graph"), `/api/cards/graph?${statsParams()}&metric=${encodeURIComponent(state.metric)}${compare}&with_imported=${withImported}`);
  }

  function markTiles() {
    for (const tile of $("metrics").querySelectorAll("button[data-metric]")) {
      tile.setAttribute("aria-pressed", String(tile.dataset.metric === state.metric));
    }
  }

  function cardProperty(card) {
    return tabs[card.dataset.card] || card.querySelector("[role=tab]").dataset.property;
  }

  function loadCard(card) {
    // The period cards are hidden in the realtime view, and their routes take no realtime period:
    // an answer still in flight when the view changes must not make them ask with it.
    if (state.period === "realtime") return;
    const property = cardProperty(card);
    for (const tab of card.querySelectorAll("[role=tab]")) {
      const selected = tab.dataset.property === property;
      tab.setAttribute("aria-selected", String(selected));
      tab.tabIndex = selected ? 0 : -1;
      if (selected) card.querySelector("[data-panel]").setAttribute("aria-labelledby", tab.id);
    }
    const panel = card.querySelector("[data-panel]");
    const csv = card.querySelector("[data-csv]");
    if (property === "props") {
      load(panel, `/api/cards/props?${statsParams()}`);
      csv.disabled = !chosenPropKey;
      return;
    }
    if (card.dataset.card === "goals") $("prop-values").hidden = true;
    csv.disabled = false;
    load(panel, `/api/cards/breakdown?${statsParams()}&property=${encodeURIComponent(property)}&limit=10`);
  }

  function loadPropValues() {
    const values = $("prop-values");
    const csv = document.querySelector("[data-card=goals] [data-csv]");
    for (const button of document.querySelectorAll("[data-card=goals] button[data-prop-key]")) {
      button.setAttribute("aria-pressed", String(button.dataset.propKey === chosenPropKey));
    }
    csv.disabled = !chosenPropKey;
    values.hidden = !chosenPropKey;
    if (!chosenPropKey || state.period === "realtime") return;
    const property = encodeURIComponent(`prop:${chosenPropKey}`);
    load(values, `/api/cards/breakdown?${statsParams()}&property=${property}&limit=10`);
  }

  function selectTab(tab) {
    const card = tab.closest("[data-card]");
    tabs[card.dataset.card] = tab.dataset.property;
    loadCard(card);
  }

  function onTabKey(event) {
    const tab = event.target.closest("[role=tab]");
    if (!tab) return;
    const all = [...tab.parentElement.querySelectorAll("[role=tab]")];
    const index = all.indexOf(tab);
    const next = {
      ArrowRight: all[(index + 1) % all.length],
      ArrowLeft: all[(index - 1 + all.length) % all.length],
      Home: all[0],
      End: all[all.length - 1],
    }[event.key];
    if (!next) return;
    event.preventDefault();
    next.focus();
    selectTab(next);
  }

  function csvFor(card) {
    let property = cardProperty(card);
    if (property === "props") {
      if (!chosenPropKey) return;
      property = `prop:${chosenPropKey}`;
    }
    const button = card.querySelector("[data-csv]");
    download(`/api/cards/breakdown.csv?${statsParams()}&property=${encodeURIComponent(property)}`, button);
  }

  // ---- the live badge and the realtime card's "as of" ----------------------------------------------

  function setLive(text) {
    const count = $("live-count");
    if (count.textContent === text) return; // the region is aria-live: speak only on change
    count.textContent = text;
    $("live-label").textContent = text === "1" ? "current visitor" : "current visitors";
    $("live-ping").classList.toggle("motion-safe:animate-ping", text !== "0" && text !== "–");
  }

  let liveTimer = null;
  let realtimeTimer = null;
  let lastAttention = Date.now();

  function attention() {
    lastAttention = Date.now();
  }

  function realtimeInterval() {
    return Date.now() - lastAttention < WATCHED_FOR_MS ? REALTIME_WATCHED_MS : REALTIME_UNWATCHED_MS;
  }

  /** The next realtime poll, one interval from now. */
  function scheduleRealtime() {
    clearTimeout(realtimeTimer);
    realtimeTimer = setTimeout(pollRealtime, realtimeInterval());
  }

  /** The realtime card's poll: a hidden tab or another view asks nothing (htmx:beforeRequest). */
  function pollRealtime() {
    scheduleRealtime();
    if (state.view === "site" && state.period === "realtime" && !document.hidden) {
      window.htmx.trigger($("realtime"), "refresh");
    }
  }

  /** Outside realtime, the badge reads the bare number (Plausible's realtime endpoint). */
  async function pollLive() {
    clearTimeout(liveTimer);
    const watching = state.view === "site" && state.period !== "realtime";
    if (!watching) return;
    liveTimer = setTimeout(pollLive, LIVE_POLL_MS);
    if (document.hidden) return;
    try {
      const site = state.site;
      const response = await fetch(`/api/v1/stats/realtime/visitors?${siteParams()}`, {
        headers: readHeaders(),
        credentials: "same-origin",
      });
      if (response.ok && site === state.site) setLive(String(await response.json()));
    } catch {
      // the next tick retries
    }
  }

  function tickAsOf() {
    for (const line of document.querySelectorAll("#realtime [data-as-of]")) {
      const asOf = Number(line.dataset.asOf);
      if (!Number.isFinite(asOf)) continue;
      let age = line.querySelector("[data-age]");
      if (!age) {
        age = el("span");
        age.dataset.age = "";
        age.dataset.testid = "as-of-age";
        line.append(" · ", age);
      }
      const seconds = Math.max(0, Math.round((Date.now() - clockSkew - asOf) / 1000));
      age.textContent = `${seconds} s ago`;
      age.classList.toggle("stale", seconds > STALE_SECONDS);
    }
  }

  // ---- the period picker ---------------------------------------------------------------------------

  let shownRange = null; // the resolved first and last day of what the cards show

  function rememberRange(first, last) {
    shownRange = { first, last };
  }

  function pickerValue() {
    if (state.period === "day" && state.date) {
      const today = siteToday.get(state.site);
      if (today && state.date === today) return "day";
      if (today && state.date === shiftDay(today, -1)) return "yesterday";
      return "other";
    }
    if (state.period in PERIODS && (!state.date || state.period === "custom")) return state.period;
    return "other";
  }

  function syncPicker() {
    const select = $("period");
    let other = select.querySelector("option[value=other]");
    const value = pickerValue();
    if (value === "other" || value === "year") {
      if (!other) {
        other = el("option");
        other.value = "other";
        select.append(other);
      }
      other.textContent = periodLabel();
      select.value = "other";
    } else {
      if (other) other.remove();
      select.value = value;
    }
    const custom = state.period === "custom";
    $("custom-range").hidden = !custom;
    if (custom) {
      $("range-from").value = state.from || "";
      $("range-to").value = state.to || "";
    }
    $("range-error").textContent = "";
    // A day given by date whose label depends on the site's "today": learn it, then relabel.
    if (state.view === "site" && state.period === "day" && state.date && !siteToday.has(state.site)) {
      todayOf(state.site).then(() => state.period === "day" && syncPicker(), () => {});
    }
  }

  /** The site's today, in its time zone: the day the stats API resolves period=day to. */
  async function todayOf(site) {
    if (siteToday.has(site)) return siteToday.get(site);
    const q = siteParams({ ...state, site });
    q.set("period", "day");
    q.set("metrics", "visitors");
    q.set("compare", "false");
    const response = await fetch(`/api/stats/aggregate?${q}`, { headers: readHeaders(), credentials: "same-origin" });
    if (!response.ok) throw new ApiError(response.status, await errorText(response));
    const body = await response.json();
    siteToday.set(site, body.range.first);
    return body.range.first;
  }

  async function pickPeriod() {
    const value = $("period").value;
    const clear = { date: null, from: null, to: null };
    if (value === "custom") {
      $("custom-range").hidden = false;
      const today = siteToday.get(state.site);
      $("range-from").value = state.from || (shownRange && shownRange.first) || "";
      $("range-to").value = state.to || (shownRange && shownRange.last) || today || "";
      $("range-from").focus();
      return;
    }
    if (value === "other") return;
    if (value === "yesterday") {
      try {
        const today = await todayOf(state.site);
        navigate({ period: "day", ...clear, date: shiftDay(today, -1) });
      } catch (error) {
        setStatus(`Cannot pick yesterday: ${error.message}`, "warn");
        syncPicker();
      }
      return;
    }
    navigate({ period: value, ...clear });
  }

  function applyCustomRange(event) {
    event.preventDefault();
    const from = $("range-from").value;
    const to = $("range-to").value;
    if (!from || !to || to < from) {
      $("range-error").textContent = "Pick a first day on or before the last day.";
      return;
    }
    navigate({ period: "custom", date: null, from, to });
  }

  // ---- filters ------------------------------------------------------------------------------------

  const OPERATORS = { is: "is", is_not: "is not", contains: "contains", contains_not: "does not contain" };
  // Every filter property of the v1 API, grouped as the dialog lists them (custom props are added
  // per site). Their words are propertyLabel's, as on the chips.
  const FILTER_GROUPS = [
    ["Pages", ["event:page", "visit:entry_page", "visit:exit_page", "event:hostname"]],
    ["Sources", ["visit:channel", "visit:source", "visit:referrer", "visit:utm_source", "visit:utm_medium", "visit:utm_campaign", "visit:utm_content", "visit:utm_term"]],
    ["Location", ["visit:country", "visit:region", "visit:city"]],
    ["Devices", ["visit:device", "visit:browser", "visit:browser_version", "visit:os", "visit:os_version"]],
    ["Goals and events", ["event:goal", "event:name"]],
  ];
  const MAX_PATTERNS = 10; // values holding a `*` in one filter (query_api/parse.py)
  const SUGGESTIONS = 100; // top values asked for; the typed text narrows them
  const SHOWN_SUGGESTIONS = 20;

  /** `a;b` → [a, b]; a value may carry `\;` and `\|` (the filter syntax's escapes). */
  function splitFilters(raw) {
    return raw ? raw.split(/(?<!\\);/).filter((part) => part.trim()) : [];
  }

  function parseFilter(filter) {
    const match = /^(.+?)(==|!=)(.*)$/s.exec(filter);
    if (!match) return { property: filter, negated: false, values: [] };
    const [, property, op, values] = match;
    return {
      property,
      negated: op === "!=",
      values: values.split(/(?<!\\)\|/).map((v) => v.replace(/\\([|;])/g, "$1")),
    };
  }

  /** A filter as the dialog shows it: `*X*` values are "contains X"; any other `*` stays a
   * wildcard of an "is" (a literal `*` cannot be written in the syntax). */
  function filterParts(filter) {
    const { property, negated, values } = parseFilter(filter);
    const contains = values.length > 0 && values.every((v) => /^\*[^*]+\*$/.test(v));
    if (contains) return { property, operator: negated ? "contains_not" : "contains", values: values.map((v) => v.slice(1, -1)) };
    return { property, operator: negated ? "is_not" : "is", values };
  }

  function filterString(property, operator, values) {
    const escaped = values.map((v) => v.replace(/[|;]/g, "\\$&"));
    const contains = operator === "contains" || operator === "contains_not";
    const negated = operator === "is_not" || operator === "contains_not";
    return `${property}${negated ? "!=" : "=="}${(contains ? escaped.map((v) => `*${v}*`) : escaped).join("|")}`;
  }

  function propertyLabel(property) {
    if (property.startsWith("event:props:")) return `Property ${property.slice(12)}`;
    const short = property.replace(/^(visit|event):/, "");
    return PROPERTIES[short] || short;
  }

  function describeFilter(filter) {
    const { property, operator, values } = filterParts(filter);
    return `${propertyLabel(property)} ${OPERATORS[operator]} ${values.join(" or ")}`;
  }

  /** The filters with `filter` in place of its property's (or of the one at `index`). */
  function withFilter(filter, index = null) {
    const property = parseFilter(filter).property;
    const list = splitFilters(state.filters);
    const at = index !== null ? index : list.findIndex((f) => parseFilter(f).property === property);
    if (at < 0) return [...list, filter];
    // One filter per property (as Plausible): editing one onto another's property replaces both.
    return list.map((f, i) => (i === at ? filter : f)).filter((f, i) => i === at || parseFilter(f).property !== property);
  }

  function focusChip(filter) {
    const chip = [...$("filter-chips").children].find((c) => c.dataset.filterChip === filter);
    if (chip) chip.querySelector("button[data-remove-filter]").focus();
  }

  function addFilter(filter) {
    navigate({ filters: withFilter(filter).join(";") });
    // The clicked row is about to be replaced: keep the keyboard on the new filter's chip.
    focusChip(filter);
  }

  function removeFilter(index) {
    const kept = splitFilters(state.filters).filter((_, i) => i !== index);
    navigate({ filters: kept.join(";") });
    const chips = $("filter-chips").querySelectorAll("button[data-remove-filter]");
    (chips[Math.min(index, chips.length - 1)] || $("period")).focus();
  }

  function renderChips() {
    const filters = splitFilters(state.filters);
    const list = $("filter-chips");
    list.replaceChildren(
      ...filters.map((filter, index) => {
        const label = describeFilter(filter);
        const chip = el("li", "chip");
        chip.dataset.filterChip = filter;
        const edit = el("button");
        edit.type = "button";
        edit.dataset.editFilter = String(index);
        edit.setAttribute("aria-haspopup", "dialog");
        edit.setAttribute("aria-label", `Edit filter: ${label}`);
        edit.append(el("span", "", label));
        const remove = el("button");
        remove.type = "button";
        remove.dataset.removeFilter = String(index);
        remove.setAttribute("aria-label", `Remove filter: ${label}`);
        remove.title = "Remove filter";
        const cross = el("span", "", "×");
        cross.setAttribute("aria-hidden", "true");
        remove.append(cross);
        chip.append(edit, remove);
        return chip;
      }),
    );
    $("filter-bar").hidden = filters.length === 0;
    $("filter-note").hidden = state.period !== "realtime";
    showAppliedSegment();
    if (segmentsMenuOpen()) renderSegmentsMenu(); // "save as segment" follows the filters
  }

  // ---- the filter dialog ----------------------------------------------------------------------------

  const dialog = {
    editing: null, // the index of the filter being edited; null for a new one
    opener: null, // focused again when the dialog closes
    values: [], // chosen values
    suggestions: [], // [{value, visitors}] of the chosen property, most visitors first
    shown: [], // the suggestions listed now
    active: -1, // the highlighted one (arrow keys)
    asked: 0, // the latest suggestions request: an older answer is dropped
  };

  function buildPropertyOptions() {
    const select = $("filter-property");
    for (const [group, properties] of FILTER_GROUPS) {
      const optgroup = el("optgroup");
      optgroup.label = group;
      for (const property of properties) {
        const option = el("option", "", propertyLabel(property));
        option.value = property;
        optgroup.append(option);
      }
      select.append(optgroup);
    }
    const props = el("optgroup");
    props.label = "Custom properties";
    props.id = "filter-prop-keys";
    props.hidden = true;
    select.append(props);
  }

  /** Which stats the dialog's reads are about: realtime has none, so today's. */
  function dialogState() {
    return state.period === "realtime" ? { ...state, period: "day", date: null, from: null, to: null } : state;
  }

  function propKeyOption(key) {
    const option = el("option", "", propertyLabel(`event:props:${key}`));
    option.value = `event:props:${key}`;
    return option;
  }

  /** Choose a property, a custom prop's too before the site's keys are in. */
  function chooseProperty(property) {
    const select = $("filter-property");
    const known = [...select.options].some((option) => option.value === property);
    if (!known && !property.startsWith("event:props:")) {
      select.value = "event:page"; // not a filter property of the v1 API: the URL's error says so
      return;
    }
    if (!known) {
      const group = $("filter-prop-keys");
      group.append(propKeyOption(property.slice(12)));
      group.hidden = false;
    }
    select.value = property;
  }

  /** The site's custom prop keys of the period, as the props card lists them (its buttons); the
   * property chosen meanwhile stays chosen. */
  async function loadPropKeys() {
    const group = $("filter-prop-keys");
    let keys = [];
    try {
      const response = await fetch(`/api/cards/props?${statsParams(dialogState())}`, { headers: readHeaders(), credentials: "same-origin" });
      if (response.ok) {
        // Parsed, never inserted: only the keys (attribute text) are used.
        const html = new DOMParser().parseFromString(await response.text(), "text/html");
        keys = [...html.querySelectorAll("button[data-prop-key]")].map((b) => b.dataset.propKey);
      }
    } catch {
      // no custom properties offered; a typed filter's own key still is
    }
    if (!$("filter-dialog").open) return;
    const select = $("filter-property");
    const chosen = select.value;
    if (chosen.startsWith("event:props:") && !keys.includes(chosen.slice(12))) keys.push(chosen.slice(12));
    group.replaceChildren(...keys.map(propKeyOption));
    group.hidden = keys.length === 0;
    select.value = chosen;
  }

  function openFilterDialog(index = null, opener = null) {
    if (state.view !== "site") return;
    const editing = index !== null ? filterParts(splitFilters(state.filters)[index] || "") : null;
    dialog.editing = editing && editing.values.length ? index : null;
    dialog.opener = opener || document.activeElement;
    dialog.values = dialog.editing !== null ? [...editing.values] : [];
    const property = dialog.editing !== null ? editing.property : "event:page";
    $("filter-dialog-title").textContent = dialog.editing !== null ? "Edit filter" : "Add a filter";
    $("filter-apply").textContent = dialog.editing !== null ? "Update filter" : "Apply filter";
    $("filter-operator").value = dialog.editing !== null ? editing.operator : "is";
    $("filter-value").value = "";
    $("filter-error").textContent = "";
    chooseProperty(property);
    loadPropKeys();
    renderValues();
    noteReplaced();
    loadSuggestions();
    $("filter-dialog").showModal();
    $("filter-property").focus();
  }

  function closeFilterDialog() {
    if ($("filter-dialog").open) $("filter-dialog").close();
  }

  /** Say so when applying would replace another filter of the same property. */
  function noteReplaced() {
    const property = $("filter-property").value;
    const other = splitFilters(state.filters).find((f, i) => i !== dialog.editing && parseFilter(f).property === property);
    const note = $("filter-replaces");
    note.hidden = !other;
    note.textContent = other ? `Replaces the filter “${describeFilter(other)}” (one filter per property).` : "";
  }

  function renderValues() {
    $("filter-values").replaceChildren(
      ...dialog.values.map((value, i) => {
        const token = el("li", "token");
        token.dataset.value = value;
        const remove = el("button");
        remove.type = "button";
        remove.dataset.removeValue = String(i);
        remove.setAttribute("aria-label", `Remove value ${value}`);
        const cross = el("span", "", "×");
        cross.setAttribute("aria-hidden", "true");
        remove.append(cross);
        token.append(el("span", "truncate", value), remove);
        return token;
      }),
    );
    renderSuggestions();
  }

  function addValue(value) {
    const v = value.trim();
    if (v && !dialog.values.includes(v)) dialog.values.push(v);
    $("filter-value").value = "";
    $("filter-error").textContent = "";
    renderValues();
    $("filter-value").focus();
  }

  function removeValue(index) {
    dialog.values.splice(index, 1);
    renderValues();
    $("filter-value").focus();
  }

  /** The property's top values for the current period, under the other filters (as Plausible's
   * suggestions); if those rule the property out, without them. */
  async function loadSuggestions() {
    const property = $("filter-property").value;
    const asked = ++dialog.asked;
    dialog.suggestions = [];
    renderSuggestions();
    const status = $("filter-suggestions-status");
    status.textContent = "Loading suggestions…";
    const others = splitFilters(state.filters)
      .filter((f, i) => i !== dialog.editing && parseFilter(f).property !== property)
      .join(";");
    const ask = (filters) => {
      const q = statsParams({ ...dialogState(), filters });
      q.set("property", property);
      q.set("metrics", "visitors");
      q.set("limit", String(SUGGESTIONS));
      return fetch(`/api/stats/breakdown?${q}`, { headers: readHeaders(), credentials: "same-origin" });
    };
    try {
      let response = await ask(others);
      if (!response.ok && others && response.status === 400) response = await ask("");
      if (asked !== dialog.asked) return;
      if (!response.ok) {
        status.textContent = `No suggestions: ${await errorText(response)}`;
        return;
      }
      const body = await response.json();
      if (asked !== dialog.asked) return;
      const key = property.startsWith("event:props:") ? property.slice(12) : property.split(":").pop();
      dialog.suggestions = body.results
        .map((row) => ({ value: String(row[key]), visitors: row.visitors }))
        .filter((s) => s.value && s.value !== "(other)");
      status.textContent = dialog.suggestions.length ? "" : "No values in this period: type one.";
    } catch {
      if (asked === dialog.asked) status.textContent = "No suggestions: cannot reach the server.";
      return;
    }
    renderSuggestions();
  }

  function renderSuggestions() {
    const typed = $("filter-value").value.trim().toLowerCase();
    dialog.shown = dialog.suggestions
      .filter((s) => !dialog.values.includes(s.value) && s.value.toLowerCase().includes(typed))
      .slice(0, SHOWN_SUGGESTIONS);
    dialog.active = Math.min(dialog.active, dialog.shown.length - 1);
    const list = $("filter-suggestions");
    list.replaceChildren(
      ...dialog.shown.map((s, i) => {
        const option = el("li");
        option.id = `filter-suggestion-${i}`;
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", String(i === dialog.active));
        option.dataset.value = s.value;
        const count = el("span", "shrink-0 tabular-nums text-xs text-gray-500", `${s.visitors.toLocaleString("en")} visitor${s.visitors === 1 ? "" : "s"}`);
        option.append(el("span", "min-w-0 truncate", s.value), count);
        return option;
      }),
    );
    list.hidden = dialog.shown.length === 0;
    const input = $("filter-value");
    input.setAttribute("aria-expanded", String(!list.hidden));
    if (dialog.active >= 0) {
      input.setAttribute("aria-activedescendant", `filter-suggestion-${dialog.active}`);
      $(`filter-suggestion-${dialog.active}`).scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }

  function onValueKey(event) {
    const moves = { ArrowDown: 1, ArrowUp: -1 };
    if (event.key in moves && dialog.shown.length) {
      event.preventDefault();
      const n = dialog.shown.length;
      dialog.active = dialog.active < 0 && moves[event.key] < 0 ? n - 1 : (dialog.active + moves[event.key] + n) % n;
      renderSuggestions();
      return;
    }
    if (event.key !== "Enter") return;
    const input = event.currentTarget;
    // Enter adds the highlighted suggestion or the typed text; on an empty field it applies.
    if (dialog.active >= 0 && dialog.shown[dialog.active]) {
      event.preventDefault();
      addValue(dialog.shown[dialog.active].value);
      dialog.active = -1;
    } else if (input.value.trim()) {
      event.preventDefault();
      addValue(input.value);
    }
  }

  function applyFilterDialog(event) {
    event.preventDefault();
    const typed = $("filter-value").value.trim();
    const values = typed && !dialog.values.includes(typed) ? [...dialog.values, typed] : [...dialog.values];
    const operator = $("filter-operator").value;
    const error = $("filter-error");
    if (!values.length) {
      error.textContent = "Type or pick at least one value.";
      $("filter-value").focus();
      return;
    }
    const contains = operator === "contains" || operator === "contains_not";
    if ((contains ? values.length : values.filter((v) => v.includes("*")).length) > MAX_PATTERNS) {
      error.textContent = `At most ${MAX_PATTERNS} values can ${contains ? "be contained" : "hold a *"} in one filter.`;
      return;
    }
    const filter = filterString($("filter-property").value, operator, values);
    const filters = withFilter(filter, dialog.editing).join(";");
    dialog.opener = null; // focus goes to the new chip instead
    closeFilterDialog();
    navigate({ filters });
    const chip = [...$("filter-chips").children].find((c) => c.dataset.filterChip === filter);
    if (chip) chip.querySelector("button[data-edit-filter]").focus();
  }

  /** A modal keeps Tab inside it (showModal makes the page inert, but Tab would reach the
   * browser's own controls). */
  function trapTab(event) {
    if (event.key !== "Tab") return;
    const focusable = [...event.currentTarget.querySelectorAll("button, input, select")].filter(
      (element) => !element.disabled && element.getClientRects().length > 0,
    );
    if (!focusable.length) return;
    const first = focusable[0];
    const last = focusable[focusable.length - 1];
    if (event.shiftKey && document.activeElement === first) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && document.activeElement === last) {
      event.preventDefault();
      first.focus();
    }
  }

  function listenToFilterDialog() {
    buildPropertyOptions();
    const box = $("filter-dialog");
    $("open-filter").addEventListener("click", (event) => openFilterDialog(null, event.currentTarget));
    $("filter-form").addEventListener("submit", applyFilterDialog);
    $("filter-cancel").addEventListener("click", closeFilterDialog);
    box.addEventListener("keydown", trapTab);
    // Escape closes a modal <dialog> on its own ("cancel", then "close"): focus goes back.
    box.addEventListener("close", () => {
      dialog.asked++;
      if (dialog.opener && dialog.opener.isConnected) dialog.opener.focus();
      dialog.opener = null;
    });
    // A click on the backdrop (outside the form) closes it too.
    box.addEventListener("click", (event) => {
      if (event.target === box) closeFilterDialog();
    });
    $("filter-property").addEventListener("change", () => {
      dialog.values = [];
      dialog.active = -1;
      renderValues();
      noteReplaced();
      loadSuggestions();
    });
    const input = $("filter-value");
    input.addEventListener("input", () => {
      dialog.active = -1;
      renderSuggestions();
    });
    input.addEventListener("keydown", onValueKey);
    const list = $("filter-suggestions");
    list.addEventListener("mousedown", (event) => event.preventDefault()); // keep focus in the field
    list.addEventListener("click", (event) => {
      const option = event.target instanceof Element ? event.target.closest("[role=option]") : null;
      if (option) addValue(option.dataset.value);
    });
    $("filter-values").addEventListener("click", (event) => {
      const remove = event.target instanceof Element ? event.target.closest("button[data-remove-value]") : null;
      if (remove) removeValue(Number(remove.dataset.removeValue));
    });
  }

  // ---- saved segments --------------------------------------------------------------------------------

  // A segment's filters are Plausible v2 filters (/api/stats/segments). The dashboard applies the
  // ones its v1 syntax can say exactly: an AND of is / is not / contains / does not contain on the
  // properties the filter dialog offers, case-sensitive, without a `*` in a value (v1 reads it as
  // a wildcard, v2 as a character). The others are listed with the reason; v2 still takes them.
  const V1_FILTER_PROPERTIES = new Set(FILTER_GROUPS.flatMap(([, properties]) => properties));
  const V2_OPERATORS = new Set(Object.keys(OPERATORS));

  const segments = {
    site: null, // whose list `list` is
    list: null, // [{segment, filters (v1) | null, why}]
    applied: null, // the id applied last: named first when two segments say the same
    asked: 0,
  };

  /** A segment's v2 filters → {filters} in the v1 syntax, or {why} they cannot be. */
  function segmentToV1(v2filters) {
    const conditions = [];
    const flatten = (list) => {
      for (const item of list) {
        if (!Array.isArray(item) || typeof item[0] !== "string") return "It holds a filter the dashboard cannot read.";
        if (item[0] === "and" && Array.isArray(item[1])) {
          const why = flatten(item[1]);
          if (why) return why;
        } else {
          conditions.push(item);
        }
      }
      return null;
    };
    if (!Array.isArray(v2filters) || !v2filters.length) return { why: "It has no filters." };
    const why = flatten(v2filters);
    if (why) return { why };
    const parts = [];
    const seen = new Set();
    for (const [operator, dimension, values, options, ...rest] of conditions) {
      if (!V2_OPERATORS.has(operator)) return { why: `It uses “${operator}”, which the dashboard's filters cannot say.` };
      if (typeof dimension !== "string" || !(V1_FILTER_PROPERTIES.has(dimension) || /^event:props:./.test(dimension))) {
        return { why: `It filters on “${dimension}”, which the dashboard's filters do not offer.` };
      }
      const sensitive = options === undefined || (options !== null && typeof options === "object" && options.case_sensitive !== false);
      if (rest.length || !sensitive) return { why: "It is case-insensitive; the dashboard's filters are case-sensitive." };
      if (!Array.isArray(values) || !values.length || values.some((v) => typeof v !== "string" || !v)) {
        return { why: "It compares with a value that is not text." };
      }
      if (values.some((v) => v.includes("*"))) return { why: "A value holds a “*”, which the dashboard's filters read as a wildcard." };
      if (seen.has(dimension)) return { why: `It has two conditions on ${propertyLabel(dimension)}; the dashboard keeps one per property.` };
      seen.add(dimension);
      parts.push(filterString(dimension, operator, values));
    }
    return { filters: parts.join(";") };
  }

  /** The dashboard's v1 filters → {filters} as v2 filters, or {why} a segment cannot hold them. */
  function v1ToSegment(raw) {
    const list = splitFilters(raw);
    if (!list.length) return { why: "Add a filter first: a segment is a set of filters." };
    const filters = [];
    for (const filter of list) {
      const { property, operator, values } = filterParts(filter);
      if (values.some((v) => v.includes("*"))) {
        return { why: `“${describeFilter(filter)}” is a * pattern: a segment holds “contains” (*text*) but no other pattern.` };
      }
      filters.push([operator, property, values]);
    }
    return { filters };
  }

  /** Filters compared as sets: a segment applied and then reordered chip by chip is still it. */
  function sameFilters(a, b) {
    const norm = (raw) => splitFilters(raw).sort().join(";");
    return norm(a) === norm(b);
  }

  function appliedSegment() {
    if (!segments.list || segments.site !== state.site || !state.filters) return null;
    const matching = segments.list.filter((s) => s.filters !== null && sameFilters(s.filters, state.filters));
    return matching.find((s) => s.segment.id === segments.applied) || matching[0] || null;
  }

  function showAppliedSegment() {
    const shown = appliedSegment();
    const label = $("segment-applied");
    label.hidden = !shown;
    label.textContent = shown ? `Segment: ${shown.segment.name}` : "";
  }

  async function loadSegments() {
    const asked = ++segments.asked;
    const site = state.site;
    try {
      const body = await readJson("/api/stats/segments", siteParams());
      if (asked !== segments.asked) return;
      segments.site = site;
      segments.list = body.segments.map((segment) => ({ segment, ...{ filters: null, why: null }, ...segmentToV1(segment.filters) }));
      $("segments-status").textContent = "";
    } catch (error) {
      if (asked !== segments.asked) return;
      segments.site = site;
      segments.list = [];
      $("segments-status").textContent = `No segments: ${noticeText(error)}`;
    }
    showAppliedSegment();
    renderSegmentsMenu();
  }

  function renderSegmentsMenu() {
    const list = $("segments-list");
    const isAdmin = Boolean(session) && !state.auth;
    const rows = (segments.list || []).map(({ segment, filters, why }) => {
      const row = el("li", "py-2");
      row.dataset.segment = String(segment.id);
      const line = el("div", "flex items-start justify-between gap-2");
      const apply = el("button", "min-w-0 break-words rounded text-left font-medium text-indigo-700 hover:underline disabled:cursor-not-allowed disabled:text-gray-500 disabled:no-underline", segment.name);
      apply.type = "button";
      apply.dataset.applySegment = String(segment.id);
      const note = el(
        "p",
        `mt-0.5 text-xs ${why ? "text-amber-700" : "text-gray-500"}`,
        why
          ? `${why} It still works in the Stats API v2 as ["is", "segment", [${segment.id}]].`
          : splitFilters(filters).map(describeFilter).join(", "),
      );
      note.id = `segment-note-${segment.id}`;
      apply.setAttribute("aria-describedby", note.id);
      if (why) apply.disabled = true;
      line.append(apply);
      if (isAdmin) {
        line.append(
          confirmButton("Delete", `Delete segment ${segment.name}`, async () => {
            try {
              await admin("DELETE", segmentsPath(segment.id));
              $("segments-status").textContent = `Segment “${segment.name}” deleted.`;
              await loadSegments();
              $("open-segments").focus();
            } catch (error) {
              $("segment-error").textContent = noticeText(error);
            }
          }),
        );
      }
      row.append(line, note);
      return row;
    });
    if (!segments.list) rows.push(el("li", "py-2 text-gray-500", "Loading…"));
    else if (!rows.length) rows.push(el("li", "py-2 text-gray-500", "No saved segments yet."));
    list.replaceChildren(...rows);
    $("save-segment").hidden = !isAdmin;
    const check = v1ToSegment(state.filters);
    $("segment-save").disabled = Boolean(check.why);
    $("segment-name").disabled = Boolean(check.why);
    const hint = isAdmin && check.why ? check.why : "";
    if (!$("segment-error").dataset.fromSave) $("segment-error").textContent = hint;
  }

  function segmentsPath(id) {
    const base = `/api/admin/sites/${encodeURIComponent(state.site)}/segments`;
    return id === undefined ? base : `${base}/${encodeURIComponent(String(id))}`;
  }

  function segmentsMenuOpen() {
    return !$("segments-menu").hidden;
  }

  function toggleSegmentsMenu(open, { focusButton = false } = {}) {
    $("segments-menu").hidden = !open;
    $("open-segments").setAttribute("aria-expanded", String(open));
    if (open) {
      delete $("segment-error").dataset.fromSave;
      $("segment-error").textContent = "";
      renderSegmentsMenu();
      loadSegments();
      const first = $("segments-list").querySelector("button:not([disabled])");
      (first || ($("save-segment").hidden ? $("open-segments") : $("segment-name"))).focus();
    } else if (focusButton) {
      $("open-segments").focus();
    }
  }

  function applySegment(id) {
    const entry = (segments.list || []).find((s) => String(s.segment.id) === id);
    if (!entry || entry.filters === null) return;
    segments.applied = entry.segment.id;
    toggleSegmentsMenu(false);
    navigate({ filters: entry.filters });
    $("open-segments").focus();
  }

  async function saveSegment(event) {
    event.preventDefault();
    const error = $("segment-error");
    error.dataset.fromSave = "1";
    error.textContent = "";
    const name = $("segment-name").value.trim();
    if (!name) {
      error.textContent = "Give the segment a name.";
      $("segment-name").focus();
      return;
    }
    const converted = v1ToSegment(state.filters);
    if (converted.why) {
      error.textContent = converted.why;
      return;
    }
    const button = $("segment-save");
    button.disabled = true;
    try {
      const created = await admin("POST", segmentsPath(), { name, filters: converted.filters });
      segments.applied = created.id;
      $("segment-name").value = "";
      delete error.dataset.fromSave;
      await loadSegments();
      $("segments-status").textContent = `Segment “${created.name}” saved.`;
      // The disabled button lost the focus: give it to the new segment.
      const saved = $("segments-list").querySelector(`button[data-apply-segment="${created.id}"]`);
      if (saved && segmentsMenuOpen()) saved.focus();
    } catch (failure) {
      error.textContent = noticeText(failure);
    } finally {
      button.disabled = false;
    }
  }

  function listenToSegments() {
    $("open-segments").addEventListener("click", () => toggleSegmentsMenu(!segmentsMenuOpen()));
    $("segments-list").addEventListener("click", (event) => {
      const apply = event.target instanceof Element ? event.target.closest("button[data-apply-segment]") : null;
      if (apply && !apply.disabled) applySegment(apply.dataset.applySegment);
    });
    $("save-segment").addEventListener("submit", saveSegment);
    document.addEventListener("keydown", (event) => {
      if (event.key !== "Escape" || !segmentsMenuOpen() || document.querySelector("dialog[open]")) return;
      toggleSegmentsMenu(false, { focusButton: true });
    });
    document.addEventListener("click", (event) => {
      const inside = event.target instanceof Element && event.target.closest("#segments-menu, #open-segments");
      // A confirm button that re-renders its row is detached by the time this runs: not "outside".
      if (segmentsMenuOpen() && !inside && event.target instanceof Element && event.target.isConnected) toggleSegmentsMenu(false);
    });
  }

  // ---- JSON reads of the funnel and journey cards ----------------------------------------------------

  async function readJson(path, params, s = state) {
    const response = await fetch(`${path}?${params}`, { headers: readHeaders(s), credentials: "same-origin" });
    if (!response.ok) throw new ApiError(response.status, await errorText(response));
    return response.json();
  }

  function noticeText(error) {
    if (error instanceof ApiError) {
      if (error.status === 401 || error.status === 403) {
        return state.auth ? "This shared link is not valid any more." : "This site's stats need a read key or signing in.";
      }
      return error.message;
    }
    return "Cannot reach the server. It is retried on the next change.";
  }

  function notice(text, tone = "") {
    const p = message(text);
    if (tone) p.className = `py-6 text-center text-sm ${tone}`;
    p.dataset.notice = "";
    return p;
  }

  /** A horizontal bar of `percent` of the row's width (an SVG attribute: no style, for the CSP). */
  function bar(percent, className = "fill-indigo-100") {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("class", "absolute inset-0 h-full w-full");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("preserveAspectRatio", "none");
    const rect = document.createElementNS(ns, "rect");
    rect.setAttribute("x", "0");
    rect.setAttribute("y", "0");
    rect.setAttribute("height", "100%");
    rect.setAttribute("rx", "3");
    rect.setAttribute("width", `${Math.max(0, Math.min(100, percent))}%`);
    rect.setAttribute("class", className);
    svg.append(rect);
    return svg;
  }

  function plural(n, word) {
    return `${n.toLocaleString("en")} ${word}${n === 1 ? "" : "s"}`;
  }

  function busy(element, on) {
    if (on) element.setAttribute("aria-busy", "true");
    else element.removeAttribute("aria-busy");
  }

  // ---- the funnel card ----------------------------------------------------------------------------

  const funnels = { site: null, list: null, chosen: null, asked: 0 };

  async function loadFunnelCard({ relist = false } = {}) {
    const asked = ++funnels.asked; // an answer to an older ask is dropped
    if (state.period === "realtime") return;
    const view = state; // the view asked about: each request after an await uses it, not the next
    const body = $("funnel-body");
    busy(body, true);
    try {
      if (relist || funnels.site !== state.site || !funnels.list) {
        const listed = await readJson("/api/stats/funnels", siteParams(view), view);
        if (asked !== funnels.asked) return;
        funnels.site = view.site;
        funnels.list = listed.funnels;
        renderFunnelPicker();
      }
      if (!funnels.list.length) {
        busy(body, false);
        body.replaceChildren(notice("No funnels for this site yet."));
        return;
      }
      const q = statsParams(view);
      q.set("funnel_id", funnels.chosen);
      const answer = await readJson("/api/stats/funnel", q, view);
      if (asked !== funnels.asked) return;
      busy(body, false);
      renderFunnel(answer);
    } catch (error) {
      if (asked !== funnels.asked) return;
      busy(body, false);
      body.replaceChildren(notice(noticeText(error), "text-amber-700"));
    }
  }

  function renderFunnelPicker() {
    const select = $("funnel-pick");
    const ids = funnels.list.map((f) => f.id);
    if (!ids.includes(funnels.chosen)) funnels.chosen = ids[0] || null;
    select.replaceChildren(
      ...funnels.list.map((f) => {
        const option = el("option", "", f.name);
        option.value = f.id;
        return option;
      }),
    );
    select.hidden = !ids.length;
    if (funnels.chosen) select.value = funnels.chosen;
  }

  function renderFunnel(answer) {
    const first = answer.entering_visitors;
    const steps = el("ol", "space-y-3");
    steps.setAttribute("aria-label", `Steps of ${answer.name}`);
    answer.steps.forEach((step, index) => {
      const row = el("li");
      row.dataset.step = String(index + 1);
      const head = el("div", "flex items-baseline justify-between gap-2 text-sm");
      const name = el("span", "min-w-0 truncate font-medium text-gray-800");
      name.append(el("span", "mr-1 tabular-nums text-gray-400", `${index + 1}.`), el("span", "", step.label));
      name.title = step.label;
      const visitors = el("span", "shrink-0 tabular-nums text-gray-700");
      const count = el("span", "", step.visitors.toLocaleString("en"));
      count.dataset.field = "visitors";
      visitors.append(count, ` visitor${step.visitors === 1 ? "" : "s"}`);
      head.append(name, visitors);
      const track = el("div", "relative mt-1 h-5 rounded bg-gray-50");
      track.append(bar(first ? (100 * step.visitors) / first : 0, "fill-indigo-400"));
      const figures = el("p", "mt-1 text-xs text-gray-500");
      const rate = el("span", "", `${step.conversion_rate}%`);
      rate.dataset.field = "conversion_rate";
      figures.append(rate, " of step 1");
      if (index > 0) {
        const drop = el("span", "", step.dropoff.toLocaleString("en"));
        drop.dataset.field = "dropoff";
        const dropPct = el("span", "", `${step.dropoff_percentage}%`);
        dropPct.dataset.field = "dropoff_percentage";
        figures.append(" · ", drop, " dropped off (", dropPct, ")");
      }
      row.append(head, track, figures);
      steps.append(row);
    });
    const summary = el("p", "mt-4 border-t border-gray-100 pt-3 text-sm text-gray-700");
    summary.dataset.testid = "funnel-summary";
    summary.append(
      `${plural(answer.converted_visitors, "visitor")} of ${answer.entering_visitors.toLocaleString("en")} completed the funnel (`,
      el("span", "font-semibold", `${answer.conversion_rate}%`),
      ").",
    );
    $("funnel-body").replaceChildren(steps, summary);
  }

  // ---- the new-funnel dialog ------------------------------------------------------------------------

  const MIN_STEPS = 2;
  const MAX_STEPS = 8;
  const STEP_KINDS = { page: "Page path", event: "Custom event" };
  const draft = { steps: [], opener: null };

  function openFunnelDialog(event) {
    draft.opener = event.currentTarget;
    draft.steps = [
      { kind: "page", value: "/" },
      { kind: "page", value: "" },
    ];
    $("funnel-name").value = "";
    $("funnel-error").textContent = "";
    $("funnel-steps-status").textContent = "";
    renderSteps();
    $("funnel-dialog").showModal();
    $("funnel-name").focus();
  }

  function renderSteps(focus = null) {
    const n = draft.steps.length;
    $("funnel-steps").replaceChildren(
      ...draft.steps.map((step, i) => {
        const row = el("li", "flex flex-wrap items-center gap-2");
        row.dataset.stepRow = String(i);
        row.append(el("span", "w-5 text-right text-sm tabular-nums text-gray-500", `${i + 1}.`));
        const kind = el("select", "flex-1 rounded-md border sm:flex-none border-gray-300 bg-white py-1.5 pl-2 pr-7 text-sm focus:border-indigo-500 focus:outline-none focus:ring-2 focus:ring-indigo-500");
        kind.dataset.stepKind = String(i);
        kind.setAttribute("aria-label", `Step ${i + 1}: kind`);
        for (const [value, text] of Object.entries(STEP_KINDS)) {
          const option = el("option", "", text);
          option.value = value;
          kind.append(option);
        }
        kind.value = step.kind;
        // On a phone the value takes a line of its own, under its kind and buttons.
        const value = el("input", "order-last min-w-0 basis-full rounded-md sm:order-none sm:basis-0 sm:flex-1 border border-gray-300 px-3 py-1.5 text-sm focus:border-indigo-500 focus:outline-none focus:ring-2 focus:ring-indigo-500");
        value.dataset.stepValue = String(i);
        value.setAttribute("aria-label", `Step ${i + 1}: ${step.kind === "page" ? "page path" : "event name"}`);
        value.placeholder = step.kind === "page" ? "/pricing" : "Signup";
        value.autocomplete = "off";
        value.spellcheck = false;
        value.maxLength = 500;
        value.value = step.value;
        const move = (text, label, dir, disabled) => {
          const b = el("button", "button-quiet disabled:opacity-40", text);
          b.type = "button";
          b.dataset.moveStep = String(i);
          b.dataset.dir = String(dir);
          b.setAttribute("aria-label", label);
          b.disabled = disabled;
          return b;
        };
        const remove = el("button", "button-danger disabled:opacity-40", "×");
        remove.type = "button";
        remove.dataset.removeStep = String(i);
        remove.setAttribute("aria-label", `Remove step ${i + 1}`);
        remove.disabled = n <= MIN_STEPS;
        row.append(kind, value, move("↑", `Move step ${i + 1} up`, -1, i === 0), move("↓", `Move step ${i + 1} down`, 1, i === n - 1), remove);
        return row;
      }),
    );
    $("funnel-add-step").disabled = n >= MAX_STEPS;
    if (focus) {
      const target = $("funnel-steps").querySelector(focus);
      if (target && !target.disabled) target.focus();
      else $("funnel-steps").querySelector(`[data-step-value="${focus.match(/\d+/)[0]}"]`)?.focus();
    }
  }

  function onStepsClick(event) {
    const target = event.target instanceof Element ? event.target.closest("button") : null;
    if (!target) return;
    const status = $("funnel-steps-status");
    if (target.dataset.moveStep !== undefined) {
      const from = Number(target.dataset.moveStep);
      const to = from + Number(target.dataset.dir);
      if (to < 0 || to >= draft.steps.length) return;
      [draft.steps[from], draft.steps[to]] = [draft.steps[to], draft.steps[from]];
      renderSteps(`[data-move-step="${to}"][data-dir="${target.dataset.dir}"]`);
      status.textContent = `Step ${from + 1} moved to position ${to + 1}.`;
    } else if (target.dataset.removeStep !== undefined) {
      const at = Number(target.dataset.removeStep);
      draft.steps.splice(at, 1);
      renderSteps(`[data-step-value="${Math.min(at, draft.steps.length - 1)}"]`);
      status.textContent = `Step ${at + 1} removed; ${draft.steps.length} steps.`;
    }
  }

  function onStepsInput(event) {
    const target = event.target;
    if (target.dataset.stepValue !== undefined) draft.steps[Number(target.dataset.stepValue)].value = target.value;
    if (target.dataset.stepKind !== undefined) {
      const i = Number(target.dataset.stepKind);
      draft.steps[i].kind = target.value;
      renderSteps(`[data-step-kind="${i}"]`);
    }
  }

  function addStep() {
    if (draft.steps.length >= MAX_STEPS) return;
    draft.steps.push({ kind: "page", value: "" });
    renderSteps(`[data-step-value="${draft.steps.length - 1}"]`);
    $("funnel-steps-status").textContent = `Step ${draft.steps.length} added.`;
  }

  async function saveFunnel(event) {
    event.preventDefault();
    const error = $("funnel-error");
    error.textContent = "";
    const name = $("funnel-name").value.trim();
    if (!name) {
      error.textContent = "Give the funnel a name.";
      $("funnel-name").focus();
      return;
    }
    const steps = [];
    for (const [i, step] of draft.steps.entries()) {
      const value = step.value.trim();
      const field = $("funnel-steps").querySelector(`[data-step-value="${i}"]`);
      if (!value || (step.kind === "page" && !value.startsWith("/"))) {
        error.textContent = value ? `Step ${i + 1}: a page path starts with “/”.` : `Step ${i + 1} needs a ${step.kind === "page" ? "page path" : "event name"}.`;
        field.focus();
        return;
      }
      // As goals are written (core/funnels.py): "Visit /path" or the event's name.
      steps.push(step.kind === "page" ? `Visit ${value}` : value);
    }
    const button = $("funnel-save");
    button.disabled = true;
    try {
      const created = await admin("POST", `/api/admin/sites/${encodeURIComponent(state.site)}/funnels`, { name, steps });
      funnels.chosen = created.id;
      draft.opener = null; // the picker instead, once it lists the new funnel (the first one shows it)
      $("funnel-dialog").close();
      await loadFunnelCard({ relist: true });
      $("funnel-pick").focus();
    } catch (failure) {
      error.textContent = noticeText(failure);
    } finally {
      button.disabled = false;
    }
  }

  function listenToFunnels() {
    $("funnel-pick").addEventListener("change", () => {
      funnels.chosen = $("funnel-pick").value;
      loadFunnelCard();
    });
    $("new-funnel").addEventListener("click", openFunnelDialog);
    const box = $("funnel-dialog");
    box.addEventListener("keydown", trapTab);
    box.addEventListener("close", () => {
      if (draft.opener && draft.opener.isConnected) draft.opener.focus();
      draft.opener = null;
    });
    box.addEventListener("click", (event) => {
      if (event.target === box) box.close();
    });
    $("funnel-cancel").addEventListener("click", () => box.close());
    $("funnel-form").addEventListener("submit", saveFunnel);
    $("funnel-add-step").addEventListener("click", addStep);
    $("funnel-steps").addEventListener("click", onStepsClick);
    $("funnel-steps").addEventListener("input", onStepsInput);
  }

  // ---- the journeys card ----------------------------------------------------------------------------

  const journeys = { asked: 0 };
  const JOURNEYS_SHOWN = 10;

  /** The period's top entry (or exit) pages: the default page and the field's suggestions. */
  async function topPages(view, mode) {
    const q = statsParams(view);
    q.set("property", mode === "exit" ? "visit:exit_page" : "visit:entry_page");
    q.set("metrics", "visitors");
    q.set("limit", "10");
    const body = await readJson("/api/stats/breakdown", q, view);
    const key = mode === "exit" ? "exit_page" : "entry_page";
    return body.results.map((row) => String(row[key])).filter((p) => p.startsWith("/"));
  }

  async function loadJourneys() {
    const asked = ++journeys.asked;
    if (state.period === "realtime") return;
    const view = state;
    const body = $("journeys-body");
    const mode = $("journeys-mode").value;
    const typed = $("journeys-page").value.trim();
    const steps = $("journeys-steps").value;
    busy(body, true);
    try {
      const pages = await topPages(view, mode);
      if (asked !== journeys.asked) return;
      $("journeys-pages").replaceChildren(
        ...pages.map((p) => {
          const option = el("option");
          option.value = p;
          return option;
        }),
      );
      const page = typed || pages[0];
      $("journeys-page").placeholder = pages[0] || "/";
      if (!page) {
        busy(body, false);
        body.replaceChildren(notice("No visits in this period."));
        return;
      }
      const q = statsParams(view);
      q.set(mode, page);
      q.set("steps", steps);
      q.set("limit", String(JOURNEYS_SHOWN));
      const answer = await readJson("/api/stats/journeys", q, view);
      if (asked !== journeys.asked) return;
      busy(body, false);
      renderJourneys(answer, page, mode, !typed);
    } catch (error) {
      if (asked !== journeys.asked) return;
      busy(body, false);
      body.replaceChildren(notice(noticeText(error), "text-amber-700"));
    }
  }

  function renderJourneys(answer, page, mode, defaulted) {
    const caption = el("p", "mb-2 text-xs text-gray-500");
    caption.dataset.testid = "journeys-caption";
    caption.textContent = `${mode === "exit" ? "Paths to the exit page" : "Paths from the entry page"} ${page}${defaulted ? " (the period's top)" : ""}, up to ${answer.steps} pages.`;
    if (!answer.results.length) {
      $("journeys-body").replaceChildren(caption, notice(`No visit ${mode === "exit" ? "ended" : "began"} on ${page} in this period.`));
      return;
    }
    const peak = Math.max(...answer.results.map((r) => r.visitors));
    const table = el("table", "w-full text-sm");
    const head = el("thead");
    const headRow = el("tr", "text-xs font-semibold uppercase tracking-wide text-gray-500");
    for (const [text, className] of [["Path", "py-1 text-left"], ["Visitors", "w-20 py-1 text-right"]]) {
      const th = el("th", className, text);
      th.scope = "col";
      headRow.append(th);
    }
    head.append(headRow);
    const tbody = el("tbody");
    for (const row of answer.results) {
      const tr = el("tr");
      tr.dataset.path = JSON.stringify(row.path);
      const cell = el("td", "relative max-w-0 py-0.5 pr-2");
      cell.append(bar((100 * row.visitors) / peak, "fill-indigo-50"));
      const text = el("span", "relative block truncate px-2 py-1 text-gray-800", row.path.join(" → "));
      text.title = row.path.join(" → ");
      cell.append(text);
      const visitors = el("td", "py-0.5 text-right tabular-nums text-gray-700", row.visitors.toLocaleString("en"));
      visitors.title = plural(row.visits, "visit");
      tr.append(cell, visitors);
      tbody.append(tr);
    }
    table.append(head, tbody);
    $("journeys-body").replaceChildren(caption, table);
  }

  function listenToJourneys() {
    $("journeys-form").addEventListener("submit", (event) => {
      event.preventDefault();
      loadJourneys();
    });
    $("journeys-mode").addEventListener("change", () => {
      $("journeys-page").value = ""; // an entry page is rarely the exit page wanted
      loadJourneys();
    });
    $("journeys-steps").addEventListener("change", loadJourneys);
  }

  // ---- settings -------------------------------------------------------------------------------------

  let sessionReady = Promise.resolve(null);
  let settingsSite = null;

  async function showSettings() {
    const signedOut = $("settings-signed-out");
    const body = $("settings-body");
    session = session || (await sessionReady) || (await fetchSession());
    setSession(session);
    signedOut.hidden = Boolean(session);
    body.hidden = !session;
    if (!session || state.view !== "settings") return;
    await refreshSites();
  }

  function guard(action) {
    return async (...args) => {
      try {
        const before = statusesSet;
        await action(...args);
        // An earlier error goes; what the action itself just said ("… saved.") stays.
        if (statusesSet === before) clearStatusFrom("settings");
      } catch (error) {
        if (error instanceof ApiError && error.status === 401) {
          setStatus("Your session ended: sign in again.", "warn", "settings");
          navigate({ view: "login" });
          return;
        }
        setStatus(error.message || "Something went wrong.", "warn", "settings");
      }
    };
  }

  const refreshSites = guard(async () => {
    const { sites } = await admin("GET", "/api/admin/sites");
    renderSettingsSites(sites);
    const select = $("settings-site");
    select.replaceChildren(
      ...sites.map((site) => {
        const option = el("option", "", site.domain);
        option.value = site.domain;
        return option;
      }),
    );
    const domains = sites.map((s) => s.domain);
    settingsSite = domains.includes(state.site) ? state.site : domains[0] || null;
    $("site-settings").hidden = !settingsSite;
    if (!settingsSite) return;
    select.value = settingsSite;
    loadAlerts(settingsSite); // and its delivery log, beside the rest
    loadReports(settingsSite);
    await loadSiteSettings(settingsSite);
  });

  function button(text, className, onClick) {
    const b = el("button", className, text);
    b.type = "button";
    b.addEventListener("click", onClick);
    return b;
  }

  /** A destructive button asks once more on itself instead of in a dialog. */
  function confirmButton(text, label, onConfirm) {
    const b = button(text, "button-danger", async () => {
      if (b.dataset.armed !== "1") {
        b.dataset.armed = "1";
        b.textContent = "Confirm";
        b.setAttribute("aria-label", `Confirm: ${label}`);
        setTimeout(() => {
          b.dataset.armed = "";
          b.textContent = text;
          b.setAttribute("aria-label", label);
        }, 5000);
        return;
      }
      b.disabled = true;
      await onConfirm();
    });
    b.setAttribute("aria-label", label);
    return b;
  }

  function renderSettingsSites(sites) {
    const list = $("settings-sites");
    if (!sites.length) {
      list.replaceChildren(el("li", "py-2 text-gray-500", "No sites yet: add the first one below."));
      return;
    }
    list.replaceChildren(
      ...sites.map((site) => {
        const row = el("li", "settings-row");
        row.dataset.siteRow = site.domain;
        const name = el("div", "min-w-0");
        const link = el("a", "font-medium text-gray-900 hover:underline", site.domain);
        link.href = urlFor({ view: "site", site: site.domain, period: DEFAULT_PERIOD, filters: "", metric: DEFAULT_METRIC });
        name.append(link, el("span", "ml-2 text-xs text-gray-500", site.tz));
        const controls = el("div", "flex items-center gap-3");
        const publicLabel = el("label", "flex items-center gap-1.5 text-xs text-gray-600");
        const toggle = el("input", "h-4 w-4 rounded border-gray-300 text-indigo-600");
        toggle.type = "checkbox";
        toggle.checked = site.public;
        toggle.addEventListener(
          "change",
          guard(async () => {
            await admin("PATCH", `/api/admin/sites/${encodeURIComponent(site.domain)}`, { public: toggle.checked });
            setStatus(`${site.domain} is now ${toggle.checked ? "public" : "private"}.`, "", "settings");
          }),
        );
        publicLabel.append(toggle, "Public");
        const remove = confirmButton(
          "Remove",
          `Remove ${site.domain}`,
          guard(async () => {
            await admin("DELETE", `/api/admin/sites/${encodeURIComponent(site.domain)}`);
            setStatus(`${site.domain} removed (its stats are kept).`, "", "settings");
            await refreshSites();
          }),
        );
        controls.append(publicLabel, remove);
        row.append(name, controls);
        return row;
      }),
    );
  }

  async function loadSiteSettings(domain) {
    const edits = adminEdits;
    const base = `/api/admin/sites/${encodeURIComponent(domain)}`;
    const [site, goals, keyList, shares] = await Promise.all([
      admin("GET", base),
      admin("GET", `${base}/goals`),
      admin("GET", `${base}/keys`),
      admin("GET", `${base}/shares`),
    ]);
    if (domain !== settingsSite) return;
    // A change made while these were read (a goal added) may be missing from them: read again,
    // rather than draw an older list over the one the change drew.
    if (edits !== adminEdits) return loadSiteSettings(domain);
    $("hostnames").value = site.hostnames.join(", ");
    renderUmami(site);
    renderGoals(domain, goals.goals);
    renderKeys(domain, keyList.keys);
    renderShares(domain, shares.shares);
    loadImports(domain);
  }

  /** The site's imports (decisions 0035, 0039): upload an export, list them with their status,
   * delete one. An Umami import (or its removal) is done in the background: the list is read
   * again every few seconds while one is pending or being removed. */
  const IMPORT_POLL_MS = 2000;
  let importPoll = null;
  const IMPORT_STATUS = { pending: "importing…", removing: "being removed…", failed: "failed" };
  // Drawn unguarded inside an upload or a deletion: a nested guard would clear the message the
  // action has just shown ("… was imported before; nothing changed.").
  async function drawImports(domain) {
    clearTimeout(importPoll);
    const { imports } = await admin("GET", `/api/admin/sites/${encodeURIComponent(domain)}/imports`);
    if (domain !== settingsSite) return;
    $("imports-list").replaceChildren(
      ...(imports.length
        ? imports.map((item) => {
            const row = el("li", "settings-row");
            row.dataset.import = item.id;
            row.dataset.importStatus = item.status || "done";
            const days = (item.ranges || []).map(([a, b]) => (a === b ? a : `${a} to ${b}`)).join(", ");
            const said = IMPORT_STATUS[item.status];
            const text = `${item.kind === "umami" ? "Umami" : "Plausible"}: ${item.filename}, ${said || days || "no days"}`;
            const label = el("span", "min-w-0 break-all", text);
            if (item.status === "failed" && item.message) {
              label.append(el("span", "block text-xs text-red-700", item.message));
            }
            row.append(label);
            if (item.status !== "pending" && item.status !== "removing") {
              row.append(
                confirmButton(
                  "Delete",
                  `Delete the import of ${item.filename}`,
                  guard(async () => {
                    const gone = await admin("DELETE", `/api/admin/sites/${encodeURIComponent(domain)}/imports/${item.id}`);
                    const later = gone.status === "removing";
                    setStatus(later ? `The import of ${item.filename} is being removed.` : `The import of ${item.filename} was deleted.`, "", "settings");
                    await drawImports(domain);
                  }),
                ),
              );
            }
            return row;
          })
        : [el("li", "text-sm text-gray-500", "No imports yet.")]),
    );
    if (imports.some((item) => item.status === "pending" || item.status === "removing")) {
      importPoll = setTimeout(() => {
        if (domain === settingsSite) loadImports(domain);
      }, IMPORT_POLL_MS);
    }
  }
  const loadImports = guard(drawImports);

  const uploadImport = guard(async (event) => {
    event.preventDefault();
    const file = $("import-file").files[0];
    if (!file || !settingsSite) return;
    const domain = settingsSite;
    const q = new URLSearchParams({ filename: file.name });
    const kind = $("import-kind").value;
    if (kind) q.set("kind", kind);
    setStatus(`Importing ${file.name}…`, "", "settings");
    const response = await fetch(`/api/admin/sites/${encodeURIComponent(domain)}/imports?${q}`, {
      method: "POST",
      headers: { Accept: "application/json", "Content-Type": "application/octet-stream", "X-CSRF-Token": session ? session.csrf : "" },
      body: file,
      credentials: "same-origin",
    });
    adminEdits++;
    if (!response.ok) {
      if (response.status === 401) setSession(null);
      throw new ApiError(response.status, await errorText(response));
    }
    const { import: made, new: isNew } = await response.json();
    if (made.status === "pending") {
      setStatus(`${file.name} is being imported; the list says when it is done.`, "", "settings");
    } else {
      const days = (made.ranges || []).map(([a, b]) => `${a} to ${b}`).join(", ");
      setStatus(isNew ? `${file.name} imported: ${days}.` : `${file.name} was imported before; nothing changed.`, "", "settings");
    }
    $("import-form").reset();
    await drawImports(domain);
  });

  /** The Umami ids, on a server whose admin API has them (issue 21). A second load of the same
   * site that finishes after the admin began typing leaves the typed id alone (a slow load used
   * to wipe it, and Save then detached the id); `saved` draws what the server now holds. */
  let umamiDrawn = { domain: null, id: "" };
  function renderUmami(site, saved = false) {
    const known = "umami_derived_id" in site;
    $("umami-settings").hidden = !known;
    if (!known) return;
    $("umami-derived").textContent = site.umami_derived_id;
    const field = $("umami-id");
    const stored = site.umami_id || "";
    if (saved || umamiDrawn.domain !== site.domain || field.value === umamiDrawn.id) field.value = stored;
    umamiDrawn = { domain: site.domain, id: stored };
  }

  function created(epochSeconds) {
    return new Date(epochSeconds * 1000).toISOString().slice(0, 10);
  }

  function renderGoals(domain, goals) {
    const base = `/api/admin/sites/${encodeURIComponent(domain)}/goals`;
    $("goals-list").replaceChildren(
      ...(goals.length
        ? goals.map((goal) => {
            const row = el("li", "settings-row");
            row.dataset.goal = goal;
            row.append(
              el("span", "min-w-0 break-all", goal),
              confirmButton(
                "Remove",
                `Remove goal ${goal}`,
                guard(async () => {
                  const after = await admin("DELETE", `${base}?${new URLSearchParams({ goal })}`);
                  renderGoals(domain, after.goals);
                }),
              ),
            );
            return row;
          })
        : [el("li", "py-2 text-gray-500", "No goals yet.")]),
    );
  }

  function renderKeys(domain, list) {
    const base = `/api/admin/sites/${encodeURIComponent(domain)}/keys`;
    $("keys-list").replaceChildren(
      ...(list.length
        ? list.map((key) => {
            const row = el("li", "settings-row");
            row.dataset.keyId = key.id;
            const text = el("span", "min-w-0");
            text.append(el("code", "font-mono text-xs", key.id), el("span", "ml-2 text-xs text-gray-500", `created ${created(key.created_at)}`));
            row.append(
              text,
              confirmButton(
                "Revoke",
                `Revoke key ${key.id}`,
                guard(async () => {
                  await admin("DELETE", `${base}/${encodeURIComponent(key.id)}`);
                  $("new-key").hidden = true;
                  renderKeys(domain, (await admin("GET", base)).keys);
                  setStatus(`Key ${key.id} revoked.`, "", "settings");
                }),
              ),
            );
            return row;
          })
        : [el("li", "py-2 text-gray-500", "No keys.")]),
    );
  }

  function renderShares(domain, list) {
    const base = `/api/admin/sites/${encodeURIComponent(domain)}/shares`;
    $("shares-list").replaceChildren(
      ...(list.length
        ? list.map((share) => {
            const row = el("li", "settings-row");
            row.dataset.shareId = share.id;
            const text = el("span", "min-w-0");
            text.append(
              el("span", "font-medium", share.label || "(no label)"),
              el("span", "ml-2 text-xs text-gray-500", `${share.id} · created ${created(share.created_at)}`),
            );
            row.append(
              text,
              confirmButton(
                "Revoke",
                `Revoke shared link ${share.label || share.id}`,
                guard(async () => {
                  await admin("DELETE", `${base}/${encodeURIComponent(share.id)}`);
                  $("new-share").hidden = true;
                  renderShares(domain, (await admin("GET", base)).shares);
                }),
              ),
            );
            return row;
          })
        : [el("li", "py-2 text-gray-500", "No shared links.")]),
    );
  }

  // ---- alerts (issue 23, decision 0036) ---------------------------------------------------------------

  /** The form's choices: the API's kind, the fields it takes, their labels and starting values. A page
   * goal and a custom event goal are both the API's `goal` kind; the goal's name tells them apart. */
  const ALERT_KINDS = {
    spike: { kind: "spike", fields: ["threshold"], threshold: ["More than (current visitors)", 100] },
    goal: {
      kind: "goal",
      fields: ["goal", "threshold", "window"],
      threshold: ["At least (pageviews)", 10],
      window: ["Within (minutes)", 60, 60],
      goals: (goal) => goal.startsWith("Visit ") && !goal.includes("*"),
      goalHelp: "One of the site's page goals (Visit /path, without *).",
      placeholder: "Visit /pricing",
    },
    event_goal: {
      kind: "goal",
      fields: ["goal", "threshold", "window"],
      threshold: ["At least (events)", 10],
      window: ["Within (minutes)", 60, 60],
      goals: (goal) => !goal.startsWith("Visit "),
      goalHelp: "One of the site's custom event goals: the event's name.",
      placeholder: "Signup",
    },
    drop: {
      kind: "drop",
      fields: ["window"],
      window: ["No pageviews for (minutes)", 15, 180],
      help: "Only in an hour of the week that had pageviews in 3 of the last 4 weeks; resolved when pageviews come back.",
    },
    new_referrer: {
      kind: "new_referrer",
      fields: ["threshold"],
      threshold: ["Top source's visitors today, at least", 1],
      help: "Today's top source (site time) was not in the top 10 of the previous 28 days.",
    },
  };
  const ALERT_FIELDS = ["goal", "threshold", "window"];
  let alertRules = []; // the selected site's, to name the rules in the delivery log

  function minutes(n) {
    return n === 1 ? "1 minute" : `${n} minutes`;
  }

  function describeRule(rule) {
    switch (rule.kind) {
      case "spike":
        return `Current visitors above ${rule.threshold}`;
      case "goal": {
        const what = rule.goal.startsWith("Visit ") ? "pageviews" : "events";
        return `${rule.goal}: ${rule.threshold}+ ${what} within ${minutes(rule.window_minutes)}`;
      }
      case "drop":
        return `No pageviews for ${minutes(rule.window_minutes)} (in usual hours)`;
      case "new_referrer":
        return rule.threshold > 1 ? `A new top source today (${rule.threshold}+ visitors)` : "A new top source today";
      default:
        return `${rule.kind} rule ${rule.id}`;
    }
  }

  function cooldownText(seconds) {
    if (!seconds) return "no cool-down";
    if (seconds % 86400 === 0) return `cool-down ${seconds / 86400} d`;
    if (seconds % 3600 === 0) return `cool-down ${seconds / 3600} h`;
    return `cool-down ${Math.round(seconds / 60)} min`;
  }

  /** A moment as UTC, to the second (the log's times are compared with a webhook receiver's). */
  function moment(epochSeconds) {
    return `${new Date(epochSeconds * 1000).toISOString().slice(0, 19).replace("T", " ")} UTC`;
  }

  function targetText(rule) {
    const parts = [];
    if (rule.webhook) parts.push(`${rule.webhook.url}${rule.webhook.format === "slack" ? " (Slack)" : ""}`);
    if (rule.emails && rule.emails.length) parts.push(rule.emails.join(", "));
    return parts.join(" and ");
  }

  /** The form shows the fields the chosen kind takes (hidden ones are not sent), with its labels
   * and starting values. */
  function showAlertFields() {
    const spec = ALERT_KINDS[$("alert-kind").value] || ALERT_KINDS.spike;
    for (const field of ALERT_FIELDS) {
      document.querySelector(`[data-alert-field="${field}"]`).hidden = !spec.fields.includes(field);
    }
    if (spec.threshold) {
      $("alert-threshold-label").textContent = spec.threshold[0];
      $("alert-threshold").value = String(spec.threshold[1]);
    }
    if (spec.window) {
      $("alert-window-label").textContent = spec.window[0];
      $("alert-window").value = String(spec.window[1]);
      $("alert-window").max = String(spec.window[2]);
    }
    $("alert-goal").value = "";
    $("alert-goal").placeholder = spec.placeholder || "";
    $("alert-goal-help").textContent = spec.goalHelp || "";
    $("alert-kind-help").textContent = spec.help || "";
    fillAlertGoals();
  }

  /** The goal field suggests the site's goals of the chosen kind, as the Goals list shows them. */
  function fillAlertGoals() {
    const spec = ALERT_KINDS[$("alert-kind").value];
    const goals = [...document.querySelectorAll("#goals-list [data-goal]")].map((row) => row.dataset.goal);
    $("alert-goal-options").replaceChildren(
      ...goals.filter((goal) => spec && spec.goals && spec.goals(goal)).map((goal) => {
        const option = el("option");
        option.value = goal;
        return option;
      }),
    );
  }

  function clearAlertError() {
    $("alert-error").textContent = "";
    for (const input of $("alert-form").querySelectorAll("[aria-invalid]")) {
      input.removeAttribute("aria-invalid");
      input.removeAttribute("aria-errormessage");
    }
  }

  /** The field an API error is about (its messages name it), so focus can go there. */
  function alertErrorField(text) {
    const t = text.toLowerCase();
    if (t.includes("secret")) return "alert-secret";
    if (t.includes("url") || t.includes("webhook:") || t.includes("webhook.")) return "alert-url";
    if (t.includes("email")) return "alert-emails";
    if (t.includes("threshold")) return "alert-threshold";
    if (t.includes("window")) return "alert-window";
    if (t.includes("goal")) return "alert-goal";
    if (t.includes("cool")) return "alert-cooldown";
    return null;
  }

  function showAlertError(text) {
    clearAlertError();
    $("alert-error").textContent = text;
    const id = alertErrorField(text);
    const input = id && $(id);
    if (input && !input.closest("[hidden]")) {
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-errormessage", "alert-error");
      input.focus();
    }
  }

  function renderAlerts(domain, rules) {
    alertRules = rules;
    const base = `/api/admin/sites/${encodeURIComponent(domain)}/alerts`;
    $("alerts-list").replaceChildren(
      ...(rules.length
        ? rules.map((rule) => {
            const row = el("li", "settings-row");
            row.dataset.alertId = rule.id;
            const text = el("div", "min-w-0 space-y-0.5");
            const head = el("div", "flex flex-wrap items-center gap-2");
            const badge = el(
              "span",
              rule.firing
                ? "rounded-full bg-amber-100 px-2 py-0.5 text-xs font-medium text-amber-800"
                : "rounded-full bg-gray-100 px-2 py-0.5 text-xs text-gray-600",
              rule.firing ? "Firing" : "Quiet",
            );
            badge.dataset.alertState = rule.firing ? "firing" : "quiet";
            head.append(el("span", "font-medium text-gray-900", describeRule(rule)), badge);
            const details = [`to ${targetText(rule)}`, cooldownText(rule.cooldown_seconds)];
            details.push(rule.last_alert_at ? `last alert ${moment(rule.last_alert_at)}` : "no alert yet");
            text.append(head, el("div", "break-all text-xs text-gray-500", details.join(" · ")));
            row.append(
              text,
              confirmButton(
                "Remove",
                `Remove alert: ${describeRule(rule)}`,
                guard(async () => {
                  await admin("DELETE", `${base}/${encodeURIComponent(rule.id)}`);
                  $("new-alert").hidden = true;
                  setStatus(`Alert removed: ${describeRule(rule)}.`, "", "settings");
                  renderAlerts(domain, (await admin("GET", base)).alerts);
                }),
              ),
            );
            return row;
          })
        : [el("li", "py-2 text-gray-500", "No alerts yet.")]),
    );
  }

  function ruleName(ruleId) {
    const rule = alertRules.find((r) => r.id === ruleId);
    return rule ? describeRule(rule) : `${ruleId} (removed)`;
  }

  function renderDeliveries(deliveries) {
    const box = $("deliveries");
    if (!deliveries.length) {
      box.replaceChildren(el("p", "py-2 text-sm text-gray-500", "No deliveries yet."));
      return;
    }
    const table = el("table", "min-w-full text-left text-sm");
    const caption = el("caption", "sr-only", "Delivery attempts, newest first");
    const head = el("tr", "border-b border-gray-200 text-xs text-gray-500");
    for (const name of ["Time", "Rule", "Message", "To", "Status", "Result"]) {
      const th = el("th", "py-1.5 pr-4 font-medium", name);
      th.scope = "col";
      head.append(th);
    }
    const thead = el("thead");
    thead.append(head);
    const tbody = el("tbody", "divide-y divide-gray-100");
    for (const entry of deliveries) {
      const row = el("tr");
      row.dataset.delivery = entry.key;
      row.dataset.channel = entry.channel || "webhook"; // logs written before email have none
      row.dataset.deliveryStatus = entry.status;
      const ok = entry.status === "delivered";
      const result = [];
      if (entry.http_status) result.push(`HTTP ${entry.http_status}`);
      if (entry.error) result.push(entry.error);
      if (entry.attempt > 1) result.push(`attempt ${entry.attempt}`);
      row.append(
        el("td", "whitespace-nowrap py-1.5 pr-4 font-mono text-xs", moment(entry.at)),
        el("td", "py-1.5 pr-4", ruleName(entry.rule_id)),
        el("td", "py-1.5 pr-4", entry.type === "resolved" ? "Resolved" : "Alert"),
        el("td", "py-1.5 pr-4", entry.channel === "email" ? "Email" : "Webhook"),
        el("td", `py-1.5 pr-4 font-medium ${ok ? "text-emerald-700" : "text-rose-700"}`, entry.status),
        el("td", "break-all py-1.5 pr-4 text-xs text-gray-600", result.join(" · ")),
      );
      tbody.append(row);
    }
    table.append(caption, thead, tbody);
    box.replaceChildren(table);
  }

  let deliveriesListed = 0; // said after a refresh (the page's first load says nothing)

  async function loadDeliveries(domain) {
    const { deliveries } = await admin("GET", `/api/admin/sites/${encodeURIComponent(domain)}/alerts/deliveries`);
    if (domain !== settingsSite) return;
    renderDeliveries(deliveries);
    deliveriesListed = deliveries.length;
  }

  /** The rules, then the log (which names them). */
  const loadAlerts = guard(async (domain) => {
    const { alerts } = await admin("GET", `/api/admin/sites/${encodeURIComponent(domain)}/alerts`);
    if (domain !== settingsSite) return;
    if ($("alerts-list").dataset.site !== domain) {
      // Another site's new secret and error do not belong here.
      $("new-alert").hidden = true;
      clearAlertError();
      $("alerts-list").dataset.site = domain;
      $("deliveries-status").textContent = "";
      showAlertFields();
    }
    renderAlerts(domain, alerts);
    await loadDeliveries(domain);
  });

  async function addAlert(event) {
    event.preventDefault();
    if (!settingsSite) return;
    const domain = settingsSite;
    const spec = ALERT_KINDS[$("alert-kind").value];
    const kind = spec.kind;
    const number = (id) => {
      const value = $(id).value.trim();
      return /^\d+$/.test(value) ? Number(value) : value; // anything else: the API says what is wrong
    };
    const body = { kind, cooldown_seconds: Number($("alert-cooldown").value) };
    if (spec.fields.includes("threshold")) body.threshold = number("alert-threshold");
    if (spec.fields.includes("goal")) body.goal = $("alert-goal").value.trim();
    if (spec.fields.includes("window")) body.window_minutes = number("alert-window");
    const url = $("alert-url").value.trim();
    if (url) {
      body.webhook = { url, format: $("alert-format").value };
      if ($("alert-secret").value) body.webhook.secret = $("alert-secret").value;
    }
    const emails = $("alert-emails").value.split(",").map((e) => e.trim()).filter(Boolean);
    if (emails.length) body.emails = emails;
    const submit = $("alert-form").querySelector("button[type=submit]");
    submit.disabled = true;
    try {
      const rule = await admin("POST", `/api/admin/sites/${encodeURIComponent(domain)}/alerts`, body);
      clearAlertError();
      $("new-alert-text").textContent = `Alert added: ${describeRule(rule)}.`;
      const secret = rule.webhook && rule.webhook.secret;
      $("new-alert-secret").textContent = secret || "";
      $("new-alert-secret-box").hidden = !secret;
      $("new-alert").hidden = false;
      $("alert-url").value = "";
      $("alert-secret").value = "";
      $("alert-emails").value = "";
      renderAlerts(domain, (await admin("GET", `/api/admin/sites/${encodeURIComponent(domain)}/alerts`)).alerts);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        setStatus("Your session ended: sign in again.", "warn", "settings");
        navigate({ view: "login" });
        return;
      }
      showAlertError(error.message || "Something went wrong.");
    } finally {
      submit.disabled = false;
    }
  }

  function listenToAlerts() {
    $("alert-kind").addEventListener("change", () => {
      clearAlertError();
      showAlertFields();
    });
    $("alert-goal").addEventListener("focus", fillAlertGoals);
    $("alert-form").addEventListener("submit", addAlert);
    $("deliveries-refresh").addEventListener(
      "click",
      guard(async () => {
        if (!settingsSite) return;
        $("deliveries-status").textContent = "Refreshing…";
        await loadAlerts(settingsSite); // the rules too: firing or quiet, and their last alert
        $("deliveries-status").textContent = `${deliveriesListed === 1 ? "1 attempt" : `${deliveriesListed} attempts`} listed.`;
      }),
    );
  }

  // ---- email reports (issue 23, decision 0038) --------------------------------------------------------

  const REPORT_KINDS = [
    ["weekly", "Weekly"],
    ["monthly", "Monthly"],
  ];

  function reportsPath(domain) {
    return `/api/admin/sites/${encodeURIComponent(domain)}/reports`;
  }

  /** As the API keeps an address: trimmed, its domain lower-cased (core/mail.py). */
  function normalAddress(raw) {
    const at = raw.lastIndexOf("@");
    return at < 0 ? raw : `${raw.slice(0, at)}@${raw.slice(at + 1).toLowerCase()}`;
  }

  function reportKindsText(kinds) {
    return kinds.length === 2 ? "the weekly and monthly reports" : `the ${kinds[0]} report`;
  }

  /** An error of the reports' API goes under their form (read out), not to the page's status. */
  function reportGuard(action) {
    return async (...args) => {
      try {
        await action(...args);
        $("report-error").textContent = "";
      } catch (error) {
        if (error instanceof ApiError && error.status === 401) {
          setStatus("Your session ended: sign in again.", "warn", "settings");
          navigate({ view: "login" });
          return;
        }
        $("report-error").textContent = error.message || "Something went wrong.";
      }
    };
  }

  /**
   * The API replaces the whole list (PUT), so the list is read again right before: an unsubscribe
   * clicked in a mail since the page was drawn is kept, not written back.
   */
  async function changeReports(domain, change) {
    const { subscriptions } = await admin("GET", reportsPath(domain));
    const next = change(subscriptions.map((s) => ({ email: s.email, kinds: [...s.kinds] })));
    const after = await admin("PUT", reportsPath(domain), { subscriptions: next.filter((s) => s.kinds.length) });
    if (domain === settingsSite) renderReports(domain, after);
    return after;
  }

  function renderReports(domain, { subscriptions, sent }) {
    $("reports-list").replaceChildren(
      ...(subscriptions.length
        ? subscriptions.map((sub) => {
            const row = el("li", "settings-row");
            row.dataset.reportEmail = sub.email;
            const toggles = el("div", "flex items-center gap-3");
            for (const [kind, label] of REPORT_KINDS) {
              const wrap = el("label", "flex items-center gap-1.5 text-xs text-gray-600");
              const box = el("input", "h-4 w-4 rounded border-gray-300 text-indigo-600");
              box.type = "checkbox";
              box.checked = sub.kinds.includes(kind);
              box.dataset.reportKind = kind;
              box.setAttribute("aria-label", `${label} report to ${sub.email}`);
              box.addEventListener(
                "change",
                reportGuard(async () => {
                  const on = box.checked;
                  try {
                    await changeReports(domain, (subs) =>
                      subs.map((s) =>
                        s.email !== sub.email ? s : { ...s, kinds: on ? [...new Set([...s.kinds, kind])] : s.kinds.filter((k) => k !== kind) },
                      ),
                    );
                  } catch (error) {
                    box.checked = !on; // as the server still has it
                    throw error;
                  }
                  setStatus(`${sub.email} ${on ? "now gets" : "no longer gets"} the ${kind} report of ${domain}.`, "", "settings");
                }),
              );
              wrap.append(box, label);
              toggles.append(wrap);
            }
            toggles.append(
              confirmButton(
                "Remove",
                `Remove ${sub.email} from the reports`,
                reportGuard(async () => {
                  await changeReports(domain, (subs) => subs.filter((s) => s.email !== sub.email));
                  setStatus(`${sub.email} no longer gets reports of ${domain}.`, "", "settings");
                }),
              ),
            );
            row.append(el("span", "min-w-0 break-all", sub.email), toggles);
            return row;
          })
        : [el("li", "py-2 text-gray-500", "Nobody gets reports yet.")]),
    );
    $("reports-sent").replaceChildren(
      ...(sent.length
        ? sent.map((entry) => {
            const row = el("li", "py-1.5 text-xs text-gray-600");
            row.dataset.reportSent = `${entry.kind}.${entry.period}`;
            row.textContent = `${entry.kind === "weekly" ? "Weekly" : "Monthly"} ${entry.period} to ${entry.email}: ${entry.status}, ${moment(entry.at)}`;
            return row;
          })
        : [el("li", "py-2 text-gray-500", "None sent yet.")]),
    );
  }

  const loadReports = guard(async (domain) => {
    let reports;
    try {
      reports = await admin("GET", reportsPath(domain));
    } catch (error) {
      // A server without email reports (an older query function) has no such route.
      if (error instanceof ApiError && error.status === 404) {
        $("report-settings").hidden = true;
        return;
      }
      throw error;
    }
    if (domain !== settingsSite) return;
    $("report-settings").hidden = false;
    if ($("reports-list").dataset.site !== domain) {
      $("report-error").textContent = "";
      $("reports-list").dataset.site = domain;
    }
    renderReports(domain, reports);
  });

  function listenToReports() {
    $("report-form").addEventListener(
      "submit",
      reportGuard(async (event) => {
        event.preventDefault();
        if (!settingsSite) return;
        const email = normalAddress($("report-email").value.trim());
        const kinds = REPORT_KINDS.map(([kind]) => kind).filter((kind) => $(`report-${kind}`).checked);
        if (!kinds.length) throw new Error("Choose the weekly report, the monthly one, or both.");
        const domain = settingsSite;
        await changeReports(domain, (subs) => {
          const known = subs.find((s) => s.email === email);
          if (!known) return [...subs, { email, kinds }];
          known.kinds = [...new Set([...known.kinds, ...kinds])];
          return subs;
        });
        $("report-email").value = "";
        setStatus(`${email} gets ${reportKindsText(kinds)} of ${domain}.`, "", "settings");
      }),
    );
  }

  function listenToSettings() {
    listenToAlerts();
    listenToReports();
    $("settings-site").addEventListener("change", () => navigate({ site: $("settings-site").value }, { replace: true }));
    $("add-site").addEventListener(
      "submit",
      guard(async (event) => {
        event.preventDefault();
        const result = await admin("POST", "/api/admin/sites", {
          domain: $("new-domain").value.trim(),
          tz: $("new-tz").value.trim() || "UTC",
          public: $("new-public").checked,
        });
        $("created-site-key").textContent = result.key;
        $("created-site-snippet").textContent = result.snippet;
        $("created-site").hidden = false;
        $("new-domain").value = "";
        navigate({ site: result.site.domain }, { replace: true });
      }),
    );
    $("add-goal").addEventListener(
      "submit",
      guard(async (event) => {
        event.preventDefault();
        const goal = $("new-goal").value.trim();
        if (!goal || !settingsSite) return;
        const after = await admin("POST", `/api/admin/sites/${encodeURIComponent(settingsSite)}/goals`, { goal });
        $("new-goal").value = "";
        renderGoals(settingsSite, after.goals);
        setStatus(`Goal “${goal}” added.`, "", "settings");
      }),
    );
    $("create-key").addEventListener(
      "click",
      guard(async () => {
        if (!settingsSite) return;
        const base = `/api/admin/sites/${encodeURIComponent(settingsSite)}/keys`;
        const result = await admin("POST", base);
        $("new-key-value").textContent = result.key;
        $("new-key").hidden = false;
        renderKeys(settingsSite, (await admin("GET", base)).keys);
      }),
    );
    $("add-share").addEventListener(
      "submit",
      guard(async (event) => {
        event.preventDefault();
        if (!settingsSite) return;
        const base = `/api/admin/sites/${encodeURIComponent(settingsSite)}/shares`;
        const result = await admin("POST", base, { label: $("new-share-label").value.trim() });
        const link = $("new-share-url");
        link.href = result.url;
        link.textContent = result.url;
        $("new-share").hidden = false;
        $("new-share-label").value = "";
        renderShares(settingsSite, (await admin("GET", base)).shares);
      }),
    );
    $("hostnames-form").addEventListener(
      "submit",
      guard(async (event) => {
        event.preventDefault();
        if (!settingsSite) return;
        const hostnames = $("hostnames").value.split(",").map((h) => h.trim()).filter(Boolean);
        const site = await admin("PATCH", `/api/admin/sites/${encodeURIComponent(settingsSite)}`, { hostnames });
        $("hostnames").value = site.hostnames.join(", ");
        setStatus(`Allowed hostnames of ${site.domain} saved.`, "", "settings");
      }),
    );
    $("import-form").addEventListener("submit", uploadImport);
    $("umami-form").addEventListener(
      "submit",
      guard(async (event) => {
        event.preventDefault();
        if (!settingsSite) return;
        const typed = $("umami-id").value.trim();
        const site = await admin("PATCH", `/api/admin/sites/${encodeURIComponent(settingsSite)}`, { umami_id: typed || null });
        renderUmami(site, true);
        setStatus(
          site.umami_id ? `Umami website id ${site.umami_id} attached to ${site.domain}.` : `No Umami website id attached to ${site.domain}.`,
          "",
          "settings",
        );
      }),
    );
  }

  // ---- wiring ---------------------------------------------------------------------------------------

  function sameDashboardLink(link) {
    if ((link.getAttribute("href") || "").startsWith("#")) return false; // e.g. "skip to content"
    return (
      link.origin === location.origin &&
      link.pathname === "/" &&
      !link.hasAttribute("download") &&
      (!link.target || link.target === "_self")
    );
  }

  function listen() {
    document.addEventListener("click", (event) => {
      const target = event.target instanceof Element ? event.target : null;
      if (!target) return;
      const link = target.closest("a[href]");
      if (link && sameDashboardLink(link)) {
        if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
        event.preventDefault();
        history.pushState(null, "", link.pathname + link.search);
        apply(readState());
        return;
      }
      const inSite = target.closest("#view-site");
      if (!inSite) return;
      const filter = target.closest("button[data-filter]");
      if (filter) return addFilter(filter.dataset.filter);
      const importedToggle = target.closest("#metrics button[data-imported-toggle]");
      if (importedToggle) {
        withImported = importedToggle.dataset.importedToggle === "true";
        load($("metrics"), `/api/cards/metrics?${statsParams()}&metric=${encodeURIComponent(state.metric)}&with_imported=${withImported}`);
        return loadGraph();
      }
      const tile = target.closest("#metrics button[data-metric]");
      if (tile && !tile.disabled) return navigate({ metric: tile.dataset.metric });
      const tab = target.closest("[role=tab]");
      if (tab) return selectTab(tab);
      const propKey = target.closest("button[data-prop-key]");
      if (propKey) {
        chosenPropKey = propKey.dataset.propKey;
        return loadPropValues();
      }
      const remove = target.closest("button[data-remove-filter]");
      if (remove) return removeFilter(Number(remove.dataset.removeFilter));
      const edit = target.closest("button[data-edit-filter]");
      if (edit) return openFilterDialog(Number(edit.dataset.editFilter), edit);
      const csv = target.closest("[data-csv]");
      if (csv) return csvFor(csv.closest("[data-card]"));
      return undefined;
    });
    for (const list of document.querySelectorAll("[role=tablist]")) list.addEventListener("keydown", onTabKey);
    $("clear-filters").addEventListener("click", () => {
      navigate({ filters: "" });
      $("period").focus(); // the filter bar, and the button, are gone
    });
    $("period").addEventListener("change", pickPeriod);
    $("compare").addEventListener("change", () => navigate({ compare: $("compare").value }));
    $("custom-range").addEventListener("submit", applyCustomRange);
    $("export-zip").addEventListener("click", (event) => download(`/api/cards/export.zip?${statsParams()}`, event.currentTarget));
    $("login-form").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", signOut);
    window.addEventListener("popstate", () => apply(readState()));
    for (const type of ["pointerdown", "pointermove", "keydown", "wheel", "touchstart", "focus"]) {
      window.addEventListener(type, attention, { passive: true, capture: true });
    }
    scheduleRealtime();
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) return;
      attention();
      // Back in view: catch up at once instead of waiting for the next tick.
      if (state.view === "site" && state.period === "realtime") pollRealtime();
      else if (state.view === "site") pollLive();
      else if (state.view === "sites") window.htmx.trigger($("sites-card"), "refresh");
    });
    setInterval(tickAsOf, 1000);
    listenToSettings();
    listenToFilterDialog();
    listenToSegments();
    listenToFunnels();
    listenToJourneys();
  }

  function nameTabs() {
    for (const card of document.querySelectorAll("[data-card]")) {
      const title = card.querySelector("h2").textContent.trim();
      card.querySelector("[data-csv]").setAttribute("aria-label", `Download ${title} as CSV`);
      const panel = card.querySelector("[data-panel]");
      panel.id = `panel-${card.dataset.card}`;
      for (const tab of card.querySelectorAll("[role=tab]")) {
        tab.id = `tab-${card.dataset.card}-${tab.dataset.property}`;
        tab.setAttribute("aria-controls", panel.id);
      }
    }
  }

  // htmx initialises on DOMContentLoaded; this deferred script runs just before that, so the
  // first cards are handed over once htmx is ready.
  const domReady = new Promise((resolve) => {
    if (document.readyState === "complete") resolve();
    else document.addEventListener("DOMContentLoaded", () => resolve(), { once: true });
  });

  takeKey();
  state = readState();
  // The admin check runs beside the first cards, never before them (shared links skip it).
  sessionReady = state.auth || !hinted() ? Promise.resolve(null) : fetchSession();
  nameTabs();
  listenToHtmx();
  listen();
  domReady.then(() => {
    apply(readState(), { initial: true });
    sessionReady.then((value) => {
      if (!session && (value || hinted())) setSession(value);
    });
  });
})();
