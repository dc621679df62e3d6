"""Connect this terminal (or pipe) to a container's or an exec's stdio, like `docker run -it`.

The Docker SDK hands back the hijacked connection of an attach or exec, but leaves the rest to
the caller (docker-py has no interactive mode). What this adds, in the smallest form that works:
- one thread copies the container's output here; in non-TTY mode it splits Docker's framed
  stream into stdout and stderr (the 8-byte header of the attach protocol);
- another forwards our stdin, and half-closes the connection at its end, so a command reading
  stdin sees end-of-file (`echo ... | make manage ARGS=shell` works);
- in TTY mode the local terminal goes raw (Ctrl-C and Ctrl-D belong to the container) and its
  size follows ours (SIGWINCH), and is restored however we leave.
The connection is read through the HTTP response's own buffered reader: the first bytes an exec
writes can arrive with the 101 response and already sit in that buffer.

Over TLS (a tcp:// Docker host with docker:certPath or the *Material keys) a connection cannot
be half-closed from Python: ssl.SSLSocket.shutdown drops TLS and sends a bare FIN, after which
the engine's last record arrives undecrypted and the connection is never closed (seen against
dockerd 20.10). Go's client sends close_notify instead (tls.Conn.CloseWrite). So: a command
that gets no input (stdin /dev/null or closed) is created without stdin at all, on every
transport; a pipe into `manage` over TLS goes through a second attach that carries stdin only
and is closed whole at the end (the container has StdinOnce: its stdin closes when that
client detaches, moby daemon/attach.go); a pipe into `exec` over TLS is refused in one line.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import ssl
import stat
import struct
import sys
import termios
import threading
import tty as tty_mode
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Optional

import docker

HEADER = struct.Struct(">BxxxL")  # stream (0 stdin, 1 stdout, 2 stderr), 3 padding bytes, length
UPGRADE = {"Connection": "Upgrade", "Upgrade": "tcp"}


def frames(buffer: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """Complete (stream, payload) frames at the start of `buffer`, and the incomplete rest."""
    found, at = [], 0
    while len(buffer) - at >= HEADER.size:
        stream, length = HEADER.unpack_from(buffer, at)
        if len(buffer) - at - HEADER.size < length:
            break
        found.append((stream, buffer[at + HEADER.size : at + HEADER.size + length]))
        at += HEADER.size + length
    return found, buffer[at:]


@dataclass
class Channel:
    """A hijacked connection: `read` through the response's buffer, `write` and `close_write` on the socket."""

    read: Callable[[int], bytes]
    sock: Any  # SocketIO, a TLS socket, or docker's SSH socket
    response: Any  # kept alive: collecting it would close the connection

    def write(self, data: bytes) -> None:
        raw = getattr(self.sock, "_sock", self.sock)  # SocketIO on unix sockets
        if hasattr(raw, "sendall"):
            raw.sendall(data)
        else:
            self.sock.write(data)

    @property
    def can_half_close(self) -> bool:
        return not isinstance(self.sock, ssl.SSLSocket)

    def close_write(self) -> None:
        if not self.can_half_close:
            raise RuntimeError("a TLS connection cannot be half-closed from Python (see the module's docstring)")
        raw = getattr(self.sock, "_sock", self.sock)
        with contextlib.suppress(OSError, AttributeError):
            raw.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        """Close the whole connection (the attach detaches)."""
        with contextlib.suppress(Exception):
            self.response.close()
        with contextlib.suppress(Exception):
            self.sock.close()


def _hijack(api: docker.APIClient, response) -> Channel:
    reader = response.raw._fp.fp  # the buffered reader http.client read the 101 response with
    sock = api._get_raw_response_socket(response)
    return Channel(read=getattr(reader, "read1", None) or reader.read, sock=sock, response=response)


def attach_container(api: docker.APIClient, container_id: str, *, stdin: bool = True, output: bool = True) -> Channel:
    """Attach to a created (not yet started) container's stdin and/or stdout and stderr."""
    params = {"stdin": int(stdin), "stdout": int(output), "stderr": int(output), "stream": 1}
    response = api.post(
        api._url("/containers/{0}/attach", container_id), None, params=params, stream=True, headers=UPGRADE
    )
    return _hijack(api, response)


