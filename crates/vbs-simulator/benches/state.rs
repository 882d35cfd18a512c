//! Times the simulator's create + get-job on its state directly (no HTTP),
//! with few and with many backups and jobs already held, side by side.

use std::time::Instant;

use vbs_simulator::bench_support::StateBench;

const PROJECT: &str = "bench";
const SIZES: [usize; 2] = [1_000, 100_000];
const TIMED_CALLS: usize = 1_000;
const ROUNDS: usize = 5;

/// The best of several rounds, each in a world filled afresh, so the
/// size grows by at most `TIMED_CALLS` while it is timed.
fn calls_per_second(existing: usize) -> f64 {
    (0..ROUNDS).map(|_| one_round(existing)).fold(0.0, f64::max)
}

fn one_round(existing: usize) -> f64 {
    let mut bench = StateBench::new();
    for _ in 0..existing {
        bench.create_and_get_job(PROJECT);
    }
    let started = Instant::now();
    for _ in 0..TIMED_CALLS {
        bench.create_and_get_job(PROJECT);
    }
    TIMED_CALLS as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let rates: Vec<f64> = SIZES.iter().map(|&size| calls_per_second(size)).collect();
    println!("simulator state: create + get-job, {TIMED_CALLS} calls, best of {ROUNDS} rounds");
    println!("{:>24} {:>16}", "existing backups+jobs", "calls/s");
    for (size, rate) in SIZES.iter().zip(&rates) {
        println!("{size:>24} {rate:>16.0}");
    }
    println!("ratio {}/{}: {:.2}", SIZES[1], SIZES[0], rates[1] / rates[0]);
}
