#!/usr/bin/env python3
"""Backup and restore of 1M keys: kvstore against Redis' BGSAVE + RDB load.

Both servers run on 127.0.0.1 on this machine, one after the other, with
the same data: 1M keys key:00000000 .. key:00999999 of 16-byte values.

kvstore: `kvstore-client backup -o FILE` from a running kvstore-server
(--fsync everysec), then `kvstore-server restore FILE --data-dir D` and a
start on D until /readyz answers 200.
Redis: BGSAVE (until rdb_bgsave_in_progress:0), then a restart on the RDB
file until it answers PING with loading:0.

Each backup runs twice: idle, and while a load generator overwrites keys
(kvstore-bench --mix 100:0:0, redis-benchmark SET on the same key space,
both 50 clients, as fast as each server takes them; the rate is printed).
redis-benchmark's keys have 12 digits, so for that run Redis holds
key:000000000000 .. key:000000999999 instead. Memory: for kvstore the peak VmRSS of the server during
the backup above its VmRSS just before; for Redis the peak Private_Dirty
of the BGSAVE child (the pages the fork had to copy; its shared pages cost
nothing) and Redis' own rdb_last_cow_size. Samples every 5 ms.

Needs: make build; redis-server and redis-cli (apt-get install
redis-server redis-tools). Usage: docs/backup-vs-redis.py [KEYS]
"""
import atexit
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

KEYS = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
VALUE = b"0123456789abcdef"
BIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bin")
KV_PORT, KV_HTTP, REDIS_PORT = 50071, 50072, 6391


CHILDREN = []


@atexit.register
def _kill_children():
    for p in CHILDREN:
        if p.poll() is None:
            p.kill()
            p.wait()


def spawn(*args, **kw):
    """Popen, killed at exit if still running."""
    p = subprocess.Popen(*args, **kw)
    CHILDREN.append(p)
    return p


