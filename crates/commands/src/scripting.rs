//! Lua scripting: `EVAL`, `EVALSHA`, their `_RO` variants and `SCRIPT LOAD | EXISTS | FLUSH`,
//! with Lua 5.1 as Redis embeds it.
//!
//! A script is an ordinary shard-side handler. `redis.call` looks the command up in the table,
//! checks its arity and runs its handler on the same [`Ctx`] store, capturing the RESP2 reply in
//! a scratch buffer that is then read back into Lua values; the script's result is converted to
//! the client's reply. Nothing else can run on the shard meanwhile, so a script is atomic.
//!
//! **Where a script runs.** `EVAL` has movable keys (`numkeys` at argument 2), so the router
//! sends it to the shard owning its `KEYS`; when they live on several shards, the router's step
//! gathers their entries onto one shard and runs the script there. A script without keys runs
//! on the connection's home shard. The rule for which keys a script may touch: a key is
//! accessible if it is declared in `KEYS`, or, when every declared key is owned by the running
//! shard (nothing was gathered), if the running shard owns it. Any other key would be read from
//! or written to the wrong place, so `redis.call` fails with an error that says so.
//!
//! **Per-shard state.** Each shard is one thread, so the Lua state and the script cache are
//! thread-local: one per shard, created on first use and reused like Redis's single state, with
//! no sharing and no locks. `SCRIPT LOAD` is broadcast, so loaded scripts exist on every shard;
//! a script that `EVAL` cached exists only on the shard that ran it, and an `EVALSHA` landing on
//! another shard answers `NOSCRIPT` (clients then fall back to `EVAL`, as they do after a
//! restart).
//!
//! **Sandbox.** As in Redis 7.0: no `os`, `io`, `require`, `loadfile`, `dofile`, `print`,
//! `setfenv`, `getfenv`, `module`, `newproxy` or `debug`; scripts see the globals through a
//! read-only table, so creating or changing a global fails with "Attempt to modify a readonly
//! table" and reading an unknown one with "Script attempted to access nonexistent global
//! variable". Errors are reported with Redis's trailer naming the script and the line.

use std::cell::RefCell;
use std::collections::HashMap;

use mlua::{Function, Lua, LuaOptions, MultiValue, StdLib, Table, Value, Variadic};
use shardis_resp::{parse_i64, scan, Protocol, Reply, Span};

use crate::slots::{even_owner, key_slot};
use crate::table::{flag, lookup, ConnCommand, Route};
use crate::{execute, Args, CmdError, Ctx};

/// Sets up the `redis` library and the sandbox. `redis.call` and `redis.pcall` are Rust
/// functions set into the returned `redis` table for each run (a Lua wrapper would lose the
/// caller's line in `return redis.call(...)`, a tail call). Returns the read-only view of the
/// globals that scripts see, the globals themselves and the `redis` table.
const PRELUDE: &str = r#"
local sha1hex, log, error_text = ...
local lua_pcall, setmetatable, error, tostring, type, unpack = pcall, setmetatable, error, tostring, type, unpack
local lua_rawset, lua_rawget, lua_loadstring, setfenv = rawset, rawget, loadstring, setfenv
-- Each read-only view, mapped to the table it shows.
local shown = {}

local function readonly(t, strict)
  local index = t
  if strict then
    index = function(_, k)
      local v = t[k]
      if v == nil then
        error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
      end
      return v
    end
  end
  local view = setmetatable({}, {
    __index = index,
    __newindex = function() error("Attempt to modify a readonly table", 2) end,
    __metatable = {},
  })
  shown[view] = t
  return view
end

-- The raw functions must not get around a read-only view either.
local function rawset_(t, k, v)
  if shown[t] then error("Attempt to modify a readonly table", 0) end
  return lua_rawset(t, k, v)
end
local function rawget_(t, k)
  return lua_rawget(shown[t] or t, k)
end
local function setmetatable_(t, mt)
  if shown[t] then error("Attempt to modify a readonly table", 0) end
  return setmetatable(t, mt)
end

local redis = {
  LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
  sha1hex = sha1hex, log = log,
}
function redis.error_reply(msg)
  if type(msg) ~= "string" then error("wrong number or type of arguments", 2) end
  return { err = msg }
end
function redis.status_reply(msg)
  if type(msg) ~= "string" then error("wrong number or type of arguments", 2) end
  return { ok = msg }
end

