//! The errors a command can answer, and the one place that turns each into Redis's exact text.

use std::fmt;

/// A command's failure. [`fmt::Display`] gives the exact text Redis replies with (the part after
/// the `-`), which clients and tests match on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CmdError {
    /// The key holds a value of another type.
    WrongType,
    /// An argument or a stored value is not a 64-bit integer.
    NotInteger,
    /// An argument is not a valid float.
    NotFloat,
    /// Arithmetic would leave the 64-bit range.
    Overflow,
    /// `DECRBY key -9223372036854775808`: the decrement itself cannot be negated.
    DecrementOverflow,
    /// Options that are unknown, missing or in conflict.
    Syntax,
    /// The command needs a key that does not exist.
    NoSuchKey,
    /// An expire time that is not positive or overflows, for the named command.
    InvalidExpireTime(&'static str),
    /// The command name is not known; holds the name and the arguments.
    UnknownCommand(String),
    /// Wrong number of arguments for the named command (its full name, e.g. `client|kill`).
    WrongArity(String),
    /// An unknown subcommand of a container command such as `CLIENT`.
    UnknownSubcommand {
        /// The subcommand as sent.
        sub: String,
        /// The container command, upper case (`CLIENT`).
        command: &'static str,
    },
    /// `SELECT` of a database that does not exist.
    DbIndexOutOfRange,
    /// A client that has not authenticated sent a command that needs it.
    NoAuth,
    /// A number argument is outside the range a command accepts.
    OutOfRange,
    /// A number argument is outside `min..=max` (Redis 7.0's wording, with the bounds).
    OutOfRangeBetween(i64, i64),
    /// The stored hash field value is not an integer (`HINCRBY`).
    HashValueNotInteger,
    /// The stored hash field value is not a float (`HINCRBYFLOAT`).
    HashValueNotFloat,
    /// An increment argument is NaN or infinite.
    NanOrInfinity,
    /// The result of an increment would be NaN or infinite.
    IncrementNanOrInfinity,
    /// A `SCAN`-family cursor that is not an unsigned integer.
    InvalidCursor,
    /// A negative field expire time.
    NegativeExpireTime,
    /// The `FIELDS` keyword of a field-TTL command is missing or misplaced.
    FieldsMissing,
    /// `numfields` is not a positive integer (`HTTL`, `HPERSIST`, `HGETEX`, `HGETDEL`).
    NumFieldsNotPositive,
    /// `numfields` is not a positive integer (the `HEXPIRE` family's wording).
    NumFieldsNotGreaterThanZero,
    /// `numfields` differs from the number of fields given.
    NumFieldsMismatch,
    /// `HSETEX`'s `numfields` is not a positive 32-bit integer.
    InvalidNumberOfFields,
    /// An option keyword the command does not know, as sent.
    UnknownArgument(String),
    /// An expiry option without its time.
    MissingExpireTime,
    /// Both `FNX` and `FXX`.
    ConflictingFieldCondition,
    /// More than one of `EX`, `PX`, `EXAT`, `PXAT`, `KEEPTTL`.
    ConflictingExpiry,
    /// A reply that would exceed what one command may produce, for the named command.
    ReplyTooLarge(&'static str),
    /// `EVALSHA` of a script this shard does not have.
    NoScript,
    /// A script has run past `busy-reply-threshold`; only a few commands are served.
    Busy,
    /// `SCRIPT KILL` with no script running.
    NotBusy,
    /// `SCRIPT KILL` of a script that has already written.
    Unkillable,
    /// A negative offset (`SETRANGE`).
    OffsetOutOfRange,
    /// A string would pass `proto-max-bulk-len` (`APPEND`, `SETRANGE`).
    StringTooLong,
    /// An index past the end of a list (`LSET`).
    IndexOutOfRange,
    /// A count that must be positive is not (`LPOP key count`).
    NotPositive,
    /// `RENAME`-like commands asked to move a key onto itself (`COPY k k`, `MOVE k <same db>`).
    SameObject,
    /// `EXPIRE ... NX` combined with `XX`, `GT` or `LT`.
    ExpireNxConflict,
    /// `EXPIRE ... GT LT`.
    ExpireGtLtConflict,
    /// An `EXPIRE` option that does not exist; holds it as sent.
    UnsupportedOption(String),
    /// `SWAPDB` with a database that is not a number; holds `first` or `second`.
    InvalidDbIndex(&'static str),
    /// `LPOS ... RANK 0`.
    RankZero,
    /// A negative `COUNT` or `MAXLEN` (`LPOS`); holds the option's name.
    CantBeNegative(&'static str),
    /// `OBJECT FREQ` without an LFU eviction policy.
    NoLfuPolicy,
    /// `INCREX ... LBOUND l UBOUND u` with `l > u`.
    BoundsConflict,
    /// Any other error, with its full text (code included).
    Other(String),
}

impl fmt::Display for CmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CmdError::WrongType => {
                f.write_str("WRONGTYPE Operation against a key holding the wrong kind of value")
            }
            CmdError::NotInteger => f.write_str("ERR value is not an integer or out of range"),
            CmdError::NotFloat => f.write_str("ERR value is not a valid float"),
            CmdError::Overflow => f.write_str("ERR increment or decrement would overflow"),
            CmdError::DecrementOverflow => f.write_str("ERR decrement would overflow"),
            CmdError::Syntax => f.write_str("ERR syntax error"),
            CmdError::NoSuchKey => f.write_str("ERR no such key"),
            CmdError::InvalidExpireTime(cmd) => {
                write!(f, "ERR invalid expire time in '{cmd}' command")
            }
            CmdError::UnknownCommand(text) => f.write_str(text),
            CmdError::WrongArity(name) => {
                write!(f, "ERR wrong number of arguments for '{name}' command")
            }
            CmdError::UnknownSubcommand { sub, command } => {
                write!(f, "ERR unknown subcommand '{sub}'. Try {command} HELP.")
            }
            CmdError::DbIndexOutOfRange => f.write_str("ERR DB index is out of range"),
            CmdError::NoAuth => f.write_str("NOAUTH Authentication required."),
            CmdError::OutOfRange => f.write_str("ERR value is out of range"),
            CmdError::OutOfRangeBetween(min, max) => {
                write!(
                    f,
                    "ERR value is out of range, value must between {min} and {max}"
                )
            }
            CmdError::HashValueNotInteger => f.write_str("ERR hash value is not an integer"),
            CmdError::HashValueNotFloat => f.write_str("ERR hash value is not a float"),
            CmdError::NanOrInfinity => f.write_str("ERR value is NaN or Infinity"),
            CmdError::IncrementNanOrInfinity => {
                f.write_str("ERR increment would produce NaN or Infinity")
            }
            CmdError::InvalidCursor => f.write_str("ERR invalid cursor"),
            CmdError::NegativeExpireTime => f.write_str("ERR invalid expire time, must be >= 0"),
            CmdError::FieldsMissing => {
                f.write_str("ERR Mandatory argument FIELDS is missing or not at the right position")
            }
            CmdError::NumFieldsNotPositive => {
                f.write_str("ERR Number of fields must be a positive integer")
            }
            CmdError::NumFieldsNotGreaterThanZero => {
                f.write_str("ERR Parameter `numFields` should be greater than 0")
            }
            CmdError::NumFieldsMismatch => {
                f.write_str("ERR The `numfields` parameter must match the number of arguments")
            }
            CmdError::InvalidNumberOfFields => f.write_str("ERR invalid number of fields"),
            CmdError::UnknownArgument(arg) => write!(f, "ERR unknown argument: {arg}"),
            CmdError::MissingExpireTime => f.write_str("ERR missing expire time"),
            CmdError::ConflictingFieldCondition => {
                f.write_str("ERR Only one of FXX or FNX arguments can be specified")
            }
            CmdError::ConflictingExpiry => f.write_str(
                "ERR Only one of EX, PX, EXAT, PXAT or KEEPTTL arguments can be specified",
            ),
            CmdError::ReplyTooLarge(cmd) => {
                write!(f, "ERR the reply of '{cmd}' would be too large")
            }
            CmdError::NoScript => f.write_str("NOSCRIPT No matching script. Please use EVAL."),
            CmdError::Busy => f.write_str(
                "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN \
                 NOSAVE.",
            ),
            CmdError::NotBusy => f.write_str("NOTBUSY No scripts in execution right now."),
            CmdError::Unkillable => f.write_str(
                "UNKILLABLE Sorry the script already executed write commands against the \
                 dataset. You can either wait the script termination or kill the server in a \
                 hard way using the SHUTDOWN NOSAVE command.",
            ),
            CmdError::OffsetOutOfRange => f.write_str("ERR offset is out of range"),
            CmdError::StringTooLong => {
                f.write_str("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
            }
            CmdError::IndexOutOfRange => f.write_str("ERR index out of range"),
            CmdError::NotPositive => f.write_str("ERR value is out of range, must be positive"),
            CmdError::SameObject => f.write_str("ERR source and destination objects are the same"),
            CmdError::ExpireNxConflict => {
                f.write_str("ERR NX and XX, GT or LT options at the same time are not compatible")
            }
            CmdError::ExpireGtLtConflict => {
                f.write_str("ERR GT and LT options at the same time are not compatible")
            }
            CmdError::UnsupportedOption(option) => write!(f, "ERR Unsupported option {option}"),
            CmdError::InvalidDbIndex(which) => write!(f, "ERR invalid {which} DB index"),
            CmdError::RankZero => f.write_str(
                "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second \
                 ... or use negative to start from the end of the list",
            ),
            CmdError::CantBeNegative(option) => write!(f, "ERR {option} can't be negative"),
            CmdError::NoLfuPolicy => f.write_str(
                "ERR An LFU maxmemory policy is not selected, access frequency not tracked. \
                 Please note that when switching between policies at runtime LRU and LFU data \
                 will take some time to adjust.",
            ),
            CmdError::BoundsConflict => {
                f.write_str("ERR LBOUND must be less than or equal to UBOUND")
            }
            CmdError::Other(text) => f.write_str(text),
        }
    }
}

impl CmdError {
    /// Redis's reply to an unknown command: the name and the start of the arguments, each cut
    /// to 128 bytes as Redis does.
    pub fn unknown_command<'a>(name: &[u8], mut args: impl Iterator<Item = &'a [u8]>) -> Self {
        let mut text = format!(
            "ERR unknown command '{}', with args beginning with: ",
            String::from_utf8_lossy(&name[..name.len().min(128)])
        );
        let mut listed = 0;
        while listed < 128 {
            let Some(arg) = args.next() else { break };
            let room = 128 - listed;
            let shown = String::from_utf8_lossy(&arg[..arg.len().min(room)]);
            text.push_str(&format!("'{shown}' "));
            listed += shown.len() + 3;
        }
        CmdError::UnknownCommand(text)
    }
}
