# csv.awk — CSV helpers for the study scripts in POSIX awk (mawk): parse(line) splits one line
# into F[1..n] (quoted fields may hold commas and doubled quotes); csv(s) quotes a field that
# holds a comma or a quote. Specs hold commas ("window:w=128,g=0"). Loaded as program text by
# bench/study.sh and bench/check_study.sh (AWK_CSV=$(cat bench/csv.awk)); no rules of its own.
function parse(line,   n, i, c, q, f) { n = 0; f = ""; q = 0
  for (i = 1; i <= length(line); i++) { c = substr(line, i, 1)
    if (q) { if (c == "\"") { if (substr(line, i + 1, 1) == "\"") { f = f c; i++ } else q = 0 } else f = f c }
    else if (c == "\"") q = 1; else if (c == ",") { F[++n] = f; f = "" } else f = f c }
  F[++n] = f; return n }
function csv(s,   t) { if (s ~ /[",]/) { t = s; gsub(/"/, "\"\"", t); return "\"" t "\"" } return s }
