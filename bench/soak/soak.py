#!/usr/bin/env python3
"""Mixed-load soak of one or more `rune serve` replicas (stdlib only).

Workers submit jobs (some twice with the same Idempotency-Key), list pages, follow runs
over SSE to their end, and cancel some, spreading requests over the replicas. A sampler
reads each server's RSS once a second. At the end it waits for the queue to drain and
checks: no unexpected status, every acknowledged job present and terminal, replays
returned the original job, every job claimed and ended exactly once (attempts == 1, one
`job.end` event), and memory flat (RSS in the last quarter vs the second quarter).

Prints one JSON document with the figures; exit 0 when every check passed.
"""

import argparse
import http.client
import json
import random
import statistics
import sys
import threading
import time
import uuid

TENANT = "soak"


def request(port, token, method, path, body=None, headers=None, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = {"Authorization": f"Bearer {token}", "X-Tenant-ID": TENANT}
    if body is not None:
        h["Content-Type"] = "application/json"
    h.update(headers or {})
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, (json.loads(data) if data and data[:1] in b"{[" else None)
    finally:
        conn.close()


def follow_sse(port, token, job_id, deadline):
    """Reads /v1/runs/{id}/trace until the stream ends; returns the number of events."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=max(1.0, deadline - time.time()))
    conn.request("GET", f"/v1/runs/{job_id}/trace",
                 headers={"Authorization": f"Bearer {token}", "X-Tenant-ID": TENANT, "Accept": "text/event-stream"})
    resp = conn.getresponse()
    if resp.status != 200:
        resp.read()
        conn.close()
        return resp.status, 0
    events = 0
    try:
        while time.time() < deadline:
            line = resp.readline()
            if not line:
                break
            if line.startswith(b"data:"):
                events += 1
    finally:
        conn.close()
    return 200, events


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ports", required=True, help="comma-separated ports of the replicas")
    ap.add_argument("--pids", required=True, help="comma-separated server pids (for RSS)")
    ap.add_argument("--token", required=True)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--drain-timeout", type=float, default=300)
    args = ap.parse_args()
    ports = [int(p) for p in args.ports.split(",")]
    pids = [int(p) for p in args.pids.split(",")]
    body = {"vastai": True, "min_dph": 1.0, "max_dph": 2.0, "estimated_duration_seconds": 600}

    lock = threading.Lock()
    acked = {}            # job id -> replica port
    replays = []          # (first id, replayed id)
    statuses = {}         # "METHOD route status" -> count
    unexpected = []
    sse_streams = [0]
    cancels = [0]
    stop = time.time() + args.duration
    rss = {pid: [] for pid in pids}

    def count(key, ok):
        with lock:
            statuses[key] = statuses.get(key, 0) + 1
            if not ok and len(unexpected) < 20:
                unexpected.append(key)

    def worker(n):
        rng = random.Random(n)
        while time.time() < stop:
            port = rng.choice(ports)
            op = rng.random()
            try:
                if op < 0.55:
                    key = str(uuid.uuid4())
                    st, v = request(port, args.token, "POST", "/v1/jobs/cost-estimate", body, {"Idempotency-Key": key})
                    count(f"POST submit {st}", st == 202)
                    if st == 202:
                        with lock:
                            acked[v["job_id"]] = port
                        if rng.random() < 0.1:  # a client retry, possibly to another replica
                            st2, v2 = request(rng.choice(ports), args.token, "POST", "/v1/jobs/cost-estimate", body,
                                              {"Idempotency-Key": key})
                            count(f"POST replay {st2}", st2 in (200, 202))
                            if st2 in (200, 202):
                                with lock:
                                    replays.append((v["job_id"], v2["job_id"]))
                elif op < 0.80:
                    st, _ = request(port, args.token, "GET", "/v1/jobs?limit=50")
                    count(f"GET list {st}", st == 200)
                elif op < 0.92:
                    with lock:
                        ids = list(acked)[-50:]
                    if ids:
                        st, _ = follow_sse(port, args.token, rng.choice(ids), min(stop + 30, time.time() + 30))
                        count(f"GET trace {st}", st == 200)
                        with lock:
                            sse_streams[0] += 1
                else:
                    with lock:
                        ids = list(acked)[-20:]
                    if ids:
                        st, _ = request(port, args.token, "DELETE", f"/v1/jobs/{rng.choice(ids)}")
                        count(f"DELETE cancel {st}", st == 200)
                        with lock:
                            cancels[0] += 1
            except (OSError, http.client.HTTPException) as e:
                count(f"transport {type(e).__name__}", False)

    def sampler():
        while time.time() < stop:
            for pid in pids:
                v = rss_kib(pid)
                if v is not None:
                    rss[pid].append(v)
            time.sleep(1)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.workers)]
    threads.append(threading.Thread(target=sampler))
    started = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - started

    # Drain: every acknowledged job must end.
    deadline = time.time() + args.drain_timeout
    pending = set(acked)
    views = {}
    while pending and time.time() < deadline:
        for jid in list(pending):
            st, v = request(ports[0], args.token, "GET", f"/v1/jobs/{jid}")
            if st == 200 and v["status"] in ("succeeded", "failed", "cancelled"):
                views[jid] = v
                pending.discard(jid)
            elif st == 404:
                break
        if pending:
            time.sleep(0.5)
    missing = [j for j in pending if request(ports[0], args.token, "GET", f"/v1/jobs/{j}")[0] == 404]
    stuck = [j for j in pending if j not in missing]

    # Exactly once: claimed once and ended once (sampled: events are read per job).
    ran = sorted(j for j, v in views.items() if v["status"] != "cancelled")
    sample = random.Random(7).sample(ran, min(300, len(ran)))
    claimed_twice = [j for j in views if views[j]["attempts"] > 1]
    ended_not_once = []
    for jid in sample:
        st, ev = request(ports[0], args.token, "GET", f"/v1/jobs/{jid}/events?limit=1000")
        ends = sum(1 for e in (ev or {}).get("events", []) if e.get("event") == "job.end")
        if st != 200 or ends != 1:
            ended_not_once.append(jid)
    bad_replays = [p for p in replays if p[0] != p[1]]

    by_status = {}
    for v in views.values():
        by_status[v["status"]] = by_status.get(v["status"], 0) + 1

    memory = {}
    flat = True
    for pid, samples in rss.items():
        q = max(1, len(samples) // 4)
        early = statistics.median(samples[q:2 * q]) if len(samples) >= 4 else None
        late = statistics.median(samples[-q:]) if samples else None
        growth = (late / early - 1) * 100 if early else None
        memory[str(pid)] = {"rss_mib_q2": early and round(early / 1024, 1), "rss_mib_q4": late and round(late / 1024, 1),
                            "growth_pct": growth and round(growth, 1), "peak_mib": samples and round(max(samples) / 1024, 1)}
        if growth is not None and growth > 25:
            flat = False

    report = {
        "replicas": len(ports),
        "duration_s": round(elapsed, 1),
        "requests": sum(statuses.values()),
        "requests_per_s": round(sum(statuses.values()) / elapsed, 1),
        "statuses": dict(sorted(statuses.items())),
        "acknowledged_jobs": len(acked),
        "jobs_by_status": by_status,
        "sse_streams_followed": sse_streams[0],
        "cancels": cancels[0],
        "idempotent_replays": len(replays),
        "replays_answered_with_another_job": len(bad_replays),
        "missing_jobs": len(missing),
        "stuck_jobs": len(stuck),
        "claimed_more_than_once": len(claimed_twice),
        "ended_not_exactly_once_in_sample": len(ended_not_once),
        "events_sampled_jobs": len(sample),
        "unexpected": unexpected,
        "memory": memory,
    }
    report["passed"] = (not unexpected and not missing and not stuck and not claimed_twice and not ended_not_once
                        and not bad_replays and flat and len(acked) > 0)
    print(json.dumps(report, indent=2))
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
