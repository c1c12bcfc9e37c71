#!/usr/bin/env python3
"""Records a connection-level data-driven script from a real redis-server.

Reads lines from stdin: `> CMD` (first client), `c2> CMD` (second client), `#` comments
and blank lines (kept). Sends each command over its client's own connection to the
redis-server on $PORT (default 6399) and prints the script with the replies rendered as
`redis-cli --no-raw` prints them. Used to write crates/server/tests/scripts/*.txt.
"""
import os
import shlex
import socket
import sys


def encode(args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            self.buf += self.s.recv(65536)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read(self):
        line = self.line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return ("status", rest)
        if t == b"-":
            return ("error", rest)
        if t == b":":
            return ("int", int(rest))
        if t == b"$":
            n = int(rest)
            if n < 0:
                return ("nil",)
            while len(self.buf) < n + 2:
                self.buf += self.s.recv(65536)
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return ("bulk", data)
        if t in (b"*", b"%", b"~"):
            n = int(rest)
            if n < 0:
                return ("nil",)
            if t == b"%":
                n *= 2
            return ("array", [self.read() for _ in range(n)])
        raise ValueError(line)


def repr_bytes(b):
    out = '"'
    for c in b:
        ch = chr(c)
        if ch == "\\":
            out += "\\\\"
        elif ch == '"':
            out += '\\"'
        elif ch == "\n":
            out += "\\n"
        elif ch == "\r":
            out += "\\r"
        elif ch == "\t":
            out += "\\t"
        elif c == 7:
            out += "\\a"
        elif c == 8:
            out += "\\b"
        elif 0x20 <= c <= 0x7E:
            out += ch
        else:
            out += "\\x%02x" % c
    return out + '"'


def render(r, prefix=""):
    kind = r[0]
    if kind == "status":
        return r[1].decode() + "\n"
    if kind == "error":
        return "(error) " + r[1].decode() + "\n"
    if kind == "int":
        return "(integer) %d\n" % r[1]
    if kind == "nil":
        return "(nil)\n"
    if kind == "bulk":
        return repr_bytes(r[1]) + "\n"
    items = r[1]
    if not items:
        return "(empty array)\n"
    width = len(str(len(items)))
    child = prefix + " " * (width + 2)
    out = ""
    for i, item in enumerate(items):
        if i > 0:
            out += prefix
        out += "%*d) " % (width, i + 1) + render(item, child)
    return out


def main():
    port = int(os.environ.get("PORT", "6399"))
    conns = [Conn(port), Conn(port)]
    conns[0].s.sendall(encode(["FLUSHALL"]))
    conns[0].read()
    for line in sys.stdin.read().splitlines():
        if line.startswith("> "):
            c, cmd = conns[0], line[2:]
        elif line.startswith("c2> "):
            c, cmd = conns[1], line[4:]
        else:
            print(line)
            continue
        print(line)
        c.s.sendall(encode(shlex.split(cmd)))
        print(render(c.read()), end="")


main()
