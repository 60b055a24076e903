# Test helper for the Service proxy, run inside namespaces: `serve NAME PORT...` answers TCP and
# UDP on each port with "NAME PEER" (who answered, and the client address it saw) over IPv4
# and IPv6; `probe HOST PORT tcp|udp [SRCPORT]` prints the answer, "refused" (a reset or ICMP
# unreachable: a Service without endpoints) or "no" (nothing within a second).
import socket, sys, threading

def dual_stack(kind):
    s = socket.socket(socket.AF_INET6, kind)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    return s

def peer(a):
    h = a[0]
    return h[7:] if h.startswith("::ffff:") else h

def serve_tcp(name, port):
    s = dual_stack(socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", port)); s.listen(64)
    while True:
        c, a = s.accept()
        try: c.sendall(f"{name} {peer(a)}\n".encode())
        finally: c.close()

def serve_udp(name, port):
    s = dual_stack(socket.SOCK_DGRAM)
    s.bind(("::", port))
    while True:
        _, a = s.recvfrom(64)
        s.sendto(f"{name} {peer(a)}\n".encode(), a)

if sys.argv[1] == "serve":
    name = sys.argv[2]
    for p in map(int, sys.argv[3:]):
        threading.Thread(target=serve_tcp, args=(name, p), daemon=True).start()
        threading.Thread(target=serve_udp, args=(name, p), daemon=True).start()
    print("listening", flush=True)
    threading.Event().wait()
else:
    host, port, proto = sys.argv[2], int(sys.argv[3]), sys.argv[4]
    src = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        s = socket.socket(fam, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.settimeout(1)
        if src: s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", src))
        if proto == "tcp":
            s.connect((host, port))
        else:
            s.connect((host, port)); s.send(b"hi")
        got = s.recv(128).decode().strip()
        print(got or "no")
    except ConnectionRefusedError:
        print("refused")
    except OSError as e:
        print("refused" if getattr(e, "errno", 0) in (111, 113) else "no")
