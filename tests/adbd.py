"""A test Android device: speaks the adb device protocol over TCP and runs shell and sync services here.

Debian packages the adb *server* (the host side) but no adbd, so the tests need a peer the real server
can ``adb connect`` to. This is that peer, kept at the protocol layer: messages are the 24-byte adb
headers (command, arg0, arg1, length, byte-sum checksum, magic) with CNXN / OPEN / OKAY / WRTE / CLSE,
and the services are the real ones:

- ``shell:CMD`` (v1: output only, no exit status) and ``shell,v2:CMD`` (packets with stdout, stderr and
  the exit code) when ``shell_v2`` is among the features, as on Android 7 and later;
- ``sync:`` with STAT, LIST, SEND (DATA chunks, DONE), RECV and QUIT.

Commands run with /bin/sh on this machine. The device's filesystem is this machine's, except that
``/data/local/tmp`` (the one directory adb can write on a real phone) is a directory of the test's:
paths in sync requests and shell commands are mapped there. ``bin`` holds Android tools (getprop).
Faults: ``drop()`` cuts the TCP connection; ``disk_limit`` makes pushes past that many bytes fail
with ENOSPC, as a full /data partition does.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import struct
import subprocess
import threading
from pathlib import Path

A_CNXN, A_OPEN, A_OKAY, A_CLSE, A_WRTE, A_AUTH = (int.from_bytes(n, "little") for n in
                                                  (b"CNXN", b"OPEN", b"OKAY", b"CLSE", b"WRTE", b"AUTH"))
A_VERSION = 0x01000001
DEVICE_TMP = "/data/local/tmp"


def _header(command: int, arg0: int, arg1: int, data: bytes) -> bytes:
    return struct.pack("<6I", command, arg0, arg1, len(data), sum(data) & 0xFFFFFFFF, command ^ 0xFFFFFFFF)


class _Stream:
    """One open service: the host's id, ours, and a flag the host's OKAY sets (flow control)."""

    def __init__(self, conn: socket.socket, local: int, remote: int) -> None:
        self.conn = conn  # streams live and die with the connection they were opened on
        self.local, self.remote = local, remote
        self.ready = threading.Event()
        self.inbox: list[bytes] = []
        self.got = threading.Condition()
        self.closed = False
        self.proc: subprocess.Popen[bytes] | None = None


class FakeAndroidDevice:
    """Listen on 127.0.0.1:port; serve one adb server connection at a time."""

    def __init__(self, root: Path, *, features: tuple[str, ...] = ("shell_v2", "cmd"),
                 props: dict[str, str] | None = None, disk_limit: int | None = None) -> None:
        self.root = Path(root)
        self.tmp = self.root / "data" / "local" / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.bin = self.root / "bin"
        self.bin.mkdir(exist_ok=True)
        self.features = features
        self.props = {"ro.product.model": "Pixel Test", "ro.product.manufacturer": "edgesdk",
                      "ro.product.name": "edgetest", "ro.build.version.release": "14",
                      "ro.serialno": "EDGETEST0001", **(props or {})}
        self._write_getprop()
        self.disk_limit = disk_limit
        self.commands: list[str] = []  # every shell command run, for assertions
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._conn: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._streams: dict[int, _Stream] = {}
        self._next_id = 1
        self._max_data = 4096
        self._stop = False
        threading.Thread(target=self._accept_loop, daemon=True).start()

    # -- device state ------------------------------------------------------------------------------
    def _write_getprop(self) -> None:
        lines = "\n".join(f'  {k}) echo "{v}" ;;' for k, v in self.props.items())
        script = self.bin / "getprop"
        script.write_text(f'#!/bin/sh\ncase "$1" in\n{lines}\n  *) echo "" ;;\nesac\n')
        script.chmod(0o755)

    def map_path(self, path: str) -> str:
        return str(self.tmp) + path[len(DEVICE_TMP):] if path.startswith(DEVICE_TMP) else path

    def _map_command(self, command: str) -> str:
        return command.replace(DEVICE_TMP, str(self.tmp))

    def drop(self) -> None:
        """Cut the connection to the adb server, as an unplugged cable does."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
            self._forget(conn)

    def close(self) -> None:
        self._stop = True
        self.drop()
        self._listener.close()

    # -- transport ---------------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._stop:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._conn = conn
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _send(self, conn: socket.socket, command: int, arg0: int, arg1: int, data: bytes = b"") -> None:
        with self._send_lock:
            conn.sendall(_header(command, arg0, arg1, data) + data)

    def _forget(self, conn: socket.socket) -> None:
        """The connection is gone: so are its streams, and the processes they ran."""
        for key, stream in list(self._streams.items()):
            if stream.conn is conn:
                self._streams.pop(key, None)
                self._kill(stream)

    @staticmethod
    def _recv_exact(conn: socket.socket, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return buf

    def _serve(self, conn: socket.socket) -> None:
        try:
            while True:
                command, arg0, arg1, length, _check, magic = struct.unpack("<6I", self._recv_exact(conn, 24))
                if magic != command ^ 0xFFFFFFFF:
                    raise ConnectionError("bad magic")
                data = self._recv_exact(conn, length) if length else b""
                self._dispatch(conn, command, arg0, arg1, data)
        except (ConnectionError, OSError):
            if self._conn is conn:
                self._conn = None
            self._forget(conn)

    def _dispatch(self, conn: socket.socket, command: int, arg0: int, arg1: int, data: bytes) -> None:
        if command == A_CNXN:
            self._max_data = min(arg1 or 4096, 256 * 1024)
            banner = "device::" + "".join(f"{k}={self.props[k]};" for k in
                                           ("ro.product.name", "ro.product.model")) + \
                f"ro.product.device=edgetest;features={','.join(self.features)}"
            self._send(conn, A_CNXN, A_VERSION, self._max_data, banner.encode())
        elif command == A_OPEN:
            local = self._next_id
            self._next_id += 1
            stream = _Stream(conn, local, arg0)
            self._streams[local] = stream
            service = data.rstrip(b"\0").decode()
            self._send(conn, A_OKAY, local, arg0)
            threading.Thread(target=self._run_service, args=(stream, service), daemon=True).start()
        elif command == A_OKAY:
            stream = self._streams.get(arg1)
            if stream is not None:
                stream.remote = arg0
                stream.ready.set()
        elif command == A_WRTE:
            stream = self._streams.get(arg1)
            if stream is not None:
                with stream.got:
                    stream.inbox.append(data)
                    stream.got.notify_all()
                self._send(conn, A_OKAY, stream.local, stream.remote)
        elif command == A_CLSE:
            stream = self._streams.pop(arg1, None)
            if stream is not None:
                self._kill(stream)
        elif command == A_AUTH:
            pass  # never asked: this device does not require authentication

    def _kill(self, stream: _Stream) -> None:
        stream.closed = True
        with stream.got:
            stream.got.notify_all()
        stream.ready.set()
        if stream.proc is not None and stream.proc.poll() is None:
            _kill_session(stream.proc.pid)

    # -- stream I/O --------------------------------------------------------------------------------
    def _write(self, stream: _Stream, data: bytes) -> None:
        for i in range(0, len(data), self._max_data):
            stream.ready.clear()
            if stream.closed:
                raise ConnectionError("stream closed")
            self._send(stream.conn, A_WRTE, stream.local, stream.remote, data[i:i + self._max_data])
            if not stream.ready.wait(30) or stream.closed:
                raise ConnectionError("no OKAY from the host")

    def _read(self, stream: _Stream, n: int, buffer: bytearray) -> bytes:
        while len(buffer) < n:
            with stream.got:
                while not stream.inbox and not stream.closed:
                    stream.got.wait(1)
                if not stream.inbox:
                    raise ConnectionError("stream closed")
                buffer += b"".join(stream.inbox)
                stream.inbox.clear()
        out = bytes(buffer[:n])
        del buffer[:n]
        return out

    def _close(self, stream: _Stream) -> None:
        if not stream.closed and self._streams.pop(stream.local, None) is not None:
            stream.closed = True
            try:
                self._send(stream.conn, A_CLSE, stream.local, stream.remote)
            except (ConnectionError, OSError):
                pass

    # -- services ----------------------------------------------------------------------------------
    def _run_service(self, stream: _Stream, service: str) -> None:
        try:
            if service.startswith("shell,v2:") or service.startswith("shell:"):
                v2 = service.startswith("shell,v2:")
                self._shell(stream, service.split(":", 1)[1], v2)
            elif service == "sync:":
                self._sync(stream)
            else:
                self._write(stream, b"FAIL" + f"{len(service):04x}".encode() + service.encode())
        except (ConnectionError, OSError):
            pass
        finally:
            self._close(stream)

    def _shell(self, stream: _Stream, command: str, v2: bool) -> None:
        self.commands.append(command)
        env = {**os.environ, "PATH": f"{self.bin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
               "HOME": str(self.tmp), "TMPDIR": str(self.tmp)}
        stream.proc = proc = subprocess.Popen(["/bin/sh", "-c", self._map_command(command)], cwd=self.tmp,
                                              env=env, start_new_session=True, stdin=subprocess.DEVNULL,
                                              stdout=subprocess.PIPE,
                                              stderr=subprocess.PIPE if v2 else subprocess.STDOUT)
        lock = threading.Lock()

        def pump(pipe: object, packet_id: int) -> None:
            try:
                for chunk in iter(lambda: os.read(pipe.fileno(), 65536), b""):  # type: ignore[attr-defined]
                    with lock:
                        self._write(stream, struct.pack("<BI", packet_id, len(chunk)) + chunk if v2 else chunk)
            except (ConnectionError, OSError):
                pass  # the host closed the stream, or the connection went: the process is killed

        readers = [threading.Thread(target=pump, args=(proc.stdout, 1), daemon=True)]
        if v2:
            readers.append(threading.Thread(target=pump, args=(proc.stderr, 2), daemon=True))
        for t in readers:
            t.start()
        for t in readers:
            t.join()
        code = proc.wait()
        if v2:
            self._write(stream, struct.pack("<BIB", 3, 1, code & 0xFF if code >= 0 else 128 - code))

    def _sync(self, stream: _Stream) -> None:
        buf = bytearray()
        while True:
            request = self._read(stream, 8, buf)
            cmd, length = request[:4], struct.unpack("<I", request[4:])[0]
            if cmd == b"QUIT":
                return
            arg = self._read(stream, length, buf).decode()
            if cmd == b"STAT":
                try:
                    st = os.stat(self.map_path(arg))
                    self._write(stream, b"STAT" + struct.pack("<III", st.st_mode, st.st_size, int(st.st_mtime)))
                except OSError:
                    self._write(stream, b"STAT" + struct.pack("<III", 0, 0, 0))
            elif cmd == b"LIST":
                path = self.map_path(arg)
                for name in sorted(os.listdir(path)) if os.path.isdir(path) else []:
                    st = os.stat(os.path.join(path, name))
                    self._write(stream, b"DENT" + struct.pack("<IIII", st.st_mode, st.st_size, int(st.st_mtime),
                                                              len(name.encode())) + name.encode())
                self._write(stream, b"DONE" + bytes(16))
            elif cmd == b"RECV":
                try:
                    data = Path(self.map_path(arg)).read_bytes()
                except OSError as exc:
                    message = f"open failed: {exc.strerror}".encode()
                    self._write(stream, b"FAIL" + struct.pack("<I", len(message)) + message)
                    continue
                for i in range(0, len(data), 65536):
                    self._write(stream, b"DATA" + struct.pack("<I", len(data[i:i + 65536])) + data[i:i + 65536])
                self._write(stream, b"DONE" + bytes(4))
            elif cmd == b"SEND":
                self._receive_file(stream, buf, arg)
            else:
                raise ConnectionError(f"unknown sync request {cmd!r}")

    def _receive_file(self, stream: _Stream, buf: bytearray, arg: str) -> None:
        path, _, mode = arg.rpartition(",")
        target = Path(self.map_path(path))
        error = None
        written = 0
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            handle = open(target, "wb")  # noqa: SIM115 - closed below, after the DONE
        except OSError as exc:
            handle, error = None, f"couldn't create file: {exc.strerror}"
        while True:
            head = self._read(stream, 8, buf)
            kind, value = head[:4], struct.unpack("<I", head[4:])[0]
            if kind == b"DONE":
                break
            if kind != b"DATA":
                raise ConnectionError(f"unexpected {kind!r} in SEND")
            chunk = self._read(stream, value, buf)
            if handle is not None and error is None:
                if self.disk_limit is not None and self._used() + len(chunk) > self.disk_limit:
                    error = f"write failed: {os.strerror(28)}"  # ENOSPC, as adbd reports it
                else:
                    handle.write(chunk)
                    written += len(chunk)
        if handle is not None:
            handle.close()
            if error is None:
                os.chmod(target, int(mode) & 0o7777 if mode.isdigit() else 0o644)
                os.utime(target, (value, value))
            else:
                target.unlink(missing_ok=True)
        if error is None:
            self._write(stream, b"OKAY" + bytes(4))
        else:
            self._write(stream, b"FAIL" + struct.pack("<I", len(error)) + error.encode())

    def _used(self) -> int:
        return sum(p.stat().st_size for p in self.tmp.rglob("*") if p.is_file() and stat.S_ISREG(p.stat().st_mode))


def _kill_session(sid: int) -> None:
    """SIGKILL every process of session ``sid``: the shell and all it started. A process group is not
    enough: coreutils `timeout` moves itself and the agent into a group of their own."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # state, ppid, pgrp, session
            try:
                os.kill(int(entry), signal.SIGKILL)
            except ProcessLookupError:
                pass


class AdbServer:
    """The real adb server (Debian `adb`) on its own port, with its keys in ``home``."""

    def __init__(self, home: Path, port: int) -> None:
        self.port = port
        Path(home).mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "HOME": str(home), "ANDROID_ADB_SERVER_PORT": str(port)}
        self.adb("start-server")

    def adb(self, *args: str, timeout: float = 30) -> str:
        proc = subprocess.run(["adb", "-P", str(self.port), *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"adb {' '.join(args)} failed: {proc.stderr.strip() or proc.stdout.strip()}")
        return proc.stdout.strip()

    def connect(self, device: FakeAndroidDevice) -> str:
        serial = f"127.0.0.1:{device.port}"
        out = self.adb("connect", serial)
        if "connected" not in out:
            raise RuntimeError(f"adb connect {serial}: {out}")
        self.adb("-s", serial, "wait-for-device", timeout=20)
        return serial

    def stop(self) -> None:
        try:
            self.adb("kill-server", timeout=10)
        except (RuntimeError, subprocess.TimeoutExpired):
            pass


def available() -> str | None:
    """None when the adb server can run here, else the reason it cannot."""
    from shutil import which

    return None if which("adb") else "Debian's adb is not installed (apt-get install adb)"
