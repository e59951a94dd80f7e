#!/usr/bin/env bash
# test/sh/price_statement.sh -- licdata.statement_html rendered in a real
# browser: Debian's chromium, headless, prints the page to a PNG and dumps its
# DOM.  Checks the page's elements (licences, daily usage chart, charges,
# free allowances, tiers, cap, total, audit status), that a licensee's
# hostile consent reference stays text (no injected element), and that the
# PNG exists and is not blank.  Skips (77) when chromium is not installed.
set -euo pipefail
. "$LICDATA_TOP/test/lib/common.sh"

CHROME=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROME" ]; then
	echo "SKIP: no chromium on this machine (Debian package chromium; test/lib/deps.sh test installs it)"
	exit 77
fi

ld_cluster_start "$LICDATA_TMP/pg" postgres
trap ld_cluster_stop EXIT

psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION licdata;
CREATE SCHEMA st;
CREATE TABLE st.items (id integer PRIMARY KEY);
INSERT INTO st.items SELECT generate_series(1, 50);
SELECT licdata.publish('st.items', 'statement items', 0.5, 0.1);
CREATE ROLE st_bank LOGIN;
SELECT licdata.register_licensee('st_bank', 'Statement Bank');
SELECT licdata.grant_licence('st_bank', 'st.items', ARRAY['credit', 'public_interest'], max_rows_per_query => 20);
SELECT licdata.set_price_plan(1, '{"per_query": 1, "free_queries_per_month": 1, "free_rows_per_month": 5,
	"tiers": [{"up_to": 10, "per_row": 0.2}, {"up_to": null, "per_row": 0.1}],
	"monthly_fee": 1, "monthly_cap": 5, "free_purposes": ["public_interest"]}');
SQL
# the licensee's statements, one with a hostile consent reference
PGUSER=st_bank psql -X -q <<'SQL' >/dev/null 2>&1 || true
SET licdata.purpose = 'credit';
SET licdata.consent_ref = '<script>document.body.innerHTML="pwned"</script>';
SELECT * FROM st.items WHERE id <= 8;
SET licdata.consent_ref = '"><img id="injected" src=x onerror=alert(1)>';
SELECT * FROM st.items WHERE id <= 12;
SELECT * FROM st.items;
SET licdata.purpose = 'public_interest';
SELECT * FROM st.items WHERE id <= 3;
SQL
psql -X -q -At -c "SELECT licdata.flush()" >/dev/null
psql -X -q -At -c "SELECT licdata.statement_html('st_bank', current_date)" >"$LICDATA_TMP/statement.html"
psql -X -q -At -c "SELECT sum(amount) FROM licdata.invoice_lines('st_bank', current_date)" >"$LICDATA_TMP/total.txt"
total=$(cat "$LICDATA_TMP/total.txt")
echo "statement: $(wc -c <"$LICDATA_TMP/statement.html") bytes, total $total"

cd "$LICDATA_TMP"
CH=("$CHROME" --headless --no-sandbox --disable-gpu --hide-scrollbars "--user-data-dir=$LICDATA_TMP/chrome")
timeout 120 "${CH[@]}" --screenshot="$LICDATA_TMP/statement.png" --window-size=1200,1600 \
	"file://$LICDATA_TMP/statement.html" >chrome.log 2>&1 || { cat chrome.log; echo "FAIL: chromium --screenshot"; exit 1; }
timeout 120 "${CH[@]}" --dump-dom "file://$LICDATA_TMP/statement.html" >dom.html 2>>chrome.log ||
	{ cat chrome.log; echo "FAIL: chromium --dump-dom"; exit 1; }

fail=0
check() { # description, command...
	local what=$1
	shift
	if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fail=1; fi
}
for id in statement licensee licences daily-usage-chart lines total free-allowances tiers cap consent-refs audit-status; do
	check "element #$id rendered" grep -q "id=\"$id\"" dom.html
done
check "chart has a bar per day" test "$(grep -o '<rect class="bar"' dom.html | wc -l)" -ge 28
check "total $total shown" grep -q "<span id=\"total\">$total</span>" dom.html
check "monthly cap line shown" grep -q 'monthly cap of 5 applied' dom.html
check "tier lines shown" grep -q 'tier 2 (row 11 of the month on)' dom.html
check "free purpose shown" grep -q 'public_interest: statements for a free purpose' dom.html
check "audit chain verified" grep -q 'Audit chain verified' dom.html
check "no injected script element" test "$(grep -c '<script' dom.html)" -eq 0
check "no injected img element" test "$(grep -c "<img" dom.html)" -eq 0
check "page not replaced by a script" bash -c "! grep -q '^pwned' dom.html"
check "hostile consent reference shown as text" grep -q '&lt;script&gt;document.body.innerHTML' dom.html
check "PNG written" test -s statement.png
# non-blank: decode the PNG and count distinct pixel bytes
check "PNG not blank" python3 - statement.png <<'PY'
import sys, zlib, struct
data = open(sys.argv[1], 'rb').read()
assert data[:8] == b'\x89PNG\r\n\x1a\n'
pos, idat, w, h = 8, b'', 0, 0
while pos < len(data):
    n, t = struct.unpack('>I4s', data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if t == b'IHDR':
        w, h = struct.unpack('>II', body[:8])
    elif t == b'IDAT':
        idat += body
    pos += 12 + n
raw = zlib.decompress(idat)
print("PNG %dx%d, %d distinct byte values" % (w, h, len(set(raw))))
sys.exit(0 if w >= 1000 and h >= 1000 and len(set(raw)) > 20 else 1)
PY
[ "$fail" -eq 0 ] || exit 1
echo "PNG: $LICDATA_TMP/statement.png"
