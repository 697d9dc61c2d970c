//! Connection commands: `PING`, `ECHO`, `HELLO`, `AUTH`, `SELECT`, `QUIT`, `RESET`, `CLIENT`.
//!
//! These act on the connection itself, so they run on its home shard, in order with the rest
//! of the batch. Server-wide commands (`INFO`, `CONFIG`, ...) are in [`crate::admin`].

use std::rc::Rc;

use shardis_commands::{keyspace, Args, CmdError, ConnCommand};
use shardis_resp::{parse_i64, Protocol, Reply};

use crate::admin;
use crate::client::{Client, KillFilter};
use crate::shard::{Control, ResponseBody, Shard};

/// What the connection does after a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Go on reading.
    Continue,
    /// Write the replies so far, then close (`QUIT`, `SHUTDOWN`).
    Close,
}

/// The version of Redis whose behaviour Shardis follows, reported to clients.
pub const REDIS_VERSION: &str = "8.0.0";

/// True for connection commands that look at other shards, which must first see every
/// earlier command of the batch.
pub fn needs_barrier(which: ConnCommand) -> bool {
    matches!(
        which,
        ConnCommand::Info | ConnCommand::Client | ConnCommand::Config | ConnCommand::Shutdown
    )
}

/// Runs a connection command, writing its reply to `out`.
pub async fn run(
    shard: &Rc<Shard>,
    client: &Rc<Client>,
    which: ConnCommand,
    args: Args<'_>,
    out: &mut Vec<u8>,
) -> Flow {
    let proto = client.state.borrow().proto;
    let mark = out.len();
    let result = match which {
        ConnCommand::Ping => ping(args, &mut Reply::new(out, proto)),
        ConnCommand::Echo => {
            Reply::new(out, proto).bulk(args.get(1));
            Ok(Flow::Continue)
        }
        ConnCommand::Hello => hello(shard, client, args, out),
        ConnCommand::Auth => auth(shard, client, args, &mut Reply::new(out, proto)),
        ConnCommand::Select => select(shard, client, args, &mut Reply::new(out, proto)),
        ConnCommand::Quit => {
            Reply::new(out, proto).ok();
            Ok(Flow::Close)
        }
        ConnCommand::Reset => {
            reset(shard, client);
            Reply::new(out, proto).simple(b"RESET");
            Ok(Flow::Continue)
        }
        ConnCommand::Client => {
            client_command(shard, client, args, &mut Reply::new(out, proto)).await
        }
        ConnCommand::Info => admin::info(shard, args, &mut Reply::new(out, proto)).await,
        ConnCommand::Config => admin::config(shard, args, &mut Reply::new(out, proto)).await,
        ConnCommand::Command => admin::command(args, &mut Reply::new(out, proto)),
        ConnCommand::Time => admin::time(&mut Reply::new(out, proto)),
        ConnCommand::Shutdown => admin::shutdown(shard, args).await,
    };
    match result {
        Ok(flow) => flow,
        Err(err) => {
            out.truncate(mark);
            Reply::new(out, proto).error(&err.to_string());
            Flow::Continue
        }
    }
}

/// The result of a connection command.
pub type Outcome = Result<Flow, CmdError>;

/// `PING [message]`.
fn ping(args: Args<'_>, reply: &mut Reply<'_>) -> Outcome {
    match args.len() {
        1 => reply.simple(b"PONG"),
        2 => reply.bulk(args.get(1)),
        _ => return Err(CmdError::WrongArity("ping".to_owned())),
    }
    Ok(Flow::Continue)
}

/// Checks a username/password pair against `requirepass` (only the `default` user exists).
fn check_password(shard: &Shard, user: &[u8], password: &[u8]) -> Result<(), CmdError> {
    let config = shard.config.borrow();
    if user == b"default"
        && config.requirepass.as_bytes() == password
        && !config.requirepass.is_empty()
    {
        Ok(())
    } else {
        Err(CmdError::Other(
            "WRONGPASS invalid username-password pair or user is disabled.".to_owned(),
        ))
    }
}

/// `AUTH [username] password`.
fn auth(shard: &Shard, client: &Client, args: Args<'_>, reply: &mut Reply<'_>) -> Outcome {
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    if args.len() == 2 && shard.config.borrow().requirepass.is_empty() {
        return Err(CmdError::Other("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?".to_owned()));
    }
    let (user, password) = match args.len() {
        2 => (&b"default"[..], args.get(1)),
        _ => (args.get(1), args.get(2)),
    };
    check_password(shard, user, password)?;
    client.state.borrow_mut().authenticated = true;
    reply.ok();
    Ok(Flow::Continue)
}

