#!/bin/sh
# One-shot (temporalio/admin-tools): create or upgrade Temporal's two PostgreSQL schemas.
# Idempotent: a database or schema that exists is kept; update-schema only applies what is missing.
set -eu
HOST=${POSTGRES_HOST:-temporal-db}
USER=${POSTGRES_USER:-temporal}
export SQL_PASSWORD
until nc -z -w 5 "$HOST" 5432; do echo "waiting for PostgreSQL at $HOST:5432"; sleep 2; done
for DB in temporal temporal_visibility; do
  SCHEMA=$([ "$DB" = temporal ] && echo temporal || echo visibility)
  tool="temporal-sql-tool --plugin postgres12 --ep $HOST -u $USER -p 5432 --db $DB"
  $tool create 2>/dev/null || echo "database $DB exists"
  $tool setup-schema -v 0.0 2>/dev/null || echo "schema of $DB already set up"
  $tool update-schema -d "/etc/temporal/schema/postgresql/v12/$SCHEMA/versioned"
done
echo "Temporal schemas ready"
