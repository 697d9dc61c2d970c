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
//!
//! **Long scripts.** A script runs in a Lua coroutine with a count hook, as in Redis every
//! 100,000 VM instructions. Until `busy-reply-threshold` (default 5 s) has passed, it runs
//! straight through, as in Redis. Past it, the hook yields the coroutine: the handler returns
//! without a reply and the script is left *suspended* here ([`suspended`]). The shard then lets
//! its other tasks run for a moment, answering its own clients `BUSY` and holding back requests
//! for its keys (its step lock), and calls [`resume`] for the next slice, until the script ends
//! or `SCRIPT KILL` ([`kill`]) ends it. Nothing else touches the keyspace in between, so the
//! script stays atomic. The hook does not yield where Lua 5.1 cannot (inside `pcall`, a
//! metamethod or another C call); it tries again 100,000 instructions later.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::ffi::{c_int, c_void, CStr};
use std::panic::{self, AssertUnwindSafe};
use std::ptr;
use std::time::{Duration, Instant};

use ahash::AHashMap;
use mlua::{ffi, Function, Lua, LuaOptions, RegistryKey, StdLib, Table, Thread, Value, Variadic};
use shardis_resp::{parse_i64, scan, Protocol, Reply, Span};

use crate::slots::{even_owner, key_slot};
use crate::table::{flag, lookup, ConnCommand, Route};
use crate::{execute, Args, CmdError, Ctx};

/// Sets up the `redis` library and the sandbox. `redis.call` and `redis.pcall` are C functions
/// ([`redis_call`], [`redis_pcall`]; a Lua wrapper would lose the caller's line in
/// `return redis.call(...)`, a tail call), and `failure` the metatable of the errors they
/// raise. Returns the read-only view of the globals that scripts see, the globals themselves,
/// the real `redis` table, and the variants of `redis.call` and `redis.pcall` that scripts
/// allowed to reach undeclared keys on other shards use (see [`reach_next_script`]).
const PRELUDE: &str = r#"
local sha1hex, log, failure, redis_call, redis_pcall, remote = ...
local yield = coroutine.yield
local lua_pcall, setmetatable, error, tostring, type, unpack = pcall, setmetatable, error, tostring, type, unpack
local getmetatable = getmetatable
local lua_rawset, lua_rawget, lua_loadstring, setfenv = rawset, rawget, loadstring, setfenv
-- Each read-only view, mapped to the table it shows.
local shown = {}

local function readonly(t, strict)
  if strict then
    -- On `t` itself, so that reading a global that exists is a plain table lookup.
    setmetatable(t, {
      __index = function(_, k)
        error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
      end,
    })
  end
  local view = setmetatable({}, {
    __index = t,
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
  sha1hex = sha1hex, log = log, call = redis_call, pcall = redis_pcall,
}
function redis.error_reply(msg)
  if type(msg) ~= "string" then error("wrong number or type of arguments", 2) end
  return { err = msg }
end
function redis.status_reply(msg)
  if type(msg) ~= "string" then error("wrong number or type of arguments", 2) end
  return { ok = msg }
end

-- As in Redis, pcall hands a script the text of an error that redis.call raised (a table
-- `{err = text}` marked with the `failure` metatable). Scripts see only `marker` as that
-- metatable, so they cannot change it.
local marker = {}
failure.__metatable = marker
local function pcall_(...)
  local results = { lua_pcall(...) }
  if not results[1] and getmetatable(results[2]) == marker then
    results[2] = results[2].err
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
-- `redis.call` and `redis.pcall` for scripts that may reach keys on other shards: when the
-- Rust side answers `remote`, the command must run on another shard; yield to the shard, which
-- runs it there and resumes, and the retry picks up its reply.
local function reaching(f)
  return function(...)
    local r = f(...)
    while r == remote do
      yield(remote)
      r = f(...)
    end
    return r
  end
end
return env, globals, redis, reaching(redis_call), reaching(redis_pcall)
"#;

/// One shard's Lua state and script cache.
struct Engine {
    lua: Lua,
    /// mlua's allocator, given back to the state when the engine goes, so that mlua finds
    /// (and frees) its own bookkeeping when it closes the state (see `lua_heap`).
    mlua_alloc: (ffi::lua_Alloc, *mut c_void),
    /// The globals scripts see: a read-only view of the real globals, which the registry
    /// holds for runs to set `KEYS` and `ARGV` in (`vm.globals`).
    env: Table,
    /// What a run needs of the state, and the registry entries it names.
    vm: Vm,
    _pinned: [RegistryKey; 4],
    /// Compiled scripts by lower-case SHA1 hex, held in Lua's registry (a handle per script
    /// would use up mlua's reference stack after some thousands).
    scripts: AHashMap<[u8; 40], RegistryKey>,
    /// The SHA1 of each script compiled from its body, by body: an `EVAL` of a known body looks
    /// it up instead of hashing it again (SHA1 took about 5% of an `EVAL`'s CPU).
    bodies: AHashMap<Box<[u8]>, [u8; 40]>,
    /// A coroutine that ended normally, ready to run the next script (Lua 5.1 can start a
    /// new function on a coroutine that has returned).
    idle: Option<Thread>,
    /// The real `redis` table, and its `call` and `pcall`: direct, and reaching other shards.
    redis: Table,
    direct: (Function, Function),
    reaching: (Function, Function),
    /// Which pair `redis` holds now.
    reaches: bool,
}

/// What running a slice needs of a shard's Lua state: the state itself for the protected call
/// (`Vm::protected`), and the registry slots of what that call pushes.
#[derive(Clone, Copy)]
struct Vm {
    /// The main state, where mlua runs too (never inside one of our calls, nor we in its).
    main: *mut ffi::lua_State,
    /// [`enter_slice`].
    entry: c_int,
    /// The real globals, where `KEYS` and `ARGV` are set for each run, and those two names
    /// (pushed from the registry, where a new string is hashed and looked up).
    globals: c_int,
    names: [c_int; 2],
}

impl Vm {
    /// Runs `slice` on the main state in protected mode, through [`enter_slice`] as pushed
    /// from the registry. mlua's `exec_raw` did the same with two new C closures per call (Lua
    /// 5.1 allocates each; the collector then sweeps them) and a handle for its argument:
    /// about a tenth of an `EVALSHA`.
    ///
    /// # Safety
    /// `slice` keeps to the stack it is given; Lua errors may jump out of it.
    unsafe fn protected(&self, slice: &mut dyn FnMut(*mut ffi::lua_State)) -> Result<(), CmdError> {
        let state = self.main;
        let mut slice = slice;
        // SAFETY: the main state is idle between commands, with room for these two values
        // (mlua leaves its stack empty); `enter_slice` reads the pointer during the call.
        unsafe {
            let top = ffi::lua_gettop(state);
            ffi::lua_rawgeti(state, ffi::LUA_REGISTRYINDEX, self.entry as _);
            ffi::lua_pushlightuserdata(state, ptr::from_mut(&mut slice).cast());
            let outcome = match ffi::lua_pcall(state, 1, 0, 0) {
                ffi::LUA_OK => Ok(()),
                // Only allocations of the call itself fail here (the script runs in `co`):
                // Lua's message is a string.
                _ => Err(CmdError::Other(format!(
                    "ERR {}",
                    String::from_utf8_lossy(lua_bytes(state, -1).unwrap_or(b"unknown error"))
                ))),
            };
            ffi::lua_settop(state, top);
            outcome
        }
    }
}

/// The C function [`Vm::protected`] calls: runs the slice its one argument points to, with an
/// empty stack. A panic is kept in [`PANIC`] for the caller (it must not unwind through Lua).
unsafe extern "C-unwind" fn enter_slice(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: `Vm::protected` passes a pointer to its `&mut dyn FnMut`, alive for the call.
    unsafe {
        let slice = ffi::lua_touserdata(state, 1).cast::<&mut dyn FnMut(*mut ffi::lua_State)>();
        ffi::lua_settop(state, 0);
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| (*slice)(state))) {
            PANIC.set(Some(payload));
        }
    }
    0
}

