#!/bin/sh
# export_table.sh DB LO HI OUTDIR
#
# Export the rows of table `items` with LO <= id <= HI from the SQLite
# database DB to OUTDIR/items_LO_HI.csv (CSV with a header line and CRLF
# line ends; an empty range gives an empty file, as sqlite3 writes the
# header with the first row), and print the number of rows exported. One partition of examples/export_table.lua,
# which runs many of these at once with par.run.
#
# The export and the count run in one read transaction, so the count is the
# number of rows written even if the table changes meanwhile. The file is
# written under a temporary name and renamed when complete: a failed or
# killed export leaves no file that looks finished.
set -eu

usage() {
  echo "usage: export_table.sh DB LO HI OUTDIR" >&2
  exit 2
}

[ $# -eq 4 ] || usage
db=$1 lo=$2 hi=$3 outdir=$4
for n in "$lo" "$hi"; do
  case $n in
    ''|-|*[!0-9-]*|?*-*) echo "export_table.sh: not an integer: '$n'" >&2; usage ;;
  esac
done
[ -f "$db" ] || { echo "export_table.sh: no database file: $db" >&2; exit 1; }
command -v sqlite3 >/dev/null 2>&1 || {
  echo "export_table.sh: sqlite3 not found (Debian: apt-get install sqlite3)" >&2
  exit 127
}
mkdir -p "$outdir"

out=$outdir/items_${lo}_${hi}.csv
tmp=$out.tmp.$$
trap 'rm -f "$tmp"' EXIT
case $tmp in
  *"'"*|*"
"*) echo "export_table.sh: unsupported character in $outdir" >&2; exit 1 ;;
esac

# -bail: stop at the first error; the exit status then says it failed.
count=$(sqlite3 -bail -batch "$db" <<EOF
BEGIN;
.headers on
.mode csv
.once '$tmp'
SELECT * FROM items WHERE id BETWEEN $lo AND $hi ORDER BY id;
.headers off
.mode list
SELECT count(*) FROM items WHERE id BETWEEN $lo AND $hi;
COMMIT;
EOF
)
mv -f "$tmp" "$out"
trap - EXIT
echo "$count"
