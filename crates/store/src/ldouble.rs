//! Software emulation of the x87 80-bit extended-precision float (C `long double` on x86-64).
//!
//! Redis computes `INCRBYFLOAT` and `HINCRBYFLOAT` in `long double`: it parses both operands with
//! glibc's `strtold`, adds them on the x87 unit and prints the sum with `printf("%.17Lf")`. The
//! 64-bit significand gives results that neither `f64` nor any decimal shortcut reproduces, so to
//! answer byte for byte like Redis Shardis redoes that whole pipeline here in software.
//!
//! # Representation
//!
//! A [`LongDouble`] stores the three fields of the x87 format: a sign, the 15-bit biased exponent
//! field and the 64-bit significand with its explicit integer bit. Values are kept canonical:
//!
//! | exponent field | significand                | value                                   |
//! |----------------|----------------------------|-----------------------------------------|
//! | 0              | 0                          | ±0                                      |
//! | 0              | integer bit clear          | denormal: `significand * 2^-16445`      |
//! | 1 ..= 0x7FFE   | integer bit set            | normal: `significand * 2^(field-16446)` |
//! | 0x7FFF         | only the integer bit       | ±infinity                               |
//! | 0x7FFF         | integer and quiet bits set | quiet NaN                               |
//!
//! # Exactness
//!
//! glibc converts in both directions exactly and rounds once, half to even. Doing the same needs
//! the exact decimal value of a binary number and vice versa, which for the extremes of the range
//! (about 10^±4951) means numbers of some 34,000 bits; a small unsigned big integer
//! (`BigUint`) covers that. Addition needs no big integers: 62 guard bits and a sticky bit are
//! enough for x87's single rounding. Short inputs such as `"1.5"` take a `u128` fast path.
//!
//! Everything was checked against glibc 2.36 and Redis 7.0.15, including one glibc quirk that
//! is reproduced on purpose (see `glibc_hex_denormal_quirk`).

use std::cmp::Ordering;

/// Bias of the 15-bit exponent field.
const EXPONENT_BIAS: i64 = 16383;
/// Exponent field shared by infinities and NaNs.
const EXPONENT_INF_NAN: u16 = 0x7FFF;
/// The explicit integer bit of the significand.
const INTEGER_BIT: u64 = 1 << 63;
/// The bit that makes a NaN quiet.
const QUIET_BIT: u64 = 1 << 62;
/// Power of two weighing the significand's lowest bit for exponent field 1 and for denormals,
/// i.e. the smallest denormal is `2^MIN_LSB_EXP`.
const MIN_LSB_EXP: i64 = 1 - EXPONENT_BIAS - 63;
/// Power of two of the smallest normal value, 2^-16382.
const MIN_NORMAL_EXP: i64 = 1 - EXPONENT_BIAS;
/// Redis's `MAX_LONG_DOUBLE_CHARS`: the buffer size `string2ld` and `ld2string` work in.
const MAX_LONG_DOUBLE_CHARS: usize = 5 * 1024;
/// Fraction digits printed by the `%.17Lf` that Redis uses.
const FRACTION_DIGITS: usize = 17;
/// `10^FRACTION_DIGITS`.
const FRACTION_SCALE: u128 = 100_000_000_000_000_000;
/// Written exponents are clamped to this magnitude while being read. Anything past it is far
/// beyond what the 5 KiB input could bring back into range, so the clamp never changes a result
/// and keeps all exponent arithmetic well inside `i64`.
const EXPONENT_CLAMP: i64 = 1_000_000;
/// Largest decimal exponent `e` with `10^e <= LDBL_MAX` (about 1.19e4932).
const MAX_DECIMAL_EXP: i64 = 4932;
/// Every value below `10^-MIN_DECIMAL_EXP` is under half the smallest denormal (about
/// 3.6e-4951), so it rounds to zero.
const MIN_DECIMAL_EXP: i64 = 4951;

/// An x87 80-bit extended-precision value (what C calls `long double` on x86-64).
///
/// Equality is structural (the bits are compared), so `+0 != -0` and a NaN equals an identical NaN.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LongDouble {
    /// The sign bit.
    negative: bool,
    /// The biased 15-bit exponent field.
    exponent: u16,
    /// The significand, integer bit included.
    significand: u64,
}

/// The kinds of value, with finite nonzero values unpacked to `significand * 2^lsb_exp`.
enum Class {
    Zero,
    Finite { significand: u64, lsb_exp: i64 },
    Infinite,
    Nan,
}

impl LongDouble {
    /// Parse like Redis's `string2ld`: glibc `strtold`, rounding half to even to the nearest
    /// 80-bit value, with Redis's extra checks.
    ///
    /// Accepted: an optional sign followed by a decimal number (`"1.5"`, `".5"`, `"5."`,
    /// `"1e3"`, `"1.5E-2"`), a hexadecimal float (`"0x1.8p3"`, binary exponent optional) or
    /// `inf`/`infinity` in any case. Rejected (`None`), as in Redis: empty input or input of
    /// `MAX_LONG_DOUBLE_CHARS` (5120) bytes or more, leading whitespace, anything left over after
    /// the number, NaN, and results that overflow to infinity or underflow all the way to zero
    /// (`strtold`'s `ERANGE`); results that merely become denormal are accepted. Rounding is
    /// glibc's, quirk included: a hexadecimal input just above half the smallest denormal,
    /// `0x1.0000000000000001p-16446`, rounds to zero and is rejected, as in Redis.
    pub fn parse(s: &[u8]) -> Option<LongDouble> {
        if s.is_empty() || s.len() >= MAX_LONG_DOUBLE_CHARS {
            return None;
        }
        let (negative, unsigned) = match s.split_first() {
            Some((b'-', rest)) => (true, rest),
            Some((b'+', rest)) => (false, rest),
            _ => (false, s),
        };
        if unsigned.eq_ignore_ascii_case(b"inf") || unsigned.eq_ignore_ascii_case(b"infinity") {
            return Some(Self::infinity(negative));
        }
        match unsigned {
            [b'0', b'x' | b'X', hex @ ..] => parse_hex(hex, negative),
            _ => parse_decimal(unsigned, negative),
        }
    }