-- As in Redis, pcall hands a script the text of an error that redis.call raised.
local function pcall_(...)
  local results = { lua_pcall(...) }
  if not results[1] then
    results[2] = error_text(results[2])
  end
  return unpack(results)
end

for _, name in ipairs({ "loadfile", "dofile", "print", "setfenv", "getfenv", "module",
                        "require", "newproxy", "os", "io", "debug", "package" }) do
  _G[name] = nil
end
_G.pcall = pcall_
_G.rawset = rawset_
_G.rawget = rawget_
_G.setmetatable = setmetatable_
_G.redis = readonly(redis, false)
_G.cjson = readonly(cjson, false)
local env = readonly(_G, true)
-- Code that a script loads sees the same protected globals.
_G.loadstring = function(...)
  local f, err = lua_loadstring(...)
  if f then setfenv(f, env) end
  return f, err
end
local globals = _G
globals._G = env
return env, globals, redis
"#;

/// One shard's Lua state and script cache.
struct Engine {
    lua: Lua,
    /// The globals scripts see: a read-only view of `backing`.
    env: Table,
    /// The real globals, where `KEYS` and `ARGV` are set for each run.
    backing: Table,
    /// The real `redis` table, where `call` and `pcall` are set for each run.
    redis: Table,
    /// Compiled scripts by lower-case SHA1 hex.
    scripts: HashMap<[u8; 40], Function>,
    /// Turns any error a script raises into `{text, line}`: the reply's text, error code
    /// included, and the script line that raised it.
    handler: Function,
}

thread_local! {
    static ENGINE: RefCell<Option<Engine>> = const { RefCell::new(None) };
}

impl Engine {
    fn new() -> mlua::Result<Engine> {
        let lua = Lua::new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH,
            LuaOptions::new(),
        )?;
        // `pcall` hands a script the text of a failed `redis.call`, as in Redis.
        let error_text = lua.create_function(|lua, err: Value| match &err {
            Value::Error(e) => match call_error(e) {
                Some(text) => Ok(Value::String(lua.create_string(text)?)),
                None => Ok(err),
            },
            _ => Ok(err),
        })?;
        let sha1hex = lua.create_function(|_, s: mlua::String| Ok(sha1(&s.as_bytes())))?;
        let log = lua.create_function(|_, args: Variadic<Value>| {
            if args.len() < 2 {
                return Err(mlua::Error::runtime(
                    "redis.log() requires two arguments or more.",
                ));
            }
            Ok(())
        })?;
        crate::cjson::install(&lua)?;
        let (env, backing, redis): (Table, Table, Table) = lua
            .load(PRELUDE)
            .set_name("=prelude")
            .call((sha1hex, log, error_text))?;
        let handler = lua.create_function(|lua, err: Value| {
            let text = match &err {
                Value::Error(e) => match call_error(e) {
                    Some(text) => text.to_owned(),
                    None => format!("ERR {e}"),
                },
                Value::Table(t) => match t.raw_get::<Value>("err")? {
                    Value::String(s) => s.to_string_lossy(),
                    _ => "ERR unknown error".to_owned(),
                },
                Value::String(s) => format!("ERR {}", s.to_string_lossy()),
                other => format!("ERR {}", other.to_string()?),
            };
            // A message handler returns one value.
            lua.create_sequence_from([
                Value::String(lua.create_string(text)?),
                Value::Integer(user_line(lua).into()),
            ])
        })?;
        Ok(Engine {
            lua,
            env,
            backing,
            redis,
            scripts: HashMap::new(),
            handler,
        })
    }

    /// The compiled script `body`, compiling and caching it under `sha` if needed.
    fn compile(&mut self, sha: [u8; 40], body: &[u8]) -> Result<Function, CmdError> {
        if let Some(f) = self.scripts.get(&sha) {
            return Ok(f.clone());
        }
        let f = self
            .lua
            .load(body)
            .set_name("@user_script")
            .set_environment(self.env.clone())
            .into_function()
            .map_err(|e| {
                let text = match e {
                    mlua::Error::SyntaxError { message, .. } => message,
                    other => other.to_string(),
                };
                CmdError::Other(format!("ERR Error compiling script (new function): {text}"))
            })?;
        self.scripts.insert(sha, f.clone());
        Ok(f)
    }
}

/// A failed `redis.call`: the error reply's text, code included.
#[derive(Debug)]
struct CallError(String);

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CallError {}

