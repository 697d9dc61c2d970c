//! Server and connection commands, authentication, options, shutdown and signals.

use std::process::{Command, Stdio};

use crate::harness::{Server, TOPOLOGIES};

#[test]
fn info_reports_what_clients_read() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut raw = server.raw();
        raw.cmd(&["SET", "a", "1"]);
        let info = raw.cmd(&["INFO"]);
        for field in [
            "redis_version:",
            "loading:0",
            "connected_clients:1",
            "role:master",
            "db0:keys=1,expires=0",
            "used_memory:",
            "total_commands_processed:",
            "used_cpu_user:",
        ] {
            assert!(info.contains(field), "{field} missing from {info}");
        }
        assert!(info.contains(&format!("tcp_port:{}", server.port)));
        let shard_lines = info.lines().filter(|l| {
            l.starts_with("shard") && l.as_bytes().get(5).is_some_and(u8::is_ascii_digit)
        });
        assert_eq!(shard_lines.count(), shards, "{info}");
        let only = raw.cmd(&["INFO", "keyspace"]);
        assert!(
            only.contains("# Keyspace") && !only.contains("# Server"),
            "{only}"
        );
        let two = raw.cmd(&["INFO", "server", "CLIENTS"]);
        assert!(two.contains("# Server") && two.contains("# Clients") && !two.contains("# Memory"));
        // redis-py and ioredis parse INFO through their own parsers.
        let mut con = server.client();
        let info: redis::InfoDict = redis::cmd("INFO").query(&mut con).unwrap();
        assert_eq!(
            info.get::<String>("redis_version").as_deref(),
            Some("8.0.0")
        );
        assert_eq!(info.get::<i64>("loading"), Some(0));
    }
}

#[test]
fn client_subcommands() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut a = server.raw();
        let mut b = server.raw();
        assert_eq!(a.cmd(&["CLIENT", "GETNAME"]), "$-1\r\n");
        assert_eq!(a.cmd(&["CLIENT", "SETNAME", "alpha"]), "+OK\r\n");
        assert_eq!(a.cmd(&["CLIENT", "GETNAME"]), "$5\r\nalpha\r\n");
        assert_eq!(
            a.cmd(&["CLIENT", "SETNAME", "a b"]),
            "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
        );
        assert_eq!(
            a.cmd(&["CLIENT", "SETINFO", "LIB-NAME", "redis-py"]),
            "+OK\r\n"
        );
        assert_eq!(
            a.cmd(&["CLIENT", "SETINFO", "bogus", "x"]),
            "-ERR Unrecognized option 'bogus'\r\n"
        );
        let id_a: u64 = a
            .cmd(&["CLIENT", "ID"])
            .trim_start_matches(':')
            .trim()
            .parse()
            .unwrap();
        let id_b: u64 = b
            .cmd(&["CLIENT", "ID"])
            .trim_start_matches(':')
            .trim()
            .parse()
            .unwrap();
        assert_ne!(id_a, id_b);
        let list = a.cmd(&["CLIENT", "LIST"]);
        assert!(
            list.contains(&format!("id={id_a} ")) && list.contains(&format!("id={id_b} ")),
            "{list}"
        );
        assert!(
            list.contains("name=alpha") && list.contains("lib-name=redis-py"),
            "{list}"
        );
        let one = a.cmd(&["CLIENT", "LIST", "ID", &id_b.to_string()]);
        assert!(
            one.contains(&format!("id={id_b} ")) && !one.contains("name=alpha"),
            "{one}"
        );
        assert!(a.cmd(&["CLIENT", "INFO"]).contains(&format!("id={id_a} ")));
        assert_eq!(
            a.cmd(&["CLIENT", "NOSUCH"]),
            "-ERR unknown subcommand 'NOSUCH'. Try CLIENT HELP.\r\n"
        );
        assert_eq!(
            a.cmd(&["CLIENT", "KILL", "ID", &id_b.to_string()]),
            ":1\r\n"
        );
        assert!(b.try_reply().is_none(), "killed client is disconnected");
        assert_eq!(
            a.cmd(&["CLIENT", "KILL", "1.2.3.4:5"]),
            "-ERR No such client\r\n"
        );
        assert_eq!(a.cmd(&["PING"]), "+PONG\r\n");
    }
}

#[test]
fn config_get_set_and_errors() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut raw = server.raw();
        let port = server.port.to_string();
        assert_eq!(
            raw.cmd(&["CONFIG", "GET", "port"]),
            format!("*2\r\n$4\r\nport\r\n${}\r\n{port}\r\n", port.len())
        );
        assert_eq!(raw.cmd(&["CONFIG", "SET", "maxclients", "500"]), "+OK\r\n");
        // Every shard sees the change.
        for _ in 0..4 {
            let mut other = server.raw();
            assert_eq!(
                other.cmd(&["CONFIG", "GET", "maxclients"]),
                "*2\r\n$10\r\nmaxclients\r\n$3\r\n500\r\n"
            );
        }
        assert_eq!(raw.cmd(&["CONFIG", "SET", "port", "1"]), "-ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable config\r\n");
        assert_eq!(
            raw.cmd(&["CONFIG", "SET", "nosuch", "1"]),
            "-ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'\r\n"
        );
        assert_eq!(
            raw.cmd(&["CONFIG", "SET", "maxclients"]),
            "-ERR wrong number of arguments for 'config|set' command\r\n"
        );
        let all = raw.cmd(&["CONFIG", "GET", "*"]);
        assert!(
            all.contains("databases") && all.contains("requirepass"),
            "{all}"
        );
        assert_eq!(raw.cmd(&["CONFIG", "RESETSTAT"]), "+OK\r\n");
    }
}