    /// The value of `v`, exactly (64 significand bits hold every `i64`).
    pub fn from_i64(v: i64) -> LongDouble {
        round_pack(v < 0, u128::from(v.unsigned_abs()), 0)
    }

    /// `self + other` as the x87 `FADD` computes it at 64-bit precision in round-to-nearest-even
    /// mode with all exceptions masked: an exact sum of nonzero values of opposite sign is `+0`,
    /// overflow gives infinity, `inf + -inf` gives the default (negative, quiet) NaN.
    // Named `add` (callable without importing `std::ops::Add`); the operator is implemented too.
    #[allow(clippy::should_implement_trait)]
    pub fn add(self, other: LongDouble) -> LongDouble {
        match (self.class(), other.class()) {
            (Class::Nan, _) => self.quieted(),
            (_, Class::Nan) => other.quieted(),
            (Class::Infinite, Class::Infinite) if self.negative != other.negative => {
                Self::default_nan()
            }
            (Class::Infinite, _) => self,
            (_, Class::Infinite) => other,
            (Class::Zero, Class::Zero) => Self::zero(self.negative && other.negative),
            (Class::Zero, _) => other,
            (_, Class::Zero) => self,
            (
                Class::Finite {
                    significand: sig_a,
                    lsb_exp: exp_a,
                },
                Class::Finite {
                    significand: sig_b,
                    lsb_exp: exp_b,
                },
            ) => add_finite(
                (self.negative, sig_a, exp_a),
                (other.negative, sig_b, exp_b),
            ),
        }
    }

    /// The largest finite value, C's `LDBL_MAX` (about 1.19e4932).
    pub const MAX: LongDouble = LongDouble {
        negative: false,
        exponent: EXPONENT_INF_NAN - 1,
        significand: u64::MAX,
    };

    /// Orders two values as C's comparison operators do: `None` if either is NaN, and `-0`
    /// equal to `+0`.
    pub fn compare(self, other: LongDouble) -> Option<Ordering> {
        // -1, 0 or 1; zeros have no sign here.
        let sign = |v: LongDouble| match v.class() {
            Class::Nan => None,
            Class::Zero => Some(0i8),
            _ if v.negative => Some(-1),
            _ => Some(1),
        };
        let (a, b) = (sign(self)?, sign(other)?);
        if a != b || a == 0 {
            return Some(a.cmp(&b));
        }
        // Same sign, both nonzero: the exponent field, then the significand, order magnitudes
        // (denormals have field 0 and no integer bit; infinity has the largest field).
        let magnitude = (self.exponent, self.significand).cmp(&(other.exponent, other.significand));
        Some(if a < 0 {
            magnitude.reverse()
        } else {
            magnitude
        })
    }

    /// Whether the value is neither infinite nor NaN.
    pub fn is_finite(self) -> bool {
        self.exponent != EXPONENT_INF_NAN
    }

    /// Format exactly as Redis 7.0's `ld2string(buf, MAX_LONG_DOUBLE_CHARS, value, LD_STR_HUMAN)`:
    /// `inf`/`-inf` for infinities, otherwise glibc's `%.17Lf` (correctly rounded, half to even)
    /// with trailing zeros and then a trailing `.` removed, and `-0` turned into `0`.
    ///
    /// `None` where `ld2string` fails because the text would not fit its buffer; with the 80-bit
    /// format's range (at most 4,952 characters) that cannot actually happen.
    pub fn to_redis_string(self) -> Option<String> {
        let (integer_digits, fraction_digits) = match self.class() {
            // ld2string spells infinities itself rather than trusting printf.
            Class::Infinite => return Some(self.signed("inf")),
            // printf's "nan" has no '.', so Redis leaves it untouched.
            Class::Nan => return Some(self.signed("nan")),
            Class::Zero => ("0".to_owned(), "0".repeat(FRACTION_DIGITS)),
            Class::Finite {
                significand,
                lsb_exp,
            } => fixed_digits(significand, lsb_exp)?,
        };

        let sign_len = usize::from(self.negative);
        let printed_len = sign_len + integer_digits.len() + 1 + fraction_digits.len();
        // ld2string: `if (l+1 > len) return 0;`, the +1 being the terminating NUL.
        if printed_len + 1 > MAX_LONG_DOUBLE_CHARS {
            return None;
        }

        let fraction = fraction_digits.trim_end_matches('0');
        let mut out = String::with_capacity(printed_len);
        if self.negative {
            out.push('-');
        }
        out.push_str(&integer_digits);
        if !fraction.is_empty() {
            out.push('.');
            out.push_str(fraction);
        }
        // Redis rewrites a bare "-0" (a negative value that rounded away) to "0".
        if out == "-0" {
            out.remove(0);
        }
        Some(out)
    }

    /// `±0`.
    fn zero(negative: bool) -> LongDouble {
        LongDouble {
            negative,
            exponent: 0,
            significand: 0,
        }
    }

    /// `±infinity`.
    fn infinity(negative: bool) -> LongDouble {
        LongDouble {
            negative,
            exponent: EXPONENT_INF_NAN,
            significand: INTEGER_BIT,
        }
    }

    /// The "real indefinite" NaN that x87 produces for invalid operations such as `inf - inf`.
    fn default_nan() -> LongDouble {
        LongDouble {
            negative: true,
            exponent: EXPONENT_INF_NAN,
            significand: INTEGER_BIT | QUIET_BIT,
        }
    }