/// The bytes of the string at `idx`, if it is one (a number is not converted: that would
/// allocate, and change the value in place).
///
/// # Safety
/// `idx` is a valid index of `state`; the bytes live while the value stays on the stack.
unsafe fn lua_bytes<'a>(state: *mut ffi::lua_State, idx: c_int) -> Option<&'a [u8]> {
    // SAFETY: the caller's contract; Lua's pointer is valid for `len` bytes.
    unsafe {
        if ffi::lua_type(state, idx) != ffi::LUA_TSTRING {
            return None;
        }
        let mut len = 0;
        let p = ffi::lua_tolstring(state, idx, &mut len);
        Some(std::slice::from_raw_parts(p.cast(), len))
    }
}

thread_local! {
    static ENGINE: RefCell<Option<Engine>> = const { RefCell::new(None) };
    /// The coroutine running now and its deadline, for the [`watchdog`] hook.
    static WATCH: Cell<Option<Watch>> = const { Cell::new(None) };
    /// Set by the watchdog just before it yields, to tell its yields from a script's own.
    static WATCHDOG_YIELDED: Cell<bool> = const { Cell::new(false) };
    /// The `redis.call` context of the slice running now (see [`with_caller`]).
    static CALLER: Cell<*mut Caller<'static, 'static>> = const { Cell::new(ptr::null_mut()) };
    /// A script that has yielded and waits for [`resume`].
    static SUSPENDED: RefCell<Option<Script>> = const { RefCell::new(None) };
    /// Set by [`kill`] for the suspended script.
    static KILLED: Cell<bool> = const { Cell::new(false) };
    /// Set by [`reach_next_script`] for the next script to start.
    static REACH: Cell<bool> = const { Cell::new(false) };
    /// A panic caught in a command that `redis.call` ran, to go on once Lua has returned.
    static PANIC: Cell<Option<Box<dyn Any + Send>>> = const { Cell::new(None) };
    /// Buffers of the last script, reused by the next.
    static SPARE: RefCell<Buffers> = RefCell::new(Buffers::default());
}

/// How many Lua VM instructions run between two looks at the clock (Redis's figure).
const HOOK_EVERY: c_int = 100_000;

/// The coroutine running now and when its script started.
#[derive(Clone, Copy)]
struct Watch {
    co: *mut ffi::lua_State,
    started: Instant,
    threshold: Duration,
}

/// One script run: what must survive between the slices of a long script.
struct Script {
    /// The coroutine the script runs in, and its raw state.
    thread: Thread,
    co: *mut ffi::lua_State,
    sha: [u8; 40],
    /// True when the declared keys were gathered from several shards (see the module docs).
    gathered: bool,
    /// `EVAL_RO` / `EVALSHA_RO`: write commands are refused.
    read_only: bool,
    /// A write command has run: `SCRIPT KILL` must refuse (the script cannot be undone).
    wrote: bool,
    /// The script may reach keys on other shards: it runs under a step holding every shard.
    reach: bool,
    /// The shard that must run the command in `bufs.data` for the script, which has yielded.
    remote: Option<usize>,
    /// The reply to that command has arrived, in `bufs.scratch`.
    delivered: bool,
    started: Instant,
    threshold: Duration,
    bufs: Buffers,
}

/// The buffers of a run.
#[derive(Default)]
struct Buffers {
    /// The script's `KEYS`, end to end, and where each ends.
    keys: Vec<u8>,
    key_ends: Vec<usize>,
    /// The called command's reply.
    scratch: Vec<u8>,
    /// The script's reply, written while its value is on the Lua stack.
    result: Vec<u8>,
    /// The called command's arguments, as one buffer and spans into it.
    data: Vec<u8>,
    spans: Vec<Span>,
}

/// Whether `key` is one of `keys` (end to end, each ending at its `ends` entry).
fn declares(keys: &[u8], ends: &[usize], key: &[u8]) -> bool {
    let mut start = 0;
    ends.iter().any(|&end| {
        let found = keys.get(start..end) == Some(key);
        start = end;
        found
    })
}

/// The head of Lua 5.1.5's `lua_State` (lstate.h), up to the two C-call counters: the watchdog
/// reads them to know whether the coroutine may yield here. The vendored Lua is exactly 5.1.5,
/// and a unit test (`long_scripts_yield_only_where_lua_can`) fails if the layout is wrong.
#[repr(C)]
struct LuaStateHead {
    next: *mut c_void,
    tt: u8,
    marked: u8,
    status: u8,
    top: *mut c_void,
    base: *mut c_void,
    l_g: *mut c_void,
    ci: *mut c_void,
    savedpc: *const c_void,
    stack_last: *mut c_void,
    stack: *mut c_void,
    end_ci: *mut c_void,
    base_ci: *mut c_void,
    stacksize: c_int,
    size_ci: c_int,
    n_ccalls: u16,
    base_ccalls: u16,
}

/// The count hook of script coroutines: past the busy threshold, yield to the shard.
unsafe extern "C-unwind" fn watchdog(state: *mut ffi::lua_State, _: *mut ffi::lua_Debug) {
    let Some(watch) = WATCH.get() else {
        return;
    };
    if state != watch.co || watch.started.elapsed() < watch.threshold {
        return;
    }
    // SAFETY: `state` is a live Lua 5.1.5 state (the hook's argument); see `LuaStateHead`.
    let head = unsafe { &*(state as *const LuaStateHead) };
    // Inside a C call (pcall, a metamethod, ...) Lua 5.1 cannot yield; try again later.
    if head.n_ccalls > head.base_ccalls {
        return;
    }
    WATCHDOG_YIELDED.set(true);
    // SAFETY: a count hook of a coroutine outside any C call may yield with no values.
    unsafe { ffi::lua_yield(state, 0) };
}

