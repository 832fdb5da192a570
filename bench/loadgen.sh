#!/usr/bin/env bash
# Load-generator benchmark: how fast and how small is `rune bench-llm`?
#
#   (a) maximum sustained request rate against `rune sim-llm` with zero latency (128
#       output tokens, streamed, 128-token prompts, closed loop at $CONC streams) for
#       `rune bench-llm` and for GuideLLM 0.8.1 on the same server and workload;
#   (b) peak RSS of `rune bench-llm` holding 1000 concurrent streams;
#   (c) start-up time of `rune bench-llm --help`.
#
# The simulator is pinned to CPU 0 and each client to CPU 1 (`taskset`), so both clients
# get the same single core. Every figure is the median of $RUNS runs. GuideLLM is installed
# into a venv from PyPI and given a local tokenizer directory (bench/loadgen/make_tokenizer.py)
# so it runs offline. Results go to bench/results/loadgen.md.
#
# Usage: bench/loadgen.sh            (env: RUNS=3 DURATION=10 CONC=64 STREAMS=1000 RUNE_BIN=)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
CONC=${CONC:-64}
STREAMS=${STREAMS:-1000}
OUT=${OUT:-target/loadgen-bench}
VENV=${VENV:-target/guidellm-venv}
mkdir -p "$OUT"

# RUNE_BIN=path skips the build and measures that binary (it must be a release build).
if [ -n "${RUNE_BIN:-}" ]; then
    RUNE=$RUNE_BIN
else
    cargo build --release --bin rune
    RUNE=target/release/rune
fi

if [ ! -x "$VENV/bin/guidellm" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q guidellm==0.8.1
fi
"$VENV/bin/python" bench/loadgen/make_tokenizer.py "$OUT/tok" >/dev/null

SIM_PID=""
cleanup() { if [ -n "$SIM_PID" ]; then kill "$SIM_PID" 2>/dev/null || true; wait "$SIM_PID" 2>/dev/null || true; fi; }
trap cleanup EXIT

# Starts the simulator on CPU 0 with the given flags; sets SIM_URL.
start_sim() {
    cleanup
    taskset -c 0 "$RUNE" sim-llm --port 0 "$@" 2>"$OUT/sim.log" &
    SIM_PID=$!
    for _ in $(seq 100); do
        SIM_URL=$(grep -o 'http://[0-9.:]*' "$OUT/sim.log" | head -1 || true)
        [ -n "$SIM_URL" ] && return 0
        sleep 0.1
    done
    echo "the simulator did not start" >&2
    exit 1
}

# (a) maximum sustained request rate.
start_sim --ttft-ms 0 --itl-ms 0 --output-tokens 128
for i in $(seq "$RUNS"); do
    taskset -c 1 "$RUNE" bench-llm --backend-url "$SIM_URL" --model sim-llama --concurrency "$CONC" \
        --duration "${DURATION}s" --warmup "$CONC" --input-tokens 128 --output-tokens 128 \
        --no-store --no-calibrate --output json >"$OUT/rune-rate-$i.json"
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 taskset -c 1 "$VENV/bin/guidellm" run \
        --backend "kind=openai_http,target=$SIM_URL,model=sim-llama,request_format=/v1/chat/completions,validate_backend=false" \
        --profile "kind=concurrent,streams=$CONC" \
        --constraint "kind=max_duration,seconds=$DURATION" \
        --data kind=synthetic_text,prompt_tokens=128,output_tokens=128 \
        --tokenizer "kind=huggingface_auto,model=$OUT/tok" \
        --output "kind=json,path=$OUT/guidellm-$i.json" --disable-console >"$OUT/guidellm-$i.log" 2>&1
    "$RUNE" bench-llm import --from guidellm "$OUT/guidellm-$i.json" --output json >"$OUT/guidellm-rate-$i.json"
done

# (b) peak RSS at $STREAMS concurrent streams: 20 ms per token keeps each stream open
# for ~2.6 s, so all of them are in flight together.
start_sim --ttft-ms 0 --itl-ms 20 --output-tokens 128
for i in $(seq "$RUNS"); do
    /usr/bin/time -v -o "$OUT/rss-$i.time" taskset -c 1 "$RUNE" bench-llm --backend-url "$SIM_URL" \
        --model sim-llama --concurrency "$STREAMS" --requests $((STREAMS * 2)) --input-tokens 128 \
        --output-tokens 128 --no-store --no-calibrate --output json >"$OUT/rss-$i.json"
done
cleanup
SIM_PID=""

# (c) start-up time of `rune bench-llm --help`, and the summary table.
python3 - "$OUT" "$RUNS" "$RUNE" "$CONC" "$DURATION" "$STREAMS" <<'PY'
import json, re, statistics, subprocess, sys, time, platform, os
out, runs, rune, conc, duration, streams = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
med = statistics.median
def load(p):
    with open(p) as f:
        return json.load(f)
rune_rate = [load(f"{out}/rune-rate-{i}.json")["metrics"]["request_throughput"] for i in range(1, runs + 1)]
gl_rate = [load(f"{out}/guidellm-rate-{i}.json")["metrics"]["request_throughput"] for i in range(1, runs + 1)]
rune_cpu = [load(f"{out}/rune-rate-{i}.json")["calibration"]["client_cpu_percent"] for i in range(1, runs + 1)]
rss = []
inflight_ok = []
for i in range(1, runs + 1):
    text = open(f"{out}/rss-{i}.time").read()
    rss.append(int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)) / 1024)
    r = load(f"{out}/rss-{i}.json")
    inflight_ok.append(r["metrics"]["requests"]["succeeded"])
