"""Loopback ports for the servers tests start, and a network link between two that can be cut."""

from __future__ import annotations

import contextlib
import socket
import threading
import time


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def answers(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        try:
            s.connect((host, port))
        except OSError:
            return False
        return True


def wait_for_port(port: int, timeout: float = 30, what: str = "server") -> None:
    deadline = time.monotonic() + timeout
    while not answers(port):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not answer on 127.0.0.1:{port} within {timeout}s")
        time.sleep(0.05)


class StorageLink:
    """The network between the app and the S3 server: a TCP forwarder on its own port that can
    be cut (open connections closed, new ones refused, as when the store goes down) and put
    back. The S3 server itself keeps running, so what a failed job left in it stays visible,
    as it would on a real store after an outage (moto forgets everything when restarted)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.restore()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        assert self._listener is not None
        # shutdown() first: close() alone does not wake the thread blocked in accept(), which
        # would then let one more connection through.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets |= {client, upstream}
            ends = [2]  # the connection's directions still open
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe_pair, args=(src, dst, ends), daemon=True).start()

    def _pipe_pair(self, src: socket.socket, dst: socket.socket, ends: list[int]) -> None:
        """One direction; the last of a connection's two to end closes both sockets (a long run,
        such as the soak, would otherwise run out of file descriptors)."""
        self._pipe(src, dst)
        with self._lock:
            ends[0] -= 1
            if ends[0]:
                return
            for sock in (src, dst):
                self._sockets.discard(sock)
                sock.close()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(256 * 1024):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