/// The text of a failed `redis.call` that `err` carries, if it is one.
fn call_error(err: &mlua::Error) -> Option<&str> {
    match err {
        mlua::Error::CallbackError { cause, .. } => call_error(cause),
        mlua::Error::ExternalError(e) => e.downcast_ref::<CallError>().map(|c| c.0.as_str()),
        _ => None,
    }
}

/// The line of the innermost frame of the user's script, as Redis's error trailer reports it.
fn user_line(lua: &Lua) -> i32 {
    (1..64)
        .map_while(|level| lua.inspect_stack(level))
        .find(|frame| {
            frame.source().source.as_deref() == Some("@user_script") && frame.curr_line() > 0
        })
        .map_or(0, |frame| frame.curr_line())
}

/// Runs `f` with this shard's engine, creating it on first use.
fn with_engine<R>(f: impl FnOnce(&mut Engine) -> Result<R, CmdError>) -> Result<R, CmdError> {
    ENGINE.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(Engine::new().map_err(|e| CmdError::Other(format!("ERR {e}")))?);
        }
        match slot.as_mut() {
            Some(engine) => f(engine),
            None => Err(CmdError::Other("ERR scripting is unavailable".to_owned())),
        }
    })
}

/// The SHA1 of `bytes` in lower-case hex, as `redis.sha1hex` and the script cache use it.
fn sha1(bytes: &[u8]) -> String {
    sha1_smol::Sha1::from(bytes).digest().to_string()
}

fn sha_key(hex: &str) -> [u8; 40] {
    let mut key = [0u8; 40];
    for (k, c) in key.iter_mut().zip(hex.bytes()) {
        *k = c.to_ascii_lowercase();
    }
    key
}

/// `EVAL script numkeys [key ...] [arg ...]`: runs `script` and answers with its result.
pub fn eval(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    run(ctx, args, false, false)
}

/// `EVALSHA sha1 numkeys [key ...] [arg ...]`: runs a cached script.
pub fn evalsha(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    run(ctx, args, true, false)
}

/// `EVAL_RO script numkeys [key ...] [arg ...]`: `EVAL` for scripts that only read.
pub fn eval_ro(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    run(ctx, args, false, true)
}

/// `EVALSHA_RO sha1 numkeys [key ...] [arg ...]`: `EVALSHA` for scripts that only read.
pub fn evalsha_ro(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    run(ctx, args, true, true)
}

