#!/usr/bin/env bash
# The tumbling event-time window job (ARCHITECTURE.md section 9) in Apache Flink's DataStream
# API and in wallaroo (examples/window_average.rs), on the same generated input, in one run:
# wall time and records/s of each, and the two outputs compared line for line after sorting.
#
#   benches/flink/run.sh [LINES ...]          default: 1000000 10000000
#
# Environment:
#   FLINK_RUNS   the Flink runs per size, PARALLELISM:WATERMARKS words
#                (default "1:record 2:record 1:boundary"; see README.md)
#   REPEAT       runs of each engine per size, the fastest kept (default 1)
#   REF_MAX      run the Python reference (reference.py) up to this many lines (default 1000000)
#   SENSORS, SEED  of the generated input (default 1000, 1)
#   JAVA_HEAP    the JVM's -Xmx (default 4g)
#   WALLAROO_WORKERS  wallaroo's runs per size, a --workers value each (default "1 2")
#   WALLAROO_PRE  for each of those, without and with --pre-aggregate (the readings of a
#                 sensor and window combined before they cross to the workers): "off", "on"
#                 or "off on" (the default)
#   WALLAROO_BIN a window_average binary built elsewhere (another worktree's), used as is
#                instead of building this checkout's examples/window_average.rs
#
# Sets itself up when needed: a venv with PyPI's apache-flink-libraries (Flink's jars) under
# benches/flink/.venv, the job compiled with javac into benches/flink/build; inputs and outputs
# go to benches/flink/data. Not part of CI: it takes minutes and a JVM.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
FLINK_VERSION=2.3.0
VENV="$HERE/.venv"
BUILD="$HERE/build"
DATA="$HERE/data"
FLINK_RUNS="${FLINK_RUNS-1:record 2:record 1:boundary}"
WALLAROO_WORKERS="${WALLAROO_WORKERS-1 2}"
WALLAROO_PRE="${WALLAROO_PRE-off on}"
REPEAT="${REPEAT:-1}"
REF_MAX="${REF_MAX:-1000000}"
SENSORS="${SENSORS:-1000}"
SEED="${SEED:-1}"
JAVA_HEAP="${JAVA_HEAP:-4g}"
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(1000000 10000000)
mkdir -p "$BUILD" "$DATA"

say() { printf '== %s\n' "$*" >&2; }

# --- Flink: jars from PyPI, the job compiled against them ------------------------------------
lib() { ls -d "$VENV"/lib/python3*/site-packages/pyflink/lib 2>/dev/null | head -1; }
if [ ! -f "$(lib)/flink-dist-$FLINK_VERSION.jar" ]; then
    say "installing apache-flink-libraries==$FLINK_VERSION (Flink's jars, ~330 MB) into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --no-deps "apache-flink-libraries==$FLINK_VERSION"
fi
LIB="$(lib)"
CP="$BUILD"
for j in flink-dist flink-connector-files; do CP="$CP:$LIB/$j-$FLINK_VERSION.jar"; done
for j in "$LIB"/log4j-*.jar; do CP="$CP:$j"; done
if [ ! -f "$BUILD/WindowAverage.class" ] || [ "$HERE/WindowAverage.java" -nt "$BUILD/WindowAverage.class" ]; then
    say "javac WindowAverage.java"
    javac -d "$BUILD" -cp "$CP" "$HERE/WindowAverage.java"
fi
# The module flags Flink's own scripts pass to Java 17 (env.java.opts.all).
JAVA_OPTS=(
    --add-exports=java.base/sun.net.util=ALL-UNNAMED
    --add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED
    --add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED
    --add-opens=java.base/java.lang=ALL-UNNAMED
    --add-opens=java.base/java.net=ALL-UNNAMED
    --add-opens=java.base/java.io=ALL-UNNAMED
    --add-opens=java.base/java.nio=ALL-UNNAMED
    --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
    --add-opens=java.base/java.lang.reflect=ALL-UNNAMED
    --add-opens=java.base/java.text=ALL-UNNAMED
    --add-opens=java.base/java.time=ALL-UNNAMED
    --add-opens=java.base/java.util=ALL-UNNAMED
    --add-opens=java.base/java.util.concurrent=ALL-UNNAMED
    --add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED
    --add-opens=java.base/java.util.concurrent.locks=ALL-UNNAMED
    -Xmx"$JAVA_HEAP"
    -Dlog4j.configurationFile="$HERE/log4j2.properties"
)

# --- wallaroo: the example, when it exists ---------------------------------------------------
WALLAROO="${WALLAROO_BIN:-$ROOT/target/release/examples/window_average}"
HAVE_WALLAROO=0
if [ -n "${WALLAROO_BIN:-}" ]; then
    [ -x "$WALLAROO_BIN" ] || { echo "WALLAROO_BIN=$WALLAROO_BIN is not an executable" >&2; exit 1; }
    say "wallaroo: $WALLAROO_BIN"
    HAVE_WALLAROO=1
elif [ -f "$ROOT/examples/window_average.rs" ]; then
    say "cargo build --release --example window_average"
    (cd "$ROOT" && cargo build --release --example window_average) && HAVE_WALLAROO=1
else
    say "examples/window_average.rs does not exist yet: wallaroo's side is skipped"
fi

