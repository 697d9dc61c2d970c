//! Hash value micro-benchmarks: the operations behind HGET, HSET, HINCRBY and HGETALL on a small
//! hash (compact encoding) and on a large one (table encoding).
//!
//! Run with `cargo bench --bench hash`.

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use shardis_resp::parse_i64;
use shardis_store::hash::{FieldTtl, Hash, HashLimits};
use std::hint::black_box;

/// A hash with `n` fields `field<i>` -> `value-<i>`.
fn filled(n: usize, limits: &HashLimits) -> Hash {
    let mut hash = Hash::new();
    for i in 0..n {
        hash.set(
            format!("field{i}").as_bytes(),
            format!("value-{i}").as_bytes(),
            FieldTtl::Clear,
            limits,
        );
    }
    hash
}

fn operations(c: &mut Criterion) {
    let limits = HashLimits::default();
    // 5 fields stay compact; 1000 are past the 512-entry limit, so a table.
    for n in [5, 1000] {
        let mut hash = filled(n, &limits);
        let mut group = c.benchmark_group(format!("hash {n} fields ({})", hash.encoding()));
        let last = format!("field{}", n - 1).into_bytes();
        group.bench_function("get hit", |b| {
            b.iter(|| hash.get(black_box(&last)).map(<[u8]>::len))
        });
        group.bench_function("get miss", |b| {
            b.iter(|| hash.get(black_box(b"absent")).map(<[u8]>::len))
        });
        group.bench_function("set overwrite", |b| {
            b.iter(|| {
                hash.set(
                    black_box(&last),
                    black_box(b"value-x"),
                    FieldTtl::Clear,
                    &limits,
                )
            })
        });
        // HINCRBY's work on the value: read, parse, add, format, write back.
        hash.set(b"counter", b"0", FieldTtl::Clear, &limits);
        let mut text = itoa::Buffer::new();
        group.bench_function("incr", |b| {
            b.iter(|| {
                let current = hash.get(b"counter").and_then(parse_i64).unwrap_or(0);
                let next = text.format(current.wrapping_add(1));
                hash.set(b"counter", next.as_bytes(), FieldTtl::Keep, &limits)
            })
        });
        group.bench_function("iterate (HGETALL)", |b| {
            b.iter(|| hash.iter().map(|(f, v)| f.len() + v.len()).sum::<usize>())
        });
        group.bench_function("build", |b| b.iter(|| filled(black_box(n), &limits)));
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = common::quick();
    targets = operations
}
criterion_main!(benches);
