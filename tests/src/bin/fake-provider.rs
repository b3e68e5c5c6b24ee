//! The fake OpenAI-compatible provider of the test support as a process
//! (benchmarks, manual runs): `fake-provider [ADDR]` (default
//! 127.0.0.1:0) prints its `baseUrl` on stdout, then serves until stdin
//! closes.

use std::io::{Read, Write};

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let fake = openclaw_e2e::fake_provider::FakeProvider::start_on(&addr);
    println!("{}", fake.base_url());
    let _ = std::io::stdout().flush();
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}
