// Bundles the real npm trackers for the browser tests (tests/e2e/test_trackers_e2e.py) into
// tests/trackers/dist/, with the esbuild the project already installs:
//   plausible-tracker.js            plausible-tracker 0.3.9 as window.PlausibleTracker (its default)
//   plausible-analytics-tracker.js  @plausible-analytics/tracker 0.4.6 as window.PlausibleAnalytics
//   umami.js                        Umami 2.10.0's script.js: src/tracker/index.js minified, as
//                                   Umami's own build (rollup + terser) makes it
// and prints each file's raw and gzip size (make bench reports them next to ours).
import { mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");
mkdirSync(dist, { recursive: true });

const bundles = {
  "plausible-tracker.js": 'export { default } from "plausible-tracker";',
  "plausible-analytics-tracker.js": 'export * from "@plausible-analytics/tracker";',
};
const globals = {
  "plausible-tracker.js": "PlausibleTracker",
  "plausible-analytics-tracker.js": "PlausibleAnalytics",
};

for (const [file, source] of Object.entries(bundles)) {
  await build({
    stdin: { contents: source, resolveDir: here, loader: "js" },
    outfile: join(dist, file),
    bundle: true,
    minify: true,
    format: "iife",
    globalName: globals[file],
    // plausible-tracker reads process.env.NODE_ENV only to skip navigation in its own tests.
    define: { "process.env.NODE_ENV": '"production"' },
    target: "es2017",
    logLevel: "warning",
  });
}
// Umami's tracker is a self-running IIFE that reads its <script> tag's data-* attributes.
await build({
  entryPoints: [join(here, "node_modules", "umami", "src", "tracker", "index.js")],
  outfile: join(dist, "umami.js"),
  bundle: false,
  minify: true,
  target: "es2018",
  logLevel: "warning",
});

for (const file of [...Object.keys(bundles), "umami.js"]) {
  const code = readFileSync(join(dist, file));
  const gzipped = gzipSync(code, { level: 9 }).length;
  console.log(`tests/trackers/dist/${file}: ${code.length} bytes raw, ${gzipped} bytes gzip`);
}
