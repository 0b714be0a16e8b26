//! Parsers for the human-friendly command-line values: sizes (`4KiB`, `1MiB`, `1GB`), durations (`30s`,
//! `1m30s`, `500ms`) and the mixed-mode ratio (`get=70,put=20,delete=5,stat=5`). Pure functions, no I/O.

use std::time::Duration;

/// Parses a byte size: a number (fractions allowed) followed by an optional unit. Binary units `KiB`, `MiB`,
/// `GiB`, `TiB` (and the shorthands `K`, `M`, `G`, `T`) are powers of 1024; decimal `KB`, `MB`, `GB`, `TB` are
/// powers of 1000; `B` or no unit means bytes. Units are case-insensitive.
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num.parse().map_err(|_| {
        format!("invalid size {s:?}: expected a number followed by a unit such as KiB")
    })?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        other => return Err(format!("invalid size unit {other:?} in {s:?}")),
    };
    let bytes = value * mult as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > (1u64 << 50) as f64 {
        return Err(format!("size {s:?} out of range"));
    }
    if bytes > 0.0 && bytes < 1.0 {
        return Err(format!("size {s:?} is less than one byte"));
    }
    Ok(bytes.round() as u64)
}

/// Parses a duration: one or more `<number><unit>` groups with units `ms`, `s`, `m`, `h` (e.g. `1m30s`,
/// `500ms`, `2.5s`); a bare number means seconds.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = s.parse::<f64>() {
        return secs_to_duration(secs, s);
    }
    let mut total = 0.0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let unit_end = rest[num_end..]
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .map_or(rest.len(), |i| num_end + i);
        let num: f64 = rest[..num_end]
            .parse()
            .map_err(|_| format!("invalid duration {s:?}: expected e.g. 30s, 500ms, 1m30s"))?;
        let scale = match &rest[num_end..unit_end] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            other => return Err(format!("invalid duration unit {other:?} in {s:?}")),
        };
        total += num * scale;
        rest = &rest[unit_end..];
    }
    secs_to_duration(total, s)
}

/// [`parse_duration`] for lengths that must not be zero (the measured phase, the time limit of an operation).
pub(crate) fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err(format!("duration {s:?} must be more than zero"));
    }
    Ok(d)
}

fn secs_to_duration(secs: f64, s: &str) -> Result<Duration, String> {
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(format!("duration {s:?} out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Formats a byte count with the largest binary unit that keeps it whole-ish (`64MiB`, `4KiB`, `1.5GiB`).
pub(crate) fn format_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    for (name, mult) in UNITS {
        if bytes >= mult {
            let v = bytes as f64 / mult as f64;
            return if bytes.is_multiple_of(mult) {
                format!("{}{name}", bytes / mult)
            } else {
                format!("{v:.2}{name}")
            };
        }
    }
    format!("{bytes}B")
}

/// Validates a `--mix` value, returning it normalised (`get=70,put=20,...`).
pub(crate) fn parse_mix_arg(s: &str) -> Result<String, String> {
    Mix::parse(s).map(|m| m.to_string())
}

/// One operation kind of the mixed workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum OpKind {
    Put,
    Get,
    Delete,
    Stat,
    List,
    /// One ListObjectVersions page.
    ListVersions,
    /// One whole object uploaded as a multipart upload (create, parts, complete).
    Multipart,
    /// One UploadPart of a multipart upload; reported on its own row, outside the totals.
    Part,
    /// One unsigned GET through the edge.
    EdgeGet,
}

impl OpKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            OpKind::Put => "put",
            OpKind::Get => "get",
            OpKind::Delete => "delete",
            OpKind::Stat => "stat",
            OpKind::List => "list",
            OpKind::ListVersions => "list-versions",
            OpKind::Multipart => "multipart",
            OpKind::Part => "part",
            OpKind::EdgeGet => "edge-get",
        }
    }
}

/// The mixed workload's operations when `--mix` is not given.
pub(crate) const DEFAULT_MIX: &str = "get=70,put=20,delete=5,stat=5";

