// Builds the static dashboard into dashboard/dist/: the HTML shell, app.js minified by esbuild,
// htmx and Chart.js copied from node_modules (never a CDN), and Tailwind compiled from
// src/input.css. Runs offline after `npm ci`.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");
// Direct devDependencies of the root package.json, so npm always installs them at the top level.
const pkgDir = (name) => join(here, "..", "node_modules", name);

rmSync(dist, { recursive: true, force: true });
mkdirSync(join(dist, "vendor"), { recursive: true });

const copies = [
  [join(here, "src", "index.html"), join(dist, "index.html")],
  [join(pkgDir("htmx.org"), "dist", "htmx.min.js"), join(dist, "vendor", "htmx.min.js")],
  [join(pkgDir("chart.js"), "dist", "chart.umd.min.js"), join(dist, "vendor", "chart.umd.min.js")],
];
for (const [from, to] of copies) copyFileSync(from, to);

await build({
  entryPoints: [join(here, "src", "app.js")],
  outfile: join(dist, "app.js"),
  bundle: false,
  minify: true,
  // ES2020, as the tracker: Chrome/Edge 80, Firefox 74, Safari 13.1 (htmx 2 needs as much).
  target: "es2020",
  legalComments: "none",
  logLevel: "warning",
});

const tailwind = spawnSync(
  process.execPath,
  [
    join(pkgDir("tailwindcss"), "lib", "cli.js"),
    "--config", join(here, "tailwind.config.js"),
    "--input", join(here, "src", "input.css"),
    "--output", join(dist, "app.css"),
    "--minify",
  ],
  // Tailwind 3 checks nothing online; this only silences browserslist's "data is old" notice.
  { stdio: "inherit", env: { ...process.env, BROWSERSLIST_IGNORE_OLD_DATA: "1" } },
);
if (tailwind.status !== 0) process.exit(tailwind.status ?? 1);

for (const file of ["index.html", "app.js", "app.css", "vendor/htmx.min.js", "vendor/chart.umd.min.js"]) {
  const path = join(dist, file);
  const bytes = readFileSync(path);
  console.log(
    `${relative(process.cwd(), path)}: ${bytes.length} bytes, ${gzipSync(bytes).length} gzip`,
  );
}
