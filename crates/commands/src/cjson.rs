//! The `cjson` library that Redis 7.0 gives scripts (lua_cjson 2.1.0): `cjson.encode`,
//! `cjson.decode`, `cjson.null`, `cjson.new` and the configuration functions, with the same
//! output byte for byte and the same error texts.
//!
//! **What scripts see.** `cjson.encode(value)` writes numbers with `%.14g`, escapes `"`, `\`, `/`,
//! control characters and DEL, and decides between array and object the way lua_cjson does: a
//! table whose keys are all positive integers is an array up to its largest key (holes become
//! `null`) unless it is excessively sparse, which is an error; any other table, the empty one
//! included, is an object whose members come in Lua's `next` order. `cjson.decode(text)` accepts
//! what lua_cjson accepts, including its non-standard numbers (`+1`, `0x1F`, `inf`, `nan`) while
//! `decode_invalid_numbers` is on, stops at a NUL byte, and turns JSON `null` into `cjson.null`,
//! a NULL light userdata. Every configuration function returns its settings and validates its
//! arguments with lua_cjson's messages. The configuration belongs to the Lua state, so it lasts
//! until `SCRIPT FLUSH` and, like every Lua global, it is per shard.
//!
//! **Errors.** lua_cjson is a C library: its errors are plain strings prefixed with the
//! caller's position (`user_script:1: Cannot serialise ...`), and argument errors name the
//! function as it was called (`bad argument #1 to 'encode' (expected 1 argument)`). An mlua
//! callback can only raise an mlua error object and cannot see its caller's frame, so each
//! function is a Rust body behind a small C closure, [`raise_failures`], that calls the body
//! and raises what it reports through Lua's own `luaL_where` and `luaL_argerror`. A wrapper
//! written in Lua would not do: `return cjson.encode(x)` is a tail call, which erases the
//! script's frame before a Lua wrapper could name it.
//!
//! **Limits.** lua_cjson nests at most `encode_max_depth` / `decode_max_depth` levels (1000 by
//! default) and also stops where the Lua C stack (8000 slots) would run out, counting one slot
//! per open array and two per open object; both walks here are loops over an explicit stack
//! that count the same slots, so raising the limits gives the same errors and never risks the
//! shard's thread stack. The tables of the open levels wait in a Lua table (a [`Chain`]), not
//! as mlua handles: each handle takes a slot of mlua's reference stack, which also has fewer
//! than 8000, and running out of it panics.
//!
//! **Exact numbers.** mlua reads a Lua number between -2^-52 and 2^-52 (and -0) as the integer
//! 0, so numbers are re-read with `raw_get::<f64>`, which is exact. For the same reason a table
//! is never iterated from Rust with mlua's `pairs`, which hands each key back to `next`: a key
//! such as 1e-300 would come back as 0, which `next` cannot find. [`MEMBERS`] lists the keys
//! and values in Lua instead.

use std::cell::Cell;
use std::ffi::c_int;
use std::rc::Rc;

use mlua::{ffi, FromLua, Function, IntoLua, LightUserData, Lua, MultiValue, Table, Value};

/// Sets the global `cjson` to a fresh module table.
pub(crate) fn install(lua: &Lua) -> mlua::Result<()> {
    let members: Function = lua.load(MEMBERS).set_name("=cjson").call(())?;
    lua.set_named_registry_value(MEMBERS_KEY, members)?;
    let module = new_module(lua)?;
    lua.globals().raw_set("cjson", module)
}

/// A module table with its own configuration, as `cjson.new()` returns.
fn new_module(lua: &Lua) -> mlua::Result<Table> {
    let config = Rc::new(Cell::new(Config::default()));
    // SAFETY: `close_over` only pushes a C closure over its argument (see its comment).
    let close = unsafe { lua.create_c_function(close_over)? };
    let module = lua.create_table()?;
    let entries: [(&str, Body); 10] = [
        ("encode", encode_entry),
        ("decode", decode_entry),
        ("encode_sparse_array", encode_sparse_array),
        ("encode_max_depth", |lua, args, config| {
            let limits = (1, i32::MAX);
            integer_setting(lua, args, config, |c| &mut c.encode_max_depth, limits)
        }),
        ("decode_max_depth", |lua, args, config| {
            let limits = (1, i32::MAX);
            integer_setting(lua, args, config, |c| &mut c.decode_max_depth, limits)
        }),
        ("encode_number_precision", |lua, args, config| {
            integer_setting(lua, args, config, |c| &mut c.precision, (1, 14))
        }),
        ("encode_keep_buffer", |lua, args, config| {
            switch_setting(lua, args, config, |c| &mut c.encode_keep_buffer)
        }),
        ("encode_invalid_numbers", encode_invalid_numbers),
        ("decode_invalid_numbers", |lua, args, config| {
            switch_setting(lua, args, config, |c| &mut c.decode_invalid_numbers)
        }),
        ("new", |lua, _, _| Ok(vec![Value::Table(new_module(lua)?)])),
    ];
    for (name, body) in entries {
        let config = config.clone();
        let inner = lua.create_function(move |lua, (table, len): (Table, i32)| {
            let args = Arguments { table, len };
            report(lua, body(lua, &args, &config))
        })?;
        module.raw_set(name, close.call::<Function>(inner)?)?;
    }
    module.raw_set("null", null())?;
    module.raw_set("_NAME", "cjson")?;
    module.raw_set("_VERSION", "2.1.0")?;
    Ok(module)
}

/// JSON `null` as Lua sees it: a NULL light userdata, since a table cannot hold nil.
fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

/// One library function: its arguments, and the configuration of its module.
type Body = fn(&Lua, &Arguments, &Cell<Config>) -> Result<Vec<Value>, Failure>;

/// Why a library function failed.
enum Failure {
    /// A `luaL_error`: raised as the caller's position followed by the text.
    Raise(String),
    /// A `luaL_argerror` for the argument at this position.
    Argument(i32, String),
    /// An error from mlua itself, raised as it is.
    Lua(mlua::Error),
}

impl From<mlua::Error> for Failure {
    fn from(e: mlua::Error) -> Failure {
        Failure::Lua(e)
    }
}

