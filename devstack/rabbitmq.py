"""A private RabbitMQ node for tests that break the broker: its own node name, ports,
database and logs, so stopping it never touches the shared broker on 5672.

The node runs as the `rabbitmq` user (the Debian package's layout) with the shared
Erlang cookie and epmd, no plugins unless asked (no management or prometheus ports) and an empty
environment file, so /etc/rabbitmq's settings (node name, ports) do not apply. With
RABBITMQ_ALLOW_INPUT the server script execs the Erlang VM, so the process started here
is the beam itself (run with -noinput) and SIGTERM to it stops the node cleanly.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

from devstack.processes import free_port, port_open, wait_until

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
RABBITMQ_USER = "rabbitmq"
RABBITMQ_HOME = "/var/lib/rabbitmq"  # holds the Erlang cookie


def available() -> str | None:
    """Why a private node cannot run here (None when it can)."""
    if not Path(SERVER).exists():
        return f"{SERVER} is not installed"
    if os.geteuid() != 0:
        return "starting a node as the rabbitmq user needs root"
    try:
        shutil.chown(RABBITMQ_HOME, RABBITMQ_USER)  # no-op; checks the user exists
    except (LookupError, OSError) as exc:
        return f"no usable {RABBITMQ_USER} user: {exc}"
    return None


class PrivateRabbitMQ:
    def __init__(self, root: Path, plugins: tuple[str, ...] = (), config: str = ""):
        """`plugins`: to enable on this node alone, e.g. ("rabbitmq_federation",);
        `config`: its rabbitmq.conf (none: the defaults).
        Files it names must be readable by the rabbitmq user, e.g. under `root`."""
        self.root = root
        self.port = free_port()
        self.dist_port = free_port()
        self.node = f"gridwork-{uuid.uuid4().hex[:8]}@localhost"
        self.process: subprocess.Popen | None = None
        for name in ("mnesia", "log"):
            (root / name).mkdir(parents=True, exist_ok=True)
        (root / "rabbitmq-env.conf").write_text("")
        (root / "enabled_plugins").write_text(f"[{','.join(plugins)}].\n")
        if config:
            (root / "rabbitmq.conf").write_text(config)
        for path in (root, *root.iterdir()):
            shutil.chown(path, RABBITMQ_USER, RABBITMQ_USER)

    @property
    def amqp_uri(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _environment(self) -> dict:
        return {
            "PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
            "HOME": RABBITMQ_HOME,
            "LANG": "C.UTF-8",
            "RABBITMQ_ALLOW_INPUT": "1",
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.root / "log"),
            "RABBITMQ_CONF_ENV_FILE": str(self.root / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(self.root / "rabbitmq"),  # .conf; absent: defaults
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.root / "enabled_plugins"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def start(self, timeout_s: float = 60.0) -> None:
        with open(self.root / "server.out", "ab") as out:
            self.process = subprocess.Popen(
                [SERVER, "-noinput"],
                env=self._environment(),
                cwd=self.root,
                user=RABBITMQ_USER,
                group=RABBITMQ_USER,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_until(self._accepting, timeout_s, f"private RabbitMQ node {self.node}", 0.2)
        except TimeoutError:
            self.stop()
            raise

    def ctl(self, *args: str, timeout_s: float = 60.0) -> str:
        """`rabbitmqctl` against this node (as the rabbitmq user, who holds the cookie);
        files it reads must be readable by that user, e.g. under `root`."""
        done = subprocess.run(
            ["rabbitmqctl", "-n", self.node, *args],
            cwd=self.root,
            user=RABBITMQ_USER,
            group=RABBITMQ_USER,
            env=self._environment(),
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {done.stderr or done.stdout}")
        return done.stdout

    def _accepting(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"RabbitMQ node {self.node} exited; see {self.root / 'log'}")
        return port_open("127.0.0.1", self.port)

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM to the node's beam (a clean stop); SIGKILL if it does not end."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        deadline = time.monotonic() + 5
        while port_open("127.0.0.1", self.port) and time.monotonic() < deadline:
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL to the node's beam: a crash, with no chance to tidy up."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.kill()
        self.process.wait()
        deadline = time.monotonic() + 5
        while port_open("127.0.0.1", self.port) and time.monotonic() < deadline:
            time.sleep(0.1)
