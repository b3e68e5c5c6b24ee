//! Port ranges for tests: each test claims slots of 111 ports (one
//! profile's reserved set each) by holding file locks, so tests running in
//! parallel never pick overlapping ranges, and checks the ports are free.

use std::fs::{File, OpenOptions};
use std::net::{Ipv4Addr, TcpListener};

use rand::RngExt;

const FIRST: u16 = 20_000;
/// Width of one slot: one profile's reserved ports (base..=base+110).
pub const SLOT: u16 = 111;

/// Slots between `FIRST` and the kernel's ephemeral range (where
/// `openclawctl`'s allocator never places a profile, and where outgoing
/// connections could take a test's port).
fn slots() -> u16 {
    let limit = openclaw_profiles::ports::ephemeral_range().map_or(60_000, |(lo, _)| lo);
    (limit.saturating_sub(FIRST) / SLOT).max(1)
}

/// Claimed adjacent slots; released on drop.
#[derive(Debug)]
pub struct PortSlot {
    base: u16,
    count: u16,
    _locks: Vec<File>,
}

impl PortSlot {
    /// The first port (a profile base).
    pub fn base(&self) -> u16 {
        self.base
    }
    /// The base of the `i`-th slot of this claim.
    pub fn nth(&self, i: u16) -> u16 {
        assert!(i < self.count, "slot {i} not claimed");
        self.base + i * SLOT
    }
}

fn try_lock_slot(s: u16) -> Option<File> {
    let dir = std::env::temp_dir().join("openclaw-e2e-port-slots");
    std::fs::create_dir_all(&dir).ok()?;
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(format!("slot-{s}.lock")))
        .ok()?;
    f.try_lock().ok().map(|()| f)
}

fn all_free(base: u16, len: u16) -> bool {
    (base..base + len).all(|p| TcpListener::bind((Ipv4Addr::LOCALHOST, p)).is_ok())
}

/// Claims `n` adjacent slots (n * 111 ports) that are free right now.
pub fn claim_slots(n: u16) -> PortSlot {
    let mut rng = rand::rng();
    let total = slots();
    assert!(n < total, "{n} slots asked, {total} exist");
    for _ in 0..1000 {
        let first = rng.random_range(0..total - n);
        let locks: Vec<File> = (first..first + n).map_while(try_lock_slot).collect();
        let base = FIRST + first * SLOT;
        if locks.len() == usize::from(n) && all_free(base, n * SLOT) {
            return PortSlot {
                base,
                count: n,
                _locks: locks,
            };
        }
    }
    panic!("no free port range of {} ports found", n * SLOT);
}

/// Claims one slot.
pub fn claim() -> PortSlot {
    claim_slots(1)
}
