# Test helper, run inside pod namespaces: `serve PORT...` answers TCP and UDP on each port
# ("ok") over IPv4 and IPv6 (one dual-stack socket, as Go, Java and Node servers listen);
# `probe HOST PORT tcp|udp` prints ok, or no when nothing answers within a second.
import socket, sys, threading

def dual_stack(kind):
    s = socket.socket(socket.AF_INET6, kind)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    return s

def serve_tcp(port):
    s = dual_stack(socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", port)); s.listen(64)
    while True:
        c, _ = s.accept()
        try: c.sendall(b"ok\n")
        finally: c.close()

def serve_udp(port):
    s = dual_stack(socket.SOCK_DGRAM)
    s.bind(("::", port))
    while True:
        _, a = s.recvfrom(64)
        s.sendto(b"ok\n", a)

if sys.argv[1] == "serve":
    for p in map(int, sys.argv[2:]):
        threading.Thread(target=serve_tcp, args=(p,), daemon=True).start()
        threading.Thread(target=serve_udp, args=(p,), daemon=True).start()
    print("listening", flush=True)
    threading.Event().wait()
else:
    host, port, proto = sys.argv[2], int(sys.argv[3]), sys.argv[4]
    try:
        if proto == "tcp":
            s = socket.create_connection((host, port), timeout=1)
            got = s.recv(8)
        else:
            s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)
            s.sendto(b"?", (host, port)); got = s.recv(8)
        print("ok" if got.startswith(b"ok") else "no")
    except OSError:
        print("no")
