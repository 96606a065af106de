#!/usr/bin/env python3
"""bench/report.py — parsing and tables for bench/http.sh.

  report.py parse wrk|h2load FILE
      prints one TSV fragment: requests  seconds  rps  p99_us  mean_us  bad  note
      (bad = non-2xx responses + socket errors/timeouts + failed requests)
  report.py summary RESULTS.tsv
      prints the markdown summary (medians over rounds, wisp/nginx ratios)

RESULTS.tsv columns (written by http.sh):
  round scenario server requests seconds rps p99_us mean_us cpu_s req_per_cpu_s bad note
"""
import re
import statistics
import sys

UNIT = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}


def to_us(v):
    m = re.match(r"([\d.]+)\s*(us|ms|s|m|h)$", v.strip())
    if not m:
        return float("nan")
    return float(m.group(1)) * UNIT[m.group(2)]


def parse_wrk(text):
    reqs = secs = rps = p99 = mean = float("nan")
    bad = 0
    notes = []
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text)
    if m:
        reqs = int(m.group(1))
        secs = to_us(m.group(2) + m.group(3)) / 1e6
    m = re.search(r"Requests/sec:\s*([\d.]+)", text)
    if m:
        rps = float(m.group(1))
    m = re.search(r"^\s*99%\s+(\S+)", text, re.M)
    if m:
        p99 = to_us(m.group(1))
        if p99 == 0:
            # wrk 4.1's coordinated-omission correction can put synthetic
            # samples below the recorded minimum (pipelining), and its
            # percentile walk then finds nothing.
            p99 = float("nan")
            notes.append("wrk p99 unusable")
    m = re.search(r"^\s*Latency\s+(\S+)", text, re.M)
    if m:
        mean = to_us(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
    if m:
        bad += int(m.group(1))
        notes.append("non-2xx=%s" % m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        n = sum(int(x) for x in m.groups())
        bad += n
        notes.append("socket errors c/r/w/t=%s/%s/%s/%s" % m.groups())
    if reqs != reqs:
        notes.append("wrk output not understood")
    return reqs, secs, rps, p99, mean, bad, "; ".join(notes)


def parse_h2load(text):
    reqs = secs = rps = p99 = mean = float("nan")
    bad = 0
    notes = []
    m = re.search(r"finished in ([\d.]+)(us|ms|s|m), ([\d.]+) req/s", text)
    if m:
        secs = to_us(m.group(1) + m.group(2)) / 1e6
        rps = float(m.group(3))
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", text)
    if m:
        total, started, done, ok, failed, errored, timeout = map(int, m.groups())
        reqs = ok
        if ok != total or failed or errored or timeout:
            bad += total - ok
            notes.append("h2load: %d total, %d succeeded, %d failed, %d errored, %d timeout"
                         % (total, ok, failed, errored, timeout))
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    if m:
        non2 = sum(int(x) for x in m.groups()[1:])
        if non2:
            bad += non2
            notes.append("non-2xx=%d" % non2)
    m = re.search(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)", text)
    if m:
        mean = to_us(m.group(3))
    if reqs != reqs:
        notes.append("h2load output not understood")
    return reqs, secs, rps, p99, mean, bad, "; ".join(notes)


def fmt_num(v, digits=0):
    if v != v:
        return "—"
    if digits == 0:
        return "{:,.0f}".format(v)
    return "{:,.{d}f}".format(v, d=digits)


def fmt_lat(us):
    if us != us:
        return "—"
    if us >= 1000:
        return "%.2f ms" % (us / 1000)
    return "%.0f µs" % us


def ratio(a, b):
    if a != a or b != b or b == 0:
        return float("nan")
    return a / b


def med(xs):
    xs = [x for x in xs if x == x]
    return statistics.median(xs) if xs else float("nan")


def summary(path):
    rows = []
    with open(path) as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            parts = line.rstrip("\n").split("\t")
            parts += [""] * (len(header) - len(parts))
            r = dict(zip(header, parts))
            for k in ("requests", "seconds", "rps", "p99_us", "mean_us", "cpu_s", "req_per_cpu_s"):
                try:
                    r[k] = float(r[k])
                except ValueError:
                    r[k] = float("nan")
            r["bad"] = int(r["bad"] or 0)
            rows.append(r)
    scenarios = []
    for r in rows:
        if r["scenario"] not in scenarios:
            scenarios.append(r["scenario"])
    rounds = sorted({r["round"] for r in rows}, key=int)

    def get(sc, srv, key, rnd=None):
        return [r[key] for r in rows if r["scenario"] == sc and r["server"] == srv
                and (rnd is None or r["round"] == rnd)]

    out = []
    out.append("| scenario | wisp req/s | nginx req/s | ratio (range over rounds) "
               "| wisp p99 | nginx p99 | wisp req/CPU-s | nginx req/CPU-s | ratio (range) "
               "| server CPU wisp / nginx | bad responses wisp / nginx |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for sc in scenarios:
        w_rps, n_rps = med(get(sc, "wisp", "rps")), med(get(sc, "nginx", "rps"))
        w_cpu, n_cpu = med(get(sc, "wisp", "req_per_cpu_s")), med(get(sc, "nginx", "req_per_cpu_s"))
        w_p99, n_p99 = med(get(sc, "wisp", "p99_us")), med(get(sc, "nginx", "p99_us"))
        if w_p99 != w_p99:
            w_m, n_m = med(get(sc, "wisp", "mean_us")), med(get(sc, "nginx", "mean_us"))
            w_p99s = "mean " + fmt_lat(w_m) if w_m == w_m else "—"
            n_p99s = "mean " + fmt_lat(n_m) if n_m == n_m else "—"
        else:
            w_p99s, n_p99s = fmt_lat(w_p99), fmt_lat(n_p99)
        rr, cr = [], []
        for rnd in rounds:
            a, b = get(sc, "wisp", "rps", rnd), get(sc, "nginx", "rps", rnd)
            if a and b:
                rr.append(ratio(a[0], b[0]))
            a, b = get(sc, "wisp", "req_per_cpu_s", rnd), get(sc, "nginx", "req_per_cpu_s", rnd)
            if a and b:
                cr.append(ratio(a[0], b[0]))
        rr = [x for x in rr if x == x]
        cr = [x for x in cr if x == x]
        util = []
        for srv in ("wisp", "nginx"):
            c = [r["cpu_s"] / r["seconds"] for r in rows if r["scenario"] == sc and r["server"] == srv
                 and r["seconds"] == r["seconds"] and r["seconds"] > 0]
            util.append("%.0f %%" % (100 * med(c)) if c else "—")
        bad = [sum(get(sc, s, "bad")) for s in ("wisp", "nginx")]
        out.append("| %s | %s | %s | **%.2f×** (%s) | %s | %s | %s | %s | **%.2f×** (%s) | %s | %d / %d |" % (
            sc, fmt_num(w_rps), fmt_num(n_rps), ratio(w_rps, n_rps),
            "%.2f–%.2f" % (min(rr), max(rr)) if rr else "—",
            w_p99s, n_p99s, fmt_num(w_cpu), fmt_num(n_cpu), ratio(w_cpu, n_cpu),
            "%.2f–%.2f" % (min(cr), max(cr)) if cr else "—",
            util[0] + " / " + util[1], bad[0], bad[1]))
    notes = sorted({(r["server"], r["scenario"], r["note"]) for r in rows if r["note"]})
    if notes:
        out.append("")
        out.append("Notes:")
        for srv, sc, note in notes:
            out.append("- %s %s: %s" % (srv, sc, note))
    print("\n".join(out))


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "parse":
        text = open(sys.argv[3], errors="replace").read()
        fn = parse_h2load if sys.argv[2] == "h2load" else parse_wrk
        reqs, secs, rps, p99, mean, bad, note = fn(text)
        if sys.argv[2] == "wrk-pipe":
            # wrk records one latency per batch of pipelined requests and
            # its coordinated-omission correction (interval computed from
            # responses, not batches) distorts mean and percentiles.
            p99 = mean = float("nan")
            note = "; ".join(x for x in note.split("; ")
                             if x and not x.startswith("wrk p99"))
        print("\t".join([fmt_raw(reqs), fmt_raw(secs), fmt_raw(rps), fmt_raw(p99),
                         fmt_raw(mean), str(bad), note]))
    elif len(sys.argv) == 3 and sys.argv[1] == "summary":
        summary(sys.argv[2])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


def fmt_raw(v):
    if isinstance(v, int):
        return str(v)
    if v != v:
        return "nan"
    return "%.6g" % v if abs(v) < 1e6 else "%.0f" % v


if __name__ == "__main__":
    main()
