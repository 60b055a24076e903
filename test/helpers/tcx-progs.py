#!/usr/bin/env python3
# The programs attached to a device's tcx ingress, as the kernel lists them (BPF_PROG_QUERY),
# each with its name and ID, as JSON: an independent view for the tests (this machine's
# bpftool 7.1 and iproute2 6.1 do not show tcx). Python's ctypes, not mncni's own bpf code.
# Usage (in the device's namespace): tcx-progs.py DEVICE [--detach NAME]
# --detach NAME takes the programs of that name off the device's tcx ingress (a test's tamper).
import ctypes, json, socket, sys

libc = ctypes.CDLL(None, use_errno=True)
SYS_BPF = 321
BPF_PROG_DETACH, BPF_PROG_QUERY, BPF_PROG_GET_FD_BY_ID, BPF_OBJ_GET_INFO_BY_FD = 9, 16, 13, 15
BPF_TCX_INGRESS = 46


def bpf(cmd, attr):
    r = libc.syscall(SYS_BPF, cmd, ctypes.byref(attr), ctypes.sizeof(attr))
    if r < 0:
        raise OSError(ctypes.get_errno(), f"bpf({cmd})")
    return r


ifindex = socket.if_nametoindex(sys.argv[1])
ids = (ctypes.c_uint32 * 64)()
attr = (ctypes.c_uint8 * 144)()
ctypes.c_uint32.from_buffer(attr, 0).value = ifindex
ctypes.c_uint32.from_buffer(attr, 4).value = BPF_TCX_INGRESS
ctypes.c_uint64.from_buffer(attr, 16).value = ctypes.addressof(ids)
ctypes.c_uint32.from_buffer(attr, 24).value = 64
bpf(BPF_PROG_QUERY, attr)
out = []
for i in range(ctypes.c_uint32.from_buffer(attr, 24).value):
    a = (ctypes.c_uint8 * 144)()
    ctypes.c_uint32.from_buffer(a, 0).value = ids[i]
    fd = bpf(BPF_PROG_GET_FD_BY_ID, a)
    info = (ctypes.c_uint8 * 256)()
    b = (ctypes.c_uint8 * 144)()
    ctypes.c_uint32.from_buffer(b, 0).value = fd
    ctypes.c_uint32.from_buffer(b, 4).value = 256
    ctypes.c_uint64.from_buffer(b, 8).value = ctypes.addressof(info)
    bpf(BPF_OBJ_GET_INFO_BY_FD, b)
    name = bytes(info[64:80]).split(b"\0")[0].decode()
    if len(sys.argv) > 3 and sys.argv[2] == "--detach" and name == sys.argv[3]:
        d = (ctypes.c_uint8 * 144)()
        ctypes.c_uint32.from_buffer(d, 0).value = ifindex
        ctypes.c_uint32.from_buffer(d, 4).value = fd
        ctypes.c_uint32.from_buffer(d, 8).value = BPF_TCX_INGRESS
        bpf(BPF_PROG_DETACH, d)
    libc.close(fd)
    out.append({"id": ids[i], "name": name})
print(json.dumps(out))
