#!/usr/bin/env bash
# Make sure Debian's PostgreSQL answers at FERRETDB_POSTGRESQL_URL with the role and database named there, for
# FerretDB's postgresql backend; install (apt-get), configure and start a local cluster when needed.
# Not part of `make run` or `make test`: the PostgreSQL backend is only measured so far
# (benchmarks/store_backends.py; docs/benchmarks.md, "The embedded store's backends").
#
#   FERRETDB_POSTGRESQL_URL   default postgres://ferretdb:ferretdb-local-only@127.0.0.1:5432/ferretdb
#
# The password is a local-only one: a cluster this script creates or finds unconfigured listens on 127.0.0.1
# alone, and Debian's pg_hba.conf asks for it (scram-sha-256) there. The role owns its database and nothing
# else (no superuser, no createdb): FerretDB keeps each MongoDB database as a schema inside it.
set -euo pipefail

URL="${FERRETDB_POSTGRESQL_URL:-postgres://ferretdb:ferretdb-local-only@127.0.0.1:5432/ferretdb}"
POLICY=/usr/sbin/policy-rc.d
# Debian installs pg_ctlcluster & co. in /usr/bin, the server in /usr/lib/postgresql/N/bin; runuser in /sbin.
export PATH="$PATH:/usr/sbin:/sbin"

give_up() {
    echo "ticketflow: PostgreSQL does not answer at ${SHOWN:-$URL} ($1); run it yourself or set FERRETDB_POSTGRESQL_URL" >&2
    exit 1
}