/// Turns a body's outcome into what [`raise_failures`] reads: `true` and the results, or a
/// failure as `false` (or the argument's position) and the text.
fn report(lua: &Lua, outcome: Result<Vec<Value>, Failure>) -> mlua::Result<MultiValue> {
    let (status, text) = match outcome {
        Ok(values) => {
            return Ok(std::iter::once(Value::Boolean(true))
                .chain(values)
                .collect())
        }
        Err(Failure::Raise(text)) => (Value::Boolean(false), text),
        Err(Failure::Argument(position, text)) => (Value::Integer(position as mlua::Integer), text),
        Err(Failure::Lua(e)) => return Err(e),
    };
    Ok(MultiValue::from_vec(vec![
        status,
        Value::String(lua.create_string(text)?),
    ]))
}

/// Pushes a C closure of [`raise_failures`] over the function given as the argument.
unsafe extern "C-unwind" fn close_over(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this with a valid state; a C function may use LUA_MINSTACK slots.
    unsafe {
        ffi::lua_settop(state, 1);
        ffi::lua_pushcclosure(state, raise_failures, 1);
    }
    1
}

/// A library function as Lua calls it: calls the Rust body (its upvalue) with a table of the
/// arguments and their count, then returns the body's results or raises its failure the way a
/// C library does, naming the caller's position (`luaL_where(L, 1)`) or the argument
/// (`luaL_argerror`, which also finds the name the function was called by).
///
/// The arguments go through a table because the body reads them with `raw_get`, which keeps a
/// number exact, where mlua's argument conversion would turn a tiny number or `-0` into 0.
unsafe extern "C-unwind" fn raise_failures(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this with a valid state and at least LUA_MINSTACK (20) free slots; the
    // pushes below stay within them. The errors are raised last, when this frame holds no Rust
    // value that needs dropping, so unwinding (or longjmp) across it is sound, as in mlua.
    unsafe {
        let count = ffi::lua_gettop(state);
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
        ffi::lua_createtable(state, count, 0);
        for i in 1..=count {
            ffi::lua_pushvalue(state, i);
            ffi::lua_rawseti(state, -2, i as ffi::lua_Integer);
        }
        ffi::lua_pushinteger(state, count as ffi::lua_Integer);
        ffi::lua_call(state, 2, ffi::LUA_MULTRET);
        let status = count + 1;
        match ffi::lua_type(state, status) {
            ffi::LUA_TBOOLEAN if ffi::lua_toboolean(state, status) != 0 => {
                ffi::lua_gettop(state) - status
            }
            ffi::LUA_TNUMBER => {
                let position = ffi::lua_tointeger(state, status) as c_int;
                ffi::luaL_argerror(state, position, ffi::lua_tostring(state, status + 1))
            }
            _ => {
                ffi::luaL_where(state, 1);
                ffi::lua_pushvalue(state, status + 1);
                ffi::lua_concat(state, 2);
                ffi::lua_error(state)
            }
        }
    }
}

/// The arguments a library function was called with.
struct Arguments {
    table: Table,
    len: i32,
}

impl Arguments {
    /// Argument `i` (from 1), nil when absent, as lua_cjson's `json_arg_init` pads them.
    fn get(&self, i: i32) -> mlua::Result<Value> {
        self.table.raw_get(i)
    }

    /// Argument `i` as an exact double, if it is a number.
    fn number(&self, i: i32) -> mlua::Result<Option<f64>> {
        match self.get(i)? {
            Value::Integer(_) | Value::Number(_) => self.table.raw_get(i).map(Some),
            _ => Ok(None),
        }
    }

    /// `luaL_argcheck(L, lua_gettop(L) <= most, most + 1, "found too many arguments")`.
    fn at_most(&self, most: i32) -> Result<(), Failure> {
        if self.len > most {
            return Err(Failure::Argument(
                most + 1,
                "found too many arguments".to_owned(),
            ));
        }
        Ok(())
    }

    /// `luaL_argcheck(L, lua_gettop(L) == 1, 1, "expected 1 argument")`.
    fn exactly_one(&self) -> Result<(), Failure> {
        if self.len != 1 {
            return Err(Failure::Argument(1, "expected 1 argument".to_owned()));
        }
        Ok(())
    }
}

/// lua_cjson's settings, with its defaults.
#[derive(Clone, Copy, Debug)]
struct Config {
    /// Encode an excessively sparse array as an object instead of failing.
    sparse_convert: bool,
    /// An array is excessively sparse when its largest index exceeds this many times its
    /// number of items (0: never)...
    sparse_ratio: i32,
    /// ...and exceeds this.
    sparse_safe: i32,
    encode_max_depth: i32,
    decode_max_depth: i32,
    encode_invalid_numbers: InvalidNumbers,
    decode_invalid_numbers: bool,
    /// Only reported: Shardis's encoder has no buffer to keep.
    encode_keep_buffer: bool,
    /// Significant digits of encoded numbers (1 to 14).
    precision: i32,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            sparse_convert: false,
            sparse_ratio: 2,
            sparse_safe: 10,
            encode_max_depth: 1000,
            decode_max_depth: 1000,
            encode_invalid_numbers: InvalidNumbers::Off,
            decode_invalid_numbers: true,
            encode_keep_buffer: true,
            precision: 14,
        }
    }
}

/// What `encode` does with infinities and NaN.
#[derive(Clone, Copy, Debug, PartialEq)]
enum InvalidNumbers {
    /// Refuse them.
    Off,
    /// Write `inf`, `-inf` and `nan`.
    On,
    /// Write `null`.
    Null,
}

/// How many Lua stack slots a C function may use (`LUAI_MAXCSTACK`); lua_cjson checks for room
/// before each nesting level.
const MAX_C_STACK: i64 = 8000;

/// Lua's name for the type of `value`, as `lua_typename` gives it.
fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        _ => "userdata",
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration

/// `luaL_checkinteger` narrowed to a C `int`, as lua_cjson stores its settings.
fn check_integer(lua: &Lua, args: &Arguments, i: i32) -> Result<i32, Failure> {
    let n = match args.number(i)? {
        Some(n) => Some(n),
        None => lua.coerce_number(args.get(i)?)?,
    };
    let Some(n) = n else {
        return Err(Failure::Argument(
            i,
            format!("number expected, got {}", type_name(&args.get(i)?)),
        ));
    };
    // C converts to lua_Integer by truncation (out of range gives i64::MIN on x86-64), then
    // keeps the low 32 bits.
    let wide = if (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&n) {
        n as i64
    } else {
        i64::MIN
    };
    Ok(wide as i32)
}