    /// This NaN with its quiet bit set, as x87 returns a NaN operand.
    fn quieted(self) -> LongDouble {
        LongDouble {
            significand: self.significand | INTEGER_BIT | QUIET_BIT,
            ..self
        }
    }

    /// `text` preceded by this value's sign.
    fn signed(self, text: &str) -> String {
        if self.negative {
            format!("-{text}")
        } else {
            text.to_owned()
        }
    }

    /// Classifies the value and unpacks finite nonzero ones.
    fn class(self) -> Class {
        if self.exponent == EXPONENT_INF_NAN {
            if self.significand & !INTEGER_BIT == 0 {
                Class::Infinite
            } else {
                Class::Nan
            }
        } else if self.significand == 0 {
            Class::Zero
        } else {
            // Denormals share exponent field 1's scale; their field is 0 only to mark the
            // missing integer bit.
            let field = i64::from(self.exponent.max(1));
            Class::Finite {
                significand: self.significand,
                lsb_exp: field - EXPONENT_BIAS - 63,
            }
        }
    }
}

impl std::ops::Neg for LongDouble {
    type Output = LongDouble;

    /// The value with its sign flipped (exact, as x87 `FCHS`).
    fn neg(self) -> LongDouble {
        LongDouble {
            negative: !self.negative,
            ..self
        }
    }
}

impl std::ops::Add for LongDouble {
    type Output = LongDouble;

    /// Same as [`LongDouble::add`].
    fn add(self, other: LongDouble) -> LongDouble {
        LongDouble::add(self, other)
    }
}

/// Adds two finite nonzero values given as `(negative, significand, lsb_exp)`.
fn add_finite(a: (bool, u64, i64), b: (bool, u64, i64)) -> LongDouble {
    // Put the operand with the coarser scale first; it is at least as large in magnitude unless
    // both share a scale.
    let (big, small) = if a.2 >= b.2 { (a, b) } else { (b, a) };
    // Two spare bits on top keep the sum of two 64-bit significands from overflowing, and 62
    // guard bits below leave room for alignment. When alignment shifts bits out of the smaller
    // operand the exponents differ by more than 62, so subtraction cancels at most one leading
    // bit and the sticky bit stays far below the rounding position.
    const GUARD: u32 = 62;
    let big_mag = u128::from(big.1) << GUARD;
    let distance = u32::try_from(big.2 - small.2).unwrap_or(u32::MAX);
    let small_mag = shift_right_sticky(u128::from(small.1) << GUARD, distance);
    let lsb_exp = big.2 - i64::from(GUARD);

    if big.0 == small.0 {
        return round_pack(big.0, big_mag + small_mag, lsb_exp);
    }
    match big_mag.cmp(&small_mag) {
        Ordering::Greater => round_pack(big.0, big_mag - small_mag, lsb_exp),
        Ordering::Less => round_pack(small.0, small_mag - big_mag, lsb_exp),
        // An exact cancellation is +0 when rounding to nearest.
        Ordering::Equal => LongDouble::zero(false),
    }
}

/// `value >> shift`, with the lowest bit set if any one bit was shifted out.
fn shift_right_sticky(value: u128, shift: u32) -> u128 {
    match value.checked_shr(shift) {
        Some(kept) if kept.checked_shl(shift) == Some(value) => kept,
        Some(kept) => kept | 1,
        None => u128::from(value != 0),
    }
}

/// Rounds `magnitude * 2^lsb_exp` to the nearest 80-bit value, ties to even, with the given sign.
///
/// The lowest bit of `magnitude` may be a sticky bit standing for a nonzero tail, as long as the
/// magnitude has at least 66 significant bits so that bit lies below the rounding position.
/// Results too small for a normal are denormalised before rounding (as x87 does
/// with underflow masked) and may round to zero; results too large become infinity.
fn round_pack(negative: bool, magnitude: u128, lsb_exp: i64) -> LongDouble {
    if magnitude == 0 {
        return LongDouble::zero(negative);
    }
    let bits = i64::from(u128::BITS - magnitude.leading_zeros());
    // Scale of the result's lowest bit: 64 significant bits, but never finer than a denormal's.
    let mut target = (lsb_exp + bits - 64).max(MIN_LSB_EXP);
    let shift = target - lsb_exp;

    let significand = match u32::try_from(-shift) {
        // Fewer than 64 bits: exact, just move them up (at most 63 places).
        Ok(up) => magnitude.checked_shl(up).unwrap_or(0),
        Err(_) => round_shift_right(magnitude, u32::try_from(shift).unwrap_or(u32::MAX)),
    };

    // Rounding up may carry into a 65th bit.
    let significand = if significand >> 64 != 0 {
        target += 1;
        significand >> 1
    } else {
        significand
    };
    let significand = u64::try_from(significand).unwrap_or(u64::MAX);

    if significand == 0 {
        return LongDouble::zero(negative);
    }
    if significand & INTEGER_BIT == 0 {
        // Only possible at the denormal scale.
        return LongDouble {
            negative,
            exponent: 0,
            significand,
        };
    }
    match u16::try_from(target - MIN_LSB_EXP + 1) {
        Ok(exponent) if exponent < EXPONENT_INF_NAN => LongDouble {
            negative,
            exponent,
            significand,
        },
        _ => LongDouble::infinity(negative),
    }
}

/// Keeps a parsed nonzero value unless rounding took it to infinity or to zero, which `strtold`
/// reports as `ERANGE` and Redis then rejects.
fn in_range(value: LongDouble) -> Option<LongDouble> {
    match value.class() {
        Class::Finite { .. } => Some(value),
        _ => None,
    }
}

/// Splits `s` after its longest prefix of bytes satisfying `pred`.
fn split_while(s: &[u8], pred: impl Fn(u8) -> bool) -> (&[u8], &[u8]) {
    let n = s.iter().take_while(|&&c| pred(c)).count();
    s.split_at_checked(n).unwrap_or((s, &[]))
}