# host, port, role, password, database: one a line (a password may hold spaces); -I: no repo modules on sys.path.
mapfile -t PARTS < <(python3 -I -c '
import sys, urllib.parse as up
url = up.urlsplit(sys.argv[1])
parts = [url.hostname or "127.0.0.1", str(url.port or 5432), up.unquote(url.username or ""),
         up.unquote(url.password or ""), up.unquote(url.path.lstrip("/"))]
if url.scheme not in ("postgres", "postgresql") or not all(parts) or any("\n" in part for part in parts):
    sys.exit("ticketflow: FERRETDB_POSTGRESQL_URL must be postgres://ROLE:PASSWORD@HOST:PORT/DATABASE")
print(*parts, sep="\n")' "$URL")
[[ ${#PARTS[@]} == 5 ]] || exit 1
HOST="${PARTS[0]}" PORT="${PARTS[1]}" ROLE="${PARTS[2]}" PASSWORD="${PARTS[3]}" DB="${PARTS[4]}"
SHOWN="postgres://$ROLE@$HOST:$PORT/$DB"

SUDO=""
AS_POSTGRES=(sudo -n -u postgres)
if [[ "$(id -u)" == 0 ]]; then
    AS_POSTGRES=(runuser -u postgres --)
else
    SUDO="sudo -n"
fi

# The role logs in over TCP with its password: what FerretDB will do.
answers() {
    command -v psql >/dev/null 2>&1 &&
        PGPASSWORD="$PASSWORD" PGCONNECT_TIMEOUT=3 psql -X -q -w -h "$HOST" -p "$PORT" -U "$ROLE" -d "$DB" \
            -tAc 'SELECT 1' >/dev/null 2>&1
}

answers && exit 0
case "$HOST" in
    127.0.0.1 | localhost) ;;
    *) give_up "not 127.0.0.1: set it up there" ;;
esac

# --- installed? ---------------------------------------------------------------------------------------------
own_policy=""
remove_policy() { [[ -z $own_policy ]] || $SUDO rm -f $POLICY; }
trap remove_policy EXIT
if ! command -v pg_lsclusters >/dev/null 2>&1 || ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
    command -v apt-get >/dev/null 2>&1 || give_up "PostgreSQL is not installed and there is no apt-get"
    # The package's postinst creates the cluster `main` and starts it; a policy-rc.d answering 101 keeps it
    # stopped, so that it first listens where this script says. Docker images ship one already.
    if [[ ! -e $POLICY ]]; then
        printf '#!/bin/sh\n# ticketflow: ensure-postgresql.sh, during apt-get install only\nexit 101\n' |
            $SUDO tee $POLICY >/dev/null
        $SUDO chmod 755 $POLICY
        own_policy=1
    fi
    echo "ticketflow: installing postgresql with apt-get ..." >&2
    apt() { $SUDO env DEBIAN_FRONTEND=noninteractive apt-get "$@" >&2; }
    if ! apt install -y -q postgresql; then
        # No package lists yet (a fresh image), or lists older than the mirror's files (404s).
        { apt update -q && apt install -y -q postgresql; } || give_up "apt-get install postgresql failed"
    fi
    remove_policy
    own_policy=""
fi

# --- a cluster on PORT ---------------------------------------------------------------------------------------
# pg_lsclusters -h: version, name, port, status, owner, data directory, log file.
cluster_on_port() { pg_lsclusters -h | awk -v port="$PORT" '$3 == port { print $1, $2, $4; exit }'; }
read -r VERSION NAME STATUS < <(cluster_on_port) || true
if [[ -z "${VERSION:-}" ]]; then
    VERSION="$(basename "$(compgen -G '/usr/lib/postgresql/*/bin/postgres' | sort -V | tail -n 1 | xargs dirname | xargs dirname)")"
    NAME=main
    [[ ! -d /etc/postgresql/$VERSION/main ]] || NAME=ticketflow
    echo "ticketflow: creating the PostgreSQL $VERSION cluster $NAME on port $PORT ..." >&2
    $SUDO pg_createcluster -p "$PORT" "$VERSION" "$NAME" >&2 || give_up "pg_createcluster failed"
    STATUS=down
fi
# Debian's default is 'localhost' (127.0.0.1 and ::1); an address an operator set is theirs to keep. Ours goes in
# a file of its own under conf.d (which Debian's postgresql.conf includes), so that removing it undoes it.
CONF=/etc/postgresql/$VERSION/$NAME
if ! grep -qsE '^[[:space:]]*listen_addresses[[:space:]]*=' "$CONF/postgresql.conf" "$CONF"/conf.d/*.conf; then
    printf "# ticketflow: scripts/ensure-postgresql.sh; FerretDB's backend, on the loopback only\nlisten_addresses = '127.0.0.1'\n" |
        $SUDO tee "$CONF/conf.d/ticketflow.conf" >/dev/null
    [[ "$STATUS" != online ]] || $SUDO pg_ctlcluster "$VERSION" "$NAME" restart >&2 || give_up "restart failed"
fi
if [[ "$STATUS" != online ]]; then
    echo "ticketflow: starting PostgreSQL (pg_ctlcluster $VERSION $NAME start) ..." >&2
    $SUDO pg_ctlcluster "$VERSION" "$NAME" start >&2 || give_up "pg_ctlcluster $VERSION $NAME start failed"
fi
ready=""
for _ in $(seq 1 60); do
    if pg_isready -q -h 127.0.0.1 -p "$PORT"; then
        ready=1
        break
    fi
    sleep 1
done
[[ -n $ready ]] || give_up "the cluster $VERSION/$NAME was started but did not answer within 60 s"

# --- the role and its database (idempotent; the password is set again each time) -----------------------------
# psql quotes the values (:'name'; format's %I and %L): names and password may hold anything.
(cd / && "${AS_POSTGRES[@]}" psql -X -q -p "$PORT" -d postgres -v ON_ERROR_STOP=1 \
    -v role="$ROLE" -v password="$PASSWORD" -v db="$DB" >/dev/null) <<'SQL' || give_up "creating the role or database failed"
SELECT format('CREATE ROLE %I', :'role') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L', :'role', :'password') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
    WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL
answers || give_up "the role $ROLE cannot log in over TCP (pg_hba.conf of $VERSION/$NAME?)"
echo "ticketflow: PostgreSQL $VERSION/$NAME answers at $SHOWN" >&2
