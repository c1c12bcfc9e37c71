#!/usr/bin/env python3
"""Records the golden CLUSTER replies; run by tools/record-cluster-golden, which starts the
3-master Redis Cluster first. Not meant to be run on its own.

usage: record-cluster-golden.py [--hostnames] OUTDIR PORT1 PORT2 PORT3

With --hostnames (the nodes announce hostnames), only the replies that show endpoints are
recorded, once for each `cluster-preferred-endpoint-type` (set with CONFIG SET on every
node): the cases are named `<type>-<case>`.

Speaks raw RESP over TCP (no redis-cli formatting), so every reply is recorded as the
exact bytes Redis sent, up to the normalization described in
tests/tests/it/golden/cluster/README.md (node ids, epochs, ping/pong times and message
counters, and the order of CLUSTER SHARDS entries and CLUSTER NODES lines).
Every socket read has a timeout, so nothing here waits forever.
"""
import os
import random
import re
import socket
import sys

TIMEOUT = 5.0  # seconds, per socket operation


# --- RESP -----------------------------------------------------------------------------

def encode_cmd(args):
    """RESP2 array of bulk strings; args are bytes or str (str is UTF-8)."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


# A parsed reply is a tuple (marker, payload):
#   marker in b"+-:,#(_" -> payload is the raw line after the marker (bytes)
#   marker in b"$!="     -> payload is the blob (bytes), or None for RESP2 $-1
#   marker in b"*~>%|"   -> payload is a list of children, or None for RESP2 *-1
# (maps and attributes hold 2n children: key, value, key, value, ...). encode() turns it
# back into bytes; for every reply recorded here encode(parse(raw)) == raw is checked, so
# the re-encoding after normalization only changes what normalization changes (and the
# lengths that go with it).

class Conn:
    def __init__(self, port):
        self.port = port
        self.s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.s.settimeout(TIMEOUT)
        self.buf = b""
        self.raw = b""  # bytes consumed by the reply being parsed

    def close(self):
        self.s.close()

    def _fill(self):
        chunk = self.s.recv(65536)
        if not chunk:
            raise ConnectionError("port %d closed the connection" % self.port)
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        self.raw += line + b"\r\n"
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, tail, self.buf = self.buf[:n], self.buf[n:n + 2], self.buf[n + 2:]
        if tail != b"\r\n":
            raise ValueError("blob not followed by CRLF on port %d" % self.port)
        self.raw += data + b"\r\n"
        return data

    def _parse(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t in b"+-:,#(_" and len(t) == 1:
            return (t, rest)
        if t in (b"$", b"!", b"="):
            n = int(rest)
            if n < 0:
                return (t, None)
            return (t, self._exact(n))
        if t in (b"*", b"~", b">", b"%", b"|"):
            n = int(rest)
            if n < 0:
                return (t, None)
            if t in (b"%", b"|"):
                n *= 2
            return (t, [self._parse() for _ in range(n)])
        raise ValueError("unexpected RESP line %r on port %d" % (line, self.port))

    def read(self):
        """Returns (parsed, raw bytes) of one reply."""
        self.raw = b""
        r = self._parse()
        raw = self.raw
        if encode(r) != raw:
            raise AssertionError("RESP re-encoding is not lossless for %r" % raw)
        return r, raw

    def call(self, *args):
        self.s.sendall(encode_cmd(args))
        return self.read()

    def pipeline(self, cmds):
        self.s.sendall(b"".join(encode_cmd(c) for c in cmds))
        return [self.read() for _ in cmds]


def encode(r):
    t, p = r
    if t in (b"+", b"-", b":", b",", b"#", b"(", b"_"):
        return t + p + b"\r\n"
    if t in (b"$", b"!", b"="):
        if p is None:
            return t + b"-1\r\n"
        return t + b"%d\r\n" % len(p) + p + b"\r\n"
    if p is None:
        return t + b"-1\r\n"
    n = len(p) // 2 if t in (b"%", b"|") else len(p)
    return t + b"%d\r\n" % n + b"".join(encode(c) for c in p)


def is_error(r):
    return r[0] in (b"-", b"!")


# --- Redis's key -> slot rule, to cross-check what CLUSTER KEYSLOT says ------------------

def crc16(data):
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def key_slot(key):
    s = key.find(b"{")
    if s != -1:
        e = key.find(b"}", s + 1)
        if e != -1 and e != s + 1:
            key = key[s + 1:e]
    return crc16(key) & 16383


# --- normalization ----------------------------------------------------------------------

class Norm:
    def __init__(self, ids):
        # ids: node index (1-based, by port order) -> 40-hex node id
        self.ids = {v.encode(): ("<id:%d>" % k).encode() for k, v in ids.items()}
        self.idre = re.compile(b"|".join(re.escape(i) for i in self.ids))

    def text(self, b):
        return self.idre.sub(lambda m: self.ids[m.group(0)], b)

    def tree(self, r):
        """Replaces node ids in every string, recursively."""
        t, p = r
        if p is None:
            return r
        if isinstance(p, list):
            return (t, [self.tree(c) for c in p])
        return (t, self.text(p))


def map_blob(r, f):
    """Applies f to the text of a bulk / verbatim string reply (after the `txt:` prefix)."""
    t, p = r
    if t == b"$":
        return (t, f(p))
    if t == b"=":
        assert p[3:4] == b":", p
        return (t, p[:4] + f(p[4:]))
    return r


INFO_VARYING = re.compile(rb"^(cluster_current_epoch|cluster_my_epoch|cluster_stats_messages_[a-z_]+):")


def norm_cluster_info(text):
    out = []
    for line in text.split(b"\r\n"):
        m = INFO_VARYING.match(line)
        if m:
            line = m.group(0) + b"<n>"
        out.append(line)
    # Which cluster_stats_messages_<type>_{sent,received} lines appear depends on the
    # message types the node has seen (node 1 shows meet_received because redis-cli
    # --cluster create has nodes 2 and 3 MEET node 1); the lines themselves are kept.
    return b"\r\n".join(out)


def norm_cluster_nodes(text):
    # <id> <ip:port@cport[,hostname]> <flags> <master> <ping-sent> <pong-recv>
    # <config-epoch> <link-state> <slot> <slot> ... <slot>\n  (lines in dict order)
    assert text.endswith(b"\n"), text
    lines = text[:-1].split(b"\n")
    out = []
    for line in lines:
        f = line.split(b" ")
        f[4], f[5], f[6] = b"<ping_sent>", b"<pong_recv>", b"<config_epoch>"
        out.append(b" ".join(f))
    out.sort(key=lambda l: l.split(b" ")[1])  # by ip:port, which we fix
    return b"\n".join(out) + b"\n"


def slot_start_of_slots_entry(r):
    return int(r[1][0][1])


def check_cluster_slots(r):
    """Redis 7.0 emits CLUSTER SLOTS ranges in slot order (it walks slots 0..16383), so
    the entries are recorded exactly as sent; this only checks that assumption."""
    starts = [slot_start_of_slots_entry(e) for e in r[1]]
    if starts != sorted(starts):
        raise AssertionError("CLUSTER SLOTS not in slot order: %r" % starts)
    return r


def shard_first_slot(r):
    t, kv = r
    for i in range(0, len(kv), 2):
        if kv[i][1] == b"slots":
            slots = kv[i + 1][1]
            return int(slots[0][1]) if slots else 1 << 20
    raise AssertionError("no slots in %r" % (r,))


def norm_cluster_shards(r):
    t, shards = r
    return (t, sorted(shards, key=shard_first_slot))


# --- the recording ------------------------------------------------------------------------

class Recorder:
    def __init__(self, outdir, ports):
        self.outdir = outdir
        self.ports = ports
        self.ids = {}
        for i, port in enumerate(ports):
            c = Conn(port)
            r, _ = c.call("CLUSTER", "MYID")
            c.close()
            self.ids[i + 1] = r[1].decode()
            assert re.fullmatch(r"[0-9a-f]{40}", self.ids[i + 1]), r
        self.norm = Norm(self.ids)
        self.manifest = []
        self.check_topology()

    def node(self, n):
        return self.ports[n - 1]

    def owner(self, key):
        s = key_slot(key.encode() if isinstance(key, str) else key)
        return 1 + sum(s > hi for hi in (5460, 10922))

    def check_topology(self):
        """The files assume redis-cli's split: 0-5460, 5461-10922, 10923-16383."""
        c = Conn(self.node(1))
        r, _ = c.call("CLUSTER", "SLOTS")
        c.close()
        got = sorted(
            (int(e[1][0][1]), int(e[1][1][1]), int(e[1][2][1][1][1])) for e in r[1])
        want = [(0, 5460, self.ports[0]), (5461, 10922, self.ports[1]),
                (10923, 16383, self.ports[2])]
        if got != want:
            raise AssertionError("unexpected slot split %r" % (got,))

    def flushall(self):
        for port in self.ports:
            c = Conn(port)
            r, _ = c.call("FLUSHALL")
            c.close()
            assert r == (b"+", b"OK"), r

    def write(self, name, data):
        with open(os.path.join(self.outdir, name), "wb") as f:
            f.write(data)

    def run_variant(self, node, proto, setup, cmds, post):
        self.flushall()
        c = Conn(self.node(node))
        if proto == 3:
            r, _ = c.call("HELLO", "3")
            assert r[0] == b"%", r
        for s in setup:
            r, raw = c.call(*s)
            assert not is_error(r), (s, raw)
        out = []
        for cmd in cmds:
            r, _ = c.call(*cmd)
            r = self.norm.tree(r)
            if post:
                r = post(r)
            out.append(encode(r))
        c.close()
        return b"".join(out)

    def case(self, name, node, cmds, setup=(), post=None, compare="exact"):
        """Records `cmds` (a list of commands, each a list of args) sent to node `node`
        (1-based) on one fresh connection, after FLUSHALL on every node and `setup` on
        the same connection (its replies are not recorded). Writes NAME.resp2 and, if
        RESP3 gives other bytes, NAME.resp3 (after HELLO 3 on the same connection).
        `compare` (exact, unordered or shape) goes to cases.tsv; see the README."""
        r2 = self.run_variant(node, 2, setup, cmds, post)
        again = self.run_variant(node, 2, setup, cmds, post)
        if again != r2:
            raise AssertionError("case %s is not stable within one run:\n%r\n%r"
                                 % (name, r2, again))
        r3 = self.run_variant(node, 3, setup, cmds, post)
        self.write(name + ".resp2", r2)
        files = [name + ".resp2"]
        if r3 != r2:
            self.write(name + ".resp3", r3)
            files.append(name + ".resp3")
        self.manifest.append((name, self.node(node), compare,
                              ",".join(f.rsplit(".", 1)[1] for f in files),
                              fmt_cmds(setup), fmt_cmds(cmds)))

    def write_manifest(self):
        lines = ["# case\tport\tcompare\tfiles\tsetup\tcommands"]
        for row in self.manifest:
            lines.append("\t".join(str(x) for x in row))
        self.write("cases.tsv", ("\n".join(lines) + "\n").encode())

    def keyslot_table(self, keys):
        c = Conn(self.node(1))
        lines = []
        for i in range(0, len(keys), 200):
            batch = keys[i:i + 200]
            replies = c.pipeline([["CLUSTER", "KEYSLOT", k] for k in batch])
            for k, (r, raw) in zip(batch, replies):
                assert r[0] == b":", raw
                slot = int(r[1])
                if slot != key_slot(k):
                    raise AssertionError("KEYSLOT %r: redis %d, crc16 %d"
                                         % (k, slot, key_slot(k)))
                lines.append("%s\t%d" % (k.hex(), slot))
        c.close()
        self.write("keyslot.tsv", ("\n".join(lines) + "\n").encode())


