//! Per-tenant resource limits (`profile create|set --memory-max 256M
//! --cpu-quota 50% --tasks-max 256 --nofile 4096`), recorded with the
//! profile in openclawctl's registry. One value type serves every place
//! that applies them: systemd unit lines (`MemoryMax=`, `CPUQuota=`,
//! `TasksMax=`, `LimitNOFILE=`), the keeper (rlimits, cgroup v2 files,
//! its memory watchdog) and Kubernetes `resources`.
//!
//! Sizes are written the way systemd reads them: a number of bytes with an
//! optional `K`, `M`, `G` or `T` suffix, each 1024 times the one before.

use serde::{Deserialize, Serialize};

/// The smallest `memory-max` accepted: a gateway idles at a few MiB.
pub const MIN_MEMORY: u64 = 16 << 20;
/// The smallest `nofile` accepted: a gateway needs its listener, logs,
/// state files and a few clients.
pub const MIN_NOFILE: u64 = 64;
/// The smallest `tasks-max` accepted: the gateway's runtime threads.
pub const MIN_TASKS: u32 = 16;

/// A profile's limits; `None` is "no limit".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Limits {
    /// Memory of the whole process tree, bytes.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "size_text")]
    pub memory_max: Option<u64>,
    /// CPU time, percent of one core (`150` is one and a half cores).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_quota: Option<u32>,
    /// Processes and threads of the tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks_max: Option<u32>,
    /// Open file descriptors per process (soft and hard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nofile: Option<u64>,
}

/// [`Limits`] in `--json` documents (camelCase, units in the names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LimitsJson {
    /// `memory-max` in bytes.
    pub memory_max_bytes: Option<u64>,
    /// `cpu-quota` in percent of one core.
    pub cpu_quota_percent: Option<u32>,
    /// `tasks-max`.
    pub tasks_max: Option<u32>,
    /// `nofile`.
    pub nofile: Option<u64>,
}

/// One limit by name, for messages and `profile set`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `memory-max`.
    Memory,
    /// `cpu-quota`.
    Cpu,
    /// `tasks-max`.
    Tasks,
    /// `nofile`.
    Nofile,
}

impl Kind {
    /// Every limit, in display order.
    pub const ALL: [Kind; 4] = [Kind::Memory, Kind::Cpu, Kind::Tasks, Kind::Nofile];

    /// The option name: `memory-max`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Memory => "memory-max",
            Kind::Cpu => "cpu-quota",
            Kind::Tasks => "tasks-max",
            Kind::Nofile => "nofile",
        }
    }

    /// `memory-max`, `limits.memory-max` or `--memory-max`.
    pub fn parse(key: &str) -> Option<Kind> {
        let key = key.trim_start_matches("--");
        let key = key.strip_prefix("limits.").unwrap_or(key);
        Kind::ALL.into_iter().find(|k| k.name() == key)
    }
}