/// The line the innermost frame of the user's script is at in coroutine `co` (stopped by an
/// error or a yield), as Redis's error trailer reports it; 0 if there is none.
fn user_line(co: *mut ffi::lua_State) -> i64 {
    // SAFETY: `co` is a live coroutine that is not running; reading its frames has no effect.
    unsafe {
        let mut ar: ffi::lua_Debug = std::mem::zeroed();
        let mut level = 0;
        while ffi::lua_getstack(co, level, &mut ar) != 0 {
            ffi::lua_getinfo(co, c"Sl".as_ptr(), &mut ar);
            let source = (!ar.source.is_null()).then(|| CStr::from_ptr(ar.source));
            if source == Some(c"@user_script") && ar.currentline > 0 {
                return ar.currentline.into();
            }
            level += 1;
        }
    }
    0
}

impl Engine {
    fn new() -> mlua::Result<Engine> {
        let lua = Lua::new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH,
            LuaOptions::new(),
        )?;
        // SAFETY: the closure runs on the state; `lua_heap::allocate` frees the blocks mlua's
        // allocator gave out so far as well as its own (see `lua_heap`).
        let mut mlua_alloc = None;
        unsafe {
            lua.exec_raw::<()>((), |state| {
                let mut ud = ptr::null_mut();
                let f = ffi::lua_getallocf(state, &mut ud);
                mlua_alloc = Some((f, ud));
                ffi::lua_setallocf(state, crate::lua_heap::allocate, ptr::null_mut())
            })?
        };
        let mlua_alloc = mlua_alloc.ok_or_else(|| mlua::Error::runtime("no allocator"))?;
        let sha1hex =
            lua.create_function(|lua, s: mlua::String| lua.create_string(sha1(&s.as_bytes())))?;
        let log = lua.create_function(|_, args: Variadic<Value>| {
            if args.len() < 2 {
                return Err(mlua::Error::runtime(
                    "redis.log() requires two arguments or more.",
                ));
            }
            Ok(())
        })?;
        crate::cjson::install(&lua)?;
        // SAFETY: the closure runs on the state inside mlua's protected call and leaves the
        // three values it returns on the stack.
        let (failure, call, pcall): (Table, Function, Function) = unsafe {
            lua.exec_raw((), |state| {
                ffi::lua_createtable(state, 0, 0);
                let failure = ffi::lua_gettop(state);
                for f in [redis_call as ffi::lua_CFunction, redis_pcall] {
                    ffi::lua_pushvalue(state, failure);
                    ffi::lua_pushcclosure(state, f, 1);
                }
            })?
        };
        let (env, backing, redis, reaching_call, reaching_pcall): (
            Table,
            Table,
            Table,
            Function,
            Function,
        ) = lua.load(PRELUDE).set_name("=prelude").call((
            sha1hex,
            log,
            failure,
            call.clone(),
            pcall.clone(),
            REMOTE,
        ))?;
        // The real globals and `enter_slice`, where runs push them from without a handle.
        let globals = lua.create_registry_value(backing)?;
        // SAFETY: `enter_slice` is a C function that runs only as `Vm::protected` calls it.
        let entry = lua.create_registry_value(unsafe { lua.create_c_function(enter_slice)? })?;
        let [keys, argv] = [c"KEYS", c"ARGV"]
            .map(|name| lua.create_registry_value(lua.create_string(name.to_bytes())?));
        let (keys, argv) = (keys?, argv?);
        let mut main = ptr::null_mut();
        // SAFETY: the closure only notes the state mlua runs it on, the main state.
        unsafe { lua.exec_raw::<()>((), |state| main = state)? };
        let vm = Vm {
            main,
            entry: entry.id(),
            globals: globals.id(),
            names: [keys.id(), argv.id()],
        };
        Ok(Engine {
            lua,
            mlua_alloc,
            env,
            vm,
            _pinned: [globals, entry, keys, argv],
            scripts: AHashMap::new(),
            bodies: AHashMap::new(),
            idle: None,
            redis,
            direct: (call, pcall),
            reaching: (reaching_call, reaching_pcall),
            reaches: false,
        })
    }

    /// Gives scripts the `redis.call` and `redis.pcall` that reach other shards, or the direct
    /// ones (cheaper, and they keep the caller's line in a tail call).
    fn reach(&mut self, reach: bool) -> mlua::Result<()> {
        if self.reaches != reach {
            let (call, pcall) = if reach { &self.reaching } else { &self.direct };
            self.redis.raw_set("call", call)?;
            self.redis.raw_set("pcall", pcall)?;
            self.reaches = reach;
        }
        Ok(())
    }

    /// A coroutine to run a script in: the idle one, or a new one with the watchdog hook. (A
    /// new one is made with any function: a run clears its stack and starts the script there.)
    fn coroutine(&mut self) -> mlua::Result<(Thread, *mut ffi::lua_State)> {
        let thread = match self.idle.take() {
            Some(thread) => thread,
            None => self.lua.create_thread(self.direct.0.clone())?,
        };
        let co = thread.to_pointer() as *mut ffi::lua_State;
        // SAFETY: `co` is the coroutine `thread` holds alive; installing a hook has no other
        // effect (a new coroutine gets it once; an idle one keeps it).
        unsafe { ffi::lua_sethook(co, Some(watchdog), ffi::LUA_MASKCOUNT, HOOK_EVERY) };
        Ok((thread, co))
    }

    /// Where the registry holds the cached script `sha`, if any: a run pushes it from there
    /// itself, where fetching it as an mlua `Function` (a reference made and dropped) took a
    /// twentieth of an `EVALSHA`.
    fn cached(&self, sha: &[u8; 40]) -> Option<c_int> {
        self.scripts.get(sha).map(RegistryKey::id)
    }

    /// The script `body`, compiled (and cached under its SHA1 for `EVALSHA`), its SHA1 and where
    /// the registry holds it. `EVAL` and `SCRIPT LOAD` come here; a body seen before is neither
    /// hashed nor compiled again.
    fn compile(&mut self, body: &[u8]) -> Result<([u8; 40], c_int), CmdError> {
        if let Some(known) = self
            .bodies
            .get(body)
            .and_then(|sha| Some((*sha, self.cached(sha)?)))
        {
            return Ok(known);
        }
        let sha = sha1(body);
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
        let key = self.lua.create_registry_value(f).map_err(lua_err)?;
        let id = key.id();
        self.scripts.insert(sha, key);
        self.bodies.insert(body.into(), sha);
        Ok((sha, id))
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let (f, ud) = self.mlua_alloc;
        // SAFETY: mlua's allocator frees blocks of `lua_heap` too (both are system blocks of
        // the size Lua gave, with the same alignment).
        let _ = unsafe {
            self.lua
                .exec_raw::<()>((), |state| ffi::lua_setallocf(state, f, ud))
        };
    }
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
fn sha1(bytes: &[u8]) -> [u8; 40] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hex = [0u8; 40];
    let digest = sha1_smol::Sha1::from(bytes).digest().bytes();
    for (pair, byte) in hex.chunks_exact_mut(2).zip(digest) {
        pair[0] = HEX[usize::from(byte >> 4)];
        pair[1] = HEX[usize::from(byte & 15)];
    }
    hex
}

