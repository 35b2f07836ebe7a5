//! A pure-Rust harness of the feature engine's batch path: the synthetic stream of
//! `benchmarks/book_throughput.py` (same distribution, a different generator), a book, a tape
//! and an engine with depths [5, 50], driven through `batch::run_features` with a feature
//! update after every level update. Made to be run under callgrind:
//!
//! ```text
//! cargo build --release --example features_batch
//! valgrind --tool=callgrind target/release/examples/features_batch 200000
//! ```
//!
//! Prints the updates applied, the wall time and a checksum of the skew column.

use marketmaker_core::batch::{run_features, BatchPrices};
use marketmaker_core::book::{OrderBook, Sequencing};
use marketmaker_core::features::{FeatureConfig, FeatureEngine};
use marketmaker_core::price::PriceGrid;
use marketmaker_core::side::Side;
use marketmaker_core::trades::TradeTape;

const LEVELS: i64 = 1_000;
const NEAR_TICKS: i64 = 20;
const NEAR_SHARE: f64 = 0.85;
const DELETE_SHARE: f64 = 0.08;
const MOVE_SHARE: f64 = 0.02;
const MAX_LOTS: u64 = 5_000;
const MID0_TICKS: i64 = 600_000;

/// `SplitMix64`: a small, seeded generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(1_000_000);
    let mut rng = Rng(20_240_808);
    let mut is_bid = Vec::with_capacity(n);
    let mut ticks = Vec::with_capacity(n);
    let mut sizes = Vec::with_capacity(n);
    let mut mid = MID0_TICKS;
    for _ in 0..n {
        let u = rng.uniform();
        let bid = rng.uniform() < 0.5;
        let distance = if rng.uniform() < NEAR_SHARE {
            rng.between(1, NEAR_TICKS as u64) as i64
        } else {
            rng.between(NEAR_TICKS as u64 + 1, LEVELS as u64) as i64
        };
        let mut lots = rng.between(1, MAX_LOTS);
        if rng.uniform() < DELETE_SHARE {
            lots = 0;
        }
        if u < MOVE_SHARE / 2.0 {
            is_bid.push(true);
            ticks.push(mid);
            sizes.push(0.0);
            mid -= 1;
        } else if u < MOVE_SHARE {
            is_bid.push(false);
            ticks.push(mid + 1);
            sizes.push(0.0);
            mid += 1;
        } else {
            is_bid.push(bid);
            ticks.push(if bid {
                mid - distance + 1
            } else {
                mid + distance
            });
            sizes.push(lots as f64 / 1000.0);
        }
    }
    let times: Vec<i64> = (0..n as i64).map(|i| i * 1_000_000).collect();

    let mut book = OrderBook::new(
        "SYN",
        PriceGrid::from_text("0.1").expect("a valid tick"),
        Sequencing::Unsequenced,
    );
    for offset in 0..LEVELS {
        let size = rng.between(1, MAX_LOTS) as f64 / 1000.0;
        book.set_level(Side::Buy, MID0_TICKS - offset, size);
        let size = rng.between(1, MAX_LOTS) as f64 / 1000.0;
        book.set_level(Side::Sell, MID0_TICKS + 1 + offset, size);
    }
    let mut tape = TradeTape::new(10_000);
    let mut engine = FeatureEngine::new(FeatureConfig {
        depths: vec![5, 50],
        tick_window: 100,
        ..FeatureConfig::default()
    })
    .expect("valid parameters");
    let mut out = Vec::new();
    let start = std::time::Instant::now();
    let rows = run_features(
        &mut book,
        &mut tape,
        &mut engine,
        &times,
        &is_bid,
        BatchPrices::Ticks(&ticks),
        &sizes,
        None,
        None,
        &mut out,
    )
    .expect("a valid stream");
    let elapsed = start.elapsed().as_secs_f64();
    let checksum: f64 = out[out.len() - 1].iter().sum();
    println!(
        "{rows} updates in {elapsed:.3} s ({:.2}M updates/s), skew checksum {checksum:.12e}",
        rows as f64 / elapsed / 1e6
    );
}
