//! Slot hashing micro-benchmarks: the CRC16 hash slot of keys of typical shapes, which every
//! keyed command computes when Shardis runs more than one shard.
//!
//! Run with `cargo bench --bench slots`.

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shardis_server::slots::key_slot;
use std::hint::black_box;

fn slot_hashing(c: &mut Criterion) {
    let long = vec![b'k'; 1024];
    let keys: [(&str, &[u8]); 4] = [
        ("short key", b"key:000001"),
        ("memtier key", b"memtier-1234567"),
        ("hash tag", b"{user:1000}:profile"),
        ("1 KiB key", &long),
    ];
    let mut group = c.benchmark_group("key_slot");
    for (name, key) in keys {
        group.throughput(Throughput::Bytes(key.len() as u64));
        group.bench_function(name, |b| b.iter(|| key_slot(black_box(key))));
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::quick();
    targets = slot_hashing
}
criterion_main!(benches);