# best_of CMD... : runs CMD REPEAT times, leaves the fastest wall time in $WALL and that run's
# CPU time (user + system, all threads and children) in $CPU, both in seconds, and that run's
# stderr in $ERRF. CPU time says more than wall time on a machine shared with other work.
best_of() {
    local best="" i r u s
    for ((i = 0; i < REPEAT; i++)); do
        TIMEFORMAT='%R %U %S'
        { time "$@" 2>"$ERRF.try"; } 2>"$ERRF.time" || { cat "$ERRF.try" >&2; return 1; }
        read -r r u s <"$ERRF.time"
        if [ -z "$best" ] || [ "$(echo "$r < $best" | bc -l)" = 1 ]; then
            best=$r
            CPU=$(echo "$u + $s" | bc -l)
            mv "$ERRF.try" "$ERRF"
        fi
    done
    rm -f "$ERRF.time" "$ERRF.try"
    WALL=$best
}
rate() { echo "scale=0; $1 / $2" | bc -l; }
# same A B : "same" when the sorted files are equal, else how many lines differ.
same() {
    if cmp -s <(LC_ALL=C sort "$1") <(LC_ALL=C sort "$2"); then echo same; else
        echo "DIFF:$(comm -3 <(LC_ALL=C sort "$1") <(LC_ALL=C sort "$2") | wc -l)"
    fi
}

RESULTS="$DATA/results-$(date -u +%Y%m%dT%H%M%SZ).tsv"
printf 'lines\tengine\twall_s\twall_rec_s\tcpu_s\tcpu_rec_s\tproc_s\tproc_rec_s\tjob_s\twindows\tlate\tvs_first\n' >"$RESULTS"
row() { printf '%s\t%s\t%.2f\t%s\t%.2f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS"; }

for N in "${SIZES[@]}"; do
    IN="$DATA/in-$N-s$SENSORS-seed$SEED.txt"
    if [ ! -f "$IN" ]; then
        say "generating $IN"
        python3 "$HERE/gen_input.py" --lines "$N" --sensors "$SENSORS" --seed "$SEED" "$IN.tmp"
        mv "$IN.tmp" "$IN"
    fi
    FIRST=""
    if [ "$N" -le "$REF_MAX" ]; then
        say "$N lines: reference.py"
        OUT="$DATA/out-$N-reference.txt"; ERRF="$DATA/err-$N-reference.txt"
        best_of python3 "$HERE/reference.py" "$IN" "$OUT"
        late=$(sed -n 's/^late=\([0-9]*\).*/\1/p' "$ERRF")
        row "$N" reference "$WALL" "$(rate "$N" "$WALL")" "$CPU" "$(rate "$N" "$CPU")" - - - "$(wc -l <"$OUT")" "$late" -
        FIRST="$OUT"
    fi
    for run in $FLINK_RUNS; do
        p=${run%%:*}; wm=${run#*:}
        name="flink-p$p-$wm"
        say "$N lines: $name"
        OUT="$DATA/out-$N-$name.txt"; ERRF="$DATA/err-$N-$name.txt"
        best_of java "${JAVA_OPTS[@]}" -cp "$CP" WindowAverage --in "$IN" --out "$OUT" \
            --parallelism "$p" --watermarks "$wm"
        stats=$(grep '^late=' "$ERRF")
        late=$(sed -n 's/^late=\([0-9]*\).*/\1/p' <<<"$stats")
        job_ms=$(sed -n 's/.*job_ms=\([0-9]*\).*/\1/p' <<<"$stats")
        job_s=$(echo "scale=3; $job_ms / 1000" | bc -l)
        proc_ms=$(sed -n 's/.*proc_ms=\([0-9]*\).*/\1/p' <<<"$stats")
        proc_s=$(echo "scale=3; $proc_ms / 1000" | bc -l)
        cmpres=-; [ -n "$FIRST" ] && cmpres=$(same "$FIRST" "$OUT")
        row "$N" "$name" "$WALL" "$(rate "$N" "$WALL")" "$CPU" "$(rate "$N" "$CPU")" "$proc_s" "$(rate "$N" "$proc_s")" \
            "$job_s" "$(wc -l <"$OUT")" "$late" "$cmpres"
        [ -n "$FIRST" ] || FIRST="$OUT"
    done
    if [ "$HAVE_WALLAROO" = 1 ]; then
        for w in $WALLAROO_WORKERS; do
          for pre in $WALLAROO_PRE; do
            name="wallaroo-w$w"; flags=()
            [ "$pre" = on ] && { name="$name-pre"; flags=(--pre-aggregate); }
            say "$N lines: $name"
            OUT="$DATA/out-$N-$name.txt"; ERRF="$DATA/err-$N-$name.txt"
            best_of "$WALLAROO" --in "file:$IN" --out "file:$OUT" --workers "$w" "${flags[@]}"
            late=$(grep -o '[0-9]* late messages\? dropped' "$ERRF" | grep -o '^[0-9]*' | tail -1 || true)
            cmpres=-; [ -n "$FIRST" ] && cmpres=$(same "$FIRST" "$OUT")
            row "$N" "$name" "$WALL" "$(rate "$N" "$WALL")" "$CPU" "$(rate "$N" "$CPU")" - - - "$(wc -l <"$OUT")" "${late:--}" "$cmpres"
            [ -n "$FIRST" ] || FIRST="$OUT"
          done
        done
    fi
done

echo
echo "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); Flink $FLINK_VERSION on $(java -version 2>&1 | head -1)"
echo "wall: the whole process; cpu: its user + system time, all threads; proc: first record"
echo "parsed to last line written (Flink, without MiniCluster start and task deployment);"
echo "job: Flink's net job run time (with deployment)"
echo "vs_first: the sorted output against the first engine of the size (reference.py when it ran)"
column -t -s $'\t' "$RESULTS"
echo "(also in $RESULTS)"
