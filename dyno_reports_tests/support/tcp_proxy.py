"""A TCP proxy a test can cut and restore: the database "goes down" for the processes behind it (no DB of its own).

    with TcpProxy.for_database(database_url) as proxy:
        url = proxy.url_for(database_url)   # the same database, through 127.0.0.1:<proxy.port>
        ...                                 # a run worker connects through `url`
        proxy.cut()                         # connections refused, open ones closed (both ends)
        proxy.restore()                     # accepting again on the same port

Threads: one accepting, two per connection (one per direction). `cut()` closes
the listening socket, so a new connection is refused at once (as a stopped
server's port is), and shuts down every open connection: the client sees "server
closed the connection unexpectedly" and the server a client gone (its transaction
rolls back). Nothing is buffered across a cut. The server behind it is a TCP
address or a Unix socket (the embedded PostgreSQL's URL names a socket folder
in its `host` query parameter).
"""

import contextlib
import socket
import threading
from types import TracebackType

from sqlalchemy import URL, make_url

BUFFER = 65536


class TcpProxy:
    def __init__(self, target: tuple[str, int] | str) -> None:
        """`target`: (host, port), or the path of a Unix socket."""
        self.target = target
        self.port = 0  # chosen by the system at the first start, kept across cuts
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.accepted = 0  # connections forwarded so far

    @classmethod
    def for_database(cls, url: URL | str) -> "TcpProxy":
        """A proxy to the server of a PostgreSQL URL."""
        url = make_url(url)
        socket_folder = url.query.get("host")
        if isinstance(socket_folder, str) and socket_folder.startswith("/"):
            return cls(f"{socket_folder}/.s.PGSQL.{url.port or 5432}")
        return cls((url.host or "127.0.0.1", url.port or 5432))

    def url_for(self, url: URL | str) -> URL:
        """`url` with its host and port replaced by this proxy's (and no socket folder)."""
        return make_url(url).difference_update_query(["host"]).set(host="127.0.0.1", port=self.port)

    def restore(self) -> None:
        """Listen (again) on the proxy's port."""
        with self._lock:
            if self._listener is not None:
                return
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(64)
            self.port = listener.getsockname()[1]
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    start = restore

    def cut(self) -> None:
        """Refuse new connections and close the open ones."""
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._open = self._open, set()
        if listener is not None:
            _close(listener)
        for sock in sockets:
            _close(sock)

    def __enter__(self) -> "TcpProxy":
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.cut()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed by cut()
                return
            try:
                server = _connect(self.target)
            except OSError:
                _close(client)
                continue
            with self._lock:
                if self._listener is not listener:  # cut while connecting
                    _close(client)
                    _close(server)
                    return
                self._open.update((client, server))
                self.accepted += 1
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(BUFFER):
                sink.sendall(data)
        with self._lock:
            self._open.difference_update((source, sink))
        _close(source)
        _close(sink)


def _connect(target: tuple[str, int] | str) -> socket.socket:
    if isinstance(target, str):
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.settimeout(5)
        try:
            server.connect(target)
        except OSError:
            server.close()
            raise
    else:
        server = socket.create_connection(target, timeout=5)
    server.settimeout(None)
    return server


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
