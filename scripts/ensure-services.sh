#!/usr/bin/env bash
# Start the local PostgreSQL cluster if it is installed but stopped. The test suite falls
# back to a throwaway cluster (or, outside CI, a visible skip) when none can be reached.
set -euo pipefail

if command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432; then
    exit 0
fi
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    for version in $(ls /etc/postgresql); do
        pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || true
    done
    for _ in $(seq 1 30); do
        pg_isready -q -h 127.0.0.1 -p 5432 && exit 0
        sleep 0.5
    done
fi
echo "note: PostgreSQL is not reachable on 127.0.0.1:5432; tests will try a throwaway cluster" >&2