/// lua_cjson's `json_integer_option`: sets `setting` from argument `i` if given, within
/// `min..=max` (an out-of-range value is reported against argument 1, as lua_cjson does).
fn integer_option(
    lua: &Lua,
    args: &Arguments,
    i: i32,
    setting: &mut i32,
    min: i32,
    max: i32,
) -> Result<Value, Failure> {
    if !args.get(i)?.is_nil() {
        let value = check_integer(lua, args, i)?;
        if !(min..=max).contains(&value) {
            return Err(Failure::Argument(
                1,
                format!("expected integer between {min} and {max}"),
            ));
        }
        *setting = value;
    }
    Ok(Value::Integer(*setting as mlua::Integer))
}

/// lua_cjson's `json_enum_option` with a boolean meaning `options[0]` or `options[1]`: sets
/// `setting` from argument `i` if given, and reports it as a boolean or, past the first two,
/// as its name.
fn enum_option(
    lua: &Lua,
    args: &Arguments,
    i: i32,
    setting: &mut usize,
    options: &[&str],
) -> Result<Value, Failure> {
    match args.get(i)? {
        Value::Nil => {}
        Value::Boolean(b) => *setting = usize::from(b),
        other => {
            let name = match &other {
                Value::String(s) => Some(s.clone()),
                Value::Integer(_) | Value::Number(_) => lua.coerce_string(other.clone())?,
                _ => None,
            };
            let Some(name) = name else {
                return Err(Failure::Argument(
                    i,
                    format!("string expected, got {}", type_name(&other)),
                ));
            };
            let name = name.as_bytes();
            match options.iter().position(|o| o.as_bytes() == &name[..]) {
                Some(index) => *setting = index,
                None => {
                    return Err(Failure::Argument(
                        i,
                        format!("invalid option '{}'", String::from_utf8_lossy(&name)),
                    ))
                }
            }
        }
    }
    Ok(match *setting {
        0 | 1 => Value::Boolean(*setting == 1),
        n => Value::String(lua.create_string(options[n])?),
    })
}

const OFF_ON: &[&str] = &["off", "on"];

/// Applies `change` to a copy of the settings and stores it even when `change` fails half way,
/// as lua_cjson keeps the settings it changed before an invalid argument.
fn configure(
    config: &Cell<Config>,
    change: impl FnOnce(&mut Config) -> Result<Vec<Value>, Failure>,
) -> Result<Vec<Value>, Failure> {
    let mut settings = config.get();
    let outcome = change(&mut settings);
    config.set(settings);
    outcome
}

/// `cjson.encode_sparse_array([convert [, ratio [, safe]]])`.
fn encode_sparse_array(
    lua: &Lua,
    args: &Arguments,
    config: &Cell<Config>,
) -> Result<Vec<Value>, Failure> {
    args.at_most(3)?;
    configure(config, |c| {
        let mut convert = usize::from(c.sparse_convert);
        let outcome = enum_option(lua, args, 1, &mut convert, OFF_ON);
        c.sparse_convert = convert == 1;
        Ok(vec![
            outcome?,
            integer_option(lua, args, 2, &mut c.sparse_ratio, 0, i32::MAX)?,
            integer_option(lua, args, 3, &mut c.sparse_safe, 0, i32::MAX)?,
        ])
    })
}

/// A configuration function over one integer setting within `min..=max`:
/// `cjson.encode_max_depth`, `cjson.decode_max_depth`, `cjson.encode_number_precision`.
fn integer_setting(
    lua: &Lua,
    args: &Arguments,
    config: &Cell<Config>,
    setting: fn(&mut Config) -> &mut i32,
    (min, max): (i32, i32),
) -> Result<Vec<Value>, Failure> {
    args.at_most(1)?;
    configure(config, |c| {
        Ok(vec![integer_option(lua, args, 1, setting(c), min, max)?])
    })
}

/// A configuration function over one on/off setting: `cjson.encode_keep_buffer`,
/// `cjson.decode_invalid_numbers`.
fn switch_setting(
    lua: &Lua,
    args: &Arguments,
    config: &Cell<Config>,
    setting: fn(&mut Config) -> &mut bool,
) -> Result<Vec<Value>, Failure> {
    args.at_most(1)?;
    configure(config, |c| {
        let mut on = usize::from(*setting(c));
        let outcome = enum_option(lua, args, 1, &mut on, OFF_ON);
        *setting(c) = on == 1;
        Ok(vec![outcome?])
    })
}

/// `cjson.encode_invalid_numbers([setting])`: `false`/`"off"`, `true`/`"on"` or `"null"`.
fn encode_invalid_numbers(
    lua: &Lua,
    args: &Arguments,
    config: &Cell<Config>,
) -> Result<Vec<Value>, Failure> {
    const OPTIONS: [InvalidNumbers; 3] = [
        InvalidNumbers::Off,
        InvalidNumbers::On,
        InvalidNumbers::Null,
    ];
    args.at_most(1)?;
    configure(config, |c| {
        let mut setting = OPTIONS
            .iter()
            .position(|&o| o == c.encode_invalid_numbers)
            .unwrap_or(0);
        let outcome = enum_option(lua, args, 1, &mut setting, &["off", "on", "null"]);
        c.encode_invalid_numbers = OPTIONS[setting.min(2)];
        Ok(vec![outcome?])
    })
}

// ---------------------------------------------------------------------------------------------
// Encoding

/// `cjson.encode(value)`.
fn encode_entry(lua: &Lua, args: &Arguments, config: &Cell<Config>) -> Result<Vec<Value>, Failure> {
    args.exactly_one()?;
    let value = match args.number(1)? {
        Some(n) => Value::Number(n),
        None => args.get(1)?,
    };
    let json = encode(lua, &config.get(), value)?;
    Ok(vec![Value::String(lua.create_string(json)?)])
}

/// How a table is being written.
enum Walk {
    /// An array whose elements `next..=len` are still to come; the chain holds the table.
    Array {
        next: mlua::Integer,
        len: mlua::Integer,
    },
    /// An object whose members `next..=len` are still to come; the chain holds its keys and its
    /// values, listed by [`MEMBERS`].
    Object {
        next: mlua::Integer,
        len: mlua::Integer,
    },
}

impl Walk {
    /// The Lua stack slots lua_cjson holds while inside this table: the element, or the key
    /// and the value.
    fn slots(&self) -> i64 {
        match self {
            Walk::Array { .. } => 1,
            Walk::Object { .. } => 2,
        }
    }
}

