#!/usr/bin/env bash
# Drops the databases earlier PostgreSQL test runs created (deferral_test_*), so runs don't pile them up.
set -euo pipefail
url="${DEFERRAL_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432}/postgres"
psql "$url" -Atc "SELECT format('DROP DATABASE IF EXISTS %I;', datname) FROM pg_database WHERE datname LIKE 'deferral\_test\_%'" \
  | psql "$url" -q
