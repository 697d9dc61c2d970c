//! RESP micro-benchmarks: parsing requests as a connection receives them (one command, and a
//! pipelined batch of 16), and encoding the replies the common commands write.
//!
//! Run with `cargo bench --bench resp`.

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shardis_resp::parse::Parsed;
use shardis_resp::{Limits, Parser, Protocol, Reply, Span};
use std::hint::black_box;

/// A `SET key value` request with a 32-byte value, as redis-benchmark and shardis-bench send it.
fn set_request(n: usize) -> Vec<u8> {
    let key = format!("key:{n:06}");
    format!(
        "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$32\r\n{}\r\n",
        key.len(),
        "x".repeat(32)
    )
    .into_bytes()
}

/// Parses every command in `buf` the way a connection does; returns the argument count.
fn parse_all(parser: &mut Parser, buf: &mut [u8], spans: &mut Vec<Span>, limits: &Limits) -> usize {
    spans.clear();
    let mut start = 0;
    let mut args = 0;
    while start < buf.len() {
        match parser.parse(buf, start, spans, limits, true) {
            Ok(Parsed::Command { argc, end }) => {
                args += argc;
                start = end;
            }
            Ok(Parsed::Incomplete { .. }) | Err(_) => break,
        }
    }
    args
}

fn parsing(c: &mut Criterion) {
    let limits = Limits::default();
    let mut parser = Parser::new();
    let mut spans = Vec::new();
    let mut group = c.benchmark_group("parse");
    for (name, count) in [("SET", 1), ("SET x16 pipelined", 16)] {
        let mut buf: Vec<u8> = (0..count).flat_map(set_request).collect();
        group.throughput(Throughput::Elements(count as u64));
        group.bench_function(name, |b| {
            b.iter(|| parse_all(&mut parser, black_box(&mut buf), &mut spans, &limits))
        });
    }
    let mut inline = b"GET key:000001\r\n".to_vec();
    group.throughput(Throughput::Elements(1));
    group.bench_function("inline GET", |b| {
        b.iter(|| parse_all(&mut parser, black_box(&mut inline), &mut spans, &limits))
    });
    group.finish();
}

fn encoding(c: &mut Criterion) {
    let mut out = Vec::with_capacity(64 * 1024);
    let value = [b'x'; 32];
    let mut group = c.benchmark_group("encode");
    group.bench_function("bulk 32 B", |b| {
        b.iter(|| {
            out.clear();
            Reply::new(&mut out, Protocol::Resp2).bulk(black_box(&value));
        })
    });
    group.bench_function("integer", |b| {
        b.iter(|| {
            out.clear();
            Reply::new(&mut out, Protocol::Resp2).integer(black_box(1_234_567));
        })
    });
    // HGETALL of a 5-field hash: a map in RESP3, a flat array in RESP2.
    let fields: Vec<(Vec<u8>, Vec<u8>)> = (0..5)
        .map(|i| {
            (
                format!("field{i}").into_bytes(),
                format!("value-{i}").into_bytes(),
            )
        })
        .collect();
    for (name, proto) in [
        ("map of 5, RESP2", Protocol::Resp2),
        ("map of 5, RESP3", Protocol::Resp3),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                let mut reply = Reply::new(&mut out, proto);
                reply.map(fields.len());
                for (field, value) in black_box(&fields) {
                    reply.bulk(field);
                    reply.bulk(value);
                }
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::quick();
    targets = parsing, encoding
}
criterion_main!(benches);