/// Lists a table's members in `next` order as two arrays, keys and values. Reading them from
/// these arrays keeps every key exact; iterating from Rust would hand each key back to `next`
/// through mlua, which reads a number key below 2^-52 as 0, a key `next` cannot find.
const MEMBERS: &str = "local next = next
return function(t)
  local keys, values, n = {}, {}, 0
  for k, v in next, t do
    n = n + 1
    keys[n] = k
    values[n] = v
  end
  return keys, values, n
end";

/// Where [`install`] keeps the compiled [`MEMBERS`] in the registry.
const MEMBERS_KEY: &str = "shardis.cjson.members";

/// The tables being walked at each level, kept in a Lua table (two entries per level) rather
/// than as mlua handles: every handle takes a slot of mlua's reference stack, which has room
/// for fewer than 8000, and thousands of levels are allowed.
struct Chain(Table);

impl Chain {
    fn get<T: FromLua>(&self, level: usize, item: mlua::Integer) -> mlua::Result<T> {
        self.0.raw_get(2 * level as mlua::Integer + item)
    }

    fn set(&self, level: usize, item: mlua::Integer, value: impl IntoLua) -> mlua::Result<()> {
        self.0.raw_set(2 * level as mlua::Integer + item, value)
    }

    /// Forgets the tables of `level`, so the collector may take them.
    fn clear(&self, level: usize) -> mlua::Result<()> {
        self.set(level, 1, Value::Nil)?;
        self.set(level, 2, Value::Nil)
    }
}

/// Writes `value` as JSON.
fn encode(lua: &Lua, config: &Config, value: Value) -> Result<Vec<u8>, Failure> {
    let members: Function = lua.named_registry_value(MEMBERS_KEY)?;
    let chain = Chain(lua.create_table()?);
    let mut out = Vec::new();
    let mut walks: Vec<Walk> = Vec::new();
    // The innermost walk's tables, also in the chain: the array, or the keys and the values.
    let mut top: Option<(Table, Option<Table>)> = None;
    // The argument itself holds one slot.
    let mut slots = 1;
    let mut pending = Some(value);
    loop {
        if let Some(value) = pending.take() {
            match value {
                Value::Table(table) => {
                    let depth = walks.len() + 1;
                    if depth > config.encode_max_depth as usize || slots + 3 > MAX_C_STACK {
                        return Err(Failure::Raise(format!(
                            "Cannot serialise, excessive nesting ({depth})"
                        )));
                    }
                    let (walk, tables) = open_table(config, &members, table)?;
                    chain.set(walks.len(), 1, &tables.0)?;
                    chain.set(walks.len(), 2, tables.1.clone())?;
                    top = Some(tables);
                    out.push(match walk {
                        Walk::Array { .. } => b'[',
                        Walk::Object { .. } => b'{',
                    });
                    slots += walk.slots();
                    walks.push(walk);
                }
                other => write_scalar(config, &mut out, &other)?,
            }
        }
        let (Some(walk), Some((first, second))) = (walks.last_mut(), &top) else {
            return Ok(out);
        };
        match (walk, second) {
            (Walk::Array { next, len }, _) if *next <= *len => {
                if *next > 1 {
                    out.push(b',');
                }
                pending = Some(exact_at(first, *next)?);
                *next += 1;
                continue;
            }
            (Walk::Object { next, len }, Some(values)) if *next <= *len => {
                if *next > 1 {
                    out.push(b',');
                }
                match first.raw_get::<Value>(*next)? {
                    Value::String(s) => write_string(&mut out, &s.as_bytes()),
                    Value::Integer(_) | Value::Number(_) => {
                        out.push(b'"');
                        write_number(config, &mut out, first.raw_get(*next)?)?;
                        out.push(b'"');
                    }
                    other => {
                        return Err(Failure::Raise(format!(
                            "Cannot serialise {}: table key must be a number or string",
                            type_name(&other)
                        )))
                    }
                }
                out.push(b':');
                pending = Some(exact_at(values, *next)?);
                *next += 1;
                continue;
            }
            (Walk::Array { .. }, _) => out.push(b']'),
            (Walk::Object { .. }, _) => out.push(b'}'),
        }
        if let Some(done) = walks.pop() {
            slots -= done.slots();
            chain.clear(walks.len())?;
        }
        top = match walks.len().checked_sub(1) {
            Some(level) => Some((chain.get(level, 1)?, chain.get(level, 2)?)),
            None => None,
        };
    }
}

/// `table[i]`, with a number read exactly (mlua reads a number below 2^-52, or -0, as the
/// integer 0).
fn exact_at(table: &Table, i: mlua::Integer) -> mlua::Result<Value> {
    match table.raw_get::<Value>(i)? {
        Value::Integer(0) => table.raw_get(i).map(Value::Number),
        other => Ok(other),
    }
}

/// Decides whether `table` is written as an array or an object, as lua_cjson's
/// `lua_array_length` does (an array when every key is a positive integer, unless it is
/// excessively sparse); returns the walk and its tables (the array, or the keys and the
/// values).
fn open_table(
    config: &Config,
    members: &Function,
    table: Table,
) -> Result<(Walk, (Table, Option<Table>)), Failure> {
    let (keys, values, len): (Table, Table, mlua::Integer) = members.call(&table)?;
    // C's `int` counters: a key past i32::MAX stores as i32::MIN (x86-64 conversion).
    let (mut max, mut items, mut array) = (0i32, 0i32, true);
    for i in 1..=len {
        // A number key that mlua reads as 0 is below 1 either way.
        let k = match keys.raw_get::<Value>(i)? {
            Value::Integer(k) => k as f64,
            Value::Number(k) => k,
            _ => f64::NAN,
        };
        if k.floor() == k && k >= 1.0 {
            if k > f64::from(max) {
                max = if k < 2_147_483_648.0 {
                    k as i32
                } else {
                    i32::MIN
                };
            }
            items = items.wrapping_add(1);
        } else {
            array = false;
            break;
        }
    }
    if array
        && config.sparse_ratio > 0
        && max > items.wrapping_mul(config.sparse_ratio)
        && max > config.sparse_safe
    {
        if !config.sparse_convert {
            return Err(Failure::Raise(
                "Cannot serialise table: excessively sparse array".to_owned(),
            ));
        }
        array = false;
    }
    if array && max > 0 {
        let walk = Walk::Array {
            next: 1,
            len: max as mlua::Integer,
        };
        return Ok((walk, (table, None)));
    }
    Ok((Walk::Object { next: 1, len }, (keys, Some(values))))
}