/// The script cache's key for a SHA1 in hex (any case; only 40-byte names can match).
fn sha_key(hex: &[u8]) -> [u8; 40] {
    let mut key = [0u8; 40];
    for (k, c) in key.iter_mut().zip(hex) {
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
    // No script has a name of another length: Redis says so before it reads anything else.
    if by_sha && args.get(1).len() != 40 {
        return Err(CmdError::NoScript);
    }
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
    let reach = REACH.replace(false);
    let (sha, f, vm, (thread, co)) = with_engine(|engine| {
        let (sha, f) = if by_sha {
            let sha = sha_key(args.get(1));
            (sha, engine.cached(&sha).ok_or(CmdError::NoScript)?)
        } else {
            engine.compile(args.get(1))?
        };
        engine.reach(reach).map_err(lua_err)?;
        let coroutine = engine.coroutine().map_err(lua_err)?;
        Ok((sha, f, engine.vm, coroutine))
    })?;
    let mut bufs = SPARE.with(|spare| std::mem::take(&mut *spare.borrow_mut()));
    bufs.keys.clear();
    bufs.key_ends.clear();
    let mut gathered = false;
    for key in (3..3 + numkeys).map(|i| args.get(i)) {
        bufs.keys.extend_from_slice(key);
        bufs.key_ends.push(bufs.keys.len());
        gathered |= !reach
            && ctx.shards > 1
            && usize::from(even_owner(usize::from(key_slot(key)), ctx.shards)) != ctx.shard;
    }
    let script = Script {
        thread,
        co,
        sha,
        gathered,
        read_only,
        wrote: false,
        reach,
        remote: None,
        delivered: false,
        started: Instant::now(),
        threshold: ctx.settings.busy_reply_threshold,
        bufs,
    };
    let start = Start { f, args, numkeys };
    run_slice(ctx, script, &vm, Some(start)).map(drop)
}

/// What the first slice of a script starts from: its function (where the registry holds it),
/// and the `KEYS` and `ARGV` to set in the globals first.
struct Start<'a> {
    f: c_int,
    args: Args<'a>,
    numkeys: usize,
}

fn lua_err(e: mlua::Error) -> CmdError {
    CmdError::Other(format!("ERR {e}"))
}

/// How a slice of a script ended.
#[derive(Clone, Copy)]
enum Ended {
    Yielded,
    Returned,
    /// An error, raised at this line of the script.
    Failed(i64),
}

/// Runs `script` (from `start`, or on from where it yielded) until it ends, answering in
/// `ctx.reply`, or yields, parking it in [`SUSPENDED`]. Returns whether it ended.
fn run_slice(
    ctx: &mut Ctx<'_>,
    mut script: Script,
    vm: &Vm,
    start: Option<Start<'_>>,
) -> Result<bool, CmdError> {
    let co = script.co;
    let watch = Watch {
        co,
        started: script.started,
        threshold: script.threshold,
    };
    // How the slice ended, and the reply of a script that returned, written while its value
    // is on the Lua stack.
    let ended = Cell::new(Ended::Yielded);
    let mut result = std::mem::take(&mut script.bufs.result);
    result.clear();
    let proto = ctx.reply.protocol();
    let ran = {
        let mut caller = Caller {
            ctx: &mut *ctx,
            script: &mut script,
        };
        let _current = Current::enter(&mut caller, watch);
        // One protected call per slice: at the start it sets `KEYS` and `ARGV` and moves the
        // script's function onto `co`, then it resumes `co`.
        let (args, numkeys, f) = start
            .as_ref()
            .map_or((None, 0, 0), |s| (Some(s.args), s.numkeys, s.f));
        let mut slice = |state: *mut ffi::lua_State| {
            // SAFETY: `co` is the script's coroutine, alive while `script.thread` is. This runs
            // on the main state inside a protected call with an empty stack; each table is
            // built and stored with a raw set, and the globals and the function `f` are in the
            // registry (a script runs to its end before any `SCRIPT FLUSH`).
            unsafe {
                if let Some(args) = args {
                    ffi::lua_rawgeti(state, ffi::LUA_REGISTRYINDEX, vm.globals as _);
                    // By reference: an array's by-value iterator has a destructor, which a
                    // memory error's jump out of here would skip.
                    let [keys, argv] = vm.names;
                    let tables = [(keys, 3..3 + numkeys), (argv, 3 + numkeys..args.len())];
                    for (name, range) in &tables {
                        let range = range.clone();
                        ffi::lua_rawgeti(state, ffi::LUA_REGISTRYINDEX, *name as _);
                        ffi::lua_createtable(state, range.len() as c_int, 0);
                        for (n, i) in range.enumerate() {
                            let arg = args.get(i);
                            ffi::lua_pushlstring(state, arg.as_ptr().cast(), arg.len());
                            ffi::lua_rawseti(state, -2, (n + 1) as _);
                        }
                        ffi::lua_rawset(state, 1);
                    }
                    ffi::lua_rawgeti(state, ffi::LUA_REGISTRYINDEX, f as _);
                    // `co` is new or idle; its stack holds nothing the run needs.
                    ffi::lua_settop(co, 0);
                    ffi::lua_checkstack(co, 1);
                    ffi::lua_xmove(state, co, 1);
                    ffi::lua_settop(state, 0);
                }
                WATCHDOG_YIELDED.set(false);
                let mut nres: c_int = 0;
                match ffi::lua_resume(co, state, 0, &mut nres) {
                    ffi::LUA_YIELD => ended.set(Ended::Yielded),
                    ffi::LUA_OK => {
                        ended.set(Ended::Returned);
                        // The first value the script returned (Redis keeps one).
                        let mut reply = Reply::new(&mut result, proto);
                        if nres > 0 {
                            ffi::lua_settop(co, 1);
                            ffi::lua_xmove(co, state, 1);
                            write_value(state, 1, &mut reply, 0);
                        } else {
                            reply.null();
                        }
                        ffi::lua_settop(co, 0);
                    }
                    // The error stays on `co` for the caller to read.
                    _ => ended.set(Ended::Failed(user_line(co))),
                }
            }
        };
        // SAFETY: `slice` keeps to the stack it is given (see above).
        let ran = unsafe { vm.protected(&mut slice) };
        if let Some(payload) = PANIC.take() {
            panic::resume_unwind(payload);
        }
        ran
    };
    script.bufs.result = result;
    if let Err(e) = ran {
        finish(script, false);
        return Err(e);
    }
    let sha = || String::from_utf8_lossy(&script.sha).into_owned();
    match ended.get() {
        Ended::Yielded if WATCHDOG_YIELDED.get() || script.remote.is_some() => {
            SUSPENDED.with(|s| *s.borrow_mut() = Some(script));
            Ok(false)
        }
        Ended::Yielded => {
            // `coroutine.yield()` in the script's own body: Redis runs that body in no
            // coroutine, where Lua refuses to yield.
            let (line, sha) = (user_line(co), sha());
            finish(script, false);
            Err(CmdError::Other(format!(
                "ERR attempt to yield across metamethod/C-call boundary script: {sha}, on \
                 @user_script:{line}."
            )))
        }
        Ended::Returned => {
            ctx.reply.raw(&script.bufs.result);
            finish(script, true);
            Ok(true)
        }
        Ended::Failed(line) => {
            let sha = sha();
            // The error value, still on `co`: read through mlua on this rare path, which
            // knows its own errors (a Rust callback's) as well as strings and tables.
            // SAFETY: the closure moves the one value on top of `co` onto the stack it runs on.
            let value = with_engine(|engine| {
                Ok(unsafe {
                    engine
                        .lua
                        .exec_raw::<Value>((), |state| ffi::lua_xmove(co, state, 1))
                })
            })
            .ok()
            .and_then(Result::ok)
            .unwrap_or(Value::Nil);
            finish(script, false);
            let text = match value {
                Value::Error(e) => format!("ERR {e}"),
                Value::Table(t) => match t.raw_get::<Value>("err") {
                    Ok(Value::String(s)) => s.to_string_lossy(),
                    _ => "ERR unknown error".to_owned(),
                },
                Value::String(s) => format!("ERR {}", s.to_string_lossy()),
                other => format!("ERR {}", other.to_string().unwrap_or_default()),
            };
            Err(CmdError::Other(format!(
                "{text} script: {sha}, on @user_script:{line}."
            )))
        }
    }
}