#[test]
fn command_table_introspection() {
    let server = Server::start(1, &[]);
    let mut raw = server.raw();
    let count: usize = raw
        .cmd(&["COMMAND", "COUNT"])
        .trim_start_matches(':')
        .trim()
        .parse()
        .unwrap();
    assert!(count >= 20);
    let info = raw.cmd(&["COMMAND", "INFO", "get", "nosuch"]);
    assert!(
        info.starts_with("*2\r\n*10\r\n$3\r\nget\r\n:2\r\n"),
        "{info}"
    );
    assert!(info.ends_with("*-1\r\n"), "{info}");
    let docs = raw.cmd(&["COMMAND", "DOCS", "set"]);
    assert!(
        docs.contains("summary") && docs.contains("string"),
        "{docs}"
    );
    let all = raw.cmd(&["COMMAND"]);
    assert!(all.starts_with(&format!("*{count}\r\n")));
}

#[test]
fn authentication_with_requirepass() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &["--requirepass", "s3cret"]);
        let mut raw = server.raw();
        assert_eq!(
            raw.cmd(&["GET", "k"]),
            "-NOAUTH Authentication required.\r\n"
        );
        assert_eq!(
            raw.cmd(&["AUTH", "wrong"]),
            "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
        );
        assert_eq!(raw.cmd(&["AUTH", "s3cret"]), "+OK\r\n");
        assert_eq!(raw.cmd(&["SET", "k", "v"]), "+OK\r\n");
        let mut other = server.raw();
        assert!(other
            .cmd(&["HELLO", "3"])
            .starts_with("-NOAUTH HELLO must be called"));
        assert!(other
            .cmd(&["HELLO", "3", "AUTH", "default", "s3cret"])
            .starts_with("%7\r\n"));
        assert_eq!(other.cmd(&["GET", "k"]), "$1\r\nv\r\n");
        let url = format!("redis://:s3cret@127.0.0.1:{}/", server.port);
        let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
        let v: String = redis::cmd("GET").arg("k").query(&mut con).unwrap();
        assert_eq!(v, "v");
    }
    let server = Server::start(1, &[]);
    let mut raw = server.raw();
    assert_eq!(raw.cmd(&["AUTH", "x"]), "-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n");
}

#[test]
fn shutdown_command_finishes_and_exits_zero() {
    for shards in TOPOLOGIES {
        let server = Server::start(shards, &[]);
        let mut idle = server.raw();
        let mut raw = server.raw();
        assert_eq!(raw.cmd(&["SET", "a", "1"]), "+OK\r\n");
        assert_eq!(
            raw.cmd(&["SHUTDOWN", "ABORT"]),
            "-ERR No shutdown in progress.\r\n"
        );
        raw.send(&crate::harness::encode(&["SHUTDOWN", "NOSAVE"]));
        assert!(raw.try_reply().is_none(), "SHUTDOWN closes without a reply");
        assert!(idle.try_reply().is_none(), "other clients are disconnected");
        assert_eq!(server.wait_exit(), Some(0));
    }
}

#[test]
fn sigterm_and_sigint_exit_cleanly() {
    for (shards, signal) in [
        (1, libc_signal::SIGTERM),
        (4, libc_signal::SIGINT),
        (4, libc_signal::SIGTERM),
    ] {
        let server = Server::start(shards, &[]);
        let mut raw = server.raw();
        assert_eq!(raw.cmd(&["PING"]), "+PONG\r\n");
        let status = Command::new("kill")
            .args([signal, &server.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        assert!(raw.try_reply().is_none());
        assert_eq!(server.wait_exit(), Some(0));
    }
}

mod libc_signal {
    pub const SIGTERM: &str = "-TERM";
    pub const SIGINT: &str = "-INT";
}

#[test]
fn bad_options_are_named_and_exit_one() {
    for (args, named) in [
        (&["--nosuch", "1"][..], "nosuch"),
        (&["--port", "notaport"][..], "port"),
        (&["--shards", "0"][..], "shards"),
        (
            &["/nonexistent/shardis.conf"][..],
            "/nonexistent/shardis.conf",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_shardis-server"))
            .args(args)
            .stdout(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(named), "{args:?}: {stderr}");
    }
}

#[test]
fn config_file_then_command_line() {
    let dir = std::env::temp_dir().join(format!("shardis-conf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("shardis.conf");
    std::fs::write(
        &file,
        "# test\ndatabases 4\nrequirepass \"from file\"\nport 1\n",
    )
    .unwrap();
    let file_arg = file.to_str().unwrap();
    let server = Server::launch(&[
        file_arg,
        "--port",
        "0",
        "--shards",
        "2",
        "--requirepass",
        "cli",
    ]);
    let mut raw = server.raw();
    assert_eq!(raw.cmd(&["AUTH", "cli"]), "+OK\r\n");
    assert_eq!(raw.cmd(&["SELECT", "3"]), "+OK\r\n");
    assert_eq!(
        raw.cmd(&["SELECT", "4"]),
        "-ERR DB index is out of range\r\n"
    );
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_shardis-server"))
        .args(["--port", &port, "--shards", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&port));
}

/// Every shard serves right after startup, start after start. A shard that parked while it
/// still had runnable tasks (glommio counted "preempted before the first task ran" as idle)
/// could sleep through the startup mesh join for good, and the connections handed to it were
/// never answered; the four connections here land on the four shards (round robin).
#[test]
fn every_shard_answers_right_after_startup() {
    for _ in 0..40 {
        let server = Server::start_on_one_cpu(4);
        let mut raws: Vec<_> = (0..4).map(|_| server.raw()).collect();
        for raw in &mut raws {
            // A reply that never comes fails here after the read timeout.
            assert_eq!(raw.cmd(&["PING"]), "+PONG\r\n");
        }
    }
}
