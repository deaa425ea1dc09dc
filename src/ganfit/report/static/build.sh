#!/usr/bin/env bash
# Rebuild ganfit-viewer.min.js from the pinned npm packages in src/package.json (needs node + npm and the npm
# registry; nothing in ganfit runs this at install, run or test time — the bundle is committed).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$here/src/package.json" "$here/src/viewer.js" "$work/"
cd "$work"
npm install --no-audit --no-fund --silent
npx esbuild viewer.js --bundle --minify --format=iife --target=chrome110,firefox115,safari16 \
  --legal-comments=eof --banner:js="/* ganfit-viewer: three.js 0.187.0 (MIT, see LICENSE.three.txt) + GLTFLoader + OrbitControls */" --outfile="$here/ganfit-viewer.min.js"
cp node_modules/three/LICENSE "$here/LICENSE.three.txt"
echo "wrote $here/ganfit-viewer.min.js ($(wc -c <"$here/ganfit-viewer.min.js") bytes)"