/// Ends a run: its buffers are kept for the next, and its coroutine too if it ended normally.
fn finish(script: Script, reusable: bool) {
    let Script { thread, bufs, .. } = script;
    SPARE.with(|spare| *spare.borrow_mut() = bufs);
    if reusable {
        ENGINE.with(|cell| {
            if let Some(engine) = cell.borrow_mut().as_mut() {
                engine.idle = Some(thread);
            }
        });
    }
}

/// True when a script has yielded on this shard and waits for [`resume`] (see the module
/// docs). The shard asks only after a command wrote no reply, which only this does.
pub fn suspended() -> bool {
    SUSPENDED.with(|s| s.borrow().is_some())
}

/// Runs the next slice of the suspended script with `ctx`, or ends it if [`kill`] was called.
/// Returns true when the script has ended and its reply (or error) is written.
pub fn resume(ctx: &mut Ctx<'_>) -> bool {
    let Some(script) = SUSPENDED.with(|s| s.borrow_mut().take()) else {
        return true;
    };
    let mark = ctx.reply.len();
    let outcome = if KILLED.replace(false) {
        let line = user_line(script.co);
        let sha = String::from_utf8_lossy(&script.sha).into_owned();
        finish(script, false);
        Err(CmdError::Other(format!(
            "ERR Script killed by user with SCRIPT KILL... script: {sha}, on \
             @user_script:{line}."
        )))
    } else {
        match with_engine(|engine| Ok(engine.vm)) {
            Ok(vm) => run_slice(ctx, script, &vm, None),
            Err(err) => Err(err),
        }
    };
    match outcome {
        Ok(ended) => ended,
        Err(err) => {
            ctx.reply.truncate(mark);
            ctx.reply.error(&err.to_string());
            true
        }
    }
}

/// Lets the next script started on this shard reach undeclared keys on any shard
/// (`lua-allow-undeclared-keys`): the caller runs it under a step that holds every shard.
/// Each command of such a script whose keys live elsewhere makes the script yield; the
/// caller runs it there ([`take_remote_call`]) and hands back its reply ([`deliver`]).
pub fn reach_next_script() {
    REACH.set(true);
}

/// A command the suspended script needs run on another shard.
pub struct RemoteCall {
    /// Where.
    pub shard: usize,
    /// Its operation.
    pub handler: crate::Handler,
    /// Its arguments, the name first.
    pub args: Vec<Vec<u8>>,
}

/// The command the suspended script waits for, if it waits for one.
pub fn take_remote_call() -> Option<RemoteCall> {
    SUSPENDED.with(|s| {
        let mut slot = s.borrow_mut();
        let script = slot.as_mut()?;
        let shard = script.remote.take()?;
        let bufs = &script.bufs;
        let args: Vec<Vec<u8>> = bufs
            .spans
            .iter()
            .map(|span| {
                bufs.data
                    .get(span.start..span.end)
                    .unwrap_or_default()
                    .to_vec()
            })
            .collect();
        let handler = match lookup(args.first().map_or(&[][..], |a| a)).map(|c| c.route) {
            Some(Route::Keyed(h) | Route::Split(h, _)) => h,
            _ => return None,
        };
        Some(RemoteCall {
            shard,
            handler,
            args,
        })
    })
}

/// Hands the suspended script the reply (RESP2) to its [`RemoteCall`].
pub fn deliver(reply: &[u8]) {
    SUSPENDED.with(|s| {
        if let Some(script) = s.borrow_mut().as_mut() {
            script.bufs.scratch.clear();
            script.bufs.scratch.extend_from_slice(reply);
            script.delivered = true;
        }
    });
}

/// What `SCRIPT KILL` found on a shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kill {
    /// No script is running.
    NotBusy,
    /// The running script has written; it was left alone.
    Unkillable,
    /// The running script will end with an error at its next slice.
    Killed,
}

/// `SCRIPT KILL` on this shard: marks the suspended script to be ended, unless it has already
/// written (`force`, for shutdown, ends it anyway).
pub fn kill(force: bool) -> Kill {
    SUSPENDED.with(|s| match s.borrow().as_ref() {
        None => Kill::NotBusy,
        Some(script) if script.wrote && !force => Kill::Unkillable,
        Some(_) => {
            KILLED.set(true);
            Kill::Killed
        }
    })
}

/// The context of the slice running now, for `redis.call`: set by [`Current::enter`] for the
/// length of one `lua_resume` and cleared when it returns.
struct Current;

impl Current {
    fn enter(caller: &mut Caller<'_, '_>, watch: Watch) -> Current {
        let p: *mut Caller<'_, '_> = caller;
        CALLER.set(p.cast());
        WATCH.set(Some(watch));
        Current
    }
}

impl Drop for Current {
    fn drop(&mut self) {
        CALLER.set(ptr::null_mut());
        WATCH.set(None);
    }
}

/// `redis.call`: runs a command and returns its reply as Lua values, or raises its error.
///
/// `redis.call` and `redis.pcall` are plain C functions, not mlua callbacks: they read their
/// arguments off the Lua stack and push the reply, where mlua's conversions through its own
/// values took as long as running the command. Their one upvalue is the `failure` metatable
/// that marks the error `redis.call` raises.
unsafe extern "C-unwind" fn redis_call(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this with a valid state.
    unsafe { call_from_lua(state, true) }
}

/// `redis.pcall`: as `redis.call`, but an error comes back as a table `{err = text}`.
unsafe extern "C-unwind" fn redis_pcall(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this with a valid state.
    unsafe { call_from_lua(state, false) }
}