def start_exec(api: docker.APIClient, exec_id: str, *, tty: bool) -> Channel:
    """Start a created exec and hold its stdio (as `exec_start(socket=True)`, keeping early bytes)."""
    response = api._post_json(
        api._url("/exec/{0}/start", exec_id), headers=UPGRADE, data={"Tty": tty, "Detach": False}, stream=True
    )
    return _hijack(api, response)


def _copy_out(channel: Channel, tty: bool, out: BinaryIO, err: BinaryIO) -> None:
    pending = b""
    while True:
        try:
            data = channel.read(65536)
        except (OSError, ValueError):  # closed under us (Ctrl-C)
            data = b""
        if not data:
            break
        if tty:
            out.write(data)
            out.flush()
            continue
        complete, pending = frames(pending + data)
        for stream, payload in complete:
            target = err if stream == 2 else out
            target.write(payload)
            target.flush()


def _copy_in(channel: Channel, stdin_fd: int, input_only: bool = False) -> None:
    """Our stdin to the channel; at its end, half-close (or close, on a stdin-only attach)."""
    while True:
        try:
            data = os.read(stdin_fd, 65536)
        except OSError:
            data = b""
        if not data:
            channel.close() if input_only else channel.close_write()
            return
        try:
            channel.write(data)
        except OSError:
            return


@contextlib.contextmanager
def raw_terminal(fd: int, resize: Optional[Callable[[int, int], None]]):
    """The terminal in raw mode, its size passed on now and on every SIGWINCH; restored on exit."""
    saved = termios.tcgetattr(fd)
    previous = signal.getsignal(signal.SIGWINCH)

    def follow(*_):
        if resize is not None:
            size = shutil.get_terminal_size()
            with contextlib.suppress(docker.errors.APIError):
                resize(size.lines, size.columns)

    try:
        tty_mode.setraw(fd)
        signal.signal(signal.SIGWINCH, follow)
        yield follow
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        signal.signal(signal.SIGWINCH, previous)


def has_input(stream) -> bool:
    """Whether stdin can give anything: not when closed or /dev/null (a character device that
    is not a terminal). A pipe or a file can; a terminal can."""
    fd = _fileno(stream)
    if fd is None:
        return False
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return not (stat.S_ISCHR(mode) and not os.isatty(fd))


def _fileno(stream) -> Optional[int]:
    try:
        return stream.fileno()
    except (OSError, ValueError, AttributeError):  # closed, or not a file (io.UnsupportedOperation)
        return None


def pump(
    channel: Channel,
    *,
    tty: bool,
    forward_stdin: bool,
    stdin_channel: Optional[Channel] = None,
    started: Optional[Callable[[], None]] = None,
    resize: Optional[Callable[[int, int], None]] = None,
) -> None:
    """Copy stdio both ways until the container closes its output. `started` runs once attached.

    forward_stdin False: the container or exec was made without stdin; nothing goes in. True:
    our stdin goes to `channel` (half-closed at its end), or to `stdin_channel`, a stdin-only
    attach closed whole at its end (a TLS host: see the module's docstring)."""
    out, err = sys.stdout.buffer, sys.stderr.buffer
    reader = threading.Thread(target=_copy_out, args=(channel, tty, out, err), daemon=True)
    stdin_fd = _fileno(sys.stdin) if forward_stdin else None
    terminal = raw_terminal(stdin_fd, resize) if tty and stdin_fd is not None else contextlib.nullcontext()
    with terminal as follow_size:
        reader.start()
        if started is not None:
            started()
        if follow_size is not None:
            follow_size()  # a container can be resized only once it runs
        if stdin_fd is not None:
            # A daemon: a read still blocked on our stdin must not keep us alive after the container ends.
            target = stdin_channel or channel
            threading.Thread(target=_copy_in, args=(target, stdin_fd, stdin_channel is not None), daemon=True).start()
        while reader.is_alive():
            reader.join(0.2)  # short joins: Ctrl-C (non-TTY) reaches the main thread
