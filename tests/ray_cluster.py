"""Start and stop a real multi-node Ray cluster on 127.0.0.1 for tests and benchmarks.

    cluster = RayCluster.start([2, 2])                   # a head with 2 CPUs, a second node with 2
    ...  # scenegrep index ... --ray cluster.address
    cluster = RayCluster.launch([2, 2]); ...; cluster.wait()   # other work while the nodes start
    cluster.kill_node(1)                                 # the second node dies (SIGKILL to all its processes)
    cluster.stop()

Each node is one `ray start --block` in its own process session: stopping it
(or killing its session) ends exactly the processes that node started, never
another Ray on the machine (`ray stop` would kill every Ray process by name).
All nodes share a temp dir of their own, short enough for Ray's socket paths.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from ports import free_port
from processes import session_members

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
"""The clusters here listen on 127.0.0.1 only. Ray 2.60 turns token authentication on for a
new local cluster (`ray.init()` without an address, as `scenegrep index --ray` runs it) and
keeps the token in ~/.ray/auth_token; every later `ray start --head` then requires it, and the
drivers started here would fail to join. Set before any node or driver starts, so all inherit it."""

START_TIMEOUT = 180.0
"""Seconds to wait for every node to join: a node starts in ~5 s alone, but the
tests' 2 cores are shared with other jobs, and each node starts several processes."""

OBJECT_STORE_BYTES = 200 << 20
"""Each node's object store: the sample videos' segments are a few MB of resized
frames; Ray's default (30% of RAM per node) would reserve gigabytes of /dev/shm."""

HEALTH_CHECKS = {"RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "3"}
"""The head asks each node every second (Ray: 3 s) and calls it dead after 3 failed
checks (Ray: 5): a killed node is known dead (and its tasks retried) in ~3 s, not
~15 s. A check fails on a refused connection at once, but on a slow node only
after its timeout (Ray's 10 s), so a node slowed by a busy machine is not taken for dead."""

STOP_SECONDS = 20.0
"""How long a node's `ray start --block` may take to stop its processes on SIGTERM
before its whole session is killed."""


def ray_executable() -> str:
    return os.path.join(os.path.dirname(sys.executable), "ray")


@dataclass
class RayCluster:
    address: str  # host:port of the head, as `scenegrep index --ray` takes it
    temp_dir: str
    client_address: str = ""  # ray://host:port of the head's Ray client server
    nodes: list[subprocess.Popen] = field(default_factory=list)
    _cpus: list[int] = field(default_factory=list)  # CPUs of each node to start

    @classmethod
    def start(cls, cpus: list[int], temp_dir: str | None = None) -> "RayCluster":
        """A head with cpus[0] CPUs and one more node per further entry, each with a
        resource `node<i>` so tasks can be pinned; returns once all have joined."""
        cluster = cls.launch(cpus, temp_dir)
        cluster.wait()
        return cluster

    @classmethod
    def launch(cls, cpus: list[int], temp_dir: str | None = None) -> "RayCluster":
        """Like `start`, but returns once the nodes are launched: `wait` for them to join."""
        temp_dir = temp_dir or tempfile.mkdtemp(prefix="sgray", dir="/tmp")  # Unix sockets: short paths
        port = client_port = free_port()
        while client_port == port:
            client_port = free_port()
        cluster = cls(f"127.0.0.1:{port}", temp_dir, f"ray://127.0.0.1:{client_port}")
        cluster._cpus = list(cpus)
        try:
            cluster.nodes.append(cluster._start_node(0, cpus[0], port))
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def wait(self) -> None:
        """Start the other nodes once the head listens, and return once all have joined.
        Stops the cluster and raises RuntimeError when a node exits or they take too long."""
        try:
            port = int(self.address.rsplit(":", 1)[1])
            self._wait_listening(port)
            for i, count in enumerate(self._cpus[len(self.nodes):], start=len(self.nodes)):
                self.nodes.append(self._start_node(i, count, port))
            self._wait_for(len(self._cpus))
        except BaseException:
            self.stop()
            raise

    def _wait_listening(self, port: int) -> None:
        """Until the head's GCS accepts connections (a socket: no Ray driver started to ask)."""
        import socket

        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.nodes[0].poll() is not None:
                raise RuntimeError(f"ray node 0 exited with {self.nodes[0].returncode}: {self.log(0)[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"the Ray head did not listen in {START_TIMEOUT:.0f} s: {self.log(0)[-2000:]}")

    def _start_node(self, i: int, cpus: int, port: int) -> subprocess.Popen:
        common = ["--block", "--num-cpus", str(cpus), "--num-gpus", "0", "--resources", json.dumps({f"node{i}": 1}),
                  "--object-store-memory", str(OBJECT_STORE_BYTES), "--disable-usage-stats",
                  "--node-ip-address", "127.0.0.1"]
        if i == 0:
            args = ["--head", "--port", str(port), "--include-dashboard", "false", "--temp-dir", self.temp_dir,
                    "--ray-client-server-port", self.client_address.rsplit(":", 1)[1]]
        else:
            args = ["--address", self.address]
        log = open(os.path.join(self.temp_dir, f"node{i}.log"), "ab")
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **HEALTH_CHECKS}
        return subprocess.Popen([ray_executable(), "start", *args, *common], stdout=log, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)

    def _wait_for(self, nodes: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            for i, node in enumerate(self.nodes):
                if node.poll() is not None:
                    raise RuntimeError(f"ray node {i} exited with {node.returncode}: {self.log(i)[-2000:]}")
            if self.alive_nodes() >= nodes:
                return
            time.sleep(1.0)
        raise RuntimeError(f"the Ray cluster did not reach {nodes} node(s) in {START_TIMEOUT:.0f} s: {self.log(0)[-2000:]}")

    def add_node(self, cpus: int) -> int:
        """Start one more node with `cpus` CPUs; returns its index once it has joined."""
        port = int(self.address.rsplit(":", 1)[1])
        self._cpus.append(cpus)
        self.nodes.append(self._start_node(len(self.nodes), cpus, port))
        self._wait_for(sum(node.poll() is None for node in self.nodes))
        return len(self.nodes) - 1

    def alive_nodes(self) -> int:
        """Nodes the head counts alive (asked with `ray list`-free means: a tiny driver script)."""
        script = ("import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR', log_to_driver=False);"
                  "print(sum(n['Alive'] for n in ray.nodes()))")
        result = subprocess.run([sys.executable, "-c", script, self.address], capture_output=True, text=True,
                                timeout=120, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
        try:
            return int(result.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return 0

    def log(self, i: int) -> str:
        try:
            with open(os.path.join(self.temp_dir, f"node{i}.log"), errors="replace") as fh:
                return fh.read()
        except OSError:
            return ""

    def kill_node(self, i: int) -> None:
        """The node dies at once: SIGKILL to every process of its session (raylet, its workers)."""
        _signal_session(self.nodes[i], signal.SIGKILL)
        self.nodes[i].wait()

    def stop(self) -> None:
        """Stop every node (the second ones first), each with all the processes it started."""
        for node in reversed(self.nodes):
            if node.poll() is None:
                node.send_signal(signal.SIGTERM)
        for node in reversed(self.nodes):
            try:
                node.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                pass
            _signal_session(node, signal.SIGKILL)  # anything the node left behind (workers of a killed raylet)
            node.wait()
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> "RayCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _signal_session(process: subprocess.Popen, sig: int) -> None:
    """Signal every process of the node's session: Ray puts its workers in process groups of
    their own, but they stay in the session `ray start` opened (start_new_session)."""
    for pid in session_members(process.pid):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
