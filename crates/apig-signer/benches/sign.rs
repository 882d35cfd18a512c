//! Throughput and allocation cost of signing one VBS request with each HMAC
//! scheme (SDK-HMAC-SHA256, V11-HMAC-SHA256, SDK-HMAC-SM3), since the signer runs
//! on every upstream call. Measures; asserts nothing.
//! Run with `cargo bench -p apig-signer --bench sign`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use apig_signer::{Credentials, RequestView, Scheme, sign_with};
use chrono::{DateTime, Utc};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

/// Counts every allocation without `unsafe` in this crate.
#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

/// Fixed, so runs compare; about 1 s per case on a 2-core machine.
const ITERATIONS: u32 = 800_000;
/// The three schemes, V11 with the scope the gateway derives for eu-de.
const SCHEMES: [Scheme<'static>; 3] = [
    Scheme::SdkHmacSha256,
    Scheme::V11HmacSha256 {
        region: "eu-de",
        service: "vbs",
    },
    Scheme::SdkHmacSm3,
];
const WARM_UP: u32 = 2_000;
/// Allocation counts are the same every time; a short pass measures them.
const ALLOC_SAMPLE: u32 = 1_000;

const PROJECT_ID: &str = "9e8a7c4b2d1f4e6a8b0c1d2e3f405162";
const CREATE_BODY: &str = r#"{"backup":{"volume_id":"5b3f8a1e-2c4d-4e6f-9a0b-1c2d3e4f5a6b","name":"gw-backup-01","description":"nightly backup of the web data disk"}}"#;

struct Case {
    name: &'static str,
    method: &'static str,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: &'static [u8],
}

struct Measured {
    elapsed: Duration,
    bytes_per_sign: f64,
    allocs_per_sign: f64,
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// The four headers the transport sets before signing on every call.
fn typical_headers() -> Vec<(String, String)> {
    pairs(&[
        ("Content-Type", "application/json"),
        ("User-Agent", "vbs-gateway/0.1.0"),
        ("X-Project-Id", PROJECT_ID),
        ("Accept", "application/json"),
    ])
}

fn cases() -> [Case; 2] {
    [
        Case {
            name: "POST create backup",
            method: "POST",
            path: format!("/v2/{PROJECT_ID}/cloudbackups"),
            query: Vec::new(),
            headers: typical_headers(),
            body: CREATE_BODY.as_bytes(),
        },
        Case {
            name: "GET backups/detail + query",
            method: "GET",
            path: format!("/v2/{PROJECT_ID}/backups/detail"),
            query: pairs(&[
                ("status", "available"),
                ("limit", "50"),
                ("offset", "0"),
                ("volume_id", "5b3f8a1e-2c4d-4e6f-9a0b-1c2d3e4f5a6b"),
                ("name", "gw backup+01"),
            ]),
            headers: typical_headers(),
            body: b"",
        },
    ]
}

fn sign_n(case: &Case, credentials: &Credentials, scheme: &Scheme, time: DateTime<Utc>, n: u32) {
    let request = RequestView {
        method: case.method,
        host: "vbs.eu-de.otc.t-systems.com",
        path: &case.path,
        query: &case.query,
        headers: &case.headers,
        body: case.body,
    };
    for _ in 0..n {
        black_box(sign_with(black_box(&request), credentials, scheme, time));
    }
}

fn measure(case: &Case, credentials: &Credentials, scheme: &Scheme, time: DateTime<Utc>) -> Measured {
    sign_n(case, credentials, scheme, time, WARM_UP);

    let region = Region::new(GLOBAL);
    sign_n(case, credentials, scheme, time, ALLOC_SAMPLE);
    let stats = region.change();
    let per = |count: usize| count as f64 / f64::from(ALLOC_SAMPLE);

    let started = Instant::now();
    sign_n(case, credentials, scheme, time, ITERATIONS);
    Measured {
        elapsed: started.elapsed(),
        bytes_per_sign: per(stats.bytes_allocated + stats.bytes_reallocated.max(0) as usize),
        allocs_per_sign: per(stats.allocations + stats.reallocations),
    }
}

fn main() {
    let credentials = Credentials {
        access_key: "VBSGWTESTAKID0000001",
        secret_key: "vbsGwTestSecretKey0000000000000000000001",
        security_token: None,
    };
    // Fixed so every run signs the same bytes; the clock is not the point here.
    let time = DateTime::from_timestamp(1_718_440_215, 0).unwrap_or_default();

    println!("AK/SK signer, {ITERATIONS} signatures per case and scheme");
    println!(
        "{:<16} {:<28} {:>6} {:>10} {:>8} {:>10} {:>11}",
        "scheme", "case", "body B", "signs/s", "ns/sign", "bytes/sign", "allocs/sign"
    );
    for (scheme, case) in SCHEMES
        .iter()
        .flat_map(|scheme| cases().into_iter().map(move |case| (scheme, case)))
    {
        let m = measure(&case, &credentials, scheme, time);
        let seconds = m.elapsed.as_secs_f64();
        println!(
            "{:<16} {:<28} {:>6} {:>10.0} {:>8.0} {:>10.0} {:>11.1}",
            scheme.algorithm().name(),
            case.name,
            case.body.len(),
            f64::from(ITERATIONS) / seconds,
            seconds * 1e9 / f64::from(ITERATIONS),
            m.bytes_per_sign,
            m.allocs_per_sign,
        );
    }
    println!("bytes/allocs count every allocation and reallocation made while signing");
    println!("reproduce: cargo bench -p apig-signer --bench sign");
}
