#!/usr/bin/env python3
"""Writes the seed corpus in fuzz/corpus/<target>/ (a handful of real
handshakes and frames per target, in each target's input format; see
src/lib.rs). Run from the repository root: python3 fuzz/make_corpus.py"""
import base64, hashlib, os, struct, zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
M64 = (1 << 64) - 1


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def wyrand_fill(seed, n):
    state, out = seed, b""
    while len(out) < n:
        state = (state + 0xA0761D6478BD642F) & M64
        t = state * (state ^ 0xE7037ED1A0B428DB)
        out += struct.pack("<Q", (t & M64) ^ (t >> 64))
    return out[:n]


def accept(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def frame(opcode, payload, fin=True, mask=None, rsv1=False):
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    mbit = 0x80 if mask else 0
    n = len(payload)
    if n < 126:
        head = bytes([b0, mbit | n])
    elif n < 65536:
        head = bytes([b0, mbit | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, mbit | 127]) + struct.pack(">Q", n)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return head + bytes(mask) + payload
    return head + payload


def deflate(data):
    c = zlib.compressobj(1, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


# ----- server_handshake: [chunk seed] [limit byte] request -----------------
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
BASE = ("GET {path} HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: " + KEY + "\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n")
mask = [0x37, 0xFA, 0x21, 0x3D]
server_seeds = {
    "plain": (3, BASE.format(path="/", extra="")),
    "chat_full": (7, BASE.format(
        path="/chat/lobby?token=abc%20d&x=1",
        extra="Origin: https://good.example\r\nSec-WebSocket-Protocol: chat.v1, chat.v2\r\n"
              "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits; server_max_window_bits=10\r\n"
              "Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n")),
    "byte_at_a_time": (0, BASE.format(path="/files/a/b/c", extra="User-Agent: fuzz\r\n")),
    "bare_lf": (5, BASE.format(path="/a/1/c/2", extra="").replace("\r\n", "\n")),
    "bad_version": (9, BASE.format(path="/", extra="").replace("Version: 13", "Version: 8")),
}
for name, (seed, text) in server_seeds.items():
    write("server_handshake", name, bytes([seed, 255]) + text.encode())
write("server_handshake", "with_frames", bytes([11, 255]) + BASE.format(path="/", extra="").encode()
      + frame(1, b"hello", mask=mask))
write("server_handshake", "too_many_headers", bytes([2, 4]) + BASE.format(
    path="/", extra="".join(f"X-H{i}: v\r\n" for i in range(8))).encode())

# ----- client_handshake: [chunk seed] response -----------------------------
client_key = base64.b64encode(wyrand_fill(7, 16)).decode()
ok = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: " + accept(client_key) + "\r\n{extra}\r\n")
write("client_handshake", "ok", b"\x03" + ok.format(extra="").encode())
write("client_handshake", "ok_protocol_deflate", b"\x08" + ok.format(
    extra="Sec-WebSocket-Protocol: chat.v2\r\n"
          "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_max_window_bits=12\r\n")
      .encode() + frame(1, b"welcome"))
write("client_handshake", "byte_at_a_time", b"\x00" + ok.format(extra="Server: x\r\n").encode())
write("client_handshake", "not_found_body", b"\x05HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\n\r\nnot found\n")
write("client_handshake", "busy_retry", b"\x06HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\n"
      b"Content-Length: 5000\r\n\r\ntoo many")
write("client_handshake", "wrong_accept", b"\x04" + ok.format(extra="").replace(accept(client_key), accept(KEY))
      .encode())

# ----- connection_*: [flags] ops -------------------------------------------
# ops: 0 len-1 bytes: receive | 2 u16 len bytes: receive | 3 ms/2: advance |
# 4: to the deadline | 5: send | 6: fragment | 7: ping | 8: pong |
# 9 code reason_len: close | 10: EOF | 11: transmit | 12: send_encoded


def recv(data):
    if len(data) <= 256:
        return bytes([0, len(data) - 1]) + data
    return bytes([2]) + struct.pack("<H", len(data)) + data


def conn_seeds(m):
    s = {}
    s["echo_close"] = bytes([0]) + recv(frame(1, b"hello", mask=m)) + b"\x0b" + recv(frame(9, b"p", mask=m)) \
        + b"\x0b" + bytes([5 | 0x10, 20]) + b"\x0b" + recv(frame(8, struct.pack(">H", 1000) + b"bye", mask=m)) + b"\x0b"
    s["fragments_ping_between"] = bytes([1]) + recv(
        frame(1, b"he", fin=False, mask=m) + frame(9, b"", mask=m) + frame(0, b"ll", fin=False, mask=m)
        + frame(0, "o\u00e9".encode(), mask=m)) + b"\x0b"
    s["deflate"] = bytes([32]) + recv(frame(1, deflate(b"Hello Hello Hello"), mask=m, rsv1=True)) \
        + bytes([5 | 0x10, 200]) + b"\x0b" + recv(frame(2, deflate(b"\x00" * 3000), mask=m, rsv1=True)) + b"\x0b"
    s["deflate_bomb_small"] = bytes([33 | 64]) + recv(frame(2, deflate(b"\x00" * 200000), mask=m, rsv1=True))
    s["commands_timers"] = bytes([2]) + bytes([6 | 0x10, 10, 6 | 0x30, 5, 7, 3, 11, 3, 60, 11, 4, 11, 4, 11]) \
        + bytes([9, 0xE8, 0x03, 4, 11, 3, 100, 4])
    s["ping_flood"] = bytes([0]) + recv(frame(9, b"x" * 100, mask=m) * 2) * 40 + b"\x0b"
    s["rate_limit"] = bytes([8 | 16]) + recv(frame(1, b"a", mask=m) * 5) + b"\x0b"
    s["big_frame"] = bytes([0]) + recv(frame(2, bytes(range(256)) * 20, mask=m)) + b"\x0b"
    s["bad_utf8"] = bytes([0]) + recv(frame(1, b"ok\xc3", fin=False, mask=m) + frame(0, b"(", mask=m)) + b"\x0b"
    return s


for name, data in conn_seeds(mask).items():
    write("connection_server", name, data)
for name, data in conn_seeds(None).items():
    write("connection_client", name, data)
write("connection_server", "unmasked", bytes([0]) + recv(frame(1, b"hi")) + b"\x0b")
write("connection_client", "masked", bytes([0]) + recv(frame(1, b"hi", mask=mask)) + b"\x0b")
write("connection_server", "broadcast", bytes([0, 12, 12, 11]))

# ----- inflate: [params] [limit lo] [limit hi] then [len/4 | fin<<7] payload --
def one_frame(flags, limit, data):
    return bytes([flags]) + struct.pack("<H", limit) + b"\x80" + data


write("inflate", "hello", one_frame(0, 4096, deflate(b"Hello, hello, hello!")))
write("inflate", "bomb", one_frame(1, 1000, deflate(b"\x00" * 100000)))
write("inflate", "exact_limit", one_frame(2, 512, deflate(b"a" * 512)))
split = deflate(bytes(range(256)) * 8)
cut = len(split) // 8 * 4
write("inflate", "two_frames", bytes([3]) + struct.pack("<H", 4000) + bytes([cut // 4]) + split[:cut]
      + b"\x80" + split[cut:])
c = zlib.compressobj(1, zlib.DEFLATED, -15)
final = c.compress(b"final block") + c.flush(zlib.Z_FINISH)
write("inflate", "bfinal_then_more", one_frame(0, 2048, final + deflate(b"more")))