fn write_scalar(config: &Config, out: &mut Vec<u8>, value: &Value) -> Result<(), Failure> {
    match value {
        Value::String(s) => write_string(out, &s.as_bytes()),
        Value::Integer(n) => write_number(config, out, *n as f64)?,
        Value::Number(n) => write_number(config, out, *n)?,
        Value::Boolean(true) => out.extend_from_slice(b"true"),
        Value::Boolean(false) => out.extend_from_slice(b"false"),
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        other => {
            return Err(Failure::Raise(format!(
                "Cannot serialise {}: type not supported",
                type_name(other)
            )))
        }
    }
    Ok(())
}

/// A JSON string: `"`, `\` and `/` escaped with a backslash, control characters and DEL as
/// `\u00XX` (or `\b \t \n \f \r`), every other byte as it is.
fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            0x08 => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0..=0x1f | 0x7f => out.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
            _ => out.push(c),
        }
    }
    out.push(b'"');
}

fn write_number(config: &Config, out: &mut Vec<u8>, n: f64) -> Result<(), Failure> {
    if !n.is_finite() {
        match config.encode_invalid_numbers {
            InvalidNumbers::Off => {
                return Err(Failure::Raise(
                    "Cannot serialise number: must not be NaN or Inf".to_owned(),
                ))
            }
            // lua_cjson writes NaN itself, as `%g` may write `-nan`.
            InvalidNumbers::On if n.is_nan() => {
                out.extend_from_slice(b"nan");
                return Ok(());
            }
            InvalidNumbers::On => {}
            InvalidNumbers::Null => {
                out.extend_from_slice(b"null");
                return Ok(());
            }
        }
    }
    format_g(out, n, config.precision.clamp(1, 14) as usize);
    Ok(())
}

/// C's `printf("%.{precision}g", n)`: `precision` significant digits, trailing zeros dropped,
/// in exponent form when the exponent is below -4 or at least `precision`.
pub(crate) fn format_g(out: &mut Vec<u8>, n: f64, precision: usize) {
    if n.is_sign_negative() {
        out.push(b'-');
    }
    let n = n.abs();
    if n.is_nan() {
        out.extend_from_slice(b"nan");
        return;
    }
    if n.is_infinite() {
        out.extend_from_slice(b"inf");
        return;
    }
    if n.fract() == 0.0 && n < 10f64.powi(precision as i32) {
        // An integer with at most `precision` digits is written whole.
        out.extend_from_slice((n as u64).to_string().as_bytes());
        return;
    }
    // Rust rounds the exact value half to even, as glibc does.
    let scientific = format!("{n:.*e}", precision - 1);
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if exponent < -4 || exponent >= precision as i32 {
        out.extend_from_slice(trim_fraction(mantissa).as_bytes());
        out.push(b'e');
        out.push(if exponent < 0 { b'-' } else { b'+' });
        out.extend_from_slice(format!("{:02}", exponent.unsigned_abs()).as_bytes());
    } else {
        let decimals = (precision as i32 - 1 - exponent).max(0) as usize;
        out.extend_from_slice(trim_fraction(&format!("{n:.decimals$}")).as_bytes());
    }
}

