//! The `cjson` library against Debian's redis-server 7.0 (which embeds lua_cjson 2.1.0): the
//! same scripts through `EVAL`, replies compared byte for byte, at 1 shard and several.
//!
//! Objects with several members are compared too: their order is Lua's `next` order, which is
//! the same in both servers because both run Lua 5.1's tables with the same string hash, as
//! long as the table is built the same way (a constructor, a loop, or `cjson.decode`).

use crate::differential::with_both;
use crate::harness::Raw;

/// Sends `EVAL script 0 args...` for each case to both servers and compares the replies.
fn compare_evals(r: &mut Raw, s: &mut Raw, shards: usize, cases: &[(&str, &[&str])]) {
    for (n, (script, args)) in cases.iter().enumerate() {
        let mut command = vec!["EVAL", script, "0"];
        command.extend_from_slice(args);
        let want = r.cmd(&command);
        let got = s.cmd(&command);
        assert_eq!(got, want, "{shards} shards: case #{n} {script:?} {args:?}");
    }
}

/// Scripts that return `cjson.encode` of an expression.
fn encoded(expressions: &[&str]) -> Vec<String> {
    expressions
        .iter()
        .map(|e| format!("return cjson.encode({e})"))
        .collect()
}

#[test]
fn encode_matches_redis() {
    let scripts = encoded(&[
        // Numbers: %.14g.
        "1",
        "-1",
        "0",
        "-0",
        "0.1",
        "1/3",
        "-2.5e-7",
        "1e14",
        "1e15",
        "123456789012345",
        "99999999999999.5",
        "2^53",
        "1e-300",
        "1e308",
        "3.14159265358979",
        "-1234567.891",
        // Strings: the escapes.
        "''",
        "'abc'",
        "'a/b'",
        "'say \"hi\"\\\\'",
        "'\\0\\1\\2\\3\\4\\5\\6\\7\\8\\9\\10\\11\\12\\13\\14\\15\\16\\17\\18\\19\\20\\21\\22\\23\\24\\25\\26\\27\\28\\29\\30\\31'",
        "'\\127\\128\\255 é 😀'",
        // Other scalars.
        "true",
        "false",
        "nil",
        "cjson.null",
        "{cjson.null, false}",
        // Arrays, holes, sparseness.
        "{1, 2, 3}",
        "{1, nil, 3}",
        "{[1] = 'a', [3] = 'c'}",
        "{[1] = 1, [10] = 10}",
        "{[2] = 1, [3] = 1, [4] = 1, [5] = 1, [6] = 1, [12] = 1}",
        "{{}, {{}}, {1, {2, {3}}}}",
        "{{a = 1}, {b = {c = {}}}}",
        // Objects.
        "{}",
        "{a = 1}",
        "{['a/b'] = 'c/d'}",
        "{[1.5] = 'x'}",
        "{[0] = 'zero'}",
        "{[-1] = 'minus'}",
        "{[1] = 1, x = 2}",
        "{[1e20] = 1}",
        "{[1e-300] = -0, [-1e-310] = {-0, 1e-300}}",
        "{[2^31] = 1}",
        "{a = 1, b = 2, c = 3, d = {1, 2}, e = 'x', f = true}",
        "{x = 1, y = 2, z = 3, alpha = 4, beta = 5, gamma = 6, delta = 7, epsilon = 8}",
        "{[1] = 1, [2] = 2, name = 'n', [0.5] = 'half'}",
        // Errors.
        "{[1] = 1, [20] = 2}",
        "{[1] = 1, [11] = 2}",
        "function() end",
        "{1, 2, string.len}",
        "{a = {b = string.len}}",
        "{[true] = 1}",
        "{[{}] = 1}",
        "1/0",
        "-1/0",
        "0/0",
        "{1, 1/0}",
        "{[1/0] = 1}",
        "",
        "1, 2",
    ]);
    let mut cases: Vec<(&str, &[&str])> = scripts.iter().map(|s| (s.as_str(), &[][..])).collect();
    let more = [
        "local t = {} t.x = t return cjson.encode(t)",
        "local t = {} for i = 1, 40 do t['key' .. i] = i end return cjson.encode(t)",
        "local t = {} for i = 1, 1000 do t = {t} end return cjson.encode(t)",
        "local t = {} for i = 1, 999 do t = {t} end return #cjson.encode(t)",
        "local t = {} for i = 1, 100 do t[i] = i * 1.5 end return cjson.encode(t)",
        "local e = cjson.encode return e()",
        "return {pcall(cjson.encode, string.len)}",
        "return {pcall(cjson.encode)}",
        "return cjson.encode(ARGV[1])",
        "return cjson.encode({ARGV[1], tonumber(ARGV[2])})",
    ];
    let argv: &[&str] = &["x\ty/\u{1}", "42.5"];
    for script in &more {
        cases.push((script, argv));
    }
    with_both(|r, s, shards| compare_evals(r, s, shards, &cases));
}

