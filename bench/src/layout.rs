//! Where objects go: every run names its objects under `bench/<run>/`, a random id of its own, so two runs
//! never touch each other's objects (a run's cleanup cannot delete what an earlier `--keep` run left, and an
//! edge holds no copy of a new run's pool). `--buckets` and `--prefixes` spread a run's objects round-robin,
//! so object number `seq` lands in bucket `seq % buckets` under prefix `p<(seq / buckets) % prefixes>/`. With
//! one of each (the default) keys keep their plain names (`bench/<run>/pool/3`).

/// An object of the run: which bucket (index into the run's buckets), its key, its size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Object {
    pub(crate) bucket: usize,
    pub(crate) key: String,
    pub(crate) size: u64,
}

/// How a run names its objects and spreads them over buckets and prefixes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout {
    pub(crate) buckets: usize,
    pub(crate) prefixes: usize,
    pub(crate) run: RunId,
}

/// A run's id: eight hex digits, random.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RunId(pub(crate) u32);

impl RunId {
    pub(crate) fn random() -> RunId {
        RunId(rand::random())
    }
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

impl Layout {
    /// The name of this run's object `rest` (before any prefix): `bench/<run>/<rest>`.
    pub(crate) fn name(&self, rest: std::fmt::Arguments<'_>) -> String {
        format!("bench/{}/{rest}", self.run)
    }

    /// Where this run's keys start, one per prefix: `bench/<run>/`, or `p<i>/bench/<run>/` for each of
    /// `--prefixes`.
    pub(crate) fn roots(&self) -> Vec<String> {
        let root = self.name(format_args!(""));
        match self.prefixes {
            0 | 1 => vec![root],
            p => (0..p).map(|i| format!("p{i}/{root}")).collect(),
        }
    }

    /// Whether `key` is one of this run's (under any `p<i>/` prefix, whatever `--prefixes` was).
    pub(crate) fn owns(&self, key: &str) -> bool {
        let unprefixed = key
            .strip_prefix('p')
            .and_then(|k| k.split_once('/'))
            .filter(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .map_or(key, |(_, rest)| rest);
        unprefixed.starts_with(&self.name(format_args!("")))
    }

    /// The bucket index and key of object number `seq` whose name without prefix is `name`.
    pub(crate) fn place(&self, seq: u64, name: &str) -> (usize, String) {
        let buckets = self.buckets.max(1) as u64;
        let bucket = (seq % buckets) as usize;
        let key = match self.prefixes {
            0 | 1 => name.to_owned(),
            p => format!("p{}/{name}", (seq / buckets) % p as u64),
        };
        (bucket, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_spread_round_robin() {
        let plain = Layout {
            buckets: 1,
            prefixes: 1,
            run: RunId(0xab),
        };
        let name = plain.name(format_args!("pool/{}", 7));
        assert_eq!(name, "bench/000000ab/pool/7");
        assert_eq!(plain.place(7, &name), (0, name.clone()));
        let spread = Layout {
            buckets: 2,
            prefixes: 3,
            run: RunId(0xab),
        };
        let placed: Vec<(usize, String)> = (0..7).map(|i| spread.place(i, "k")).collect();
        let expect = [
            (0, "p0/k"),
            (1, "p0/k"),
            (0, "p1/k"),
            (1, "p1/k"),
            (0, "p2/k"),
            (1, "p2/k"),
            (0, "p0/k"),
        ];
        for (got, (b, k)) in placed.iter().zip(expect) {
            assert_eq!((got.0, got.1.as_str()), (b, k));
        }
        assert_eq!(plain.roots(), ["bench/000000ab/"]);
        assert_eq!(
            spread.roots(),
            [
                "p0/bench/000000ab/",
                "p1/bench/000000ab/",
                "p2/bench/000000ab/"
            ]
        );
    }

    #[test]
    fn a_runs_keys_are_told_from_others() {
        let run = Layout {
            buckets: 1,
            prefixes: 1,
            run: RunId(0xab),
        };
        for key in [
            "bench/000000ab/0/1",
            "p7/bench/000000ab/pool/3",
            "p12/bench/000000ab/x",
        ] {
            assert!(run.owns(key), "{key}");
        }
        for key in [
            "bench/000000ac/0/1",
            "bench/000000ab",
            "bench/000000abc/0",
            "px/bench/000000ab/0",
            "p/bench/000000ab/0",
            "q1/bench/000000ab/0",
            "other",
        ] {
            assert!(!run.owns(key), "{key}");
        }
    }
}
