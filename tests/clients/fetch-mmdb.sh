#!/usr/bin/env bash
# Fetches the country database the edge's geo tests read (edge/src/geo.rs) and prints its absolute path on
# stdout, so a caller can write: export STRATA_TEST_MMDB="$(bash tests/clients/fetch-mmdb.sh)".
#
# The database is the npm package @ip-location-db/geo-whois-asn-country-mmdb (flat `country_code` schema,
# data CC0 per the package metadata, sources under CC BY 4.0 by the NRO per its README), fetched with
# `npm pack` into ${STRATA_CACHE_DIR:-$HOME/.cache/strata}/mmdb. Of the package's three files this picks
# geo-whois-asn-country.mmdb, the one covering both IPv4 and IPv6.
#
# Idempotent: when the file is already in the cache nothing is downloaded. The version is pinned so test
# expectations do not drift with the daily data; set STRATA_MMDB_VERSION to another version (or "latest").
# Everything but the final path goes to stderr.
set -euo pipefail

PACKAGE="@ip-location-db/geo-whois-asn-country-mmdb"
VERSION="${STRATA_MMDB_VERSION:-2.3.2026061719}"
FILE="geo-whois-asn-country.mmdb"
CACHE_DIR="${STRATA_CACHE_DIR:-$HOME/.cache/strata}/mmdb"

log() { printf 'fetch-mmdb: %s\n' "$*" >&2; }
die() { printf 'fetch-mmdb: ERROR: %s\n' "$*" >&2; exit 1; }

mkdir -p "$CACHE_DIR"
CACHE_DIR="$(cd "$CACHE_DIR" && pwd -P)"
TARGET="$CACHE_DIR/$VERSION/$FILE"

if [ -s "$TARGET" ]; then
    printf '%s\n' "$TARGET"
    exit 0
fi

command -v npm >/dev/null 2>&1 || die "npm is required to fetch $PACKAGE"
command -v tar >/dev/null 2>&1 || die "tar is required to unpack $PACKAGE"

WORK="$(mktemp -d "$CACHE_DIR/.fetch.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

log "npm pack $PACKAGE@$VERSION"
# npm pack prints the tarball's name on stdout: keep it off ours.
npm pack --silent --pack-destination "$WORK" "$PACKAGE@$VERSION" >&2 \
    || die "npm pack $PACKAGE@$VERSION failed"

shopt -s nullglob
TARBALLS=("$WORK"/*.tgz)
shopt -u nullglob
[ "${#TARBALLS[@]}" = 1 ] || die "expected one tarball from npm pack, found ${#TARBALLS[@]}"

tar -xzf "${TARBALLS[0]}" -C "$WORK" || die "cannot unpack ${TARBALLS[0]}"
[ -s "$WORK/package/$FILE" ] || die "$PACKAGE@$VERSION has no package/$FILE"

# $WORK is on the cache's file system, so this is one rename: a concurrent or interrupted run never leaves
# a partial file at $TARGET.
mkdir -p "$CACHE_DIR/$VERSION"
mv -f "$WORK/package/$FILE" "$TARGET"
log "cached $TARGET"
printf '%s\n' "$TARGET"