#[test]
fn decode_matches_redis() {
    // Each text goes in as ARGV[1], comes back re-encoded, and again through `type` and the
    // reply conversion of the decoded value itself.
    let texts = [
        "1",
        "-0",
        "1.5e3",
        "-.5",
        "1.",
        "+7",
        "0x1F",
        "012",
        "\"abc\"",
        "\"a\\/b\\\"c\\\\d\\b\\f\\n\\r\\t\"",
        "\"\\u0041\\u00e9\\u20ac\\ud83d\\ude00\"",
        "\"\\u0000x\"",
        "\"raw \u{1} bytes é\"",
        "true",
        "false",
        "null",
        "[]",
        "{}",
        "[1, 2, [3, [4, []]]]",
        "[null, null]",
        "  [ 1 ,\t2 ,\n3 ]\r\n",
        "{\"a\": 1}",
        "{\"a\": {\"b\": [1, {\"c\": null}]}}",
        "{\"one\":1,\"two\":2,\"three\":3,\"four\":4,\"five\":5,\"six\":6}",
        "{\"a\": 1, \"a\": 2}",
        "[1, {\"x\": [true, false, null, \"s\"]}, -2.25]",
        // Errors, with their positions.
        "",
        "   ",
        "x",
        "nul",
        "tru",
        "[1,]",
        "[1 2]",
        "[1,2",
        "{\"a\" 1}",
        "{\"a\":}",
        "{1: 2}",
        "{\"a\": 1,}",
        "{\"a\": 1 \"b\": 2}",
        "[1] x",
        "\"abc",
        "\"a\\qb\"",
        "\"\\u12\"",
        "\"\\ud83d\"",
        "\"\\ude00\"",
        "\"\\ud83d\\u0041\"",
        "-",
        "--1",
        "0x",
        ".5",
        "[1]\u{0}junk",
        "\u{0}[1]",
        "a\u{0}",
        "[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]",
    ];
    let scripts = [
        "return cjson.encode(cjson.decode(ARGV[1]))",
        "return type(cjson.decode(ARGV[1]))",
        "return cjson.decode(ARGV[1])",
    ];
    let mut cases: Vec<(&str, &[&str])> = Vec::new();
    let argvs: Vec<[&str; 1]> = texts.iter().map(|t| [*t]).collect();
    for argv in &argvs {
        for script in scripts {
            cases.push((script, argv));
        }
    }
    // Infinities only through cjson: a script returning one gets the integer C's conversion
    // gives (i64::MIN), which Shardis's reply conversion does not reproduce (it saturates).
    let infinities = [["1e400"], ["-Infinity"], ["[1e999, -1e999]"]];
    for argv in &infinities {
        cases.push((scripts[1], argv));
        cases.push((
            "local ok, e = pcall(cjson.encode, cjson.decode(ARGV[1])) return e",
            argv,
        ));
    }
    let none: &[&str] = &[];
    let direct = [
        "return cjson.decode()",
        "return cjson.decode('1', '2')",
        "return cjson.decode({})",
        "return cjson.decode(true)",
        "return cjson.decode(nil)",
        "return cjson.decode(12.5)",
        "return cjson.decode(1e300) == 1e300",
        "return cjson.decode('null') == cjson.null",
        "return {type(cjson.null), tostring(cjson.null), cjson.null == nil}",
        "return cjson.decode('[1,null,3]')[2] == cjson.null",
        "return #cjson.decode('[1,null,3]')",
        "return cjson.decode('{\"a\":[10,20]}').a[2]",
        "return select(2, pcall(cjson.decode, '[1,'))",
        "return cjson.decode(string.rep('[', 1000) .. string.rep(']', 1000)) ~= nil",
        "return cjson.decode(string.rep('[', 1001) .. string.rep(']', 1001))",
        "return cjson.decode(string.rep('{\"k\":', 1001) .. '1' .. string.rep('}', 1001))",
    ];
    for script in &direct {
        cases.push((script, none));
    }
    with_both(|r, s, shards| compare_evals(r, s, shards, &cases));
}

