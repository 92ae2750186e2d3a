#!/usr/bin/env bash
# The scale-out profile on one machine, from Debian and PyPI packages: PostgreSQL (instance
# storage + review store), Redis (Celery broker), moto's S3 server (asset values and the
# version store), the Dagster
# webserver, the daemon and two Celery workers. It backfills the sample days as one run per
# day through the run queue, kills one worker (kill -9) while it runs a step, so that step must
# be redelivered to the other worker, rebuilds the dataset, checks the version equals what the
# embedded default makes from the same logs, stops everything it started and prints one
# summary line (or a FAIL line naming the run, day and step that did not finish).
#
#   bash deploy/cluster-smoke.sh            (as root it apt-get installs what is missing)
#
# Logs: CLICKHOUSE_URL set -> that server; otherwise the embedded engine (Debian's
# clickhouse-server is too old to use), shared by the workers of this one machine.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
STARTED=$(date +%s)
WORK=$(mktemp -d -t esk-cluster-smoke-XXXXXX)
PIDS=()

say() { echo "cluster-smoke: $*" >&2; }

stop_all() {
  local pid
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    pid=${PIDS[i]}
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
  if [[ -n "${PG_CTL:-}" ]]; then "${PG_CTL[@]}" -m fast stop >/dev/null 2>&1 || true; fi
  if [[ "${KEEP_WORK:-0}" != 1 ]]; then rm -rf "$WORK"; else say "kept $WORK"; fi
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Start a command in its own process group (so stopping it stops its children), logging to a file.
start() {
  local name=$1; shift
  setsid "$@" >"$WORK/$name.log" 2>&1 < /dev/null &
  PIDS+=($!)
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_for() {  # wait_for WHAT SECONDS COMMAND...
  local what=$1 seconds=$2; shift 2
  for _ in $(seq $((seconds * 2))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  say "FAIL: $what did not come up in ${seconds}s; its log:"; tail -20 "$WORK/$what.log" >&2 || true
  exit 1
}

# --- Debian packages: PostgreSQL and Redis ------------------------------------------------
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [[ -z "$PG_BIN" || ! -x "$(command -v redis-server)" ]] || ! python3 -c 'import ensurepip' 2>/dev/null; then
  NEEDED="postgresql redis-server python3-venv"
  if [[ $(id -u) -ne 0 ]]; then say "FAIL: needs Debian's $NEEDED (apt-get install them as root)"; exit 1; fi
  say "installing $NEEDED from Debian"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $NEEDED >/dev/null
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi

# --- PyPI packages: the project with the deploy extra (and moto from dev) -------------------
if [[ ! -x .venv/bin/python ]]; then python3 -m venv .venv; fi
say "pip install -e '.[deploy,dev]'"
.venv/bin/pip install -q -e '.[deploy,dev]' >"$WORK/pip.log" 2>&1 \
  || { say "FAIL: pip install; its log:"; tail -20 "$WORK/pip.log" >&2; exit 1; }
export PATH="$REPO/.venv/bin:$PATH"

# --- PostgreSQL: a throwaway cluster on a free loopback port --------------------------------
PG_PORT=$(free_port)
RUN_AS=()
mkdir -p "$WORK/pg"
if [[ $(id -u) -eq 0 ]]; then chown postgres: "$WORK/pg"; chmod 755 "$WORK"; RUN_AS=(runuser -u postgres --); fi
"${RUN_AS[@]}" "$PG_BIN/initdb" -D "$WORK/pg/data" -U esk --auth=trust -E UTF8 --no-sync >/dev/null
PG_CTL=("${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$WORK/pg/data")
"${PG_CTL[@]}" -o "-p $PG_PORT -k $WORK/pg -c listen_addresses=127.0.0.1" -l "$WORK/pg/log" -w start >/dev/null
for db in dagster review; do "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U esk "$db"; done

# --- Redis and the S3 server ---------------------------------------------------------------
REDIS_PORT=$(free_port)
start redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no
S3_PORT=$(free_port)
start s3 moto_server -H 127.0.0.1 -p "$S3_PORT"
wait_for redis 20 redis-cli -p "$REDIS_PORT" ping
wait_for s3 30 python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$S3_PORT/')"

# --- The cluster's environment: every process reads the same -------------------------------
export DAGSTER_HOME="$WORK/dagster_home"
mkdir -p "$DAGSTER_HOME" && cp deploy/dagster.yaml "$DAGSTER_HOME/"
export DAGSTER_POSTGRES_URL="postgresql+psycopg2://esk@127.0.0.1:$PG_PORT/dagster"
export DAGSTER_CELERY_BROKER_URL="redis://127.0.0.1:$REDIS_PORT/0"
export DAGSTER_CELERY_BACKEND_URL="redis://127.0.0.1:$REDIS_PORT/1"
export REVIEW_DATABASE_URL="postgresql+psycopg://esk@127.0.0.1:$PG_PORT/review"
export APP_ASSETS_URL="s3://esk-assets/values" DATA_STORAGE_STORAGE_DIR="s3://esk-assets/storage"
export AWS_ENDPOINT_URL="http://127.0.0.1:$S3_PORT" AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=smoke-key-id AWS_SECRET_ACCESS_KEY=smoke-secret
export DAGSTER_COMPUTE_LOGS_BUCKET=esk-compute-logs DAGSTER_COMPUTE_LOGS_PREFIX=compute
# What stays on each machine's disk (README, "What stays on one machine"). The splits folder
# is scratch: train_eval_splits stages its files in the version store on S3.
export APP_DATA_DIR="$WORK/node" CACHE_DIR="$WORK/node/cache"
export DATA_WRITER_OUTPUT_DIR="$WORK/node/artifacts"
export CLICKHOUSE_EMBEDDED_PATH="$WORK/shared/clickhouse"
unset LLM_API_BASE LLM_API_KEY LLM_MODEL CLICKHOUSE_HOST
export PYTHONWARNINGS=ignore

python3 deploy/smoke_check.py bucket "$APP_ASSETS_URL"
python3 deploy/smoke_check.py bucket "s3://$DAGSTER_COMPUTE_LOGS_BUCKET"
# The workers' config as shipped, but a killed worker's step is redelivered after 60 s, not 1 h.
python3 deploy/smoke_check.py celery-config deploy/celery.yaml "$WORK/celery.yaml" 60
esk-data seed >/dev/null
DAYS=$(python3 deploy/smoke_check.py days)
say "logs: $DAYS"

# --- Dagster: webserver, daemon, two Celery workers -----------------------------------------
# The instance's PostgreSQL schema is made once, before its processes start: processes that
# each find it missing create it at the same moment, and all but one die on the duplicate.
dagster instance migrate >/dev/null
WEB_PORT=$(free_port)
start webserver dagster-webserver -w deploy/workspace.yaml -h 127.0.0.1 -p "$WEB_PORT"
start daemon dagster-daemon run -w deploy/workspace.yaml
for n in 1 2; do
  start "worker$n" dagster-celery worker start -A dagster_celery.app -y "$WORK/celery.yaml" \
    -n "worker$n" -- --concurrency 1 --pool solo
  if [[ $n == 1 ]]; then WORKER1=${PIDS[-1]}; fi
done
wait_for webserver 120 python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$WEB_PORT/server_info')"

# --- The work: one run per day through the queue, then the dataset --------------------------
N_DAYS=$(tr ',' '\n' <<<"$DAYS" | wc -l)
say "backfilling $N_DAYS days"
dagster job backfill -w deploy/workspace.yaml -j daily_labels_job --partitions "$DAYS" --noprompt >/dev/null
BUSY=$(python3 deploy/smoke_check.py busy worker1 600)
kill -KILL -- "-$WORKER1"
say "killed worker1 (kill -9) during $BUSY: the other worker must take that step over"
python3 deploy/smoke_check.py wait "$N_DAYS" 1800
# One run over every day, as `esk-data build` starts it (runner.range_tags).
FIRST_DAY=${DAYS%%,*} LAST_DAY=${DAYS##*,}
RANGE="{\"dagster/asset_partition_range_start\": \"$FIRST_DAY\", \"dagster/asset_partition_range_end\": \"$LAST_DAY\"}"
dagster job launch -w deploy/workspace.yaml -j dataset_refresh_job --tags "$RANGE" >/dev/null
python3 deploy/smoke_check.py wait "$((N_DAYS + 1))" 900

# --- The embedded default on the same logs, for comparison ----------------------------------
say "the embedded default on the same logs"
(
  export DAGSTER_HOME="$WORK/reference/dagster_home" APP_DATA_DIR="$WORK/reference"
  export CACHE_DIR="$WORK/reference/cache" DATA_WRITER_OUTPUT_DIR="$WORK/reference/artifacts"
  export DATA_STORAGE_STORAGE_DIR="$WORK/reference/storage"
  unset APP_ASSETS_URL REVIEW_DATABASE_URL
  esk-data demo >"$WORK/reference.log" 2>&1
) || { say "FAIL: the embedded default failed:"; tail -20 "$WORK/reference.log" >&2; exit 1; }

SUMMARY=$(python3 deploy/smoke_check.py compare "$WORK/reference/storage")
trap - EXIT
stop_all
echo "$SUMMARY; everything stopped; $(($(date +%s) - STARTED)) s"
