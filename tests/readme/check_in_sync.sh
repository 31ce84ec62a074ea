#!/usr/bin/env bash
# Checks that README.md quotes every region of tests/readme/readme_snippets.cpp (between "// README: <name>"
# and "// END README", indentation removed) verbatim, so the README shows only code that CI compiles and runs.
#   bash tests/readme/check_in_sync.sh [REPO_ROOT]
set -euo pipefail
root=${1:-$(dirname "$0")/../..}
awk -v readme="$root/README.md" '
BEGIN { while ((getline line < readme) > 0) doc = doc line "\n"; bad = 0; count = 0 }
/\/\/ README: / { name = $3; inside = 1; n = 0; next }
/\/\/ END README/ {
  inside = 0; count++
  indent = 1000
  for (i = 1; i <= n; i++) if (lines[i] ~ /[^ ]/) { match(lines[i], /^ */); if (RLENGTH < indent) indent = RLENGTH }
  text = ""
  for (i = 1; i <= n; i++) text = text substr(lines[i], indent + 1) "\n"
  if (index(doc, text) == 0) { printf "README.md does not quote the snippet \"%s\" of readme_snippets.cpp as it is:\n%s\n", name, text; bad = 1 }
  next
}
inside { lines[++n] = $0 }
END { if (count == 0) { print "no snippets found"; exit 1 } if (!bad) printf "README.md quotes all %d snippets\n", count; exit bad }
' "$root/tests/readme/readme_snippets.cpp"