def fmt_cmds(cmds):
    out = []
    for cmd in cmds:
        for a in cmd:
            a = a if isinstance(a, str) else a.decode()
            assert a and re.fullmatch(r"[!-~]+", a) and ";" not in a, a
        out.append(" ".join(cmd))
    return " ; ".join(out) if out else "-"


def keyslot_keys():
    edge = [
        b"", b"{}", b"{}a", b"a{}", b"{a", b"a}", b"}{a}", b"{a}{b}", b"{{a}}", b"a{b}c",
        b"{user1000}.following", b"{user1000}.followers", b"foo", b"bar", b"123456789",
        b"{", b"}", b"{{", b"}}", b"}{", b"{}}", b"{{}", b"{{}}", b"{}{a}", b"a{b}{c}",
        b"{a}", b"a", b"b", b"c", b"{ab}c", b"x{}{a}", b"{a}}", b"{{a}", b"{ }", b" ",
        b"{a}b", b"b{a}", b"{b}a", b"{user1000}", b"user1000", b"{123456789}",
        b"\x00", b"\x00\x00", b"a\x00b", b"{\x00}", b"\x00{a}", b"{a\x00}b", b"\x00{}",
        b"\xff", b"\xff\xfe", b"{\xff}", b"\xff{a}x", b"{\xff\x00}", b"\x80",
        b"a\r\nb", b"\r\n", b"\n", b"$1", b"*1", b"-ERR", b"\t",
        "ключ".encode(), "{ключ}x".encode(), "ключ{a}".encode(),
        b"x" * 1000,
        bytes(range(256)) * 4,
        b"y" * 995 + b"{tag}",
        b"{tag}" + b"z" * 995,
        b"{" + b"w" * 998 + b"}",
        b"{" * 1000,
        b"}" * 1000,
    ]
    rng = random.Random(20240611)
    printable = bytes(range(0x20, 0x7F))
    alnum = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:._-"
    rand = []
    for i in range(2000):
        n = rng.randrange(0, 65)
        mode = i % 4
        if mode == 0:  # printable ASCII (may contain braces by chance)
            k = bytes(printable[rng.randrange(len(printable))] for _ in range(n))
        elif mode == 1:  # any byte
            k = bytes(rng.getrandbits(8) for _ in range(n))
        elif mode == 2:  # alnum with one or two braces at random places
            k = bytearray(alnum[rng.randrange(len(alnum))] for _ in range(n))
            for br in rng.sample(b"{}{", rng.randrange(1, 4)):
                k.insert(rng.randrange(len(k) + 1), br)
            k = bytes(k)
        else:  # binary with a well-formed {tag} somewhere
            k = bytearray(rng.getrandbits(8) for _ in range(n))
            tag = b"{" + bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 6))) + b"}"
            pos = rng.randrange(len(k) + 1)
            k = bytes(k[:pos] + tag + k[pos:])
        rand.append(k)
    return edge + rand


