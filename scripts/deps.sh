#!/usr/bin/env bash
# Installs the Debian packages taskslaps needs to build, test and run its demo,
# only those that are missing. Safe to run again; needs root to install.
# postgresql-server-dev-15: the node structs of PostgreSQL 15's parse tree,
# which the SQL reader reads from libpg_query (build time only).
set -euo pipefail

pkgs=(cmake gcc clang pkg-config libyaml-dev libcjson-dev libssl-dev libpq-dev
      libgit2-dev libsystemd-dev libcmocka-dev postgresql-15 git openssh-client python3
      libclang-rt-14-dev python3-yaml python3-jsonschema strace
      libpg-query-dev libprotobuf-c-dev postgresql-server-dev-15 clang-format)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages and not root: sudo apt-get install ${missing[*]}" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