fn run(ctx: &mut Ctx<'_>, args: Args<'_>, by_sha: bool, read_only: bool) -> Result<(), CmdError> {
    let numkeys = parse_i64(args.get(2)).ok_or(CmdError::NotInteger)?;
    if numkeys < 0 {
        return Err(CmdError::Other(
            "ERR Number of keys can't be negative".to_owned(),
        ));
    }
    let numkeys = usize::try_from(numkeys).unwrap_or(usize::MAX);
    if numkeys > args.len().saturating_sub(3) {
        return Err(CmdError::Other(
            "ERR Number of keys can't be greater than number of args".to_owned(),
        ));
    }
    let (sha, f, lua, redis, backing, handler) = with_engine(|engine| {
        let (sha, f) = if by_sha {
            let sha = sha_key(&String::from_utf8_lossy(args.get(1)));
            let found = (args.get(1).len() == 40)
                .then(|| engine.scripts.get(&sha).cloned())
                .flatten();
            (sha, found.ok_or(CmdError::NoScript)?)
        } else {
            let sha = sha_key(&sha1(args.get(1)));
            (sha, engine.compile(sha, args.get(1))?)
        };
        Ok((
            sha,
            f,
            engine.lua.clone(),
            engine.redis.clone(),
            engine.backing.clone(),
            engine.handler.clone(),
        ))
    })?;
    let lua_err = |e: mlua::Error| CmdError::Other(format!("ERR {e}"));
    let keys: Vec<&[u8]> = (3..3 + numkeys).map(|i| args.get(i)).collect();
    let list = |items: &mut dyn Iterator<Item = &[u8]>| -> mlua::Result<Table> {
        let t = lua.create_table()?;
        for (i, item) in items.enumerate() {
            t.raw_set(i + 1, lua.create_string(item)?)?;
        }
        Ok(t)
    };
    backing
        .raw_set("KEYS", list(&mut keys.iter().copied()).map_err(lua_err)?)
        .map_err(lua_err)?;
    backing
        .raw_set(
            "ARGV",
            list(&mut (3 + numkeys..args.len()).map(|i| args.get(i))).map_err(lua_err)?,
        )
        .map_err(lua_err)?;

    let sha_text = String::from_utf8_lossy(&sha).into_owned();
    let gathered = ctx.shards > 1
        && keys
            .iter()
            .any(|k| usize::from(even_owner(usize::from(key_slot(k)), ctx.shards)) != ctx.shard);
    let caller = RefCell::new(Caller {
        ctx,
        keys: &keys,
        gathered,
        read_only,
        scratch: Vec::new(),
        data: Vec::new(),
        spans: Vec::new(),
    });
    let outcome = lua
        .scope(|scope| {
            let call = scope.create_function(|lua, argv: Variadic<Value>| {
                match caller.borrow_mut().call(lua, &argv)? {
                    Ok(value) => Ok(value),
                    Err(text) => Err(mlua::Error::external(CallError(text))),
                }
            })?;
            let pcall = scope.create_function(|lua, argv: Variadic<Value>| {
                match caller.borrow_mut().call(lua, &argv)? {
                    Ok(value) => Ok(value),
                    Err(text) => {
                        let t = lua.create_table()?;
                        t.raw_set("err", text)?;
                        Ok(Value::Table(t))
                    }
                }
            })?;
            redis.raw_set("call", call)?;
            redis.raw_set("pcall", pcall)?;
            let xpcall: Function = backing.raw_get("xpcall")?;
            let result: MultiValue = xpcall.call((f, handler))?;
            redis.raw_set("call", Value::Nil)?;
            redis.raw_set("pcall", Value::Nil)?;
            Ok(result)
        })
        .map_err(lua_err)?;
    let ctx = caller.into_inner().ctx;
    let mut values = outcome.into_iter();
    match values.next() {
        Some(Value::Boolean(true)) => {
            write_value(&mut ctx.reply, values.next().unwrap_or(Value::Nil), 0);
            Ok(())
        }
        _ => {
            let (text, line) = match values.next() {
                Some(Value::Table(t)) => (
                    t.raw_get::<String>(1).unwrap_or_default(),
                    t.raw_get::<i64>(2).unwrap_or_default(),
                ),
                _ => ("ERR unknown error".to_owned(), 0),
            };
            Err(CmdError::Other(format!(
                "{text} script: {sha_text}, on @user_script:{line}."
            )))
        }
    }
}

/// What `redis.call` needs while a script runs.
struct Caller<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
    /// The script's `KEYS`.
    keys: &'c [&'c [u8]],
    /// True when the declared keys were gathered from several shards (see the module docs).
    gathered: bool,
    /// `EVAL_RO` / `EVALSHA_RO`: write commands are refused.
    read_only: bool,
    /// The called command's reply.
    scratch: Vec<u8>,
    /// The called command's arguments, as one buffer and spans into it.
    data: Vec<u8>,
    spans: Vec<Span>,
}

impl Caller<'_, '_> {
    /// `redis.call` / `redis.pcall`: the reply as a Lua value, or the text of the error.
    fn call(&mut self, lua: &Lua, argv: &[Value]) -> mlua::Result<Result<Value, String>> {
        if let Some(err) = self.run(lua, argv)? {
            return Ok(Err(err));
        }
        if scan::is_error(&self.scratch) {
            let text = self.scratch.get(1..self.scratch.len().saturating_sub(2));
            return Ok(Err(
                String::from_utf8_lossy(text.unwrap_or_default()).into_owned()
            ));
        }
        Ok(Ok(read_value(lua, &self.scratch, 0)?.0))
    }

