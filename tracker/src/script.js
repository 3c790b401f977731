/*
 * LiveInsight tracker. Speaks the Plausible Events API (docs/compat.md §1): POST {n,u,d,r,w,h} and
 * props, interactive, revenue (the long names of p, i, $) as text/plain (fetch's default for a string body: a "simple" request, no CORS preflight) with
 * keepalive, which outlives the page: a click that leaves the page is still counted, and nothing
 * delays the navigation.
 *
 * Privacy: no cookies, no identifiers, nothing written to any storage. The only storage access is
 * reading the opt-out flag localStorage.liveinsight_ignore == "true".
 *
 * <script defer src="https://stats.example.com/js/script.js" data-domain="example.com"></script>
 *   data-domain              site domain (default: location.hostname)
 *   data-api                 event endpoint (default: the script's origin + /api/event)
 *   data-hash                hash-based routing: send h:1 and count #fragment changes
 *   data-include-localhost   also send from localhost / 127.x / [::1] / file:
 *   data-404                 on a "not found" page: also send the event 404 {path} (Plausible's)
 *
 * Sent on its own: pageviews (load, pushState, popstate), "Outbound Link: Click" {url} and
 * "File Download" {url} for clicked links, and on leaving a page (hidden or closed) "engagement"
 * with sd (deepest scroll, % of the page) and e (visible ms). An SPA navigation's pageview carries
 * the engagement of the page it leaves as l: {u, sd, e} (our extension of the API: one request
 * for the two). A page prerendered by speculation rules counts only once it is shown.
 *
 * Custom events: liveinsight(name, {props, interactive, revenue, url, callback}) (callback gets the
 * fetch Response, with .status, or {error}); calls made before the script loaded are queued by
 * the snippet
 *   window.liveinsight=window.liveinsight||function(){(window.liveinsight.q=window.liveinsight.q||[]).push(arguments)}
 */
((w, d) => {
  const prev = w.liveinsight;
  // Loaded twice (e.g. two tags): a second copy would wrap pushState again and double-count.
  if (prev?.l) return;

  const loc = w.location;
  const script = d.currentScript;
  const attr = (name) => script?.getAttribute("data-" + name);
  const hashMode = attr("hash") != null;
  const domain = attr("domain") || loc.hostname;
  const api = attr("api") || new URL("/api/event", script?.src || loc.href).href;
  const optedOut = () => {
    try {
      return localStorage.liveinsight_ignore == "true";
    } catch {
      // Storage blocked (sandboxed iframe, strict privacy settings): nobody opted out here.
    }
  };

  const send = (n, extra, cb) =>
    fetch(api, {
      method: "POST",
      keepalive: true,
      body: JSON.stringify({ n, u: loc.href, d: domain, h: +hashMode, ...extra }),
    }).then(cb, (error) => cb?.({ error }));

  // Engagement of the page last counted: its URL, the start of the current visible stretch (0
  // while hidden) and the lowest point of the page seen. A stretch is sent when it ends: the page
  // is hidden (which includes being closed or left) or an SPA navigation replaces it.
  let pageUrl, since, bottom;
  const seen = () => {
    bottom = Math.max(bottom, w.scrollY + w.innerHeight);
  };
  // The engagement of the stretch just ended, {u, sd, e}: none without visible time (nothing new
  // to say, and no scrolling happens unseen either).
  const engaged = () => {
    const e = since && Date.now() - since;
    const sd = Math.min(100, ((bottom * 100) / d.body.scrollHeight) | 0);
    if (e) return { u: pageUrl, sd, e };
  };

  const track = (name, opts = {}) => {
    const cb = opts.callback;
    // Same rule as Plausible's tracker: no numbers from a developer's own machine unless asked.
    // (A file: page has no hostname.)
    if (
      (attr("include-localhost") == null &&
        /^(localhost|127\.[\d.]+|\[::1?\]|)$/.test(loc.hostname)) ||
      optedOut()
    )
      return cb?.();
    // An SPA navigation sends the engagement of the page it leaves with its pageview, as `l`:
    // one request for the pair, not two (decision 0041).
    let left;
    if (name == "pageview") {
      left = engaged();
      pageUrl = loc.href;
      bottom = 0;
      since = !d.hidden && Date.now();
      seen();
    }
    // Options go out under their long names (props, interactive, revenue, url), which the API
    // accepts as well as p, i, $, u; the callback, a function, is no JSON.
    send(name, { r: d.referrer, w: w.innerWidth, ...opts, l: left }, cb);
  };

  // Automatic pageviews skip a repeat of the page just counted (pushState followed by popstate
  // describe one navigation). A new #fragment fires popstate too: hash mode needs no hashchange.
  let last;
  const page = () => {
    const key = hashMode ? loc.href : loc.href.split("#")[0];
    if (key != last) track("pageview");
    last = key;
  };

  track.l = 1;
  w.liveinsight = track;

  const h = w.history;
  const push = h.pushState;
  h.pushState = function () {
    push.apply(this, arguments);
    page();
  };
  const on = (target, type, fn) => target.addEventListener(type, fn);
  on(w, "popstate", page);
  on(w, "scroll", seen);
  on(d, "visibilitychange", () => {
    if (d.hidden) {
      const left = engaged();
      if (left) send("engagement", left);
      since = 0;
    } else since = pageUrl && Date.now();
  });

  // Links: a middle click opens them too, other buttons do not. Outbound wins over download, as
  // in Plausible: a PDF on another site is an outbound click.
  const click = (e) => {
    const a = e.target.closest?.("a[href]");
    if (!a || e.button > 1) return;
    const url = a.href;
    const file = url.split("?")[0];
    if (a.host && a.host != loc.host) track("Outbound Link: Click", { props: { url } });
    else if (/\.(pdf|xlsx?|docx?|pptx?|csv|txt|zip|rar|7z|gz|dmg|exe|pkg|mp[34]|mov)$/i.test(file))
      track("File Download", { props: { url: file } });
  };
  on(d, "click", click);
  on(d, "auxclick", click);

  const start = () => {
    page();
    if (attr("404") != null) track("404", { props: { path: loc.pathname } });
  };
  // A prerendered page (speculation rules) counts only once the visitor actually sees it.
  if (d.prerendering) on(d, "prerenderingchange", start);
  else start();

  for (const args of prev?.q || []) track(...args);
})(window, document);
