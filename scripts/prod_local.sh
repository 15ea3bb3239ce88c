#!/usr/bin/env bash
# make prod-local: the production topology of docker-compose.yml from real services on loopback,
# for machines without a Docker engine.
#
#   PostgreSQL  127.0.0.1:5432  used if it answers, else Debian's package (as .ci/run does);
#                               database backupsvc_prod_local
#   Redis       127.0.0.1:6379  the same; Celery broker on db 3
#   S3          127.0.0.1:9000  moto's server (PyPI), bucket "backupsvc"      (MinIO in compose)
#   SMTP        127.0.0.1:1025  scripts/mail_catcher.py (aiosmtpd, PyPI),
#                               messages as .eml files in var/prod-local/mail/ (Mailpit in compose)
#   web         127.0.0.1:8000  gunicorn, static files through whitenoise     } Procfile.prod,
#   worker, beat                celery, queues default,backups, 2 processes   } run by honcho
#
# BACKUPSVC_ENV=production with secrets generated once into var/prod-local/secrets/ (0600, passed
# as NAME_FILE). Plain http on loopback: no SSL redirect and no HSTS; the session and CSRF cookies
# stay Secure-only, which Chromium accepts on http://127.0.0.1 and http://localhost (loopback counts
# as a secure context).
#
# moto keeps the bucket in memory, so every start begins from scratch: the database is recreated,
# the broker's db 3 and the mail folder emptied, then migrate, collectstatic and seed_demo run.
# Ctrl-C (or killing this script's process group) stops everything it started; a PostgreSQL or
# Redis it had to start is left running, like .ci/run leaves them.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/.venv/bin
STATE=$ROOT/var/prod-local
DB_NAME=backupsvc_prod_local
PG_SERVER_URL=${PROD_LOCAL_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}
REDIS_URL=redis://127.0.0.1:6379/3
S3_PORT=9000
SMTP_PORT=1025
WEB_PORT=8000
BUCKET=backupsvc