    /// Runs the command; `Ok(None)` leaves its reply in `scratch`, `Ok(Some(text))` is an error
    /// found before running it.
    fn run(&mut self, lua: &Lua, argv: &[Value]) -> mlua::Result<Option<String>> {
        if argv.is_empty() {
            return Ok(Some(
                "ERR Please specify at least one argument for this redis lib call".to_owned(),
            ));
        }
        self.data.clear();
        self.spans.clear();
        for arg in argv {
            let start = self.data.len();
            match arg {
                Value::String(s) => self.data.extend_from_slice(&s.as_bytes()),
                Value::Integer(_) | Value::Number(_) => match lua.coerce_string(arg.clone())? {
                    Some(s) => self.data.extend_from_slice(&s.as_bytes()),
                    None => return Ok(Some(ARGS_MUST_BE_STRINGS.to_owned())),
                },
                _ => return Ok(Some(ARGS_MUST_BE_STRINGS.to_owned())),
            }
            self.spans.push(Span {
                start,
                end: self.data.len(),
            });
        }
        let args = Args::new(&self.data, &self.spans);
        let Some(cmd) = lookup(args.get(0)) else {
            return Ok(Some(
                "ERR Unknown Redis command called from script".to_owned(),
            ));
        };
        let handler = match cmd.route {
            Route::Keyed(h) | Route::Split(h, _) if !cmd.has(flag::NOSCRIPT) => h,
            Route::Connection(ConnCommand::Ping) => ping,
            Route::Connection(ConnCommand::Echo) => echo,
            Route::Connection(ConnCommand::Time) => crate::server::time,
            _ => {
                return Ok(Some(
                    "ERR This Redis command is not allowed from script".to_owned(),
                ))
            }
        };
        if !cmd.arity_ok(args.len()) {
            return Ok(Some(
                "ERR Wrong number of args calling Redis command from script".to_owned(),
            ));
        }
        if self.read_only && cmd.has(flag::WRITE) {
            return Ok(Some(
                "ERR Write commands are not allowed from read-only scripts.".to_owned(),
            ));
        }
        if self.ctx.shards > 1 {
            for p in cmd.key_positions(args) {
                let key = args.get(p);
                let owner = usize::from(even_owner(usize::from(key_slot(key)), self.ctx.shards));
                let local = !self.gathered && owner == self.ctx.shard;
                if !local && !self.keys.contains(&key) {
                    return Ok(Some(
                        "ERR Script attempted to access a key that was not declared in KEYS \
                         and lives on another shard"
                            .to_owned(),
                    ));
                }
            }
        }
        self.scratch.clear();
        let mut inner = Ctx {
            store: &mut *self.ctx.store,
            db: self.ctx.db,
            now_ms: self.ctx.now_ms,
            reply: Reply::new(&mut self.scratch, Protocol::Resp2),
            settings: self.ctx.settings,
            shard: self.ctx.shard,
            shards: self.ctx.shards,
        };
        execute(handler, &mut inner, args);
        Ok(None)
    }
}

/// `PING [message]` from a script (the server answers it for clients).
fn ping(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    match args.len() {
        1 => ctx.reply.simple(b"PONG"),
        2 => ctx.reply.bulk(args.get(1)),
        _ => return Err(CmdError::WrongArity("ping".to_owned())),
    }
    Ok(())
}

/// `ECHO message` from a script.
fn echo(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    ctx.reply.bulk(args.get(1));
    Ok(())
}

const ARGS_MUST_BE_STRINGS: &str =
    "ERR Lua redis lib command arguments must be strings or integers";

/// Reads the RESP2 reply at `buf[pos]` as a Lua value, Redis's way: integers become numbers,
/// bulk strings strings, a null `false`, arrays tables, a status `{ok=...}` and an error
/// `{err=...}`. Returns the value and the offset after it.
fn read_value(lua: &Lua, buf: &[u8], pos: usize) -> mlua::Result<(Value, usize)> {
    let bad = || mlua::Error::runtime("malformed reply");
    let kind = *buf.get(pos).ok_or_else(bad)?;
    let rest = buf.get(pos + 1..).ok_or_else(bad)?;
    let cr = rest.iter().position(|&c| c == b'\r').ok_or_else(bad)?;
    let line = &rest[..cr];
    let next = pos + 1 + cr + 2;
    let tagged = |field: &str| -> mlua::Result<Value> {
        let t = lua.create_table()?;
        t.raw_set(field, lua.create_string(line)?)?;
        Ok(Value::Table(t))
    };
    match kind {
        b'+' => Ok((tagged("ok")?, next)),
        b'-' => Ok((tagged("err")?, next)),
        b':' => Ok((Value::Number(parse_i64(line).ok_or_else(bad)? as f64), next)),
        b'$' => match parse_i64(line).ok_or_else(bad)? {
            -1 => Ok((Value::Boolean(false), next)),
            n => {
                let end = next + usize::try_from(n).map_err(|_| bad())?;
                let bytes = buf.get(next..end).ok_or_else(bad)?;
                Ok((Value::String(lua.create_string(bytes)?), end + 2))
            }
        },
        b'*' => match parse_i64(line).ok_or_else(bad)? {
            -1 => Ok((Value::Boolean(false), next)),
            n => {
                let t = lua.create_table()?;
                let mut at = next;
                for i in 1..=n {
                    let (v, after) = read_value(lua, buf, at)?;
                    t.raw_set(i, v)?;
                    at = after;
                }
                Ok((Value::Table(t), at))
            }
        },
        _ => Err(bad()),
    }
}