/// `digits` without the trailing zeros of its fraction (and without the point if nothing is
/// left after it).
fn trim_fraction(digits: &str) -> &str {
    if digits.contains('.') {
        digits.trim_end_matches('0').trim_end_matches('.')
    } else {
        digits
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding

/// `cjson.decode(text)`.
fn decode_entry(lua: &Lua, args: &Arguments, config: &Cell<Config>) -> Result<Vec<Value>, Failure> {
    args.exactly_one()?;
    // `luaL_checklstring`: a number is read as Lua writes it, with `%.14g`.
    let text = match args.get(1)? {
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Integer(_) | Value::Number(_) => {
            let mut text = Vec::new();
            format_g(&mut text, args.number(1)?.unwrap_or(0.0), 14);
            text
        }
        other => {
            return Err(Failure::Argument(
                1,
                format!("string expected, got {}", type_name(&other)),
            ))
        }
    };
    // A NUL in the first two bytes means UTF-16 or UTF-32 (RFC 4627).
    if text.len() >= 2 && (text[0] == 0 || text[1] == 0) {
        return Err(Failure::Raise(
            "JSON parser does not support UTF-16 or UTF-32".to_owned(),
        ));
    }
    let mut parser = Parser {
        text: &text,
        at: 0,
        config: config.get(),
    };
    Ok(vec![parser.parse(lua)?])
}

/// A JSON token and where it starts.
struct Token {
    kind: Kind,
    at: usize,
}

enum Kind {
    ObjectBegin,
    ObjectEnd,
    ArrayBegin,
    ArrayEnd,
    String(Vec<u8>),
    Number(f64),
    Boolean(bool),
    Null,
    Colon,
    Comma,
    End,
    /// Not a token: what is wrong there.
    Error(&'static str),
}

impl Kind {
    /// The name lua_cjson's errors give the token.
    fn name(&self) -> &'static str {
        match self {
            Kind::ObjectBegin => "T_OBJ_BEGIN",
            Kind::ObjectEnd => "T_OBJ_END",
            Kind::ArrayBegin => "T_ARR_BEGIN",
            Kind::ArrayEnd => "T_ARR_END",
            Kind::String(_) => "T_STRING",
            Kind::Number(_) => "T_NUMBER",
            Kind::Boolean(_) => "T_BOOLEAN",
            Kind::Null => "T_NULL",
            Kind::Colon => "T_COLON",
            Kind::Comma => "T_COMMA",
            Kind::End => "T_END",
            Kind::Error(what) => what,
        }
    }
}

/// How a table is being read; the chain holds the table and, for an object, the key of the
/// value being read.
enum Fill {
    /// An array and the index of its next element.
    Array(mlua::Integer),
    Object,
}

impl Fill {
    /// The Lua stack slots lua_cjson holds while inside this table: the table, plus the key.
    fn slots(&self) -> i64 {
        match self {
            Fill::Array(_) => 1,
            Fill::Object => 2,
        }
    }
}

struct Parser<'a> {
    text: &'a [u8],
    at: usize,
    config: Config,
}

impl Parser<'_> {
    /// The byte at `i`, or NUL past the end: lua_cjson reads a NUL-terminated string, so a NUL
    /// byte ends the text wherever it is.
    fn byte(&self, i: usize) -> u8 {
        self.text.get(i).copied().unwrap_or(0)
    }

    fn error(expected: &str, token: &Token) -> Failure {
        Failure::Raise(format!(
            "Expected {expected} but found {} at character {}",
            token.kind.name(),
            token.at + 1
        ))
    }

    /// Reads the whole text as one value, with an explicit stack of the tables being filled.
    fn parse(&mut self, lua: &Lua) -> Result<Value, Failure> {
        let chain = Chain(lua.create_table()?);
        let mut fills: Vec<Fill> = Vec::new();
        // The innermost table and the key of its value being read; the chain holds those of
        // the levels around it.
        let mut top: Option<(Table, Option<mlua::String>)> = None;
        // The argument holds one Lua stack slot.
        let mut slots = 1;
        let mut token = self.next_token();
        loop {
            // `token` starts a value.
            let mut value = match token.kind {
                Kind::String(s) => Value::String(lua.create_string(s)?),
                Kind::Number(n) => Value::Number(n),
                Kind::Boolean(b) => Value::Boolean(b),
                Kind::Null => null(),
                Kind::ArrayBegin | Kind::ObjectBegin => {
                    let object = matches!(token.kind, Kind::ObjectBegin);
                    let depth = fills.len() + 1;
                    let needed = if object { 3 } else { 2 };
                    if depth > self.config.decode_max_depth as usize || slots + needed > MAX_C_STACK
                    {
                        return Err(Failure::Raise(format!(
                            "Found too many nested data structures ({depth}) at character {}",
                            self.at
                        )));
                    }
                    let table = lua.create_table()?;
                    let next = self.next_token();
                    match next.kind {
                        Kind::ArrayEnd if !object => Value::Table(table),
                        Kind::ObjectEnd if object => Value::Table(table),
                        kind => {
                            let first = Token { kind, at: next.at };
                            let key = if object {
                                let key = self.member_key(lua, first)?;
                                token = self.next_token();
                                Some(key)
                            } else {
                                token = first;
                                None
                            };
                            if let Some((parent, parent_key)) = top.take() {
                                chain.set(fills.len() - 1, 1, parent)?;
                                chain.set(fills.len() - 1, 2, parent_key)?;
                            }
                            fills.push(if object { Fill::Object } else { Fill::Array(1) });
                            slots += fills.last().map_or(0, Fill::slots);
                            top = Some((table, key));
                            continue;
                        }
                    }
                }
                _ => return Err(Self::error("value", &token)),
            };
            // Store the finished value in its table, and close the tables it finishes.
            loop {
                let (Some(fill), Some((table, key))) = (fills.last_mut(), &mut top) else {
                    let end = self.next_token();
                    if !matches!(end.kind, Kind::End) {
                        return Err(Self::error("the end", &end));
                    }
                    return Ok(value);
                };
                let after = self.next_token();
                match fill {
                    Fill::Array(next) => {
                        table.raw_set(*next, value)?;
                        *next += 1;
                        match after.kind {
                            Kind::ArrayEnd => {}
                            Kind::Comma => {
                                token = self.next_token();
                                break;
                            }
                            _ => return Err(Self::error("comma or array end", &after)),
                        }
                    }
                    Fill::Object => {
                        table.raw_set(key.take(), value)?;
                        match after.kind {
                            Kind::ObjectEnd => {}
                            Kind::Comma => {
                                let next = self.next_token();
                                *key = Some(self.member_key(lua, next)?);
                                token = self.next_token();
                                break;
                            }
                            _ => return Err(Self::error("comma or object end", &after)),
                        }
                    }
                }
                if let Some(done) = fills.pop() {
                    slots -= done.slots();
                }
                value = match top.take() {
                    Some((table, _)) => Value::Table(table),
                    None => Value::Nil,
                };
                if let Some(level) = fills.len().checked_sub(1) {
                    top = Some((chain.get(level, 1)?, chain.get(level, 2)?));
                    chain.clear(level)?;
                }
            }
        }
    }

    /// An object's key, which `token` must be, and the colon after it.
    fn member_key(&mut self, lua: &Lua, token: Token) -> Result<mlua::String, Failure> {
        let Kind::String(key) = token.kind else {
            return Err(Self::error("object key string", &token));
        };
        let key = lua.create_string(key)?;
        let colon = self.next_token();
        if !matches!(colon.kind, Kind::Colon) {
            return Err(Self::error("colon", &colon));
        }
        Ok(key)
    }

    fn next_token(&mut self) -> Token {
        while matches!(self.byte(self.at), b' ' | b'\t' | b'\n' | b'\r') {
            self.at += 1;
        }
        let at = self.at;
        let single = |kind| (kind, 1);
        let (kind, len) = match self.byte(at) {
            0 => (Kind::End, 0),
            b'{' => single(Kind::ObjectBegin),
            b'}' => single(Kind::ObjectEnd),
            b'[' => single(Kind::ArrayBegin),
            b']' => single(Kind::ArrayEnd),
            b',' => single(Kind::Comma),
            b':' => single(Kind::Colon),
            b'"' => return self.string_token(),
            b'-' | b'0'..=b'9' => {
                if !self.config.decode_invalid_numbers && self.is_invalid_number() {
                    (Kind::Error("invalid number"), 0)
                } else {
                    self.number()
                }
            }
            _ if self.text[at..].starts_with(b"true") => (Kind::Boolean(true), 4),
            _ if self.text[at..].starts_with(b"false") => (Kind::Boolean(false), 5),
            _ if self.text[at..].starts_with(b"null") => (Kind::Null, 4),
            _ if self.config.decode_invalid_numbers && self.is_invalid_number() => self.number(),
            _ => (Kind::Error("invalid token"), 0),
        };
        self.at += len;
        Token { kind, at }
    }

    /// What strict JSON refuses but `strtod` reads: a leading `+`, hex, leading zeros, `inf`
    /// and `nan` (lua_cjson's `json_is_invalid_number`).
    fn is_invalid_number(&self) -> bool {
        let mut p = self.at;
        match self.byte(p) {
            b'+' => return true,
            b'-' => p += 1,
            _ => {}
        }
        let c = self.byte(p);
        if c == b'0' {
            let next = self.byte(p + 1);
            return next | 0x20 == b'x' || next.is_ascii_digit();
        }
        if c <= b'9' {
            return false;
        }
        let word = [self.byte(p), self.byte(p + 1), self.byte(p + 2)].map(|b| b | 0x20);
        &word == b"inf" || &word == b"nan"
    }

    fn number(&self) -> (Kind, usize) {
        match strtod(&self.text[self.at..]) {
            Some((n, len)) => (Kind::Number(n), len),
            None => (Kind::Error("invalid number"), 0),
        }
    }

    /// A string token; the error positions are those lua_cjson reports.
    fn string_token(&mut self) -> Token {
        let start = self.at;
        let mut s = Vec::new();
        self.at += 1;
        loop {
            let c = self.byte(self.at);
            match c {
                b'"' => break,
                0 => {
                    return Token {
                        kind: Kind::Error("unexpected end of string"),
                        at: self.at,
                    }
                }
                b'\\' => {
                    let unescaped = match self.byte(self.at + 1) {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 0x08,
                        b't' => b'\t',
                        b'n' => b'\n',
                        b'f' => 0x0c,
                        b'r' => b'\r',
                        b'u' => match self.unicode_escape() {
                            Some((code, len)) => {
                                let mut utf8 = [0; 4];
                                s.extend_from_slice(code.encode_utf8(&mut utf8).as_bytes());
                                self.at += len;
                                continue;
                            }
                            None => {
                                return Token {
                                    kind: Kind::Error("invalid unicode escape code"),
                                    at: self.at,
                                }
                            }
                        },
                        _ => {
                            return Token {
                                kind: Kind::Error("invalid escape code"),
                                at: self.at,
                            }
                        }
                    };
                    s.push(unescaped);
                    self.at += 2;
                }
                _ => {
                    s.push(c);
                    self.at += 1;
                }
            }
        }
        self.at += 1;
        Token {
            kind: Kind::String(s),
            at: start,
        }
    }

    /// The character of the `\uXXXX` escape (or surrogate pair) at the cursor, and its length.
    fn unicode_escape(&self) -> Option<(char, usize)> {
        let high = self.hex4(self.at + 2)?;
        if high & 0xf800 != 0xd800 {
            return Some((char::from_u32(high)?, 6));
        }
        // A surrogate pair: a high surrogate, then an escaped low one.
        if high & 0x400 != 0 || self.byte(self.at + 6) != b'\\' || self.byte(self.at + 7) != b'u' {
            return None;
        }
        let low = self.hex4(self.at + 8)?;
        if low & 0xfc00 != 0xdc00 {
            return None;
        }
        let code = (((high & 0x3ff) << 10) | (low & 0x3ff)) + 0x10000;
        Some((char::from_u32(code)?, 12))
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        (at..at + 4).try_fold(0, |code, i| {
            Some(code << 4 | char::from(self.byte(i)).to_digit(16)?)
        })
    }
}

