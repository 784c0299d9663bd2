"""Submit chunks of proxies to check_proxy_chunk, recording what was submitted.

    python3 -m proxies.enqueue_chunks --lab DIR (--live URL | --live-file FILE)... [--chunks N] \
        --submitted FILE [--checksums FILE]

Chunk i (chunk-1, chunk-2, ...) holds, in this order: a blackhole of the lab (accepts, never
answers: mubeng waits its whole -t on it, so the task is "in the middle" for that long and
prints nothing meanwhile), a refused address of the lab, then every --live proxy. Each chunk id
is written to --submitted once the broker has it; --checksums gets "id sha256(output)" lines
for the output a correct run produces: "live: " and the --live proxies, sorted.
"""
import argparse
import hashlib
import json
import os

from .tasks import check_proxy_chunk


def lab_proxies(lab_dir):
    kinds = {}
    with open(os.path.join(lab_dir, "truth.jsonl")) as f:
        for line in f:
            rec = json.loads(line)
            kinds.setdefault(rec["kind"], []).append(rec["proxy"])
    return kinds.get("blackhole", []), kinds.get("refused", [])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lab", required=True, help="the lab's --dir (truth.jsonl)")
    p.add_argument("--live", action="append", default=[], help="a proxy that passes mubeng's check")
    p.add_argument("--live-file", action="append", default=[], help="a file of such proxies, one per line")
    p.add_argument("--chunks", type=int, default=4)
    p.add_argument("--submitted", required=True)
    p.add_argument("--checksums")
    a = p.parse_args()
    for path in a.live_file:
        with open(path) as f:
            a.live += [line.strip() for line in f if line.strip()]
    blackholes, refused = lab_proxies(a.lab)
    if not blackholes or not refused:
        p.error("the lab in %s has no blackhole or no refused proxy" % a.lab)
    want = "live: " + ",".join(sorted(a.live))
    sums = open(a.checksums, "w") if a.checksums else None
    with open(a.submitted, "w") as sub:
        for i in range(a.chunks):
            cid = "chunk-%d" % (i + 1)
            chunk = [blackholes[i % len(blackholes)], refused[i % len(refused)]] + a.live
            check_proxy_chunk.apply_async(args=[cid, chunk])
            sub.write(cid + "\n")  # once the broker has it
            sub.flush()
            if sums:
                sums.write("%s %s\n" % (cid, hashlib.sha256(want.encode()).hexdigest()))
    if sums:
        sums.close()
    print("enqueued %d chunks" % a.chunks, flush=True)


if __name__ == "__main__":
    main()
