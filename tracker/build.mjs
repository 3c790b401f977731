// Minifies tracker/src/script.js into tracker/dist/script.js and reports its raw and gzip size.
// The budget is 1,024 bytes gzipped (tests/unit/test_tracker_build.py checks it too): the script
// sits on every page of every client site.
import { mkdirSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const outfile = join(here, "dist", "script.js");
const GZIP_BUDGET = 1024;

mkdirSync(dirname(outfile), { recursive: true });
await build({
  entryPoints: [join(here, "src", "script.js")],
  outfile,
  bundle: false,
  minify: true,
  // ES2020 (optional chaining): Chrome/Edge 80, Firefox 74, Safari 13.1; older browsers skip it.
  target: "es2020",
  legalComments: "none",
  logLevel: "warning",
});

const code = readFileSync(outfile);
const gzipped = gzipSync(code, { level: 9 }).length;
console.log(
  `${relative(process.cwd(), outfile)}: ${code.length} bytes raw, ${gzipped} bytes gzip (budget ${GZIP_BUDGET})`,
);
if (gzipped > GZIP_BUDGET) {
  console.error(`tracker is over its gzip budget of ${GZIP_BUDGET} bytes`);
  process.exit(1);
}