starts = []
for _ in range(21):
    t = time.perf_counter()
    subprocess.run([rune, "bench-llm", "--help"], stdout=subprocess.DEVNULL, check=True)
    starts.append((time.perf_counter() - t) * 1000)
ratio = med(rune_rate) / med(gl_rate)
rows = [
    ("(a) max sustained request rate, rune bench-llm", f"{med(rune_rate):.0f} req/s", " / ".join(f"{x:.0f}" for x in rune_rate), ""),
    ("(a) max sustained request rate, GuideLLM 0.8.1", f"{med(gl_rate):.0f} req/s", " / ".join(f"{x:.0f}" for x in gl_rate), ""),
    ("(a) ratio rune / GuideLLM", f"{ratio:.1f}x", "", "target >= 5x: " + ("met" if ratio >= 5 else "NOT met")),
    ("(a) rune client CPU during (a)", f"{med(rune_cpu):.0f} % of one core", " / ".join(f"{x:.0f}" for x in rune_cpu), ""),
    (f"(b) peak RSS, {streams} concurrent streams", f"{med(rss):.1f} MB", " / ".join(f"{x:.1f}" for x in rss), "target < 100 MB: " + ("met" if med(rss) < 100 else "NOT met")),
    ("(c) start-up, `rune bench-llm --help`", f"{med(starts):.1f} ms", f"21 runs, min {min(starts):.1f} max {max(starts):.1f}", ""),
]
lines = [
    "# Load generator benchmark (`bench/loadgen.sh`)",
    "",
    f"Command: `bench/loadgen.sh` (RUNS={runs} DURATION={duration} CONC={conc} STREAMS={streams}), binary `{rune}`.",
    f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}; "
    "simulator pinned to CPU 0, each client to CPU 1 (one core each). Other work on the machine was not stopped.",
    "",
    f"Workload (a): `rune sim-llm --ttft-ms 0 --itl-ms 0 --output-tokens 128`, streaming chat completions, "
    f"128-token prompts, 128 output tokens, closed loop at {conc} streams for {duration} s per run "
    "(rune: --warmup excluded; GuideLLM: `--profile kind=concurrent` with `max_duration`). "
    "GuideLLM's rate is its successful requests over its benchmark duration (`rune bench-llm import`).",
    f"Workload (b): same server with `--itl-ms 20` (each stream open ~2.6 s), `--concurrency {streams}`, "
    f"{int(streams) * 2} requests; peak RSS from `/usr/bin/time -v`.",
    "",
    "| Measure | Median | Runs | Note |",
    "|---|---:|---|---|",
] + [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows] + [
    "",
    "Reading (a): a client below 100 % of its core was not the limit; the simulator on the other "
    "core was, so rune's figure is a lower bound of its own ceiling.",
]
text = "\n".join(lines) + "\n"
open("bench/results/loadgen.md", "w").write(text)
print(text)
PY