/// `HELLO [protover [AUTH username password] [SETNAME clientname]]`.
fn hello(shard: &Shard, client: &Client, args: Args<'_>, out: &mut Vec<u8>) -> Outcome {
    let mut cursor = args.cursor(1);
    let mut proto = client.state.borrow().proto;
    if !cursor.is_done() {
        let version = parse_i64(cursor.next_bytes()?).ok_or_else(|| {
            CmdError::Other("ERR Protocol version is not an integer or out of range".to_owned())
        })?;
        proto = match version {
            2 => Protocol::Resp2,
            3 => Protocol::Resp3,
            _ => {
                return Err(CmdError::Other(
                    "NOPROTO unsupported protocol version".to_owned(),
                ))
            }
        };
    }
    let mut name = None;
    let mut credentials = None;
    while !cursor.is_done() {
        let option = cursor.next_bytes()?;
        if option.eq_ignore_ascii_case(b"auth") && cursor.remaining() >= 2 {
            credentials = Some((cursor.next_bytes()?, cursor.next_bytes()?));
        } else if option.eq_ignore_ascii_case(b"setname") && cursor.remaining() >= 1 {
            name = Some(valid_name(cursor.next_bytes()?)?);
        } else {
            return Err(CmdError::Other(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(option)
            )));
        }
    }
    if let Some((user, password)) = credentials {
        check_password(shard, user, password)?;
        client.state.borrow_mut().authenticated = true;
    }
    if !client.state.borrow().authenticated {
        return Err(CmdError::Other("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".to_owned()));
    }
    {
        let mut state = client.state.borrow_mut();
        state.proto = proto;
        if let Some(name) = name {
            state.name = name;
        }
    }
    let mut reply = Reply::new(out, proto);
    reply.map(7);
    reply.bulk(b"server");
    reply.bulk(b"redis");
    reply.bulk(b"version");
    reply.bulk(REDIS_VERSION.as_bytes());
    reply.bulk(b"proto");
    reply.integer(if proto == Protocol::Resp3 { 3 } else { 2 });
    reply.bulk(b"id");
    reply.integer(client.id as i64);
    reply.bulk(b"mode");
    reply.bulk(b"standalone");
    reply.bulk(b"role");
    reply.bulk(b"master");
    reply.bulk(b"modules");
    reply.array(0);
    Ok(Flow::Continue)
}

/// `SELECT index`.
fn select(shard: &Shard, client: &Client, args: Args<'_>, reply: &mut Reply<'_>) -> Outcome {
    let index = keyspace::db_index(args.get(1), shard.config.borrow().databases)?;
    client.state.borrow_mut().db = index;
    reply.ok();
    Ok(Flow::Continue)
}

/// `RESET`: back to a fresh connection's state.
fn reset(shard: &Shard, client: &Client) {
    let needs_auth = !shard.config.borrow().requirepass.is_empty();
    let mut state = client.state.borrow_mut();
    state.db = 0;
    state.proto = Protocol::Resp2;
    state.name.clear();
    state.authenticated = !needs_auth;
    state.multi = None;
    state.watched.clear();
}

/// Client names are printable ASCII without spaces, as in Redis.
fn valid_name(name: &[u8]) -> Result<String, CmdError> {
    if name.iter().all(|&c| (b'!'..=b'~').contains(&c)) {
        Ok(String::from_utf8_lossy(name).into_owned())
    } else {
        Err(CmdError::Other(
            "ERR Client names cannot contain spaces, newlines or special characters.".to_owned(),
        ))
    }
}