/// Splits a mantissa `digits[.digits]` off `s`: `(integer digits, fraction digits, rest)`.
fn split_mantissa(s: &[u8], is_digit: impl Fn(u8) -> bool) -> (&[u8], &[u8], &[u8]) {
    let (integer, rest) = split_while(s, &is_digit);
    match rest.split_first() {
        Some((b'.', after_point)) => {
            let (fraction, rest) = split_while(after_point, &is_digit);
            (integer, fraction, rest)
        }
        _ => (integer, &[], rest),
    }
}

/// Reads the optional exponent suffix (`marker`, optional sign, decimal digits) that must make
/// up all of `s`. `strtold` would leave a marker without digits unread, which Redis rejects as
/// trailing garbage, so that is `None` too. The value is clamped to `±EXPONENT_CLAMP`.
fn parse_exponent(s: &[u8], marker: u8) -> Option<i64> {
    let Some((&first, rest)) = s.split_first() else {
        return Some(0);
    };
    if !first.eq_ignore_ascii_case(&marker) {
        return None;
    }
    let (negative, digits) = match rest.split_first() {
        Some((b'-', digits)) => (true, digits),
        Some((b'+', digits)) => (false, digits),
        _ => (false, rest),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let magnitude = digits.iter().fold(0i64, |acc, &d| {
        (acc * 10 + i64::from(d - b'0')).min(EXPONENT_CLAMP)
    });
    Some(if negative { -magnitude } else { magnitude })
}

/// Parses an unsigned decimal number that must make up all of `s`.
fn parse_decimal(s: &[u8], negative: bool) -> Option<LongDouble> {
    let (integer, fraction, rest) = split_mantissa(s, |c| c.is_ascii_digit());
    if integer.is_empty() && fraction.is_empty() {
        return None;
    }
    let written_exp = parse_exponent(rest, b'e')?;

    // The value is `digits * 10^exp10` once leading and trailing zeros are dropped.
    let all = integer.iter().chain(fraction).map(|&c| c - b'0');
    let mut digits: Vec<u8> = all.skip_while(|&d| d == 0).collect();
    let trailing_zeros = digits.iter().rev().take_while(|&&d| d == 0).count();
    digits.truncate(digits.len() - trailing_zeros);
    if digits.is_empty() {
        return Some(LongDouble::zero(negative));
    }
    // Both counts are below MAX_LONG_DOUBLE_CHARS, so these conversions cannot fail.
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    let exp10 = written_exp - count(fraction.len()) + count(trailing_zeros);
    let digit_count = count(digits.len());

    // The value lies in [10^(digit_count-1+exp10), 10^(digit_count+exp10)). Settle hopeless
    // cases before building huge numbers.
    if digit_count - 1 + exp10 > MAX_DECIMAL_EXP || digit_count + exp10 <= -MIN_DECIMAL_EXP {
        return None;
    }

    let (magnitude, lsb_exp) = match small_decimal(&digits, exp10) {
        Some(exact) => exact,
        None => {
            let mantissa = BigUint::from_decimal_digits(&digits);
            match u64::try_from(exp10) {
                Ok(up) => mantissa.mul_pow10(up).top_bits(),
                Err(_) => divide(mantissa, BigUint::pow10(exp10.unsigned_abs())),
            }
        }
    };
    in_range(round_pack(negative, magnitude, lsb_exp))
}

/// Parses the part of a hexadecimal float after its `0x` prefix, which must make up all of `s`.
fn parse_hex(s: &[u8], negative: bool) -> Option<LongDouble> {
    let (integer, fraction, rest) = split_mantissa(s, |c| c.is_ascii_hexdigit());
    // Without a hex digit strtold reads only the "0" before the 'x', leaving trailing garbage.
    if integer.is_empty() && fraction.is_empty() {
        return None;
    }
    let written_exp = parse_exponent(rest, b'p')?;

    let nibbles = integer.iter().chain(fraction).map(|&c| hex_value(c));
    let mantissa = BigUint::from_nibbles(nibbles);
    if mantissa.is_zero() {
        return Some(LongDouble::zero(negative));
    }
    let fraction_bits = i64::try_from(fraction.len())
        .unwrap_or(i64::MAX)
        .saturating_mul(4);
    let (magnitude, top_lsb_exp) = mantissa.top_bits();
    let lsb_exp = top_lsb_exp + written_exp - fraction_bits;
    let magnitude = glibc_hex_denormal_quirk(magnitude, lsb_exp);
    in_range(round_pack(negative, magnitude, lsb_exp))
}

/// Reproduces a rounding quirk of glibc's `strtold` for hexadecimal input whose result is
/// denormal: it rounds such a value ignoring the bit just below its 64 leading significant bits.
/// That only changes the result when this bit is the sole nonzero one below the new rounding
/// position, and for Redis only matters when it decides between zero (rejected) and the smallest
/// denormal (accepted), e.g. `0x1.0000000000000001p-16446`. Decimal input cannot hit the quirk: a
/// value that exact would need over 16,000 digits.
fn glibc_hex_denormal_quirk(magnitude: u128, lsb_exp: i64) -> u128 {
    let bits = u128::BITS - magnitude.leading_zeros();
    let leading_exp = lsb_exp + i64::from(bits) - 1;
    match bits.checked_sub(65) {
        Some(position) if leading_exp < MIN_NORMAL_EXP => magnitude & !(1u128 << position),
        _ => magnitude,
    }
}

/// The value of an ASCII hex digit (0 for anything else, which callers never pass).
fn hex_value(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

/// The common case of few digits and a small exponent, `digits * 10^exp10` with both the digits
/// and the power of ten below 10^38, as `(magnitude, lsb_exp)` for [`round_pack`] without big
/// integers. `None` when the operands do not fit.
fn small_decimal(digits: &[u8], exp10: i64) -> Option<(u128, i64)> {
    const MAX_DIGITS: usize = 38;
    if digits.len() > MAX_DIGITS {
        return None;
    }
    let mantissa = digits
        .iter()
        .fold(0u128, |acc, &d| acc * 10 + u128::from(d));
    // Powers up to 10^38 stay below 2^127, as `divide_small` needs.
    let pow10 = |n: u64| {
        u32::try_from(n)
            .ok()
            .filter(|&n| n <= 38)
            .and_then(|n| 10u128.checked_pow(n))
    };
    match u64::try_from(exp10) {
        Ok(up) => Some((mantissa.checked_mul(pow10(up)?)?, 0)),
        Err(_) => divide_small(mantissa, pow10(exp10.unsigned_abs())?),
    }
}

/// `numerator / denominator` for a nonzero numerator and `0 < denominator < 2^127`, as
/// `(magnitude, lsb_exp)` for [`round_pack`]: at least 67 significant quotient bits, the lowest
/// also set when the division was inexact so the tail still counts when rounding to 64 bits.
fn divide_small(numerator: u128, denominator: u128) -> Option<(u128, i64)> {
    let mut quotient = numerator.checked_div(denominator)?;
    let mut remainder = numerator.checked_rem(denominator)?;
    let mut lsb_exp = 0;
    // Binary long division, one fraction bit at a time. The numerator is below 2^128 and the
    // denominator at least 1, so 67 significant bits are reached within 194 steps.
    while quotient >> 66 == 0 && lsb_exp > -256 {
        // remainder < denominator < 2^127, so doubling cannot overflow.
        remainder <<= 1;
        let bit = remainder >= denominator;
        if bit {
            remainder -= denominator;
        }
        quotient = (quotient << 1) | u128::from(bit);
        lsb_exp -= 1;
    }
    Some((quotient | u128::from(remainder != 0), lsb_exp))
}

/// `numerator / denominator` (both nonzero) as `(magnitude, lsb_exp)` for [`round_pack`]: a
/// quotient with 66 or 67 significant bits whose lowest bit is also set when the division was
/// inexact, so the tail still counts when rounding to 64 bits.
fn divide(numerator: BigUint, denominator: BigUint) -> (u128, i64) {
    // Scale by 2^scale so that the quotient lands in [2^65, 2^67).
    let scale = 66 + i64::try_from(denominator.bit_len()).unwrap_or(i64::MAX)
        - i64::try_from(numerator.bit_len()).unwrap_or(i64::MAX);
    let (mut remainder, denominator) = match u64::try_from(scale) {
        Ok(up) => (numerator.shl(up), denominator),
        Err(_) => (numerator, denominator.shl(scale.unsigned_abs())),
    };
    // Schoolbook binary long division; only 67 quotient bits are needed. The divisor starts at
    // its largest multiple and is halved in place, avoiding a fresh shift each round.
    let mut quotient = 0u128;
    let mut shifted = denominator.shl(66);
    for bit in (0..67u32).rev() {
        if remainder.cmp_to(&shifted) != Ordering::Less {
            remainder.sub_assign(&shifted);
            quotient |= 1 << bit;
        }
        shifted.halve();
    }
    (quotient | u128::from(!remainder.is_zero()), -scale)
}

/// The exact `%.17Lf` digits of `significand * 2^lsb_exp`: the integer part without leading
/// zeros (at least "0") and exactly 17 fraction digits, rounded half to even as glibc does.
fn fixed_digits(significand: u64, lsb_exp: i64) -> Option<(String, String)> {
    let Ok(up) = u64::try_from(lsb_exp) else {
        // A fraction: scale by 10^17, then drop the binary fraction bits with rounding.
        // `significand * 10^17` is below 2^121, so everything fits in a u128.
        let scaled = u128::from(significand) * FRACTION_SCALE;
        let down = u32::try_from(lsb_exp.unsigned_abs()).unwrap_or(u32::MAX);
        let rounded = round_shift_right(scaled, down);
        let all = format!("{rounded:0width$}", width = FRACTION_DIGITS + 1);
        let (integer, fraction) = all.split_at_checked(all.len() - FRACTION_DIGITS)?;
        return Some((integer.to_owned(), fraction.to_owned()));
    };
    // An integer: print it exactly, the fraction is all zeros.
    let integer = BigUint::from_u64(significand).shl(up).to_decimal();
    Some((integer, "0".repeat(FRACTION_DIGITS)))
}

/// `value / 2^shift` rounded to the nearest integer, ties to even. Any shift is allowed.
fn round_shift_right(value: u128, shift: u32) -> u128 {
    let Some(half_position) = shift.checked_sub(1) else {
        return value;
    };
    if half_position >= u128::BITS {
        // Even the half bit lies above the value, so it is below one half.
        return 0;
    }
    let kept = value.checked_shr(shift).unwrap_or(0);
    let half_set = (value >> half_position) & 1 == 1;
    let below_half_set = value & ((1u128 << half_position) - 1) != 0;
    if half_set && (below_half_set || kept & 1 == 1) {
        kept + 1
    } else {
        kept
    }
}

/// A minimal arbitrary-precision unsigned integer: little-endian 32-bit limbs without leading
/// (high) zero limbs, so zero is the empty vector. Only what exact conversion needs is here.
#[derive(Clone, Debug)]
struct BigUint {
    limbs: Vec<u32>,
}

impl BigUint {
    /// One billion, the largest power of ten in a limb; conversions work nine digits at a time.
    const BILLION: u32 = 1_000_000_000;

    fn from_u64(v: u64) -> BigUint {
        // Truncating casts split the value into its two limbs.
        let mut n = BigUint {
            limbs: vec![v as u32, (v >> 32) as u32],
        };
        n.normalize();
        n
    }

    /// The number written by decimal digit values (each 0..=9), most significant first.
    fn from_decimal_digits(digits: &[u8]) -> BigUint {
        let mut n = BigUint { limbs: Vec::new() };
        for chunk in digits.chunks(9) {
            let (scale, value) = chunk.iter().fold((1u32, 0u32), |(scale, value), &d| {
                (scale * 10, value * 10 + u32::from(d))
            });
            n.mul_add_small(scale, value);
        }
        n
    }

    /// The number written by hexadecimal digit values (each 0..=15), most significant first.
    fn from_nibbles(nibbles: impl Iterator<Item = u8>) -> BigUint {
        let mut n = BigUint { limbs: Vec::new() };
        for nibble in nibbles {
            n.mul_add_small(16, u32::from(nibble));
        }
        n
    }

    /// `10^exp`.
    fn pow10(exp: u64) -> BigUint {
        BigUint { limbs: vec![1] }.mul_pow10(exp)
    }

    fn is_zero(&self) -> bool {
        self.limbs.is_empty()
    }

    /// Drops high zero limbs so that every value has one representation.
    fn normalize(&mut self) {
        while self.limbs.last() == Some(&0) {
            self.limbs.pop();
        }
    }

    /// `self = self * factor + addend`.
    fn mul_add_small(&mut self, factor: u32, addend: u32) {
        let mut carry = u64::from(addend);
        for limb in &mut self.limbs {
            let t = u64::from(*limb) * u64::from(factor) + carry;
            *limb = t as u32; // low half; the high half carries on
            carry = t >> 32;
        }
        if carry != 0 {
            self.limbs.push(carry as u32);
        }
    }

    /// `self * 10^exp`.
    fn mul_pow10(mut self, exp: u64) -> BigUint {
        let mut left = exp;
        while left >= 9 {
            self.mul_add_small(Self::BILLION, 0);
            left -= 9;
        }
        // left < 9 here, so 10^left fits a limb.
        self.mul_add_small(10u32.pow(u32::try_from(left).unwrap_or(0)), 0);
        self
    }

    /// Number of significant bits (0 for zero).
    fn bit_len(&self) -> u64 {
        match self.limbs.last() {
            None => 0,
            Some(&top) => {
                let below = u64::try_from(self.limbs.len() - 1).unwrap_or(u64::MAX);
                below * 32 + u64::from(u32::BITS - top.leading_zeros())
            }
        }
    }

    /// `self * 2^bits`.
    fn shl(&self, bits: u64) -> BigUint {
        let limb_shift = usize::try_from(bits / 32).unwrap_or(usize::MAX);
        let bit_shift = (bits % 32) as u32; // below 32
        let mut limbs = vec![0u32; limb_shift];
        limbs.reserve(self.limbs.len() + 1);
        let mut carry = 0u32;
        for &limb in &self.limbs {
            let wide = (u64::from(limb) << bit_shift) | u64::from(carry);
            limbs.push(wide as u32); // low half; the high half carries on
            carry = (wide >> 32) as u32;
        }
        limbs.push(carry);
        let mut n = BigUint { limbs };
        n.normalize();
        n
    }

    /// `floor(self / 2^bits)`.
    fn shr(&self, bits: u64) -> BigUint {
        let limb_shift = usize::try_from(bits / 32).unwrap_or(usize::MAX);
        let bit_shift = (bits % 32) as u32; // below 32
        let source = self.limbs.get(limb_shift..).unwrap_or(&[]);
        let next = source.iter().skip(1).chain(std::iter::once(&0));
        let limbs = source
            .iter()
            .zip(next)
            .map(|(&low, &high)| (((u64::from(high) << 32) | u64::from(low)) >> bit_shift) as u32)
            .collect();
        let mut n = BigUint { limbs };
        n.normalize();
        n
    }

    /// `self /= 2`, dropping the lowest bit.
    fn halve(&mut self) {
        let mut carry = 0u32;
        for limb in self.limbs.iter_mut().rev() {
            let low_bit = *limb & 1;
            *limb = (*limb >> 1) | (carry << 31);
            carry = low_bit;
        }
        self.normalize();
    }

    /// Whether any of the lowest `bits` bits is set.
    fn any_bit_below(&self, bits: u64) -> bool {
        let whole = usize::try_from(bits / 32).unwrap_or(usize::MAX);
        let partial = (bits % 32) as u32; // below 32
        let whole_set = self.limbs.iter().take(whole).any(|&l| l != 0);
        let partial_set = partial > 0
            && self
                .limbs
                .get(whole)
                .is_some_and(|&l| l & ((1u32 << partial) - 1) != 0);
        whole_set || partial_set
    }

    /// The top 128 bits (or the whole value if shorter) as `(magnitude, lsb_exp)` for
    /// [`round_pack`], with a sticky lowest bit standing for anything cut off below.
    fn top_bits(&self) -> (u128, i64) {
        let cut = self.bit_len().saturating_sub(128);
        let top = self.shr(cut);
        let magnitude = top
            .limbs
            .iter()
            .rev()
            .fold(0u128, |acc, &l| (acc << 32) | u128::from(l));
        let sticky = u128::from(self.any_bit_below(cut));
        (magnitude | sticky, i64::try_from(cut).unwrap_or(i64::MAX))
    }

    fn cmp_to(&self, other: &BigUint) -> Ordering {
        self.limbs
            .len()
            .cmp(&other.limbs.len())
            .then_with(|| self.limbs.iter().rev().cmp(other.limbs.iter().rev()))
    }

    /// `self -= other`; the caller guarantees `self >= other`.
    fn sub_assign(&mut self, other: &BigUint) {
        let mut borrow = false;
        let subtrahends = other.limbs.iter().chain(std::iter::repeat(&0));
        for (limb, &sub) in self.limbs.iter_mut().zip(subtrahends) {
            let (d1, b1) = limb.overflowing_sub(sub);
            let (d2, b2) = d1.overflowing_sub(u32::from(borrow));
            *limb = d2;
            borrow = b1 || b2;
        }
        self.normalize();
    }

    /// `self = self / 10^9`, returning the remainder.
    fn div_rem_billion(&mut self) -> u32 {
        let divisor = u64::from(Self::BILLION);
        let mut remainder = 0u64;
        for limb in self.limbs.iter_mut().rev() {
            let wide = (remainder << 32) | u64::from(*limb);
            // The quotient fits a limb because remainder < divisor.
            *limb = (wide / divisor) as u32;
            remainder = wide % divisor;
        }
        self.normalize();
        remainder as u32 // below 10^9
    }

    /// Decimal digits, without leading zeros ("0" for zero).
    fn to_decimal(&self) -> String {
        let mut n = self.clone();
        let mut chunks = Vec::new();
        while !n.is_zero() {
            chunks.push(n.div_rem_billion());
        }
        let mut out = String::with_capacity(chunks.len() * 9 + 1);
        let mut from_top = chunks.iter().rev();
        out.push_str(&from_top.next().copied().unwrap_or(0).to_string());
        for chunk in from_top {
            out.push_str(&format!("{chunk:09}"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ld(s: &str) -> LongDouble {
        LongDouble::parse(s.as_bytes()).expect("valid float")
    }

    /// The reply of `SET k a` then `INCRBYFLOAT k b`, when it is a value.
    fn incr(a: &str, b: &str) -> String {
        ld(a).add(ld(b)).to_redis_string().expect("formats")
    }

    /// `(stored value, increment, reply)` as given by Redis 7.0.15 (`SET k a`,
    /// `INCRBYFLOAT k b`; `HINCRBYFLOAT` replied the same).
    const REDIS_REPLIES: &[(&str, &str, &str)] = &[
        ("1999.98", "-99.99", "1899.98999999999999999"),
        ("10.5", "0.1", "10.6"),
        ("5.0e3", "2.0e2", "5200"),
        ("1", "1e-20", "1"),
        ("0.1", "0.2", "0.3"),
        ("3.0", "-3.0", "0"),
        ("-5", "2.25", "-2.75"),
        ("-0", "0", "0"),
        ("-0", "-0", "0"),
        ("-1e-18", "0", "0"),
        ("-6e-18", "0", "-0.00000000000000001"),
        // Exact ties at the 18th decimal round half to even.
        ("0x1p-18", "0", "0.00000381469726562"),
        ("0x3p-18", "0", "0.00001144409179688"),
        ("9223372036854775807", "1", "9223372036854775808"),
        ("18446744073709551615", "1", "18446744073709551616"),
        ("18446744073709551617", "0", "18446744073709551616"),
        (
            "1e100",
            "0",
            "9999999999999999999669353532207342619498699019828496079271391541752018669482644324418977840117055488",
        ),
        ("1.5E-2", "0", "0.015"),
        (".5", "5.", "5.5"),
        ("+1", "-.5", "0.5"),
        ("0x1.8p3", "0", "12"),
        ("123456789012345678901234567890", "0.5", "123456789012345678899921813504"),
        ("1e-4950", "0", "0"),
        ("-1e-4950", "0", "0"),
        ("2e-4951", "0", "0"),
        ("1.8226e-4951", "0", "0"),
        ("0x1p-16445", "0", "0"),
        ("0x1.8p-16446", "0", "0"),
        ("0e999999999", "0", "0"),
        ("0.00000000000000001", "0", "0.00000000000000001"),
        ("0.000000000000000005", "0", "0"),
        ("3.14159265358979323846264338327950288", "0", "3.14159265358979324"),
        ("2.5", "0.1", "2.6"),
        ("100", "-0.01", "99.99"),
        ("-100.5", "100.25", "-0.25"),
        ("1.1", "2.2", "3.3"),
        ("99999999999999999.99", "0.01", "100000000000000000"),
        ("0", "1", "1"),
        ("1", "0", "1"),
        ("-1", "1", "0"),
        ("0.1", "-0.1", "0"),
        ("1e-17", "0", "0.00000000000000001"),
        ("1.23456789012345678e-10", "0", "0.00000000012345679"),
        ("12345678.87654321", "0.00000001", "12345678.87654321999980311"),
        ("4611686018427387904.5", "0", "4611686018427387904.5"),
        ("9007199254740993", "0", "9007199254740993"),
        ("0.99999999999999999999", "0", "1"),
        ("0.999999999999999999", "0", "1"),
        ("-0.999999999999999995", "0", "-1"),
        ("1e19", "0.1", "10000000000000000000"),
        ("1e20", "0.1", "100000000000000000000"),
        ("1e25", "1", "10000000000000000000000000"),
        ("-1e-17", "1e-17", "0"),
        ("1e-17", "-2e-17", "-0.00000000000000001"),
        ("7", "-7.000000000000000000001", "0"),
        ("0x1p64", "-1", "18446744073709551615"),
        ("0x1p65", "-1", "36893488147419103232"),
        ("1.5", "0x1.0000000000000003p-16383", "1.5"),
    ];

    #[test]
    fn replies_match_redis() {
        for &(a, b, reply) in REDIS_REPLIES {
            assert_eq!(incr(a, b), reply, "{a} + {b}");
        }
    }

    #[test]
    fn integer_digits_are_printed_exactly() {
        // From Redis: INCRBYFLOAT of 1e300 by 1.
        let expected = "1000000000000000000008997324079559193870523944273290747938260082321265646\
            596180935755849152083750497190350372508614274835903592556184672983913096260520748646\
            287327135641843653294084255107606016789726652932370030551382947620994540294772781889\
            620606179267611627097410650567187386105690089424915104006144";
        assert_eq!(incr("1e300", "1"), expected);

        // Redis's replies for these are 4000, 4933 and 4934 characters long.
        let big = incr("1e4000", "0");
        assert_eq!(big.len(), 4000);
        assert!(big.starts_with("9999999999999999999965463873099623784932"));
        assert!(big.ends_with("1956972190272729951206648276349901340672"));

        let max = "1.18973149535723176502e+4932";
        let top = incr(max, "0");
        assert_eq!(top.len(), 4933);
        assert!(top.starts_with("1189731495357231765021263853030970205169"));
        assert!(top.ends_with("8849149662444156604419552086811989770240"));
        let bottom = incr(&format!("-{max}"), "0");
        assert_eq!(bottom.len(), 4934);
        assert!(bottom.starts_with("-118973149535723176502126385303097020516"));
        assert!(bottom.ends_with("8849149662444156604419552086811989770240"));
        // Just under the overflow threshold still parses.
        assert!(LongDouble::parse(b"1.18973149535723176505e+4932").is_some());
    }

    #[test]
    fn rejects_what_redis_rejects() {
        // Each answered "ERR value is not a valid float" in Redis.
        let invalid = [
            " 1",
            "1 ",
            "\t1",
            "1\n",
            "abc",
            "nan",
            "-nan",
            "",
            "1e",
            "1e+",
            "0x",
            "0x1p",
            ".",
            "infinit",
            "1..2",
            "+-1",
            // Overflow to infinity and underflow to zero (strtold's ERANGE).
            "1e99999",
            "1.18973149535723176509e+4932",
            "1e-5000",
            "1e-4951",
            "1.8225e-4951",
            "0x1p-16446",
            // Rounds to zero in glibc although it is just above half the smallest denormal.
            "0x1.0000000000000001p-16446",
        ];
        for s in invalid {
            assert_eq!(LongDouble::parse(s.as_bytes()), None, "{s:?}");
        }
    }

    #[test]
    fn length_limit_is_redis_buffer() {
        // Redis accepted the 5119-byte value and rejected the 5120-byte one.
        let accepted = format!("{}1", "0".repeat(5118));
        let rejected = format!("{}1", "0".repeat(5119));
        assert_eq!(incr(&accepted, "0"), "1");
        assert_eq!(LongDouble::parse(rejected.as_bytes()), None);
    }

    #[test]
    fn infinities_parse_but_are_not_finite() {
        // Redis: "ERR increment would produce NaN or Infinity" for each of these sums.
        let not_finite = [
            ("inf", "0"),
            ("-Infinity", "0"),
            ("INF", "-inf"),
            (
                "1.18973149535723176502e+4932",
                "1.18973149535723176502e+4932",
            ),
            ("-1.18973149535723176502e+4932", "-1e4932"),
        ];
        for (a, b) in not_finite {
            assert!(!ld(a).add(ld(b)).is_finite(), "{a} + {b}");
        }
        assert!(ld("1").is_finite());
        assert!(!ld("inf").add(ld("-inf")).is_finite());
    }

    #[test]
    fn from_i64_matches_parsing_the_decimal() {
        for v in [
            0,
            1,
            -1,
            42,
            -1_000_000_007,
            i64::MAX,
            i64::MIN,
            i64::MAX - 1,
        ] {
            assert_eq!(LongDouble::from_i64(v), ld(&v.to_string()), "{v}");
        }
        assert_eq!(incr(&i64::MIN.to_string(), "0"), i64::MIN.to_string());
    }

    #[test]
    fn compare_orders_like_c() {
        use std::cmp::Ordering::{Equal, Greater, Less};
        let order = [
            "-inf", "-1e4000", "-2", "-1.5", "-1e-4940", "-0", "0", "1e-4940", "1", "1.5", "3",
            "1e4000", "inf",
        ];
        for (i, a) in order.iter().enumerate() {
            for (j, b) in order.iter().enumerate() {
                let want = if a.trim_start_matches('-') == "0" && b.trim_start_matches('-') == "0" {
                    Equal
                } else {
                    i.cmp(&j)
                };
                assert_eq!(ld(a).compare(ld(b)), Some(want), "{a} vs {b}");
            }
        }
        assert_eq!(LongDouble::default_nan().compare(ld("1")), None);
        assert_eq!(LongDouble::MAX.compare(ld("1e4932")), Some(Greater));
        assert!(!LongDouble::MAX.add(LongDouble::MAX).is_finite());
        assert_eq!(
            (ld("2") + -ld("5")).to_redis_string().as_deref(),
            Some("-3")
        );
        assert_eq!(ld("-2").compare(ld("-3")), Some(Greater));
        assert_eq!(ld("2").compare(ld("3")), Some(Less));
    }

    #[test]
    fn signed_zeros() {
        let negative_zero = ld("-0");
        assert_ne!(negative_zero, ld("0"));
        // -0 + -0 keeps the sign, every other exact zero sum is +0 (round to nearest).
        assert_eq!(negative_zero + negative_zero, negative_zero);
        assert_eq!(negative_zero.add(ld("0")), ld("0"));
        assert_eq!(ld("1.5").add(ld("-1.5")), ld("0"));
        assert_eq!(negative_zero.to_redis_string().as_deref(), Some("0"));
    }

    #[test]
    fn addition_rounds_once_to_64_bits() {
        // 2^64 + 1 needs 65 bits: a tie, rounded to the even 2^64.
        let two_64 = ld("0x1p64");
        assert_eq!(two_64.add(ld("1")), two_64);
        // Just over the tie rounds up, to 2^64 + 2.
        assert_eq!(two_64.add(ld("1.0000001")), ld("18446744073709551618"));
        // 2^63 + 2^-1: below the last place, sticky decides nothing, result stays.
        assert_eq!(ld("0x1p63").add(ld("0.5")), ld("0x1p63"));
        // Denormal + denormal can carry into the normal range.
        let half_min_normal = ld("0x1p-16383");
        assert_eq!(half_min_normal.add(half_min_normal), ld("0x1p-16382"));
    }
}
