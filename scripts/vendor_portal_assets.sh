#!/usr/bin/env bash
# Vendor the portal's browser libraries from npm (tools/portal-assets, exact pins and a
# lock file) into cloud/portal/static/vendor with their licences and a VERSIONS.json.
# The result is committed: running the portal needs no build step and no CDN. Idempotent:
# the vendor directory is rebuilt from the lock file every time.
# Usage: scripts/vendor_portal_assets.sh  (needs node and npm)
set -euo pipefail
cd "$(dirname "$0")/.."
src=tools/portal-assets
modules="$src/node_modules"
out=cloud/portal/static/vendor

(cd "$src" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

# name in npm, then the files it ships (relative to its package directory)
declare -A files=(
  [htmx.org]="dist/htmx.min.js LICENSE"
  [uplot]="dist/uPlot.iife.min.js dist/uPlot.min.css LICENSE"
)

rm -rf "$out"
mkdir -p "$out"
for name in htmx.org uplot; do
  version="$(node -p "require('./$modules/$name/package.json').version")"
  dest="$out/$name-$version"
  mkdir -p "$dest"
  for file in ${files[$name]}; do
    cp "$modules/$name/$file" "$dest/$(basename "$file")"
  done
done

# {name: {version, licence (SPDX, from the package's own metadata), path, files}}
node - "$modules" "$out" htmx.org uplot <<'JS'
const fs = require("fs");
const path = require("path");
const [modules, out, ...names] = process.argv.slice(2);
const versions = {};
for (const name of names) {
  const meta = JSON.parse(fs.readFileSync(path.join(modules, name, "package.json"), "utf8"));
  const dir = `${name}-${meta.version}`;
  versions[name] = {
    version: meta.version,
    licence: meta.license,
    path: dir,
    files: fs.readdirSync(path.join(out, dir)).sort(),
  };
}
fs.writeFileSync(path.join(out, "VERSIONS.json"), JSON.stringify(versions, null, 2) + "\n");
JS
echo "vendored into $out:"
cat "$out/VERSIONS.json"
