#!/usr/bin/env bash
# One OpenSearch node on 127.0.0.1:PORT (default 9200) for the OpenSearch contract tests, where no OpenSearch
# runs: built with Maven from Maven Central's OpenSearch artifacts (scripts/opensearch-node/), run in the
# foreground with a 1 GB heap until Ctrl-C; its data in a new temporary directory each time.
#   scripts/opensearch-node.sh 19200 &
#   TEST_OPENSEARCH_URL=http://127.0.0.1:19200 .venv/bin/pytest tests/integration/test_search_opensearch_contract.py
# Needs Java 17 and mvn.
set -euo pipefail

PORT="${1:-9200}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/opensearch-node" && pwd)"
BUILD="${TMPDIR:-/tmp}/ticketflow-opensearch-node"
mkdir -p "$BUILD/classes"
mvn -q -B -Dstyle.color=never -f "$HERE/pom.xml" dependency:build-classpath -Dmdep.outputFile="$BUILD/classpath.txt" >&2
CLASSPATH="$(cat "$BUILD/classpath.txt")"
javac -d "$BUILD/classes" -cp "$CLASSPATH" "$HERE/src/main/java/ticketflow/OpenSearchNode.java"
exec java -Xms1g -Xmx1g -cp "$BUILD/classes:$CLASSPATH" ticketflow.OpenSearchNode "$PORT"
