#!/usr/bin/env bash
# Make sure a RabbitMQ broker answers at AMQP_URL; start (and if needed install) a local one.
set -euo pipefail

URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2F}"
INFRA="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/ticketflow/local.py"
# -I: do not put ticketflow/ on sys.path (its modules must not shadow the standard library).
answers() { python3 -I "$INFRA" amqp-answers "$URL"; }
read -r HOST PORT < <(python3 -I "$INFRA" amqp-host-port "$URL")

give_up() {
    echo "ticketflow: RabbitMQ does not answer at $URL ($1); start it (rabbitmq-server -detached) or set AMQP_URL" >&2
    exit 1
}

# A test session deletes its queues when it ends; one that was killed leaves them behind, and a broker that
# recovers thousands of queues at start is slow (and stalls when they outnumber its file handles). On a local
# broker this policy deletes a test namespace's queue after an hour without use (no consumer, no declare), in
# AMQP_URL's virtual host. Sessions are minutes long. rabbitmqctl speaks to the machine's own node: a broker at
# a local port that is not that node (a container's mapped port) gets no policy. Only a warning when it cannot
# be set (not root and no sudo, another node's cookie).
expire_test_queues() {
    command -v rabbitmqctl >/dev/null 2>&1 || return 0
    local sudo="" vhost
    [[ "$(id -u)" == 0 ]] || sudo="sudo -n"  # Debian's rabbitmqctl runs for root or the rabbitmq user only
    vhost="$(python3 -I "$INFRA" amqp-vhost "$URL")"
    $sudo rabbitmqctl -q set_policy -p "$vhost" --apply-to queues --priority 0 ticketflow-test-queues-expire \
        '^tftest_' '{"expires": 3600000}' >/dev/null 2>&1 ||
        echo "ticketflow: could not set the policy that expires killed test sessions' queues (rabbitmqctl)" >&2
}

# The broker's log, for a start that did not answer: it says why (Debian keeps it in /var/log/rabbitmq).
show_log() {
    local log
    log="$(ls -t /var/log/rabbitmq/rabbit@*.log 2>/dev/null | grep -v _upgrade | head -n 1)" || true
    [[ -n "$log" && -r "$log" ]] || return 0
    echo "ticketflow: the last lines of $log:" >&2
    tail -n 15 "$log" | cut -c 1-300 >&2
}

# Debian's rabbitmq-server, run by root, starts the node through su as the rabbitmq user, whose soft limit
# of open files is then 1024: too few to recover more queues than that. Start it as that user with the
# limit raised (the hard limit allows it); elsewhere start it as it is.
start_broker() {
    if [[ "$(id -u)" == 0 ]] && id rabbitmq >/dev/null 2>&1; then
        su rabbitmq -s /bin/sh -c "ulimit -n 65536 2>/dev/null || ulimit -n \"\$(ulimit -Hn)\" 2>/dev/null;
            RABBITMQ_NODE_PORT='$PORT' exec '$(command -v rabbitmq-server)' -detached"
    else
        RABBITMQ_NODE_PORT="$PORT" rabbitmq-server -detached
    fi
}

if answers; then
    case "$HOST" in 127.0.0.1 | localhost | ::1) expire_test_queues ;; esac
    exit 0
fi
case "$HOST" in
    127.0.0.1 | localhost | ::1) ;;
    *) give_up "a remote host: start it there" ;;
esac

# Debian installs the broker in /usr/sbin, which a non-login PATH may miss.
export PATH="$PATH:/usr/sbin:/sbin"
if ! command -v rabbitmq-server >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 || give_up "rabbitmq-server is not installed and there is no apt-get"
    SUDO=""
    [[ "$(id -u)" == 0 ]] || SUDO="sudo -n"
    echo "ticketflow: installing rabbitmq-server with apt-get ..." >&2
    if ! { $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q rabbitmq-server; } >&2; then
        give_up "installing rabbitmq-server with apt-get failed"
    fi
    # The package may have started the broker as a service already.
    if answers; then
        expire_test_queues
        exit 0
    fi
fi

if rabbitmqctl -q status >/dev/null 2>&1; then
    # A node runs, just not where AMQP_URL points; a second start would only fail.
    give_up "a local RabbitMQ node runs but does not listen on port $PORT"
fi
echo "ticketflow: starting RabbitMQ (rabbitmq-server -detached) ..." >&2
start_broker >&2 || give_up "rabbitmq-server -detached failed"
# A node recovering many queues on a busy machine takes a while: up to three minutes.
for _ in $(seq 1 180); do
    if answers; then
        expire_test_queues
        exit 0
    fi
    sleep 1
done
show_log
give_up "rabbitmq-server was started but did not answer within 180 s"
