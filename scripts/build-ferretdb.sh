#!/usr/bin/env bash
# Build FerretDB (our embedded MongoDB wire server) into .tools/bin/ferretdb, once.
# A plain `go install` of v1.24.2 panics at start ("Invalid build/version/version.txt"),
# so we build from the module source with the version file filled in. We also apply
# scripts/ferretdb.patch, fixes that make the embedded server behave as MongoDB (which production
# uses) does:
#  - atomic single-document writes: v1's SQLite handler reads, changes and writes back in
#    separate steps, so concurrent updates of one document silently lost writes;
#  - the _id index is used: lookups and updates by _id were written with another expression
#    than the index's, so each one scanned the whole collection; an _id condition is pushed down
#    also when the filter has other conditions;
#  - every other index is used, as MongoDB uses it: equality on its first keys (dotted paths too, with
#    `--test-enable-nested-pushdown`), a range on the next one, and a sort on the keys after the
#    equalities walks the index, so that a limit stops reading early (v1 read and decoded every
#    document and sorted in memory). Each index key indexes two expressions, the rank of the value's
#    type and the value, so that SQL's order and equality are MongoDB's; arrays and other values SQL
#    cannot order are checked for through the index and left to the handler (docs/ferretdb.md);
#  - `--test-disable-pushdown` disables the filter's pushdown too (the tests' reference server).
#  - only requests are checked for NaN (the wire package decoded every reply again to check it too).
# Indexes created by an older build keep their old expressions: drop and create them again (or start
# from an empty data directory) to use these. The binary is rebuilt when the patch changes.
set -euo pipefail

VERSION="${FERRETDB_VERSION:-v1.24.2}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
BIN="$TOOLS/bin/ferretdb"

STAMP="$BIN.patch-sha256"   # which patch the binary was built with
WANT="$(sha256sum "$ROOT/scripts/ferretdb.patch" | cut -d' ' -f1) $VERSION"
if [[ -x "$BIN" && "${1:-}" != "--force" && "$(cat "$STAMP" 2>/dev/null)" == "$WANT" ]]; then
    exit 0
fi
export PATH="$PATH:/usr/local/go/bin:$HOME/go/bin"  # where Go's own installer puts it
if ! command -v go >/dev/null 2>&1; then
    echo "ticketflow: 'go' is not on PATH; install Go >= 1.24 (https://go.dev/dl/) to build FerretDB $VERSION, or point MONGO_URL (tests: TEST_MONGO_URL) at a MongoDB you run" >&2
    exit 1
fi

TMP="$(mktemp -d)"
trap 'chmod -R u+w "$TMP" 2>/dev/null || true; rm -rf "$TMP"' EXIT

echo "ticketflow: building FerretDB $VERSION into $BIN (about a minute) ..." >&2
# Run outside any Go module so `go mod download` fetches the module itself.
DIR="$(cd "$TMP" && GOFLAGS=-mod=mod go mod download -json "github.com/FerretDB/FerretDB@$VERSION" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(d["Error"]) if d.get("Error") else print(d["Dir"])')"
cp -r "$DIR" "$TMP/src"
chmod -R u+w "$TMP/src"
echo "$VERSION" >"$TMP/src/build/version/version.txt"
(cd "$TMP/src" && git apply "$ROOT/scripts/ferretdb.patch")
mkdir -p "$TOOLS/bin"
(cd "$TMP/src" && go build -trimpath -o "$TMP/ferretdb" ./cmd/ferretdb)
mv -f "$TMP/ferretdb" "$BIN"   # atomic: a half-built binary never sits at $BIN
echo "$WANT" >"$STAMP"
echo "ticketflow: built $BIN" >&2
