/*
 * LiveInsight tracker. Speaks the Plausible Events API (COMPAT.md §1): POST {n,u,d,r,w,h,p,i,$}
 * as text/plain (a "simple" request, so no CORS preflight) with fetch keepalive.
 *
 * Privacy: no cookies, no identifiers, nothing written to any storage. The only storage access is
 * reading the opt-out flag localStorage.liveinsight_ignore == "true".
 *
 * <script defer src="https://stats.example.com/script.js" data-domain="example.com"></script>
 *   data-domain              site domain (default: location.hostname)
 *   data-api                 event endpoint (default: the script's origin + /api/event)
 *   data-hash                hash-based routing: send h:1 and count hashchange
 *   data-include-localhost   also send from localhost / 127.x / [::1] / file:
 *
 * Custom events: liveinsight(name, {props, interactive, revenue, callback}); calls made before the
 * script loaded are queued by the snippet
 *   window.liveinsight=window.liveinsight||function(){(window.liveinsight.q=window.liveinsight.q||[]).push(arguments)}
 */
((w, d) => {
  const prev = w.liveinsight;
  // Loaded twice (e.g. two tags): a second copy would wrap pushState again and double-count.
  if (prev && prev.l) return;

  const loc = w.location;
  const script = d.currentScript;
  const attr = (name) => script && script.getAttribute(name);
  const has = (name) => !!script && script.hasAttribute(name);

  const domain = attr("data-domain") || loc.hostname;
  const api = attr("data-api") || new URL("/api/event", (script && script.src) || loc.href).href;
  const hashMode = has("data-hash");
  const includeLocal = has("data-include-localhost");

  const ignored = () => {
    // Same rule as Plausible's tracker: no numbers from a developer's own machine unless asked.
    if (
      !includeLocal &&
      (/^localhost$|^127(\.\d+){0,2}\.\d+$|^\[::1?\]$/.test(loc.hostname) || loc.protocol == "file:")
    )
      return 1;
    try {
      return localStorage.liveinsight_ignore == "true";
    } catch (e) {
      // Storage blocked (sandboxed iframe, strict privacy settings): nobody opted out here.
      return 0;
    }
  };

  const track = (name, opts) => {
    opts = opts || {};
    const cb = opts.callback;
    if (ignored()) return cb && cb();
    const payload = {
      n: name,
      u: loc.href,
      d: domain,
      r: d.referrer || null,
      w: w.innerWidth,
    };
    if (hashMode) payload.h = 1;
    if (opts.props) payload.p = opts.props;
    if (opts.interactive != null) payload.i = !!opts.interactive;
    if (opts.revenue) payload.$ = opts.revenue;
    fetch(api, {
      method: "POST",
      headers: { "Content-Type": "text/plain" },
      keepalive: true,
      body: JSON.stringify(payload),
    }).then(
      (r) => cb && cb({ status: r.status }),
      (error) => cb && cb({ error }),
    );
  };

  // Automatic pageviews skip a repeat of the page just counted: pushState followed by popstate,
  // or popstate followed by hashchange in hash mode, describe one navigation.
  let last;
  const page = () => {
    const key = hashMode ? loc.href : loc.href.split("#")[0];
    if (key == last) return;
    last = key;
    track("pageview");
  };

  track.l = 1;
  w.liveinsight = track;

  const h = w.history;
  const push = h.pushState;
  if (push)
    h.pushState = function () {
      push.apply(this, arguments);
      page();
    };
  w.addEventListener("popstate", page);
  if (hashMode) w.addEventListener("hashchange", page);

  // A prerendered page (speculation rules) counts only once the visitor actually sees it.
  if (d.prerendering) d.addEventListener("prerenderingchange", page, { once: true });
  else page();

  const queue = (prev && prev.q) || [];
  for (let i = 0; i < queue.length; i++) track.apply(null, queue[i]);
})(window, document);