/// Runs `redis.call` (`raise`) or `redis.pcall` with the context of the running slice.
///
/// # Safety
/// `state` is the calling Lua state, inside a C function call. `lua_error` jumps out of this
/// frame, so nothing that needs dropping may be alive when it is called: [`Caller::call`]
/// returns with its values pushed and its borrows ended.
unsafe fn call_from_lua(state: *mut ffi::lua_State, raise: bool) -> c_int {
    let p = CALLER.get();
    let pushed = if p.is_null() {
        // SAFETY: pushing a static string.
        unsafe {
            ffi::lua_pushstring(
                state,
                c"redis.call is only available while a script runs".as_ptr(),
            )
        };
        Pushed::Error
    } else {
        // SAFETY: `CALLER` is only non-null while `run_slice` is inside `lua_resume`, and then
        // points at that frame's `Caller`, which outlives the call. Lua runs on this thread
        // only and a command run by `redis.call` never calls back into Lua, so this is the
        // only reference to it in use.
        unsafe { (*p.cast::<Caller<'_, '_>>()).call(state, raise) }
    };
    match pushed {
        Pushed::Value => 1,
        // SAFETY: the error value is on the stack; nothing in this frame needs dropping.
        Pushed::Error => unsafe { ffi::lua_error(state) },
    }
}

/// What [`Caller::call`] left on the Lua stack.
enum Pushed {
    /// The value `redis.call` returns.
    Value,
    /// The error it raises.
    Error,
}

/// What `redis.call` works with while a slice of a script runs.
struct Caller<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
    script: &'c mut Script,
}

impl Caller<'_, '_> {
    /// `redis.call` (`raise`) / `redis.pcall` with the arguments on `state`'s stack: pushes the
    /// reply as a Lua value, or the error as a table `{err = text}`, marked with the `failure`
    /// metatable (the C function's upvalue) when it is to be raised.
    ///
    /// # Safety
    /// `state` is the Lua state inside the call of [`redis_call`] or [`redis_pcall`].
    unsafe fn call(&mut self, state: *mut ffi::lua_State, raise: bool) -> Pushed {
        if self.script.delivered {
            // The retry of a command another shard ran: its reply is here.
            self.script.delivered = false;
        } else {
            // SAFETY: the caller's contract.
            match unsafe { self.run(state) } {
                Ran::Here => {}
                Ran::Elsewhere(shard) => {
                    self.script.remote = Some(shard);
                    // SAFETY: pushing onto the calling state.
                    unsafe { ffi::lua_pushlightuserdata(state, ptr::null_mut()) };
                    return Pushed::Value;
                }
                // SAFETY: as above.
                Ran::Refused(text) => {
                    return unsafe { push_failure(state, text.as_bytes(), raise) }
                }
            }
        }
        let scratch = &self.script.bufs.scratch;
        if scan::is_error(scratch) {
            let text = scratch.get(1..scratch.len().saturating_sub(2));
            // SAFETY: as above.
            return unsafe { push_failure(state, text.unwrap_or_default(), raise) };
        }
        // SAFETY: as above.
        if unsafe { push_reply(state, scratch, 0, 0) }.is_some() {
            Pushed::Value
        } else {
            // SAFETY: as above.
            unsafe { ffi::lua_pushstring(state, c"malformed reply".as_ptr()) };
            Pushed::Error
        }
    }

    /// Runs the command here, leaving its reply in `scratch`, or finds that it must run on
    /// another shard (its arguments are then in `data` and `spans`), or refuses it.
    ///
    /// # Safety
    /// `state` is the Lua state inside the call of [`redis_call`] or [`redis_pcall`], its
    /// arguments on the stack.
    unsafe fn run(&mut self, state: *mut ffi::lua_State) -> Ran {
        // SAFETY: the caller's contract.
        let argc = unsafe { ffi::lua_gettop(state) };
        if argc == 0 {
            return Ran::Refused(
                "ERR Please specify at least one argument for this redis lib call",
            );
        }
        let Buffers {
            ref keys,
            ref key_ends,
            ref mut scratch,
            ref mut data,
            ref mut spans,
            ..
        } = self.script.bufs;
        data.clear();
        spans.clear();
        for i in 1..=argc {
            let start = data.len();
            // SAFETY: `i` is an index of the call's arguments; a string's bytes stay put while
            // it is on the stack, and are copied at once.
            unsafe {
                match ffi::lua_type(state, i) {
                    ffi::LUA_TSTRING => {
                        data.extend_from_slice(lua_bytes(state, i).unwrap_or_default())
                    }
                    // Numbers as Redis passes them: `%.17g`.
                    ffi::LUA_TNUMBER => {
                        crate::cjson::format_g(data, ffi::lua_tonumber(state, i), 17)
                    }
                    _ => return Ran::Refused(ARGS_MUST_BE_STRINGS),
                }
            }
            spans.push(Span {
                start,
                end: data.len(),
            });
        }
        let args = Args::new(data, spans);
        let Some(cmd) = lookup(args.get(0)) else {
            return Ran::Refused("ERR Unknown Redis command called from script");
        };
        let handler = match cmd.route {
            Route::Keyed(h) | Route::Split(h, _) if !cmd.has(flag::NOSCRIPT) => h,
            Route::Connection(ConnCommand::Ping) => ping,
            Route::Connection(ConnCommand::Echo) => echo,
            Route::Connection(ConnCommand::Time) => crate::server::time,
            _ => return Ran::Refused("ERR This Redis command is not allowed from script"),
        };
        if !cmd.arity_ok(args.len()) {
            return Ran::Refused("ERR Wrong number of args calling Redis command from script");
        }
        if cmd.has(flag::WRITE) {
            if self.script.read_only {
                return Ran::Refused("ERR Write commands are not allowed from read-only scripts.");
            }
            self.script.wrote = true;
        }
        if self.ctx.shards > 1 {
            // The one shard that owns every key of the command (scripts that reach only).
            let mut owners = None;
            for p in cmd.key_positions(args) {
                let key = args.get(p);
                let owner = usize::from(even_owner(usize::from(key_slot(key)), self.ctx.shards));
                if self.script.reach {
                    if *owners.get_or_insert(owner) != owner {
                        return Ran::Refused(
                            "ERR Script attempted to access keys of several shards in one command",
                        );
                    }
                    continue;
                }
                let local = !self.script.gathered && owner == self.ctx.shard;
                if !local && !declares(keys, key_ends, key) {
                    return Ran::Refused(
                        "ERR Script attempted to access a key that was not declared in KEYS \
                         and lives on another shard",
                    );
                }
            }
            // Every shard is held for a script that reaches: the command runs where its keys are.
            if let Some(shard) = owners.filter(|&s| s != self.ctx.shard) {
                return Ran::Elsewhere(shard);
            }
        }
        scratch.clear();
        let mut inner = Ctx {
            store: &mut *self.ctx.store,
            db: self.ctx.db,
            now_ms: self.ctx.now_ms,
            reply: Reply::new(scratch, Protocol::Resp2),
            settings: self.ctx.settings,
            shard: self.ctx.shard,
            shards: self.ctx.shards,
        };
        // A panic must not unwind through Lua's C frames: it is caught here, the script gets an
        // error, and the panic goes on once Lua has returned (see `run_slice`), as it did when
        // mlua ran `redis.call`.
        let ran = panic::catch_unwind(AssertUnwindSafe(|| execute(handler, &mut inner, args)));
        match ran {
            Ok(()) => Ran::Here,
            Err(payload) => {
                PANIC.set(Some(payload));
                Ran::Refused("ERR a command called from the script failed")
            }
        }
    }
}