def endpoint_cases(rec, prefix):
    """The replies that show where a node is reached."""
    nodes = lambda r: map_blob(r, norm_cluster_nodes)
    rec.case(prefix + "slots", 1, [["CLUSTER", "SLOTS"]], post=check_cluster_slots)
    rec.case(prefix + "shards", 1, [["CLUSTER", "SHARDS"]], post=norm_cluster_shards)
    rec.case(prefix + "nodes", 1, [["CLUSTER", "NODES"]], post=nodes)
    rec.case(prefix + "moved-get", 1, [["GET", "foo"]])
    rec.case(prefix + "moved-set", 1, [["SET", "foo", "1"]])


def set_endpoint_type(rec, kind):
    for port in rec.ports:
        c = Conn(port)
        r, raw = c.call("CONFIG", "SET", "cluster-preferred-endpoint-type", kind)
        c.close()
        assert r == (b"+", b"OK"), raw


def main():
    args = sys.argv[1:]
    hostnames = args[:1] == ["--hostnames"]
    if hostnames:
        args = args[1:]
    outdir = args[0]
    ports = [int(p) for p in args[1:]]
    assert len(ports) == 3
    rec = Recorder(outdir, ports)
    case = rec.case
    if hostnames:
        for kind in ("ip", "hostname", "unknown-endpoint"):
            set_endpoint_type(rec, kind)
            endpoint_cases(rec, kind + "-")
        rec.write_manifest()
        return

    tag = "{user1000}"
    tagslot = key_slot(tag.encode())
    tn = rec.owner(tag)  # node owning the hashtag's slot
    other = 1 if tn != 1 else 2  # some node that does not own it
    tk = [tag + ".following", tag + ".followers", tag + ".x"]
    tagset = [["SET", k, "v%d" % i] for i, k in enumerate(tk)]
    # Two keys in different slots that are both owned by node 1.
    assert rec.owner("b") == 1 and rec.owner("bar") == 1
    assert key_slot(b"b") != key_slot(b"bar")
    # Keys owned by other nodes than node 1.
    assert rec.owner("foo") == 3 and rec.owner("a") == 3 and rec.owner("c") == 2
    # A slot that node `tn` owns but holds no keys.
    empty_slot = {1: 100, 2: 6000, 3: 11000}[tn]

    # topology
    case("slots", 1, [["CLUSTER", "SLOTS"]], post=check_cluster_slots)
    case("shards", 1, [["CLUSTER", "SHARDS"]], post=norm_cluster_shards, compare="shape")
    case("nodes", 1, [["CLUSTER", "NODES"]], post=lambda r: map_blob(r, norm_cluster_nodes))
    for n in (2, 3):  # the `myself` flag on another line
        case("nodes-node%d" % n, n, [["CLUSTER", "NODES"]],
             post=lambda r: map_blob(r, norm_cluster_nodes))
    case("info", 1, [["CLUSTER", "INFO"]], post=lambda r: map_blob(r, norm_cluster_info),
         compare="shape")
    case("myid", 1, [["CLUSTER", "MYID"]])
    case("info-cluster", 1, [["INFO", "cluster"]])
    case("help", 1, [["CLUSTER", "HELP"]], compare="shape")

    # slot contents
    case("countkeysinslot", tn, [["CLUSTER", "COUNTKEYSINSLOT", str(tagslot)],
                                 ["CLUSTER", "COUNTKEYSINSLOT", str(empty_slot)]],
         setup=tagset)
    case("countkeysinslot-not-owner", other,
         [["CLUSTER", "COUNTKEYSINSLOT", str(tagslot)]], setup=[])
    case("getkeysinslot", tn, [["CLUSTER", "GETKEYSINSLOT", str(tagslot), "10"],
                               ["CLUSTER", "GETKEYSINSLOT", str(tagslot), "1"],
                               ["CLUSTER", "GETKEYSINSLOT", str(tagslot), "0"],
                               ["CLUSTER", "GETKEYSINSLOT", str(empty_slot), "10"]],
         setup=tagset, compare="unordered")
    case("countkeysinslot-16384", 1, [["CLUSTER", "COUNTKEYSINSLOT", "16384"]])
    case("countkeysinslot-minus1", 1, [["CLUSTER", "COUNTKEYSINSLOT", "-1"]])
    case("countkeysinslot-abc", 1, [["CLUSTER", "COUNTKEYSINSLOT", "abc"]])
    case("countkeysinslot-arity", 1, [["CLUSTER", "COUNTKEYSINSLOT"],
                                      ["CLUSTER", "COUNTKEYSINSLOT", "1", "2"]])
    case("getkeysinslot-count-minus1", 1, [["CLUSTER", "GETKEYSINSLOT", "0", "-1"]])
    case("getkeysinslot-count-abc", 1, [["CLUSTER", "GETKEYSINSLOT", "0", "abc"]])
    case("getkeysinslot-slot-16384", 1, [["CLUSTER", "GETKEYSINSLOT", "16384", "1"]])
    case("getkeysinslot-slot-minus1", 1, [["CLUSTER", "GETKEYSINSLOT", "-1", "1"]])
    case("getkeysinslot-slot-abc", 1, [["CLUSTER", "GETKEYSINSLOT", "abc", "1"]])
    case("getkeysinslot-arity", 1, [["CLUSTER", "GETKEYSINSLOT", "0"],
                                    ["CLUSTER", "GETKEYSINSLOT", "0", "1", "2"]])
    case("keyslot", 1, [["CLUSTER", "KEYSLOT", "foo"],
                        ["CLUSTER", "KEYSLOT", tag + ".following"]])
    case("keyslot-arity", 1, [["CLUSTER", "KEYSLOT"],
                              ["CLUSTER", "KEYSLOT", "a", "b"]])
    case("cluster-unknown-subcommand", 1, [["CLUSTER", "FOO"]])
    case("cluster-unknown-subcommand-args", 1, [["CLUSTER", "foo", "bar", "baz"]])
    case("cluster-no-subcommand", 1, [["CLUSTER"]])
    case("myid-arity", 1, [["CLUSTER", "MYID", "x"]])

    # connection flags
    case("readonly", 1, [["READONLY"]])
    case("readwrite", 1, [["READWRITE"]])
    case("asking", 1, [["ASKING"]])
    case("readonly-arity", 1, [["READONLY", "x"]])
    case("readonly-then-get-moved", 1, [["READONLY"], ["GET", "foo"]])
    case("asking-then-get-moved", 1, [["ASKING"], ["GET", "foo"]])

    # redirection
    case("moved-get", 1, [["GET", "foo"]])
    case("moved-set", 1, [["SET", "foo", "1"]])
    case("moved-get-node2", 1, [["GET", "c"]])
    case("moved-hashtag-mget", other, [["MGET", tk[0], tk[1]]])
    case("owner-get", 3, [["GET", "foo"]])

    # cross-slot multi-key commands (keys "a" and "b" are on different nodes; "b" and
    # "bar" are different slots on the same node, node 1)
    case("crossslot-mset", 1, [["MSET", "a", "1", "b", "2"]])
    case("crossslot-mget", 1, [["MGET", "a", "b"]])
    case("crossslot-del", 1, [["DEL", "a", "b"]])
    case("crossslot-rename", 1, [["RENAME", "a", "b"]])
    case("crossslot-sunionstore", 1, [["SUNIONSTORE", "a", "b", "c"]])
    case("crossslot-mget-same-node", 1, [["MGET", "b", "bar"]])
    case("crossslot-mset-same-node", 1, [["MSET", "b", "1", "bar", "2"]])

    # same slot through a hashtag: served by the owner
    case("hashtag-mset", tn, [["MSET", tk[0], "1", tk[1], "2"]])
    case("hashtag-mget", tn, [["MGET", tk[0], tk[1], tag + ".missing"]],
         setup=[["MSET", tk[0], "1", tk[1], "2"]])
    case("hashtag-del", tn, [["DEL", tk[0], tk[1], tag + ".missing"]],
         setup=[["MSET", tk[0], "1", tk[1], "2"]])
    case("hashtag-rename", tn, [["RENAME", tk[0], tk[1]], ["MGET", tk[0], tk[1]]],
         setup=[["SET", tk[0], "1"]])
    case("hashtag-sunionstore", tn,
         [["SUNIONSTORE", tag + ".d", tag + ".s1", tag + ".s2"],
          ["SMEMBERS", tag + ".d"]],
         # integer members: an intset, whose SMEMBERS order is sorted (a hashtable
         # set's order depends on the per-process hash seed)
         setup=[["SADD", tag + ".s1", "1", "3"], ["SADD", tag + ".s2", "2", "3"]],
         compare="unordered")

    # transactions
    case("multi-moved", 3, [["MULTI"], ["SET", "a", "1"], ["SET", "b", "2"], ["EXEC"],
                            ["GET", "a"]])
    case("multi-crossslot-same-node", 1,
         [["MULTI"], ["SET", "b", "1"], ["SET", "bar", "2"], ["EXEC"], ["GET", "b"]])
    case("multi-crossslot-command", 1,
         [["MULTI"], ["MSET", "a", "1", "b", "2"], ["EXEC"]])
    case("multi-same-slot", tn,
         [["MULTI"], ["SET", tk[0], "1"], ["INCR", tk[0]], ["MGET", tk[0], tk[1]],
          ["EXEC"]])
    case("watch-crossslot", 1, [["WATCH", "a", "b"]])
    case("watch-crossslot-same-node", 1, [["WATCH", "b", "bar"]])
    case("watch-moved", 1, [["WATCH", "foo"]])
    case("watch-same-slot", tn,
         [["WATCH", tk[0], tk[1]], ["MULTI"], ["SET", tk[0], "1"], ["EXEC"]])

    rec.write_manifest()
    rec.keyslot_table(keyslot_keys())


if __name__ == "__main__":
    main()