/// Nesting deeper than this is answered as nil rather than risking the stack, as Redis does.
const MAX_DEPTH: usize = 64;

/// Writes a script's result, Redis's way: numbers are truncated to integers, `true` is 1,
/// `false` and nil are null, `{ok=...}` a status, `{err=...}` an error and any other table
/// an array of its elements up to the first nil.
fn write_value(reply: &mut Reply<'_>, value: Value, depth: usize) {
    match value {
        Value::Boolean(true) => reply.integer(1),
        Value::Integer(n) => reply.integer(n),
        Value::Number(n) => reply.integer(n as i64),
        Value::String(s) => reply.bulk(&s.as_bytes()),
        Value::Table(t) if depth < MAX_DEPTH => {
            if let Ok(Value::String(err)) = t.raw_get::<Value>("err") {
                reply.error(&err.to_string_lossy());
            } else if let Ok(Value::String(ok)) = t.raw_get::<Value>("ok") {
                reply.simple(&ok.as_bytes());
            } else {
                let items: Vec<Value> = (1..)
                    .map_while(|i| match t.raw_get::<Value>(i) {
                        Ok(Value::Nil) | Err(_) => None,
                        Ok(v) => Some(v),
                    })
                    .collect();
                reply.array(items.len());
                for item in items {
                    write_value(reply, item, depth + 1);
                }
            }
        }
        _ => reply.null(),
    }
}