/// C's `strtod` on `text` (which ends at its first NUL): the number at its start and how many
/// bytes it takes, or None when it does not start with one. Reads decimal and hexadecimal
/// floats, `inf`, `infinity` and `nan` (with an optional `(chars)`), any case, signed.
fn strtod(text: &[u8]) -> Option<(f64, usize)> {
    let byte = |i: usize| text.get(i).copied().unwrap_or(0);
    let mut at = 0;
    let negative = byte(0) == b'-';
    if matches!(byte(0), b'+' | b'-') {
        at = 1;
    }
    let sign = |n: f64| if negative { -n } else { n };
    let word = |at: usize, w: &[u8]| (0..w.len()).all(|i| byte(at + i) | 0x20 == w[i]);
    if word(at, b"inf") {
        let len = if word(at + 3, b"inity") { 8 } else { 3 };
        return Some((sign(f64::INFINITY), at + len));
    }
    if word(at, b"nan") {
        let mut len = 3;
        if byte(at + 3) == b'(' {
            let inner = (at + 4..)
                .take_while(|&i| byte(i).is_ascii_alphanumeric() || byte(i) == b'_')
                .count();
            if byte(at + 4 + inner) == b')' {
                len += inner + 2;
            }
        }
        return Some((sign(f64::NAN), at + len));
    }
    let digits = |from: usize, radix: u32| {
        (from..)
            .take_while(|&i| char::from(byte(i)).is_digit(radix))
            .count()
    };
    if byte(at) == b'0' && byte(at + 1) | 0x20 == b'x' {
        if let Some((n, len)) = hex_float(&text[at + 2..]) {
            return Some((sign(n), at + 2 + len));
        }
    }
    let whole = digits(at, 10);
    let mut end = at + whole;
    let mut fraction = 0;
    if byte(end) == b'.' {
        fraction = digits(end + 1, 10);
        end += 1 + fraction;
    }
    if whole + fraction == 0 {
        return None;
    }
    if byte(end) | 0x20 == b'e' {
        let signed = usize::from(matches!(byte(end + 1), b'+' | b'-'));
        let exponent = digits(end + 1 + signed, 10);
        if exponent > 0 {
            end += 1 + signed + exponent;
        }
    }
    // Rust reads "1." and ".5" too, and rounds correctly, as glibc does.
    let n: f64 = std::str::from_utf8(&text[at..end]).ok()?.parse().ok()?;
    Some((sign(n), end))
}

