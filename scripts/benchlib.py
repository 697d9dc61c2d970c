"""What the side-by-side benchmark scripts share: tools, servers, CPU accounting, medians.

Both `bench-redis-benchmark.py` and `bench-vs-redis.py` compare shardis-server with Debian's
redis-server the same way: each run gets a freshly started server on a free port, pinned with
`taskset` to the same CPUs whichever server it is, and the server's own CPU time is read from
/proc around the measured part only. CPU seconds per million operations is the fair figure on a
machine where the load generator shares the cores with the server, so every table reports it.

Run as a program, `benchlib.py ensure-redis` installs the Debian packages if they are missing
(`bench-memory.sh` uses it).
"""

import os
import shutil
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")
SHARDIS = os.path.join(ROOT, "target/release/shardis-server")
SHARDIS_BENCH = os.path.join(ROOT, "target/release/shardis-bench")

PACKAGE_OF_BIN = {"shardis-server": "shardis", "shardis-bench": "shardis-bench"}

# Where each tool comes from on Debian.
PACKAGES = {
    "redis-server": "redis-server",
    "redis-cli": "redis-tools",
    "redis-benchmark": "redis-tools",
    "taskset": "util-linux",
    "strace": "strace",
}


def ensure_tools(tools):
    """Installs the Debian packages of any missing tool (as root, or through sudo)."""
    missing = sorted({PACKAGES[t] for t in tools if not shutil.which(t)})
    if not missing:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    print(f"installing {' '.join(missing)}", file=sys.stderr)
    try:
        subprocess.run(sudo + ["apt-get", "update", "-q"], check=True)
        subprocess.run(sudo + ["apt-get", "install", "-y", "-q"] + missing, check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        sys.exit(f"could not install {' '.join(missing)} ({e}); install them by hand")
    still = [t for t in tools if not shutil.which(t)]
    if still:
        sys.exit(f"still missing after installing: {' '.join(still)}")


def build_release(bins):
    """Builds the release binaries once; every run then reuses them."""
    cmd = ["cargo", "build", "--release", "-q"]
    for b in bins:
        cmd += ["-p", PACKAGE_OF_BIN[b], "--bin", b]
    subprocess.run(cmd, cwd=ROOT, check=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, proc):
    for _ in range(500):
        if proc.poll() is not None:
            sys.exit(f"server exited early with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            time.sleep(0.02)
    sys.exit("server did not become ready")


def cpu_seconds(pid):
    """User + system CPU seconds of a process and all its threads."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Server:
    """A shardis-server (`kind` "shardis") or redis-server ("redis") on a free port, pinned to
    `cpus`; a context manager that stops it on exit."""

    def __init__(self, kind, cpus, shards=1):
        self.kind = kind
        self.port = free_port()
        if kind == "shardis":
            cmd = [SHARDIS, "--port", str(self.port), "--shards", str(shards),
                   "--loglevel", "warning"]
        else:
            cmd = ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no",
                   "--loglevel", "warning"]
        self.proc = subprocess.Popen(["taskset", "-c", cpus] + cmd, stdout=subprocess.DEVNULL)
        wait_ready(self.port, self.proc)

    @property
    def pid(self):
        return self.proc.pid

    def cpu(self):
        return cpu_seconds(self.proc.pid)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def median(values):
    return statistics.median(values) if values else float("nan")


def ratio(a, b):
    """a / b, or nan when either is missing or b is zero."""
    if a != a or b != b or not b:
        return float("nan")
    return a / b


def fmt(value, spec):
    """A number for a markdown cell; missing values (nan) as n/a."""
    return "n/a" if value != value else format(value, spec)


if __name__ == "__main__":
    if sys.argv[1:] == ["ensure-redis"]:
        ensure_tools(["redis-server", "redis-cli"])
    else:
        sys.exit("usage: benchlib.py ensure-redis")