/// `SCRIPT LOAD script | EXISTS sha1 [sha1 ...] | FLUSH [ASYNC | SYNC]` on this shard (the
/// router broadcasts it to every shard and merges the answers).
pub fn script(ctx: &mut Ctx<'_>, args: Args<'_>) -> Result<(), CmdError> {
    let sub = args.get(1);
    let arity_error = || {
        CmdError::WrongArity(format!(
            "script|{}",
            String::from_utf8_lossy(sub).to_lowercase()
        ))
    };
    if sub.eq_ignore_ascii_case(b"load") {
        if args.len() != 3 {
            return Err(arity_error());
        }
        let sha = sha1(args.get(2));
        with_engine(|engine| engine.compile(sha_key(&sha), args.get(2)).map(drop))?;
        ctx.reply.bulk(sha.as_bytes());
    } else if sub.eq_ignore_ascii_case(b"exists") {
        if args.len() < 3 {
            return Err(arity_error());
        }
        with_engine(|engine| {
            ctx.reply.array(args.len() - 2);
            for sha in args.iter().skip(2) {
                let known = sha.len() == 40
                    && engine
                        .scripts
                        .contains_key(&sha_key(&String::from_utf8_lossy(sha)));
                ctx.reply.integer(i64::from(known));
            }
            Ok(())
        })?;
    } else if sub.eq_ignore_ascii_case(b"flush") {
        match args.len() {
            2 => {}
            3 if args.get(2).eq_ignore_ascii_case(b"sync")
                || args.get(2).eq_ignore_ascii_case(b"async") => {}
            3 => {
                return Err(CmdError::Other(
                    "ERR SCRIPT FLUSH only support SYNC|ASYNC option".to_owned(),
                ))
            }
            _ => return Err(arity_error()),
        }
        // A new state, as Redis does: globals and the cache start over.
        ENGINE.with(|cell| cell.borrow_mut().take());
        ctx.reply.ok();
    } else {
        return Err(CmdError::UnknownSubcommand {
            sub: String::from_utf8_lossy(sub).into_owned(),
            command: "SCRIPT",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slots::SlotMap;
    use crate::Settings;
    use shardis_store::Store;

    /// Runs `handler` with `line` as its arguments on shard `shard` of `shards`.
    fn run_on(store: &mut Store, shard: usize, shards: usize, line: &[&str]) -> String {
        let buf: Vec<u8> = line.concat().into_bytes();
        let mut spans = Vec::new();
        let mut at = 0;
        for word in line {
            spans.push(Span {
                start: at,
                end: at + word.len(),
            });
            at += word.len();
        }
        let args = Args::new(&buf, &spans);
        let cmd = lookup(args.get(0)).unwrap();
        let (Route::Keyed(handler) | Route::Broadcast(handler, _)) = cmd.route else {
            panic!("not a scripting command");
        };
        let settings = Settings::default();
        let mut out = Vec::new();
        let mut ctx = Ctx {
            store,
            db: 0,
            now_ms: 1_000,
            reply: Reply::new(&mut out, Protocol::Resp2),
            settings: &settings,
            shard,
            shards,
        };
        execute(handler, &mut ctx, args);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn converts_replies_both_ways() {
        let mut store = Store::new(1);
        let run = |store: &mut Store, line: &[&str]| run_on(store, 0, 1, line);
        assert_eq!(
            run(
                &mut store,
                &["EVAL", "return {1, 2.9, -2.9, 'x', false, {ok='s'}}", "0"]
            ),
            "*6\r\n:1\r\n:2\r\n:-2\r\n$1\r\nx\r\n$-1\r\n+s\r\n"
        );
        assert_eq!(
            run(
                &mut store,
                &["EVAL", "return redis.call('set', KEYS[1], 7)", "1", "k"]
            ),
            "+OK\r\n"
        );
        // The reply of a command as Lua sees it: a number, false, a status table.
        let probe = "local s = redis.call('set', KEYS[1], 8) \
                     return {type(redis.call('get', KEYS[1])), s.ok, \
                             redis.call('get', 'missing') == false, \
                             type(redis.call('hset', 'h', 'f', 'v'))}";
        assert_eq!(
            run(&mut store, &["EVAL", probe, "1", "k"]),
            "*4\r\n$6\r\nstring\r\n$2\r\nOK\r\n:1\r\n$6\r\nnumber\r\n"
        );
    }

    #[test]
    fn keys_are_accessible_when_declared_or_local_and_not_gathered() {
        let shards = 4;
        let map = SlotMap::even(shards);
        let (foo, bar) = (map.shard_of(b"foo"), map.shard_of(b"bar"));
        assert_ne!(foo, bar);
        let mut store = Store::new(1);
        let get = |key: &str| format!("return redis.call('get', '{key}')");
        let refused = "-ERR Script attempted to access a key that was not declared in KEYS";
        // Running on foo's shard with only foo declared: its shard's keys are fine, bar is not.
        let reply = run_on(
            &mut store,
            foo,
            shards,
            &["EVAL", &get("{foo}x"), "1", "foo"],
        );
        assert_eq!(reply, "$-1\r\n");
        let reply = run_on(&mut store, foo, shards, &["EVAL", &get("bar"), "1", "foo"]);
        assert!(reply.starts_with(refused), "{reply}");
        // Gathered from two shards: only what was declared is here.
        let reply = run_on(
            &mut store,
            foo,
            shards,
            &["EVAL", &get("bar"), "2", "foo", "bar"],
        );
        assert_eq!(reply, "$-1\r\n");
        let reply = run_on(
            &mut store,
            foo,
            shards,
            &["EVAL", &get("{foo}x"), "2", "foo", "bar"],
        );
        assert!(reply.starts_with(refused), "{reply}");
    }

    #[test]
    fn script_cache_loads_runs_and_flushes() {
        let mut store = Store::new(1);
        let run = |store: &mut Store, line: &[&str]| run_on(store, 0, 1, line);
        let sha = sha1(b"return ARGV[1]");
        assert_eq!(
            run(&mut store, &["SCRIPT", "LOAD", "return ARGV[1]"]),
            format!("$40\r\n{sha}\r\n")
        );
        assert_eq!(
            run(&mut store, &["EVALSHA_RO", &sha, "0", "hi"]),
            "$2\r\nhi\r\n"
        );
        assert_eq!(
            run(&mut store, &["SCRIPT", "EXISTS", &sha, "x"]),
            "*2\r\n:1\r\n:0\r\n"
        );
        assert_eq!(run(&mut store, &["SCRIPT", "FLUSH"]), "+OK\r\n");
        assert_eq!(
            run(&mut store, &["EVALSHA", &sha, "0", "hi"]),
            "-NOSCRIPT No matching script. Please use EVAL.\r\n"
        );
        // EVAL caches what it runs.
        assert_eq!(
            run(&mut store, &["EVAL", "return ARGV[1]", "0", "a"]),
            "$1\r\na\r\n"
        );
        assert_eq!(run(&mut store, &["EVALSHA", &sha, "0", "b"]), "$1\r\nb\r\n");
    }
}
