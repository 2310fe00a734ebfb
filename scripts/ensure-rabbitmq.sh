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

answers && exit 0
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
    answers && exit 0
fi

if rabbitmqctl -q status >/dev/null 2>&1; then
    # A node runs, just not where AMQP_URL points; a second start would only fail.
    give_up "a local RabbitMQ node runs but does not listen on port $PORT"
fi
echo "ticketflow: starting RabbitMQ (rabbitmq-server -detached) ..." >&2
RABBITMQ_NODE_PORT="$PORT" rabbitmq-server -detached >&2 || give_up "rabbitmq-server -detached failed"
for _ in $(seq 1 90); do
    answers && exit 0
    sleep 1
done
give_up "rabbitmq-server was started but did not answer within 90 s"
