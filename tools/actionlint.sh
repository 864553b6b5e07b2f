#!/usr/bin/env bash
# Lints the GitHub Actions workflows (.github/workflows/*.yml) with actionlint.
# actionlint also runs shellcheck on every `run:` step when shellcheck is on PATH.
#
#   tools/actionlint.sh [ACTIONLINT_ARGS...]    e.g. tools/actionlint.sh -verbose
#
# actionlint is installed once at the pinned version with `go install` (from the
# Go module proxy; needs Go) into $AMARKTAI_CACHE_DIR/actionlint-VERSION/bin,
# outside the checkout; later runs reuse it. Extra arguments go to actionlint.
set -euo pipefail

ACTIONLINT_VERSION="1.7.12"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_dir="${AMARKTAI_CACHE_DIR:-$HOME/.cache/amarktai-infra}"
install_dir="$cache_dir/actionlint-$ACTIONLINT_VERSION"
actionlint="$install_dir/bin/actionlint"

installed_version() { "$actionlint" -version 2>/dev/null | head -n 1 || true; }

if [ "$(installed_version)" != "v$ACTIONLINT_VERSION" ]; then
  command -v go >/dev/null || { echo "error: actionlint v$ACTIONLINT_VERSION is not installed and Go is not on PATH to build it" >&2; exit 1; }
  echo "installing actionlint v$ACTIONLINT_VERSION into $install_dir (go install, once)" >&2
  mkdir -p "$install_dir"
  # Build into a private directory, then rename: concurrent runs never see a partial binary.
  staging="$(mktemp -d "$install_dir/.install.XXXXXX")"
  trap 'rm -rf "$staging"' EXIT
  # From a neutral directory so no go.mod/go.work around the caller is involved.
  (cd "$staging" && GOBIN="$staging" GOWORK=off go install "github.com/rhysd/actionlint/cmd/actionlint@v$ACTIONLINT_VERSION")
  mkdir -p "$install_dir/bin"
  mv -f "$staging/actionlint" "$actionlint"
  rm -rf "$staging"
  trap - EXIT
  version="$(installed_version)"
  [ "$version" = "v$ACTIONLINT_VERSION" ] || { echo "error: installed actionlint reports '$version', expected v$ACTIONLINT_VERSION" >&2; exit 1; }
fi

cd "$repo"
shopt -s nullglob
workflows=(.github/workflows/*.yml .github/workflows/*.yaml)
if [ "${#workflows[@]}" -eq 0 ]; then
  echo "error: no workflows in $repo/.github/workflows" >&2
  exit 1
fi
if command -v shellcheck >/dev/null; then
  shellcheck_note="with $(shellcheck --version | sed -n 's/^version: /shellcheck /p')"
else
  shellcheck_note="without shellcheck (not on PATH: run: steps are not shellchecked)"
fi
echo "actionlint $(installed_version) $shellcheck_note: ${workflows[*]}" >&2
exec "$actionlint" "$@" "${workflows[@]}"
