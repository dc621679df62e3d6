"""A real OpenSSH server on loopback, for a Docker host reached over ssh://, made for one run.

Debian's sshd (openssh-server; installed here with the system's own sshd kept from starting)
runs in the foreground as a child of the rehearsal, on 127.0.0.1:<free port>, with everything
of its own under a private directory: a host key and a user key generated for the run, an
authorized_keys holding only that user key, a known_hosts naming only that host key. Key
authentication only (no password, no keyboard-interactive, no PAM), root only, no forwarding.
The provider's command then runs on it as on any server: `ssh -l root -p PORT <sshOpts> -o
ConnectTimeout=30 -T -- 127.0.0.1 docker --host=unix://<socket> system dial-stdio`
(components.dockerhost.ssh_argv), with the docker CLI of this machine.

`opts()` are the `docker:sshOpts` a user would set for such a host: this key, this known_hosts,
strict host key checking, no ssh config of this machine's user (`-F /dev/null`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from rehearsal.hosts.private_engine import free_port

SSHD = Path("/usr/sbin/sshd")
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
START_TIMEOUT = 10.0
Say = Callable[[str], None]


class SshUnavailable(Exception):
    """No sshd can run here; str() says why, in one line."""


def ensure_sshd(say: Say) -> None:
    """Install Debian's openssh-server when sshd is missing (root), without starting the
    system's own sshd: a policy-rc.d that refuses every start stands there for the install when
    the machine has none (invoke-rc.d and deb-systemd-invoke both obey it)."""
    if SSHD.exists():
        return
    if os.geteuid() != 0:
        raise SshUnavailable("sshd is not installed and installing openssh-server needs root")
    if shutil.which("apt-get") is None:
        raise SshUnavailable("sshd is not installed and there is no apt-get to install openssh-server")
    placed = not POLICY_RC_D.exists()
    if placed:
        POLICY_RC_D.write_text(
            "#!/bin/sh\n# django-docker rehearsal: no service starts during this install\nexit 101\n"
        )
        POLICY_RC_D.chmod(0o755)
    try:
        started = time.monotonic()
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        done = subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "openssh-server"],
            capture_output=True,
            text=True,
            env=env,
        )
        if done.returncode != 0:
            raise SshUnavailable(f"apt-get install openssh-server failed: {done.stderr.strip().splitlines()[-1:]}")
        say(
            f"ssh host: installed Debian's openssh-server in {time.monotonic() - started:.1f}s (not started as a service)"
        )
    finally:
        if placed:
            POLICY_RC_D.unlink()


def _keygen(path: Path, comment: str) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True, capture_output=True
    )
    return Path(f"{path}.pub").read_text().strip()


@dataclass
class SshHost:
    """A running sshd on 127.0.0.1 (stop with close())."""

    port: int
    root: Path
    user: str
    key: Path
    """The private key authorized to log in (the one `opts()` names)."""
    known_hosts: Path
    process: subprocess.Popen
    log: Path
    say: Say
    started_seconds: float = 0.0
    _closed: bool = field(default=False, repr=False)

    def url(self, socket_path: str = "") -> str:
        """The `docker:host` for it: ssh://root@127.0.0.1:PORT[/the engine's socket]."""
        return f"ssh://{self.user}@127.0.0.1:{self.port}{socket_path}"

    def opts(self, *, key: Optional[Path] = None, known_hosts: Optional[Path] = None) -> list[str]:
        """`docker:sshOpts` for this host (another key or known_hosts: for the refusals)."""
        return [
            "-F",
            "/dev/null",
            "-i",
            str(key or self.key),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            f"UserKnownHostsFile={known_hosts or self.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
        ]

    def stranger_key(self) -> Path:
        """A key this host never authorized."""
        path = self.root / "stranger"
        if not path.exists():
            _keygen(path, "never authorized")
        return path

    def wrong_known_hosts(self) -> Path:
        """A known_hosts that names another host key for this address (a host that changed, or a man in the middle)."""
        path = self.root / "known_hosts.wrong"
        if not path.exists():
            other = self.root / "other_host_key"
            public = _keygen(other, "another host")
            path.write_text(f"[127.0.0.1]:{self.port} {' '.join(public.split()[:2])}\n")
        return path

    def logins(self) -> int:
        """How many key logins the server accepted so far."""
        try:
            return self.log.read_text(errors="replace").count("Accepted publickey")
        except OSError:
            return 0

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)
        self.say(f"ssh host: sshd (pid {self.process.pid}) stopped, its keys removed")

    def __enter__(self) -> "SshHost":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def start_ssh_host(say: Say, *, user: str = "root", name: str = "django-docker-remote") -> SshHost:
    """Install sshd if needed, generate the run's keys, start sshd on a free loopback port and
    wait until a login with the run's key works. Raises SshUnavailable."""
    ensure_sshd(say)
    if shutil.which("ssh-keygen") is None or shutil.which("ssh") is None:
        raise SshUnavailable("the OpenSSH client (ssh, ssh-keygen) is not installed")
    started = time.monotonic()
    # 0700, under /run (root 0755): sshd's StrictModes refuses keys below a world-writable /tmp
    root = Path(tempfile.mkdtemp(prefix=f"{name}-ssh-", dir="/run"))
    host_key, user_key = root / "host_key", root / "user_key"
    host_public = _keygen(host_key, "rehearsal host")
    user_public = _keygen(user_key, "rehearsal deploy key")
    (root / "authorized_keys").write_text(user_public + "\n")
    (root / "authorized_keys").chmod(0o600)
    port = free_port()
    known_hosts = root / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {' '.join(host_public.split()[:2])}\n")
    config = root / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {host_key}",
                f"PidFile {root / 'sshd.pid'}",
                f"AuthorizedKeysFile {root / 'authorized_keys'}",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "PermitRootLogin prohibit-password",
                f"AllowUsers {user}",
                "AllowTcpForwarding no",
                "AllowAgentForwarding no",
                "X11Forwarding no",
                "PermitTunnel no",
                "PrintMotd no",
                "LogLevel VERBOSE",
                "",
            ]
        )
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # its privilege separation directory
    checked = subprocess.run([str(SSHD), "-t", "-f", str(config)], capture_output=True, text=True)
    if checked.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise SshUnavailable(f"sshd refused its configuration: {checked.stderr.strip()}")
    log = root / "sshd.log"
    process = subprocess.Popen(
        [str(SSHD), "-D", "-f", str(config), "-E", str(log)], stdin=subprocess.DEVNULL, start_new_session=True
    )
    host = SshHost(port, root, user, user_key, known_hosts, process, log, say)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            text = log.read_text(errors="replace").strip() if log.exists() else ""
            host.close()
            raise SshUnavailable(f"sshd exited with {process.returncode}: {text[-300:]}")
        login = subprocess.run(
            ["ssh", "-p", str(port), *host.opts(), "-o", "ConnectTimeout=2", "-T", "--", f"{user}@127.0.0.1", "true"],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        if login.returncode == 0:
            break
        if time.monotonic() > deadline:
            host.close()
            raise SshUnavailable(f"no login on sshd at 127.0.0.1:{port}: {login.stderr.strip()[-300:]}")
        time.sleep(0.1)
    host.started_seconds = time.monotonic() - started
    say(
        f"ssh host: Debian's sshd (pid {process.pid}) on 127.0.0.1:{port}, key login only, "
        f"ready in {host.started_seconds:.1f}s"
    )
    return host
