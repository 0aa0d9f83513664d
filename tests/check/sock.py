"""A socket that stays open while a test looks at the host.

    sock.py listen tcp|mptcp ADDR PORT     listen (and accept) until stdin closes
    sock.py connect tcp|mptcp ADDR PORT    connect, send a byte, hold until stdin closes

Prints "ready" once listening or connected, so the test waits on that line.
"""
import socket
import sys
import threading

IPPROTO_MPTCP = 262

mode, proto, addr, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_MPTCP if proto == "mptcp" else 0)
held = []
if mode == "listen":
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(8)

    def accept():
        while True:
            held.append(s.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
else:
    s.connect((addr, port))
    # Data, so that the server's DATA_ACK makes the connection fully
    # established: only then does the path manager open subflows.
    s.sendall(b"x")
print("ready", flush=True)
sys.stdin.read()