#[test]
fn configuration_matches_redis() {
    // Each script restores the defaults it changes, as the servers keep them between scripts.
    let cases: &[&str] = &[
        "return {cjson._NAME, cjson._VERSION}",
        "return {cjson.encode_sparse_array()}",
        "return cjson.encode_max_depth()",
        "return cjson.decode_max_depth()",
        "return cjson.encode_number_precision()",
        "return cjson.encode_keep_buffer()",
        "return cjson.encode_invalid_numbers()",
        "return cjson.decode_invalid_numbers()",
        "local p = cjson.encode_number_precision(3) \
         local r = {p, cjson.encode(1234.5), cjson.encode(0.000123456), cjson.encode(1/3)} \
         cjson.encode_number_precision(14) return r",
        "cjson.encode_number_precision(1) local r = cjson.encode({15, 0.25, 95}) \
         cjson.encode_number_precision(14) return r",
        "return cjson.encode_number_precision(0)",
        "return cjson.encode_number_precision(15)",
        "return cjson.encode_number_precision('x')",
        "return cjson.encode_number_precision(1, 2)",
        "local r = cjson.encode_number_precision('12') cjson.encode_number_precision(14) return r",
        "return {cjson.encode_number_precision(nil)}",
        "local r = {cjson.encode_sparse_array(true)} \
         r[4] = cjson.encode({[1] = 'a', [20] = 'b'}) \
         cjson.encode_sparse_array(false) return r",
        "local r = {cjson.encode_sparse_array('on', 0)} \
         r[4] = cjson.encode({[1] = 'a', [50] = 'b'}) \
         cjson.encode_sparse_array('off', 2) return r",
        "local r = {cjson.encode_sparse_array(false, 1, 0)} \
         r[4] = select(2, pcall(cjson.encode, {[1] = 'a', [3] = 'c'})) \
         cjson.encode_sparse_array(false, 2, 10) return r",
        "return {cjson.encode_sparse_array('x')}",
        "return {cjson.encode_sparse_array(5)}",
        "return {cjson.encode_sparse_array({})}",
        "return {cjson.encode_sparse_array(false, -1)}",
        "return {cjson.encode_sparse_array(false, 2, 'x')}",
        "return {cjson.encode_sparse_array(false, 2, 10, 1)}",
        // A bad ratio fails after the flag was already set, as in lua_cjson.
        "pcall(cjson.encode_sparse_array, true, -1) \
         local r = {cjson.encode_sparse_array()} cjson.encode_sparse_array(false) return r",
        "local r = {cjson.encode_invalid_numbers('on')} \
         r[2] = cjson.encode({1/0, -1/0, 0/0, 1}) \
         r[3] = cjson.encode_invalid_numbers('null') \
         r[4] = cjson.encode({1/0, -1/0, 0/0, 1}) \
         r[5] = cjson.encode_invalid_numbers(true) \
         r[6] = cjson.encode_invalid_numbers(false) \
         return r",
        "return cjson.encode_invalid_numbers('maybe')",
        "local r = {cjson.decode_invalid_numbers(false)} \
         r[2] = select(2, pcall(cjson.decode, '+1')) \
         r[3] = select(2, pcall(cjson.decode, '0x10')) \
         r[4] = select(2, pcall(cjson.decode, '[1, inf]')) \
         r[5] = select(2, pcall(cjson.decode, 'NaN')) \
         r[6] = select(2, pcall(cjson.decode, '007')) \
         r[7] = cjson.decode('-12.5e1') \
         r[8] = cjson.decode_invalid_numbers('on') \
         return r",
        "local r = {cjson.encode_keep_buffer(false), cjson.encode({1}), \
                    cjson.encode_keep_buffer('on'), cjson.encode_keep_buffer()} return r",
        "return cjson.encode_keep_buffer(1)",
        "local r = {cjson.encode_max_depth(2), \
                    select(2, pcall(cjson.encode, {{{1}}})), cjson.encode({{1}})} \
         cjson.encode_max_depth(1000) return r",
        "local r = {cjson.decode_max_depth(2), \
                    select(2, pcall(cjson.decode, '[[[1]]]')), cjson.encode(cjson.decode('[[1]]'))} \
         cjson.decode_max_depth(1000) return r",
        "return cjson.encode_max_depth(0)",
        "return cjson.decode_max_depth(-5)",
        "return cjson.decode_max_depth(1, 2)",
        // A module of its own, with its own settings.
        "local c = cjson.new() c.encode_number_precision(2) \
         return {cjson.encode(1/3), c.encode(1/3), c._VERSION}",
        // The library is read-only, as every table the globals reach in Redis 7.0.
        "cjson.encode = nil",
        "cjson.x = 1",
        "rawset(cjson, 'x', 1)",
        "return rawget(cjson, 'null') == cjson.null",
    ];
    let cases: Vec<(&str, &[&str])> = cases.iter().map(|s| (*s, &[][..])).collect();
    with_both(|r, s, shards| compare_evals(r, s, shards, &cases));
}

