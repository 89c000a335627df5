# redis-py with its default settings against the kvstore front at
# 127.0.0.1:PORT; run by TestClientLibraries. Exits non-zero on the first
# reply that is not Redis'.
import sys

import redis


def check(what, got, want):
    if got != want:
        sys.exit("%s: got %r, want %r" % (what, got, want))


r = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]))
check("ping", r.ping(), True)
check("set ex", r.set("a", "1", ex=100), True)
check("get", r.get("a"), b"1")
check("ttl", r.ttl("a"), 100)
check("set nx", r.set("a", "2", nx=True), None)
check("incr", [r.incr("n"), r.incrby("n", 5), r.decr("n")], [1, 6, 5])
check("incrbyfloat", r.incrbyfloat("f", 1.5), 1.5)
check("append", [r.append("s", "ab"), r.append("s", "cd"), r.strlen("s")], [2, 4, 4])
check("setrange", [r.setrange("s", 1, "ZZ"), r.get("s"), r.getrange("s", 1, 2)], [4, b"aZZd", b"ZZ"])
check("mset", r.mset({"k1": "v1", "k2": "v2"}), True)
check("mget", r.mget("k1", "k2", "none"), [b"v1", b"v2", None])
check("msetnx", [r.msetnx({"k1": "x", "k3": "y"}), r.exists("k3")], [False, 0])
check("exists", r.exists("k1", "k2", "none"), 2)
check("expire", [r.expire("k2", 50), r.ttl("k2"), r.persist("k2"), r.ttl("k2")], [True, 50, True, -1])
check("getset", [r.getset("a", "3"), r.getdel("a"), r.get("a")], [b"1", b"3", None])
check("getex", [r.getex("s", ex=10), r.ttl("s")], [b"aZZd", 10])
check("type", r.type("s"), b"string")
check("keys", sorted(r.keys("k*")), [b"k1", b"k2"])
check("scan", sorted(r.scan_iter(match="k*")), [b"k1", b"k2"])
check("binary", [r.set(b"\xff\x00k", b"\x00\xfe"), r.get(b"\xff\x00k")], [True, b"\x00\xfe"])
check("info", r.info("server")["redis_version"].split(".")[0], "7")
check("config", r.config_get("maxmemory"), {"maxmemory": "0"})
check("client", [r.client_setname("py"), r.client_getname()], [True, "py"])
p = r.pipeline(transaction=False)
for i in range(100):
    p.set("p%d" % i, i)
check("pipeline", p.execute(), [True] * 100)
p = r.pipeline(transaction=True)
p.set("t", 1)
p.incr("t")
check("multi", p.execute(), [True, 2])
check("dbsize", r.dbsize(), 107)
check("flushdb", [r.flushdb(), r.dbsize()], [True, 0])
print("ok")