impl Limits {
    /// True when nothing is limited.
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }

    /// Sets one limit from its command-line text; `none` (or `infinity`)
    /// removes it.
    pub fn set(&mut self, kind: Kind, text: &str) -> Result<(), String> {
        let text = text.trim();
        if matches!(text, "none" | "infinity") {
            match kind {
                Kind::Memory => self.memory_max = None,
                Kind::Cpu => self.cpu_quota = None,
                Kind::Tasks => self.tasks_max = None,
                Kind::Nofile => self.nofile = None,
            }
            return Ok(());
        }
        match kind {
            Kind::Memory => self.memory_max = Some(parse_memory(text)?),
            Kind::Cpu => self.cpu_quota = Some(parse_cpu(text)?),
            Kind::Tasks => {
                self.tasks_max = Some(parse_count(kind, text, u64::from(MIN_TASKS))? as u32);
            }
            Kind::Nofile => self.nofile = Some(parse_count(kind, text, MIN_NOFILE)?),
        }
        Ok(())
    }

    /// One limit as written on the command line (`256M`, `50%`), if set.
    pub fn text(&self, kind: Kind) -> Option<String> {
        match kind {
            Kind::Memory => self.memory_max.map(format_size),
            Kind::Cpu => self.cpu_quota.map(|p| format!("{p}%")),
            Kind::Tasks => self.tasks_max.map(|n| n.to_string()),
            Kind::Nofile => self.nofile.map(|n| n.to_string()),
        }
    }

    /// `memory-max 256M, cpu-quota 50%`, or `none`.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = Kind::ALL
            .into_iter()
            .filter_map(|k| self.text(k).map(|t| format!("{} {t}", k.name())))
            .collect();
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        }
    }

    /// The `--json` shape: `{"memoryMaxBytes":..,"cpuQuotaPercent":..}`,
    /// unset limits as `null`.
    pub fn json(&self) -> LimitsJson {
        LimitsJson {
            memory_max_bytes: self.memory_max,
            cpu_quota_percent: self.cpu_quota,
            tasks_max: self.tasks_max,
            nofile: self.nofile,
        }
    }

    /// Serializes `limits` as [`Limits::json`], for
    /// `#[serde(serialize_with = "Limits::serialize_json")]` in `--json`
    /// documents.
    pub fn serialize_json<S: serde::Serializer>(limits: &Limits, s: S) -> Result<S::Ok, S::Error> {
        limits.json().serialize(s)
    }

    /// The `[Service]` lines systemd enforces them with.
    pub fn systemd_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(m) = self.memory_max {
            out.push(format!("MemoryMax={}", format_size(m)));
            // Without swap off, a tenant over its limit would page out
            // instead of being stopped. (The unit keeps OpenClaw's
            // OOMPolicy=continue: a killed gateway is restarted by
            // Restart=always, a killed tool subprocess leaves it running.)
            out.push("MemorySwapMax=0".into());
        }
        if let Some(c) = self.cpu_quota {
            out.push(format!("CPUQuota={c}%"));
        }
        if let Some(t) = self.tasks_max {
            out.push(format!("TasksMax={t}"));
        }
        if let Some(n) = self.nofile {
            out.push(format!("LimitNOFILE={n}"));
        }
        out
    }

    /// cgroup v2 `cpu.max` for the quota: `50000 100000` is half a core.
    pub fn cpu_max(&self) -> Option<String> {
        self.cpu_quota
            .map(|p| format!("{} 100000", u64::from(p) * 1000))
    }

    /// Kubernetes quantities: memory in `Mi`/`Ki`, CPU in millicores.
    pub fn kubernetes_memory(&self) -> Option<String> {
        self.memory_max.map(|b| {
            if b.is_multiple_of(1 << 20) {
                format!("{}Mi", b >> 20)
            } else {
                format!("{}Ki", b.div_ceil(1024))
            }
        })
    }

    /// `500m` for 50%.
    pub fn kubernetes_cpu(&self) -> Option<String> {
        self.cpu_quota.map(|p| format!("{}m", u64::from(p) * 10))
    }
}

/// `256M` -> bytes. Suffixes K, M, G, T (powers of 1024), as systemd reads
/// `MemoryMax=`; a bare number is bytes.
pub fn parse_memory(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "memory-max `{text}` is not a size: write bytes with an optional K, M, G or T suffix (e.g. 256M), or `none`"
        )
    };
    let (digits, shift) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(bad()),
            };
            (&text[..i], shift)
        }
        _ => (text, 0),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let bytes = n
        .checked_shl(shift)
        .filter(|b| b >> shift == n)
        .ok_or_else(bad)?;
    if bytes < MIN_MEMORY {
        return Err(format!(
            "memory-max `{text}` is below {}: a gateway could not even start; choose at least 16M",
            format_size(MIN_MEMORY)
        ));
    }
    Ok(bytes)
}

/// `50%` -> 50. At least 1%, at most 100% per core of this machine's
/// maximum (systemd accepts more than 100% for several cores).
pub fn parse_cpu(text: &str) -> Result<u32, String> {
    let n = text
        .strip_suffix('%')
        .and_then(|d| d.parse::<u32>().ok())
        .filter(|&p| (1..=100_000).contains(&p))
        .ok_or_else(|| {
            format!(
                "cpu-quota `{text}` is not a percentage: write e.g. 50% (half a core) or 200% (two cores), or `none`"
            )
        })?;
    Ok(n)
}