/// Redis 7.0's answers with both limits raised: the Lua C stack stops arrays and objects at
/// different depths, and encoding a level needs one more slot than decoding it.
#[test]
fn deep_nesting_matches_redis() {
    let script = "cjson.decode_max_depth(100000) cjson.encode_max_depth(100000) \
        local ok, t = pcall(cjson.decode, string.rep(ARGV[1], ARGV[3]) .. ARGV[2] \
                                          .. string.rep(ARGV[4], ARGV[3])) \
        local result = t \
        if ok then \
          local encoded \
          ok, encoded = pcall(cjson.encode, t) \
          result = ok and #encoded or encoded \
        end \
        cjson.decode_max_depth(1000) cjson.encode_max_depth(1000) \
        return result";
    let mut argvs: Vec<[String; 4]> = Vec::new();
    for n in [1000, 1001, 3999, 4000, 7997, 7998, 7999, 9000] {
        argvs.push(["[".into(), "".into(), n.to_string(), "]".into()]);
        argvs.push(["{\"a\":".into(), "1".into(), n.to_string(), "}".into()]);
        argvs.push([
            "[{\"a\":".into(),
            "1".into(),
            (n / 2).to_string(),
            "}]".into(),
        ]);
    }
    let argvs: Vec<Vec<&str>> = argvs
        .iter()
        .map(|a| a.iter().map(String::as_str).collect())
        .collect();
    let cases: Vec<(&str, &[&str])> = argvs.iter().map(|a| (script, a.as_slice())).collect();
    with_both(|r, s, shards| compare_evals(r, s, shards, &cases));
}