def kb(path, field):
    """A field of a /proc status-like file, in bytes; 0 if gone."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class Peak(threading.Thread):
    """Samples fn() every 5 ms until stop(); .peak is the largest value."""

    def __init__(self, fn):
        super().__init__(daemon=True)
        self.fn, self.peak, self.done = fn, 0, threading.Event()
        self.start()

    def run(self):
        while not self.done.is_set():
            self.peak = max(self.peak, self.fn())
            time.sleep(0.005)

    def stop(self):
        self.done.set()
        self.join()
        return self.peak


def wait_for(cond, what, timeout=120):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return
        time.sleep(0.002)
    raise SystemExit(f"timed out waiting for {what}")


def http_ok(url):
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.status == 200
    except Exception:
        return False


def mib(n):
    return f"{n / (1 << 20):.1f} MiB"


# ---------------------------------------------------------------- kvstore

def kv_start(data):
    log = open(os.path.join(os.path.dirname(data), "kv.log"), "ab")
    p = spawn([os.path.join(BIN, "kvstore-server"), "--listen", f"127.0.0.1:{KV_PORT}",
                          "--http-listen", f"127.0.0.1:{KV_HTTP}", "--data-dir", data,
                          "--fsync", "everysec", "--log-level", "warn", "--snapshot-interval", "0s"],
                         stdout=log, stderr=log)
    t0 = time.time()
    wait_for(lambda: http_ok(f"http://127.0.0.1:{KV_HTTP}/readyz"), "kvstore ready")
    return p, time.time() - t0


def kv_stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait()


def kv_load(keys, mix, *args):
    return [os.path.join(BIN, "kvstore-bench"), "--addr", f"127.0.0.1:{KV_PORT}", "--keys", str(keys),
            "--value-size", "16", "--clients", "50", "--mix", mix, *args]


def kv_seq():
    with urllib.request.urlopen(f"http://127.0.0.1:{KV_HTTP}/v1/admin/info") as r:
        return int(json.load(r)["seq"])


def kv_backup(p, out, tmp):
    seq0 = kv_seq()
    rss0 = kb(f"/proc/{p.pid}/status", "VmRSS")
    peak = Peak(lambda: kb(f"/proc/{p.pid}/status", "VmRSS"))
    t0 = time.time()
    r = subprocess.run([os.path.join(BIN, "kvstore-client"), "--addr", f"127.0.0.1:{KV_PORT}",
                        "backup", "-o", out], capture_output=True, text=True)
    took = time.time() - t0
    top = peak.stop()
    writes = (kv_seq() - seq0) / took
    if r.returncode != 0:
        raise SystemExit(f"kvstore-client backup: {r.stderr}")
    return took, os.path.getsize(out), rss0, max(top - rss0, 0), writes


def kvstore(tmp):
    data = os.path.join(tmp, "kv-data")
    p, _ = kv_start(data)
    t0 = time.time()
    subprocess.run(kv_load(KEYS, "100:0:0", "--preload", "--requests", "1"),
                   check=True, capture_output=True)
    print(f"kvstore: loaded {KEYS} keys in {time.time() - t0:.1f}s; VmRSS {mib(kb(f'/proc/{p.pid}/status', 'VmRSS'))}")
    rows = {}
    bak = os.path.join(tmp, "kv.bak")
    rows["idle"] = kv_backup(p, bak, tmp)
    load = spawn(kv_load(KEYS, "100:0:0", "--duration", "60s"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(3)  # let the load reach its pace
    rows["writes"] = kv_backup(p, os.path.join(tmp, "kv2.bak"), tmp)
    load.send_signal(signal.SIGINT)
    load.wait()
    kv_stop(p)
    t0 = time.time()
    r = subprocess.run([os.path.join(BIN, "kvstore-server"), "restore", bak, "--data-dir",
                        os.path.join(tmp, "kv-restored")], capture_output=True, text=True)
    restore = time.time() - t0
    if r.returncode != 0:
        raise SystemExit(f"restore: {r.stderr}")
    p, start = kv_start(os.path.join(tmp, "kv-restored"))
    kv_stop(p)
    return rows, restore, start


# ------------------------------------------------------------------ Redis

def redis_cli(*args):
    return subprocess.run(["redis-cli", "-p", str(REDIS_PORT), *args], capture_output=True, text=True).stdout


def redis_info(section):
    return dict(l.split(":", 1) for l in redis_cli("info", section).splitlines() if ":" in l)


def redis_start(d):
    p = spawn(["redis-server", "--port", str(REDIS_PORT), "--bind", "127.0.0.1", "--dir", d,
                          "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", "redis.log"])
    t0 = time.time()
    wait_for(lambda: redis_cli("ping").strip() == "PONG" and redis_info("persistence").get("loading") == "0",
             "redis ready")
    return p, time.time() - t0


def redis_load(keys, digits=8):
    fmt = b"key:%0" + str(digits).encode() + b"d"

    def proto():
        for i in range(keys):
            k = fmt % i
            yield b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$16\r\n%s\r\n" % (len(k), k, VALUE)
    p = subprocess.Popen(["redis-cli", "-p", str(REDIS_PORT), "--pipe"], stdin=subprocess.PIPE,
                         stdout=subprocess.DEVNULL)
    buf = []
    for cmd in proto():
        buf.append(cmd)
        if len(buf) == 10000:
            p.stdin.write(b"".join(buf))
            buf = []
    p.stdin.write(b"".join(buf))
    p.stdin.close()
    p.wait()


def redis_children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def redis_commands():
    return int(redis_info("stats")["total_commands_processed"])


def redis_bgsave(p):
    n0 = redis_commands()
    peak = Peak(lambda: sum(kb(f"/proc/{c}/smaps_rollup", "Private_Dirty") for c in redis_children(p.pid)))
    t0 = time.time()
    redis_cli("bgsave")
    wait_for(lambda: redis_info("persistence").get("rdb_bgsave_in_progress") == "0"
             and redis_info("persistence").get("rdb_last_bgsave_status") == "ok", "BGSAVE")
    took = time.time() - t0
    dirty = peak.stop()
    cow = int(redis_info("persistence").get("rdb_last_cow_size", "0"))
    return took, dirty, cow, (redis_commands() - n0) / took


def redis(tmp):
    d = os.path.join(tmp, "redis")
    os.mkdir(d)
    p, _ = redis_start(d)
    t0 = time.time()
    redis_load(KEYS)
    n = int(redis_cli("dbsize"))
    print(f"redis {redis_info('server').get('redis_version')}: loaded {n} keys in {time.time() - t0:.1f}s; "
          f"used_memory {mib(int(redis_info('memory')['used_memory']))}")
    rows = {}
    took, dirty, cow, _ = redis_bgsave(p)
    rows["idle"] = (took, os.path.getsize(os.path.join(d, "dump.rdb")), dirty, cow, 0)
    # redis-benchmark's keys are key:<12 digits>: for it to overwrite
    # keys as kvstore-bench does, the data set has 12-digit keys here.
    redis_cli("flushall")
    redis_load(KEYS, 12)
    load = spawn(["redis-benchmark", "-p", str(REDIS_PORT), "-c", "50", "-d", "16", "-r", str(KEYS),
                             "-n", "100000000", "-t", "set", "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(3)
    rows["writes"] = redis_bgsave(p)
    rows["writes"] = rows["writes"][:1] + (os.path.getsize(os.path.join(d, "dump.rdb")),) + rows["writes"][1:]
    load.kill()
    load.wait()
    redis_cli("flushall")  # back to the idle data set for the load timing
    redis_load(KEYS)
    redis_bgsave(p)
    size = os.path.getsize(os.path.join(d, "dump.rdb"))
    redis_cli("shutdown", "nosave")
    p.wait()
    p, start = redis_start(d)
    with open(os.path.join(d, "redis.log")) as f:
        loaded = re.findall(r"DB loaded from disk: ([0-9.]+) seconds", f.read())
    redis_cli("shutdown", "nosave")
    p.wait()
    return rows, start, loaded[-1] if loaded else "?", size


def main():
    for tool in ("kvstore-server", "kvstore-client", "kvstore-bench"):
        if not os.path.exists(os.path.join(BIN, tool)):
            raise SystemExit("run make build first")
    if not shutil.which("redis-server"):
        raise SystemExit("needs redis-server and redis-cli: apt-get install redis-server redis-tools")
    with tempfile.TemporaryDirectory() as tmp:
        kv, kv_restore, kv_start_s = kvstore(tmp)
        rd, rd_start, rd_loaded, rd_size = redis(tmp)
    print()
    for case in ("idle", "writes"):
        took, size, rss0, extra, writes = kv[case]
        print(f"kvstore backup {case:6}: {took:.2f}s, {size} bytes, peak extra VmRSS {mib(extra)} "
              f"(of {mib(rss0)}), {writes:.0f} writes/s meanwhile")
        took, size, dirty, cow, writes = rd[case]
        print(f"redis   BGSAVE {case:6}: {took:.2f}s, {size} bytes, peak child Private_Dirty {mib(dirty)}, "
              f"rdb_last_cow_size {mib(cow)}, {writes:.0f} commands/s meanwhile")
    print(f"kvstore restore: {kv_restore:.2f}s, then start until ready {kv_start_s:.2f}s")
    print(f"redis   restart on the RDB ({rd_size} bytes) until ready {rd_start:.2f}s (log: DB loaded from disk {rd_loaded}s)")


if __name__ == "__main__":
    main()
