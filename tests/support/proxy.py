"""A TCP proxy on 127.0.0.1 in front of a real server, to cut, refuse or stall its
connections while the shared server keeps running for the other tests."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pika


def broker_proxy(amqp_url: str) -> tuple[TcpProxy, str]:
    """A started proxy in front of the broker of ``amqp_url`` and the AMQP URL through it."""
    target = pika.URLParameters(amqp_url)
    proxy = TcpProxy((target.host, target.port))
    proxy.start()
    return proxy, f"amqp://guest:guest@127.0.0.1:{proxy.port}/%2F"


class TcpProxy(threading.Thread):
    """A TCP proxy on 127.0.0.1 to ``target``; ``cut()`` drops every open connection,
    ``pause()`` also refuses new ones, ``stall()`` blackholes: connections stay open (new
    ones are accepted) but no byte flows either way until ``resume()``."""

    def __init__(self, target: tuple[str, int]) -> None:
        super().__init__(daemon=True, name="tcp-proxy")
        self.target = target
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self.cuts = 0
        self.down = False
        self.flowing = threading.Event()
        self.flowing.set()

    def run(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            with self._lock:  # registered under the lock, so a cut() never misses it
                if self.down:  # the server is unreachable: refuse by closing at once
                    client.close()
                    continue
                self._socks.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        self.flowing.wait()  # stalled: hold the client, connect upstream only on resume
        try:
            upstream = socket.create_connection(self.target)
        except OSError:
            client.close()
            return
        with self._lock:
            if client not in self._socks:  # cut while connecting upstream
                upstream.close()
                return
            self._socks.append(upstream)
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pipe, args=(a, b, self.flowing), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            socks, self._socks = self._socks, []
            self.cuts += 1
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def pause(self) -> None:
        """Broker outage: drop every connection and refuse new ones until ``resume``."""
        with self._lock:
            self.down = True
        self.cut()

    def stall(self) -> None:
        """Network partition: keep every connection open but let no byte through."""
        self.flowing.clear()

    def resume(self) -> None:
        self.down = False
        self.flowing.set()

    def close(self) -> None:
        self.server.close()
        self.cut()
        self.flowing.set()  # release the threads held by a stall


def _pipe(src: socket.socket, dst: socket.socket, flowing: threading.Event) -> None:
    try:
        while data := src.recv(65536):
            flowing.wait()
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class CommitCutter(TcpProxy):
    """A TCP proxy on 127.0.0.1 to MySQL that, once ``arm()``ed, forwards the next COMMIT
    to the server, lets no reply back, waits until the server has applied it and then cuts
    the connection: the client loses it at COMMIT, after the change was stored."""

    def __init__(self, target: tuple[str, int], settle: float = 0.3) -> None:
        super().__init__(target)
        self.settle = settle
        self.armed = threading.Event()
        self.commit_cut = threading.Event()

    def arm(self) -> None:
        self.commit_cut.clear()
        self.armed.set()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self.target)
        muted = threading.Event()
        threading.Thread(target=self._up, args=(client, upstream, muted), daemon=True).start()
        threading.Thread(target=_down, args=(upstream, client, muted), daemon=True).start()

    def _up(self, client: socket.socket, upstream: socket.socket, muted: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                commit = self.armed.is_set() and b"\x03commit" in data.lower()
                if commit:
                    self.armed.clear()
                    muted.set()  # the server's OK must not reach the client
                upstream.sendall(data)
                if commit:
                    time.sleep(self.settle)
                    break
        for sock in (client, upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if muted.is_set():
            self.commit_cut.set()


def _down(src: socket.socket, dst: socket.socket, muted: threading.Event) -> None:
    with contextlib.suppress(OSError):
        while (data := src.recv(65536)) and not muted.is_set():
            dst.sendall(data)
