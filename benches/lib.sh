# Shell helpers shared by the benchmark scripts (sourced, not run).

# best COMMAND...: runs COMMAND $RUNS times and prints the output line of the
# run whose first field (a rate) is highest.
best() {
    local b="" r i
    for i in $(seq "$RUNS"); do
        r=$("$@")
        if [ -z "$b" ] || awk -v x="${r%% *}" -v y="${b%% *}" 'BEGIN {exit !(x > y)}'; then b=$r; fi
    done
    echo "$b"
}