log() { printf '[prod-local %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
answers() { "$BIN/python" - "$1" "$2" <<'PY'
import socket, sys
s = socket.socket(); s.settimeout(1)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
except OSError:
    sys.exit(1)
PY
}
wait_for() {  # port, what
  for _ in $(seq 100); do answers 127.0.0.1 "$1" && return 0; sleep 0.2; done
  log "$2 did not answer on 127.0.0.1:$1"; return 1
}
apt_updated=""
apt_install() {
  [ -n "$apt_updated" ] || { log "apt-get update"; apt-get update -qq; apt_updated=1; }
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

[ -x "$BIN/honcho" ] || { log "no .venv: run 'make install' first"; exit 1; }
for port in $S3_PORT $SMTP_PORT $WEB_PORT; do
  if answers 127.0.0.1 "$port"; then
    log "127.0.0.1:$port is already taken (an earlier prod-local or another server); stop it first"
    exit 1
  fi
done

# --- PostgreSQL and Redis: use them when they answer, else Debian's packages (as .ci/run).
if answers 127.0.0.1 5432; then
  log "PostgreSQL answers on 127.0.0.1:5432: using it"
else
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  ver=$(ls /etc/postgresql | sort -V | tail -1)
  hba=/etc/postgresql/$ver/main/pg_hba.conf
  grep -q '^host all all 127.0.0.1/32 trust' "$hba" || sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start || pg_ctlcluster --skip-systemctl-redirect "$ver" main restart
  wait_for 5432 PostgreSQL
  log "PostgreSQL $ver started from Debian's packages (left running afterwards)"
fi
if answers 127.0.0.1 6379; then
  log "Redis answers on 127.0.0.1:6379: using it (db 3)"
else
  command -v redis-server >/dev/null || apt_install redis-server
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --dir /var/lib/redis --logfile /var/log/redis/prod-local.log
  wait_for 6379 Redis
  log "Redis started from Debian's packages (left running afterwards)"
fi

# --- Secrets: generated once, readable by this user only, handed over as NAME_FILE.
mkdir -p "$STATE"
chmod 700 "$STATE"
(
  umask 077
  mkdir -p "$STATE/secrets"
  make_secret() {
    [ -s "$STATE/secrets/$1" ] || "$BIN/python" -c "$2" >"$STATE/secrets/$1"
    chmod 600 "$STATE/secrets/$1"
  }
  make_secret secret_key 'import secrets; print(secrets.token_urlsafe(50), end="")'
  make_secret backup_keys 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode(), end="")'
  make_secret restore_code_key 'import secrets; print(secrets.token_urlsafe(32), end="")'
  make_secret s3_secret_key 'import secrets; print(secrets.token_urlsafe(24), end="")'
)

export BACKUPSVC_ENV=production
export BACKUPSVC_VAR_DIR=$STATE
export SECRET_KEY_FILE=$STATE/secrets/secret_key
export BACKUP_KEYS_FILE=$STATE/secrets/backup_keys
export RESTORE_CODE_KEY_FILE=$STATE/secrets/restore_code_key
export DATABASE_URL=$PG_SERVER_URL/$DB_NAME
export CELERY_BROKER_URL=$REDIS_URL
export AWS_STORAGE_BUCKET_NAME=$BUCKET
export AWS_S3_ENDPOINT_URL=http://127.0.0.1:$S3_PORT
export AWS_S3_REGION_NAME=us-east-1
export AWS_ACCESS_KEY_ID=prod-local
export AWS_SECRET_ACCESS_KEY_FILE=$STATE/secrets/s3_secret_key
export EMAIL_URL=smtp://127.0.0.1:$SMTP_PORT
export ALLOWED_HOSTS=127.0.0.1,localhost
export SITE_URL=http://127.0.0.1:$WEB_PORT
export CSRF_TRUSTED_ORIGINS=http://127.0.0.1:$WEB_PORT,http://localhost:$WEB_PORT
# Plain http on loopback: no redirect to https, and no HSTS pinning localhost in the browser.
export SECURE_SSL_REDIRECT=false
export SECURE_HSTS_SECONDS=0
export STATIC_ROOT=$STATE/staticfiles
# Production queues backups for beat; run the queue every minute here instead of every 15.
export BACKUP_QUEUE_INTERVAL=${BACKUP_QUEUE_INTERVAL:-60}
export PATH=$BIN:$PATH
unset DJANGO_SETTINGS_MODULE DEBUG CELERY_TASK_ALWAYS_EAGER

# --- S3 and SMTP, started here so that seeding can store its files; stopped on the way out.
children=()
stop_children() {
  trap - EXIT INT TERM
  for pid in "${children[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop_children EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$STATE/logs"
rm -rf "$STATE/mail"
mkdir -p "$STATE/mail"
moto_server -H 127.0.0.1 -p "$S3_PORT" >"$STATE/logs/s3.log" 2>&1 &
children+=($!)
python scripts/mail_catcher.py --port "$SMTP_PORT" --folder "$STATE/mail" &
children+=($!)
wait_for "$S3_PORT" "moto_server (S3)"
wait_for "$SMTP_PORT" "SMTP catcher"
python - <<'PY'
import os
import boto3
with open(os.environ["AWS_SECRET_ACCESS_KEY_FILE"]) as fh:
    secret = fh.read()
s3 = boto3.client(
    "s3",
    endpoint_url=os.environ["AWS_S3_ENDPOINT_URL"],
    region_name=os.environ["AWS_S3_REGION_NAME"],
    aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
    aws_secret_access_key=secret,
)
s3.create_bucket(Bucket=os.environ["AWS_STORAGE_BUCKET_NAME"])
PY
log "S3 (moto_server) on 127.0.0.1:$S3_PORT with bucket '$BUCKET'; its log: var/prod-local/logs/s3.log"

# --- A fresh database and broker db (the archives of an earlier run went with moto's memory).
python - "$PG_SERVER_URL" "$DB_NAME" "$REDIS_URL" <<'PY'
import sys
import psycopg
import redis
server, name, broker = sys.argv[1:]
with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.execute(f'CREATE DATABASE "{name}"')
redis.Redis.from_url(broker).flushdb()
PY
log "database $DB_NAME created; broker $REDIS_URL emptied"

log "migrate"
python manage.py migrate --no-input -v 0
log "collectstatic into var/prod-local/staticfiles"
python manage.py collectstatic --no-input --clear -v 0
log "seed_demo"
python manage.py seed_demo

cat <<EOF

== backupsvc with production settings on loopback
   web:     http://127.0.0.1:$WEB_PORT/   (health: http://127.0.0.1:$WEB_PORT/health/)
   logins:  the table above, password demo-password-2026 (owner@acme.example.com, ...)
   mail:    var/prod-local/mail/*.eml; each message is announced below ("mail to ...")
   S3:      http://127.0.0.1:$S3_PORT bucket '$BUCKET' (moto, in memory)
   secrets: var/prod-local/secrets/ (0600)
   The session cookie is Secure-only (production settings): Chromium accepts it on
   http://127.0.0.1 and http://localhost. Backups run when beat runs the queue (every ${BACKUP_QUEUE_INTERVAL}s).
   Ctrl-C stops everything.

EOF
honcho start -f Procfile.prod