/// `CLIENT subcommand ...`.
async fn client_command(
    shard: &Rc<Shard>,
    client: &Client,
    args: Args<'_>,
    reply: &mut Reply<'_>,
) -> Outcome {
    let sub = String::from_utf8_lossy(args.get(1)).to_ascii_lowercase();
    let arity = |ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(CmdError::WrongArity(format!("client|{sub}")))
        }
    };
    match sub.as_str() {
        "setname" => {
            arity(args.len() == 3)?;
            let name = valid_name(args.get(2))?;
            client.state.borrow_mut().name = name;
            reply.ok();
        }
        "getname" => {
            arity(args.len() == 2)?;
            let state = client.state.borrow();
            if state.name.is_empty() {
                reply.null();
            } else {
                reply.bulk(state.name.as_bytes());
            }
        }
        "id" => {
            arity(args.len() == 2)?;
            reply.integer(client.id as i64);
        }
        "setinfo" => {
            arity(args.len() == 4)?;
            let value = String::from_utf8_lossy(args.get(3)).into_owned();
            if value.contains(|c: char| !('!'..='~').contains(&c)) {
                return Err(CmdError::Other(format!(
                    "ERR {} cannot contain spaces, newlines or special characters.",
                    String::from_utf8_lossy(args.get(2)).to_ascii_lowercase()
                )));
            }
            let mut state = client.state.borrow_mut();
            match args.get(2).to_ascii_lowercase().as_slice() {
                b"lib-name" => state.lib_name = value,
                b"lib-ver" => state.lib_ver = value,
                other => {
                    return Err(CmdError::Other(format!(
                        "ERR Unrecognized option '{}'",
                        String::from_utf8_lossy(other)
                    )))
                }
            }
            reply.ok();
        }
        "info" => {
            arity(args.len() == 2)?;
            let mut line = client.info_line(shard.started);
            line.push('\n');
            reply.verbatim(line.as_bytes());
        }
        "list" => {
            let mut ids = None;
            let mut cursor = args.cursor(2);
            while !cursor.is_done() {
                if cursor.eat("type") {
                    let kind = cursor.next_bytes()?.to_ascii_lowercase();
                    if !matches!(
                        kind.as_slice(),
                        b"normal" | b"master" | b"replica" | b"pubsub"
                    ) {
                        return Err(CmdError::Other(format!(
                            "ERR Unknown client type '{}'",
                            String::from_utf8_lossy(&kind)
                        )));
                    }
                } else if cursor.eat("id") {
                    let mut wanted = Vec::new();
                    while !cursor.is_done() {
                        let id = cursor.next_i64()?;
                        if id <= 0 {
                            return Err(CmdError::Other("ERR Invalid client ID".to_owned()));
                        }
                        wanted.push(id as u64);
                    }
                    ids = Some(wanted);
                } else {
                    return Err(CmdError::Syntax);
                }
            }
            let mut lines = Vec::new();
            for answer in shard.broadcast(|| Control::ClientList).await {
                if let ResponseBody::Lines(l) = answer {
                    lines.extend(l);
                }
            }
            let mut text = String::new();
            for line in lines {
                let id = line
                    .strip_prefix("id=")
                    .and_then(|rest| rest.split(' ').next())
                    .and_then(|id| id.parse::<u64>().ok());
                if ids
                    .as_ref()
                    .is_none_or(|ids| id.is_some_and(|id| ids.contains(&id)))
                {
                    text.push_str(&line);
                    text.push('\n');
                }
            }
            reply.verbatim(text.as_bytes());
        }
        "kill" => return client_kill(shard, client, args, reply).await,
        "help" => {
            let lines: &[&str] = &[
                "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "GETNAME",
                "    Return the name of the current connection.",
                "ID",
                "    Return the ID of the current connection.",
                "INFO",
                "    Return information about the current client connection.",
                "KILL <ip:port>",
                "    Kill connection made from <ip:port>.",
                "KILL <option> <value> [<option> <value> [...]]",
                "    Kill connections. Options are: ID, ADDR, LADDR, USER, SKIPME.",
                "LIST [options ...]",
                "    Return information about client connections.",
                "SETINFO <option> <value>",
                "    Set client meta attributes (LIB-NAME, LIB-VER).",
                "SETNAME <name>",
                "    Assign the name <name> to the current connection.",
                "HELP",
                "    Print this help.",
            ];
            reply.array(lines.len());
            lines.iter().for_each(|l| reply.simple(l.as_bytes()));
        }
        _ => {
            return Err(CmdError::UnknownSubcommand {
                sub: String::from_utf8_lossy(args.get(1)).into_owned(),
                command: "CLIENT",
            })
        }
    }
    Ok(Flow::Continue)
}

/// `CLIENT KILL ip:port` or `CLIENT KILL <filter> <value> ...`.
async fn client_kill(
    shard: &Rc<Shard>,
    client: &Client,
    args: Args<'_>,
    reply: &mut Reply<'_>,
) -> Outcome {
    let mut filter = KillFilter::default();
    let old_style = args.len() == 3;
    if old_style {
        filter.addr = Some(String::from_utf8_lossy(args.get(2)).into_owned());
    } else {
        filter.skip = Some(client.id);
        let mut cursor = args.cursor(2);
        if cursor.remaining() % 2 != 0 {
            return Err(CmdError::Syntax);
        }
        while !cursor.is_done() {
            let option = cursor.next_bytes()?.to_ascii_lowercase();
            let value = cursor.next_bytes()?;
            let text = String::from_utf8_lossy(value).into_owned();
            match option.as_slice() {
                b"id" => {
                    let id = parse_i64(value).filter(|&id| id > 0).ok_or_else(|| {
                        CmdError::Other("ERR client-id should be greater than 0".to_owned())
                    })?;
                    filter.id = Some(id as u64);
                }
                b"addr" => filter.addr = Some(text),
                b"laddr" => filter.laddr = Some(text),
                b"user" => filter.user = Some(text),
                b"skipme" => match text.to_ascii_lowercase().as_str() {
                    "yes" => filter.skip = Some(client.id),
                    "no" => filter.skip = None,
                    _ => return Err(CmdError::Syntax),
                },
                _ => return Err(CmdError::Syntax),
            }
        }
    }
    let killed: usize = shard
        .broadcast(|| Control::ClientKill(filter.clone()))
        .await
        .into_iter()
        .map(|a| if let ResponseBody::Count(n) = a { n } else { 0 })
        .sum();
    if old_style {
        if killed == 0 {
            return Err(CmdError::Other("ERR No such client".to_owned()));
        }
        reply.ok();
    } else {
        reply.integer(killed as i64);
    }
    Ok(Flow::Continue)
}
