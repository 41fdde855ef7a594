#!/usr/bin/env python3
"""Records a seed corpus of real RTSP traffic for the fuzz targets.

A proxy between a client we did not write (ffmpeg) and an RTSP server:
the GStreamer simulator (gst-rtsp-server, also a server we did not write)
or camgate's own relay. What the client sends is a seed of `rtsp_request`
(and its Authorization headers of `digest`); what the server sends is a
seed of `rtsp_reply` and `rtp_depacketize`, its SDP bodies of `sdp`.

Usage: capture.py SERVER_HOST:PORT PATH OUT_PREFIX [SECONDS]
"""
import socket
import subprocess
import sys
import threading

server, path, prefix = sys.argv[1], sys.argv[2], sys.argv[3]
seconds = sys.argv[4] if len(sys.argv) > 4 else "3"
host, port = server.rsplit(":", 1)
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(1)
proxy_port = listener.getsockname()[1]
to_server, to_client = bytearray(), bytearray()


def pump(src, dst, sink):
    try:
        while True:
            b = src.recv(65536)
            if not b:
                break
            sink.extend(b)
            dst.sendall(b)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def serve():
    c, _ = listener.accept()
    s = socket.create_connection((host, int(port)))
    a = threading.Thread(target=pump, args=(c, s, to_server))
    b = threading.Thread(target=pump, args=(s, c, to_client))
    a.start()
    b.start()
    a.join()
    b.join()


t = threading.Thread(target=serve)
t.start()
url = f"rtsp://127.0.0.1:{proxy_port}{path}"
subprocess.run(
    ["ffmpeg", "-v", "error", "-rtsp_transport", "tcp", "-i", url, "-t", seconds, "-f", "null", "-"],
    timeout=60,
)
t.join(timeout=10)
open(prefix + ".client", "wb").write(bytes(to_server))
open(prefix + ".server", "wb").write(bytes(to_client)[:200_000])
print(f"{prefix}: {len(to_server)} bytes from the client, {len(to_client)} from the server")