/// Relative weights of the mixed workload's operations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Mix {
    /// `(kind, cumulative weight)`, in the order given; the last entry's weight is the total.
    cumulative: Vec<(OpKind, u32)>,
}

impl Mix {
    /// Parses `get=70,put=20,delete=5,stat=5`. Kinds: get, put, delete, stat (HEAD). Weights are relative.
    pub(crate) fn parse(s: &str) -> Result<Mix, String> {
        let mut cumulative = Vec::new();
        let mut seen = Vec::new();
        let mut total = 0u32;
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("invalid mix entry {part:?}: expected op=weight"))?;
            let kind = match name.trim().to_ascii_lowercase().as_str() {
                "get" => OpKind::Get,
                "put" => OpKind::Put,
                "delete" => OpKind::Delete,
                "stat" | "head" => OpKind::Stat,
                other => {
                    return Err(format!(
                        "unknown mix operation {other:?} (get, put, delete, stat)"
                    ));
                }
            };
            let weight: u32 = weight
                .trim()
                .parse()
                .map_err(|_| format!("invalid weight in mix entry {part:?}"))?;
            if seen.contains(&kind) {
                return Err(format!("operation {name:?} appears twice in the mix"));
            }
            seen.push(kind);
            if weight == 0 {
                continue;
            }
            total = total
                .checked_add(weight)
                .filter(|&t| t <= 1_000_000)
                .ok_or("mix weights too large")?;
            cumulative.push((kind, total));
        }
        if total == 0 {
            return Err("the mix needs at least one operation with a positive weight".into());
        }
        Ok(Mix { cumulative })
    }

    /// The total of all weights.
    pub(crate) fn total(&self) -> u32 {
        self.cumulative.last().map_or(0, |&(_, t)| t)
    }

    /// Picks the operation for a uniform draw `r` in `0..total()`.
    pub(crate) fn pick(&self, r: u32) -> OpKind {
        self.cumulative
            .iter()
            .find(|&&(_, c)| r < c)
            .map_or(self.cumulative[self.cumulative.len() - 1].0, |&(k, _)| k)
    }
}

impl std::fmt::Display for Mix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut prev = 0;
        for (i, &(kind, c)) in self.cumulative.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}={}", kind.name(), c - prev)?;
            prev = c;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("256mib"), Ok(256 << 20));
        assert_eq!(parse_size("1.5KiB"), Ok(1536));
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("123"), Ok(123));
        assert_eq!(parse_size("0"), Ok(0));
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("4XiB").is_err());
        assert!(parse_size("-1KiB").is_err());
        assert!(parse_size("0.3").is_err());
        assert!(parse_size("0.5").is_err());
        assert_eq!(parse_size("0.0"), Ok(0));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("15"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2.5s"), Ok(Duration::from_millis(2500)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("s").is_err());
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_positive_duration("0").is_err());
        assert!(parse_positive_duration("0ms").is_err());
        assert_eq!(parse_positive_duration("1ms"), Ok(Duration::from_millis(1)));
    }

    #[test]
    fn format_sizes() {
        assert_eq!(format_size(4096), "4KiB");
        assert_eq!(format_size(64 << 20), "64MiB");
        assert_eq!(format_size(1536), "1.50KiB");
        assert_eq!(format_size(10), "10B");
    }

    #[test]
    fn mix() {
        let m = Mix::parse("get=70,put=20,delete=5,stat=5").unwrap();
        assert_eq!(m.total(), 100);
        assert_eq!(m.pick(0), OpKind::Get);
        assert_eq!(m.pick(69), OpKind::Get);
        assert_eq!(m.pick(70), OpKind::Put);
        assert_eq!(m.pick(89), OpKind::Put);
        assert_eq!(m.pick(90), OpKind::Delete);
        assert_eq!(m.pick(99), OpKind::Stat);
        assert_eq!(m.to_string(), "get=70,put=20,delete=5,stat=5");
        assert!(Mix::parse("get=0").is_err());
        assert!(Mix::parse("get=1,get=2").is_err());
        assert!(Mix::parse("get=0,get=5").is_err());
        assert!(Mix::parse("copy=1").is_err());
        assert!(Mix::parse("get").is_err());
    }
}