/// The digits of a hexadecimal float after its `0x`: hex digits with an optional point and an
/// optional binary exponent (`p-3`), and how many bytes they take. None when no hex digit
/// follows.
fn hex_float(text: &[u8]) -> Option<(f64, usize)> {
    let byte = |i: usize| text.get(i).copied().unwrap_or(0);
    let hex = |i: usize| char::from(byte(i)).to_digit(16);
    // Up to 60 significant bits, then a sticky bit for any non-zero digit past them, which is
    // all correct rounding to 53 bits needs.
    let (mut bits, mut exponent, mut digits, mut sticky) = (0u64, 0i64, 0, false);
    let mut at = 0;
    let mut point = false;
    loop {
        if byte(at) == b'.' && !point {
            point = true;
            at += 1;
            continue;
        }
        let Some(d) = hex(at) else { break };
        if bits >> 56 == 0 {
            bits = bits << 4 | u64::from(d);
            exponent -= if point { 4 } else { 0 };
        } else {
            sticky |= d != 0;
            exponent += if point { 0 } else { 4 };
        }
        digits += 1;
        at += 1;
    }
    if digits == 0 {
        return None;
    }
    if byte(at) | 0x20 == b'p' {
        let negative = byte(at + 1) == b'-';
        let signed = usize::from(matches!(byte(at + 1), b'+' | b'-'));
        let count = (at + 1 + signed..)
            .take_while(|&i| byte(i).is_ascii_digit())
            .count();
        if count > 0 {
            let written = (at + 1 + signed..at + 1 + signed + count).fold(0i64, |e, i| {
                (e * 10 + i64::from(byte(i) - b'0')).min(100_000)
            });
            exponent += if negative { -written } else { written };
            at += 1 + signed + count;
        }
    }
    let mut n = (bits | u64::from(sticky)) as f64;
    // Scale in steps that keep each power of two finite.
    while exponent != 0 && n != 0.0 && n.is_finite() {
        let step = exponent.clamp(-1000, 1000);
        n *= 2f64.powi(step as i32);
        exponent -= step;
    }
    Some((n, at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlua::StdLib;

    fn lua() -> Lua {
        let lua = Lua::new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH,
            mlua::LuaOptions::new(),
        )
        .unwrap();
        install(&lua).unwrap();
        lua
    }

    fn eval(lua: &Lua, code: &str) -> String {
        match lua.load(code).set_name("@user_script").eval::<Value>() {
            Ok(Value::String(s)) => s.to_string_lossy(),
            Ok(other) => format!("{other:?}"),
            Err(mlua::Error::RuntimeError(e)) => format!("error: {e}"),
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn format_g_matches_c() {
        let lua = lua();
        let format: Function = lua.load("string.format").eval().unwrap();
        let numbers = [
            0.0,
            -0.0,
            0.1,
            1.0 / 3.0,
            -2.5,
            100.0,
            1e14,
            1e15,
            123456789012345.0,
            123456789012335.0,
            1e-4,
            1.5e-5,
            1e300,
            5e-324,
            f64::MAX,
            0.000123456789,
            99999999999999.5,
        ];
        for precision in [1, 3, 14] {
            let spec = format!("%.{precision}g");
            for n in numbers {
                let want: String = format.call((spec.as_str(), n)).unwrap();
                let mut got = Vec::new();
                format_g(&mut got, n, precision);
                assert_eq!(String::from_utf8(got).unwrap(), want, "{spec} of {n:e}");
            }
        }
    }

    #[test]
    fn strtod_reads_what_c_reads() {
        let cases: &[(&str, f64, usize)] = &[
            ("0", 0.0, 1),
            ("-12.5e2x", -1250.0, 7),
            ("1.", 1.0, 2),
            ("-.5", -0.5, 3),
            ("1e", 1.0, 1),
            ("1e+", 1.0, 1),
            ("+7", 7.0, 2),
            ("0x1F", 31.0, 4),
            ("0x", 0.0, 1),
            ("0x1.8p1", 3.0, 7),
            ("0X.8", 0.5, 4),
            ("1e400", f64::INFINITY, 5),
            ("-Infinity", f64::NEG_INFINITY, 9),
            ("infinit", f64::INFINITY, 3),
            ("0.1", 0.1, 3),
        ];
        for &(text, n, len) in cases {
            assert_eq!(strtod(text.as_bytes()), Some((n, len)), "{text}");
        }
        let (nan, len) = strtod(b"nan(x1)").unwrap();
        assert!(nan.is_nan());
        assert_eq!(len, 7);
        assert_eq!(strtod(b"-"), None);
        assert_eq!(strtod(b"."), None);
        assert_eq!(strtod(b"e5"), None);
    }

    #[test]
    fn round_trips_and_errors() {
        let lua = lua();
        let cases = [
            ("return cjson.encode({1, 'a/b', true, {x = cjson.null}})", "[1,\"a\\/b\",true,{\"x\":null}]"),
            ("return cjson.encode({})", "{}"),
            ("return cjson.encode(-0)", "-0"),
            ("return cjson.encode(1e-300)", "1e-300"),
            ("return cjson.encode({[1] = 1, [3] = 3})", "[1,null,3]"),
            ("return cjson.encode({[1e-300] = -0})", "{\"1e-300\":-0}"),
            // More members than mlua has reference slots.
            ("local t = {} for i = 1, 20000 do t['k' .. i] = {i} end \
              return tostring(#cjson.encode(t))", "317789"),
            ("return cjson.encode({[1] = 1, [20] = 2})", "error: user_script:1: Cannot serialise table: excessively sparse array"),
            ("return cjson.encode(string.len)", "error: user_script:1: Cannot serialise function: type not supported"),
            ("return cjson.encode()", "error: user_script:1: bad argument #1 to 'encode' (expected 1 argument)"),
            ("return cjson.decode('[1, \"\\\\u00e9\", {\"a\": null}]')[2]", "é"),
            ("return cjson.decode('x')", "error: user_script:1: Expected value but found invalid token at character 1"),
            ("return cjson.decode('[[1]')", "error: user_script:1: Expected comma or array end but found T_END at character 5"),
            ("return cjson.encode(cjson.decode('{\"a\":[1,2.5,\"x\"]}'))", "{\"a\":[1,2.5,\"x\"]}"),
            ("return select(2, pcall(cjson.decode, '{1}'))", "Expected object key string but found T_NUMBER at character 2"),
            ("return cjson.encode_number_precision(20)", "error: user_script:1: bad argument #1 to 'encode_number_precision' (expected integer between 1 and 14)"),
        ];
        for (code, want) in cases {
            // An error comes back with mlua's traceback after it.
            let got = eval(&lua, code);
            assert!(got.starts_with(want), "{code}: {got}");
        }
    }

    /// Redis 7.0's answers with both limits raised: the Lua C stack stops arrays and objects
    /// at different depths, and encoding a level needs one more slot than decoding it.
    #[test]
    fn nesting_stops_where_redis_stops() {
        let lua = lua();
        let deep = |open: &str, inner: &str, close: &str, n: usize| {
            eval(
                &lua,
                &format!(
                    "cjson.decode_max_depth(100000) cjson.encode_max_depth(100000) \
                     local ok, t = pcall(cjson.decode, \
                         string.rep('{open}', {n}) .. '{inner}' .. string.rep('{close}', {n})) \
                     if not ok then return t end \
                     local ok, json = pcall(cjson.encode, t) \
                     if not ok then return json end \
                     return tostring(#json)"
                ),
            )
        };
        assert_eq!(deep("[", "", "]", 7997), "15994");
        assert_eq!(
            deep("[", "", "]", 7998),
            "Cannot serialise, excessive nesting (7998)"
        );
        assert_eq!(
            deep("[", "", "]", 7999),
            "Found too many nested data structures (7999) at character 7999"
        );
        assert_eq!(deep("{\"a\":", "1", "}", 3999), "23995");
        assert_eq!(
            deep("{\"a\":", "1", "}", 4000),
            "Found too many nested data structures (4000) at character 19996"
        );
    }
}
