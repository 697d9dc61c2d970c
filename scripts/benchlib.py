"""What the side-by-side benchmark scripts share: tools, servers, CPU accounting, medians.

Both `bench-redis-benchmark.py` and `bench-vs-redis.py` compare shardis-server with Debian's
redis-server the same way: each run gets a freshly started server on a free port, pinned with
`taskset` to the same CPUs whichever server it is, and the server's own CPU time is read from
/proc around the measured part only. CPU seconds per million operations is the fair figure on a
machine where the load generator shares the cores with the server, so every table reports it.

The binaries are built in $CARGO_TARGET_DIR (default `target/`) and copied to a private
directory before the first run, so a build in a shared target directory during a long benchmark
cannot swap the binary under test. `BuildLock` lets a long benchmark hold the workspace build lock
only while it measures, a table row at a time, so builds can run in between.

Run as a program, `benchlib.py ensure-redis` installs the Debian packages if they are missing
(`bench-memory.sh` uses it).
"""

import atexit
import fcntl
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")
TARGET_DIR = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))

# Where each binary is run from: filled in by build_release with private copies.
_BINARIES = {}

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


class BuildLock:
    """The workspace build lock (`flock` on `path`), taken for a stretch of measuring; a no-op
    without a path (when the caller already runs under `flock`)."""

    def __init__(self, path=None):
        self.path = path
        self.file = None

    def __enter__(self):
        if self.path:
            self.file = open(self.path, "a")
            fcntl.flock(self.file, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        if self.file:
            self.file.close()
            self.file = None


def build_release(bins, lock=None):
    """Builds the release binaries once (holding `lock`, a BuildLock) and copies them to a
    private directory; every run then uses those copies (see `binary`)."""
    cmd = ["cargo", "build", "--release", "-q"]
    for b in bins:
        cmd += ["-p", PACKAGE_OF_BIN[b], "--bin", b]
    private = tempfile.mkdtemp(prefix="shardis-bench-bin-")
    atexit.register(shutil.rmtree, private, True)
    with lock or BuildLock():
        subprocess.run(cmd, cwd=ROOT, check=True)
        for b in bins:
            _BINARIES[b] = shutil.copy2(os.path.join(TARGET_DIR, "release", b), private)


def binary(name):
    """The path of a binary that build_release prepared."""
    return _BINARIES[name]


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
    `cpus`; a context manager that stops it on exit. `path` names another binary than the
    shardis-server build_release prepared, or than Debian's redis-server (such as
    scripts/redis-7.4.sh)."""

    def __init__(self, kind, cpus, shards=1, path=None):
        self.kind = kind
        self.port = free_port()
        if kind == "shardis":
            cmd = [path or binary("shardis-server"), "--port", str(self.port), "--shards", str(shards),
                   "--loglevel", "warning"]
        else:
            cmd = [path or "redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no",
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


def machine():
    """The machine and redis-server version, for the header of a generated table."""
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
    found = re.search(r"v=(\S+)", version)
    return (f"{os.cpu_count()} CPUs ({model}), Linux {platform.release()}, "
            f"redis-server {found.group(1) if found else '?'}")


def write_section(name, text):
    """Replaces the generated part of BENCHMARKS.md between `<!-- NAME:start -->` and
    `<!-- NAME:end -->` with `text`."""
    start_mark, end_mark = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    path = os.path.join(ROOT, "BENCHMARKS.md")
    with open(path) as f:
        doc = f.read()
    start, end = doc.find(start_mark), doc.find(end_mark)
    if start < 0 or end < start:
        sys.exit(f"BENCHMARKS.md has no {start_mark} ... {end_mark} section to replace")
    doc = doc[:start + len(start_mark)] + "\n" + text + doc[end:]
    with open(path, "w") as f:
        f.write(doc)


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


def add_run_args(p):
    """The options every side-by-side redis-benchmark script takes."""
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--requests", type=int, default=200000)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--shards", type=int, default=1)
    p.add_argument("--server-cpus", default="0")
    p.add_argument("--client-cpus", default="1")


def redis_benchmark(port, test, pipeline, args):
    """Requests per second of one redis-benchmark test against `port` (random keys, 32-byte
    values), run on --client-cpus."""
    cmd = ["taskset", "-c", args.client_cpus, "redis-benchmark", "-p", str(port), "-t", test,
           "-n", str(args.requests), "-c", str(args.clients), "-P", str(pipeline),
           "-r", "100000", "-d", "32", "--csv"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        cells = [c.strip('"') for c in line.split(",")]
        if cells and cells[0] != "test" and len(cells) > 1:
            return float(cells[1])
    sys.exit(f"no result from redis-benchmark: {out}")