/// What became of a command a script called.
enum Ran {
    /// It ran here; its reply is in `scratch`.
    Here,
    /// It must run on this shard.
    Elsewhere(usize),
    /// It was refused with this error before running.
    Refused(&'static str),
}

/// What `redis.call` returns to its Lua wrapper when the command must run on another shard.
const REMOTE: Value = Value::LightUserData(mlua::LightUserData(ptr::null_mut()));

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

/// Pushes the RESP2 reply at `buf[pos]` as a Lua value, Redis's way: integers become
/// numbers, bulk strings strings, a null `false`, arrays tables, a status `{ok=...}` and an
/// error `{err=...}`. Returns the offset after it, or `None` if the reply is malformed or
/// nested past [`MAX_DEPTH`] (nothing is left pushed then).
///
/// # Safety
/// `state` is a Lua state inside a C function call.
unsafe fn push_reply(
    state: *mut ffi::lua_State,
    buf: &[u8],
    pos: usize,
    depth: usize,
) -> Option<usize> {
    let kind = *buf.get(pos)?;
    let rest = buf.get(pos + 1..)?;
    let cr = rest.iter().position(|&c| c == b'\r')?;
    let line = &rest[..cr];
    let next = pos + 1 + cr + 2;
    // SAFETY: room for the table, a key and a value is checked first; each value is pushed
    // and stored in a table just made (no metamethods run).
    unsafe {
        if depth >= MAX_DEPTH || ffi::lua_checkstack(state, 3) == 0 {
            return None;
        }
        match kind {
            b'+' => {
                push_tagged(state, c"ok", line);
                Some(next)
            }
            b'-' => {
                push_tagged(state, c"err", line);
                Some(next)
            }
            b':' => {
                ffi::lua_pushnumber(state, parse_i64(line)? as f64);
                Some(next)
            }
            b'$' => match parse_i64(line)? {
                -1 => {
                    ffi::lua_pushboolean(state, 0);
                    Some(next)
                }
                n => {
                    let end = next.checked_add(usize::try_from(n).ok()?)?;
                    let bytes = buf.get(next..end)?;
                    ffi::lua_pushlstring(state, bytes.as_ptr().cast(), bytes.len());
                    Some(end + 2)
                }
            },
            b'*' => match parse_i64(line)? {
                -1 => {
                    ffi::lua_pushboolean(state, 0);
                    Some(next)
                }
                n => {
                    let n = c_int::try_from(n).ok().filter(|&n| n >= 0)?;
                    ffi::lua_createtable(state, n, 0);
                    let mut at = next;
                    for i in 1..=n {
                        let Some(after) = push_reply(state, buf, at, depth + 1) else {
                            ffi::lua_pop(state, 1);
                            return None;
                        };
                        ffi::lua_rawseti(state, -2, i.into());
                        at = after;
                    }
                    Some(at)
                }
            },
            _ => None,
        }
    }
}

/// Pushes the table `{[field] = text}`: how Redis hands a script a status (`ok`) or an error
/// (`err`).
///
/// # Safety
/// `state` is a Lua state with room for two more values.
unsafe fn push_tagged(state: *mut ffi::lua_State, field: &CStr, text: &[u8]) {
    // SAFETY: the caller's contract; the new table has no metatable, so the set is plain.
    unsafe {
        ffi::lua_createtable(state, 0, 1);
        ffi::lua_pushlstring(state, text.as_ptr().cast(), text.len());
        ffi::lua_setfield(state, -2, field.as_ptr());
    }
}

/// Pushes the error of a `redis.call` or `redis.pcall` as Redis does, a table `{err = text}`;
/// one to be raised gets the `failure` metatable (the C function's upvalue), so that `pcall`
/// can hand the script its text.
///
/// # Safety
/// `state` is the Lua state inside the call of [`redis_call`] or [`redis_pcall`].
unsafe fn push_failure(state: *mut ffi::lua_State, text: &[u8], raise: bool) -> Pushed {
    // SAFETY: a C function has room for a few values on its stack (`LUA_MINSTACK`).
    unsafe {
        push_tagged(state, c"err", text);
        if !raise {
            return Pushed::Value;
        }
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
        ffi::lua_setmetatable(state, -2);
    }
    Pushed::Error
}

/// Nesting deeper than this is answered as nil rather than risking the stack, as Redis does.
const MAX_DEPTH: usize = 64;

/// Writes the script's result at `idx`, Redis's way: numbers are truncated to integers, `true`
/// is 1, `false` and nil are null, `{ok=...}` a status, `{err=...}` an error and any other
/// table an array of its elements up to the first nil. Read straight off the stack, without
/// mlua's values (a handle made and dropped for each string and table).
///
/// # Safety
/// `state` is inside a protected call (looking up `err` and `ok` may allocate, and raise a
/// memory error) and `idx` is an absolute index of it.
unsafe fn write_value(state: *mut ffi::lua_State, idx: c_int, reply: &mut Reply<'_>, depth: usize) {
    // SAFETY: the caller's contract; every lookup is raw (no metamethods) and pops what it
    // pushed, and each level makes room for its two values first.
    unsafe {
        match ffi::lua_type(state, idx) {
            ffi::LUA_TBOOLEAN if ffi::lua_toboolean(state, idx) != 0 => reply.integer(1),
            ffi::LUA_TNUMBER => {
                // C's conversion on x86-64, as Redis does it: out of range or NaN gives
                // i64::MIN.
                let n = ffi::lua_tonumber(state, idx);
                if (i64::MIN as f64..-(i64::MIN as f64)).contains(&n) {
                    reply.integer(n as i64)
                } else {
                    reply.integer(i64::MIN)
                }
            }
            ffi::LUA_TSTRING => reply.bulk(lua_bytes(state, idx).unwrap_or_default()),
            ffi::LUA_TTABLE if depth < MAX_DEPTH => {
                ffi::lua_checkstack(state, 2);
                // By reference: an array's by-value iterator has a destructor, which a memory
                // error's jump out of `lua_pushstring` would skip.
                for &(field, status) in &[(c"err", false), (c"ok", true)] {
                    ffi::lua_pushstring(state, field.as_ptr());
                    ffi::lua_rawget(state, idx);
                    if let Some(text) = lua_bytes(state, -1) {
                        if status {
                            reply.simple(text);
                        } else {
                            reply.error(&String::from_utf8_lossy(text));
                        }
                        ffi::lua_pop(state, 1);
                        return;
                    }
                    ffi::lua_pop(state, 1);
                }
                let mut len = 0;
                loop {
                    ffi::lua_rawgeti(state, idx, (len + 1) as _);
                    let nil = ffi::lua_type(state, -1) == ffi::LUA_TNIL;
                    ffi::lua_pop(state, 1);
                    if nil {
                        break;
                    }
                    len += 1;
                }
                reply.array(len);
                for i in 1..=len {
                    ffi::lua_rawgeti(state, idx, i as _);
                    write_value(state, ffi::lua_gettop(state), reply, depth + 1);
                    ffi::lua_pop(state, 1);
                }
            }
            _ => reply.null(),
        }
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
        let (sha, _) = with_engine(|engine| engine.compile(args.get(2)))?;
        ctx.reply.bulk(&sha);
    } else if sub.eq_ignore_ascii_case(b"exists") {
        if args.len() < 3 {
            return Err(arity_error());
        }
        with_engine(|engine| {
            ctx.reply.array(args.len() - 2);
            for sha in args.iter().skip(2) {
                let known = sha.len() == 40 && engine.scripts.contains_key(&sha_key(sha));
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

    /// The SHA1 of `bytes` in hex, as text.
    fn hex_text(bytes: &[u8]) -> String {
        String::from_utf8(sha1(bytes).to_vec()).unwrap()
    }

    /// Runs `handler` with `line` as its arguments on shard `shard` of `shards`.
    fn run_on(store: &mut Store, shard: usize, shards: usize, line: &[&str]) -> String {
        run_with(&Settings::default(), store, shard, shards, line, |_| ())
    }

    /// `run_on` with `settings`; `between` is called before each [`resume`] of a script that
    /// yielded, with how many slices have run.
    fn run_with(
        settings: &Settings,
        store: &mut Store,
        shard: usize,
        shards: usize,
        line: &[&str],
        mut between: impl FnMut(usize),
    ) -> String {
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
        let mut out = Vec::new();
        let mut ctx = Ctx {
            store,
            db: 0,
            now_ms: 1_000,
            reply: Reply::new(&mut out, Protocol::Resp2),
            settings,
            shard,
            shards,
        };
        execute(handler, &mut ctx, args);
        let mut slices = 1;
        while suspended() {
            between(slices);
            assert!(!resume(&mut ctx) || !suspended());
            slices += 1;
        }
        String::from_utf8(out).unwrap()
    }

    /// Settings under which every script is past its busy threshold at once.
    fn impatient() -> Settings {
        Settings {
            busy_reply_threshold: std::time::Duration::ZERO,
            ..Settings::default()
        }
    }

    #[test]
    fn long_scripts_yield_only_where_lua_can() {
        let mut store = Store::new(1);
        let settings = impatient();
        // Each run's reply and how many times it yielded.
        let mut run = |line: &[&str]| {
            let mut slices = 0;
            let reply = run_with(&settings, &mut store, 0, 1, line, |n| slices = n);
            (reply, slices)
        };
        let count = "local n = 0 for i = 1, 1000000 do n = n + 1 end return n";
        let (reply, slices) = run(&["EVAL", count, "0"]);
        assert_eq!(reply, ":1000000\r\n");
        assert!(
            slices > 5,
            "a long loop yields to the shard ({slices} slices)"
        );
        // Inside pcall and inside a metamethod Lua 5.1 cannot yield: the hook must not try.
        let in_pcall = format!("local ok, n = pcall(function() {count} end) return n");
        assert_eq!(
            run(&["EVAL", &in_pcall, "0"]),
            (":1000000\r\n".to_owned(), 0)
        );
        let in_meta = format!(
            "local t = setmetatable({{}}, {{__index = function() {count} end}}) return t.x"
        );
        assert_eq!(
            run(&["EVAL", &in_meta, "0"]),
            (":1000000\r\n".to_owned(), 0)
        );
        // A long script's calls and reply work across slices.
        let writes = "for i = 1, 50000 do redis.call('incr', KEYS[1]) end \
                      return redis.call('get', KEYS[1])";
        let (reply, slices) = run(&["EVAL", writes, "1", "k"]);
        assert_eq!(reply, "$5\r\n50000\r\n");
        assert!(slices >= 1);
        // An error after a yield still names its line.
        let late_error = "for i = 1, 1000000 do end\nreturn redis.call('nosuch')";
        let (reply, _) = run(&["EVAL", late_error, "0"]);
        assert!(
            reply.starts_with("-ERR Unknown Redis command called from script script: ")
                && reply.ends_with("on @user_script:2.\r\n"),
            "{reply}"
        );
    }

    #[test]
    fn script_kill_ends_a_suspended_script_unless_it_wrote() {
        let mut store = Store::new(1);
        let settings = impatient();
        assert_eq!(kill(false), Kill::NotBusy);
        let forever = "local n = 0 while true do n = n + 1 end";
        let mut outcome = None;
        let reply = run_with(&settings, &mut store, 0, 1, &["EVAL", forever, "0"], |n| {
            if n == 3 {
                outcome = Some(kill(false));
            }
        });
        assert_eq!(outcome, Some(Kill::Killed));
        let sha = hex_text(forever.as_bytes());
        assert_eq!(
            reply,
            format!(
                "-ERR Script killed by user with SCRIPT KILL... script: {sha}, on \
                 @user_script:1.\r\n"
            )
        );
        assert_eq!(kill(false), Kill::NotBusy);
        // Once it has written, only a forced kill (shutdown) ends it.
        let writer = "redis.call('set', KEYS[1], 'v') while true do end";
        let mut outcomes = Vec::new();
        let reply = run_with(
            &settings,
            &mut store,
            0,
            1,
            &["EVAL", writer, "1", "k"],
            |n| {
                if n == 2 {
                    outcomes.push(kill(false));
                } else if n == 4 {
                    outcomes.push(kill(true));
                }
            },
        );
        assert_eq!(outcomes, [Kill::Unkillable, Kill::Killed]);
        assert!(reply.starts_with("-ERR Script killed by user"), "{reply}");
        // The engine goes on: the next script runs on a fresh coroutine.
        assert_eq!(
            run_on(
                &mut store,
                0,
                1,
                &["EVAL", "return redis.call('get', KEYS[1])", "1", "k"]
            ),
            "$1\r\nv\r\n"
        );
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
        let sha = hex_text(b"return ARGV[1]");
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
        // A name that is no SHA1 is refused before the key count is read, as Redis does; a
        // SHA1's key count is read first.
        assert_eq!(
            run(&mut store, &["EVALSHA", "abc", "x"]),
            "-NOSCRIPT No matching script. Please use EVAL.\r\n"
        );
        assert_eq!(
            run(&mut store, &["EVALSHA", &sha, "x"]),
            "-ERR value is not an integer or out of range\r\n"
        );
        // EVAL caches what it runs.
        assert_eq!(
            run(&mut store, &["EVAL", "return ARGV[1]", "0", "a"]),
            "$1\r\na\r\n"
        );
        assert_eq!(run(&mut store, &["EVALSHA", &sha, "0", "b"]), "$1\r\nb\r\n");
    }
}