fn parse_count(kind: Kind, text: &str, min: u64) -> Result<u64, String> {
    let n: u64 = text.parse().map_err(|_| {
        format!(
            "{} `{text}` is not a whole number: write e.g. {}, or `none`",
            kind.name(),
            if kind == Kind::Tasks { 256 } else { 4096 }
        )
    })?;
    if n < min || n > u64::from(u32::MAX) {
        return Err(format!(
            "{} `{text}` is out of range: choose between {min} and {}",
            kind.name(),
            u32::MAX
        ));
    }
    Ok(n)
}

/// Bytes in the largest exact unit: `256M`, `1536K`, `1G`, `1000`.
pub fn format_size(bytes: u64) -> String {
    for (shift, unit) in [(40, 'T'), (30, 'G'), (20, 'M'), (10, 'K')] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

/// Serde for `memory-max` as a size string in the registry (`"256M"`).
mod size_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_str(&super::format_size(*b)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_memory(&text)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_print_as_systemd_writes_them() {
        assert_eq!(parse_memory("256M"), Ok(256 << 20));
        assert_eq!(parse_memory("1G"), Ok(1 << 30));
        assert_eq!(parse_memory("65536k"), Ok(64 << 20));
        assert_eq!(parse_memory("67108864"), Ok(64 << 20));
        assert_eq!(format_size(256 << 20), "256M");
        assert_eq!(format_size(1536 << 10), "1536K");
        assert_eq!(format_size(3 << 30), "3G");
        for bad in ["", "M", "12Q", "-5M", "1.5G", "99999999999999999999T"] {
            let e = parse_memory(bad).unwrap_err();
            assert!(e.contains("not a size"), "{bad}: {e}");
        }
        assert!(parse_memory("1M").unwrap_err().contains("at least 16M"));
    }

    #[test]
    fn every_limit_sets_clears_and_renders() {
        let mut l = Limits::default();
        assert!(l.is_empty() && l.systemd_lines().is_empty());
        assert_eq!(l.summary(), "none");
        l.set(Kind::Memory, "256M").unwrap();
        l.set(Kind::Cpu, "50%").unwrap();
        l.set(Kind::Tasks, "256").unwrap();
        l.set(Kind::Nofile, "4096").unwrap();
        assert_eq!(
            l.systemd_lines(),
            [
                "MemoryMax=256M",
                "MemorySwapMax=0",
                "CPUQuota=50%",
                "TasksMax=256",
                "LimitNOFILE=4096"
            ]
        );
        assert_eq!(
            l.summary(),
            "memory-max 256M, cpu-quota 50%, tasks-max 256, nofile 4096"
        );
        assert_eq!(l.cpu_max().as_deref(), Some("50000 100000"));
        assert_eq!(l.kubernetes_memory().as_deref(), Some("256Mi"));
        assert_eq!(l.kubernetes_cpu().as_deref(), Some("500m"));
        // The registry keeps sizes as text and reads back the same value.
        let text = toml::to_string(&l).unwrap();
        assert!(text.contains("memory-max = \"256M\""), "{text}");
        assert_eq!(toml::from_str::<Limits>(&text).unwrap(), l);
        l.set(Kind::Memory, "none").unwrap();
        l.set(Kind::Cpu, "infinity").unwrap();
        assert_eq!(l.memory_max, None);
        assert_eq!(l.cpu_quota, None);
        assert_eq!(Kind::parse("--tasks-max"), Some(Kind::Tasks));
        assert_eq!(Kind::parse("limits.nofile"), Some(Kind::Nofile));
        assert_eq!(Kind::parse("gateway.port"), None);
    }

    #[test]
    fn bad_limits_say_what_to_write() {
        let mut l = Limits::default();
        assert!(l.set(Kind::Cpu, "50").unwrap_err().contains("e.g. 50%"));
        assert!(l.set(Kind::Cpu, "0%").is_err());
        assert!(
            l.set(Kind::Tasks, "ten")
                .unwrap_err()
                .contains("whole number")
        );
        assert!(l.set(Kind::Nofile, "8").unwrap_err().contains("between 64"));
        assert!(
            toml::from_str::<Limits>("memory-max = \"lots\"")
                .unwrap_err()
                .to_string()
                .contains("not a size")
        );
        assert!(l.is_empty());
    }
}
