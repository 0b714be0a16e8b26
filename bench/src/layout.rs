//! Where objects go: `--buckets` and `--prefixes` spread a run's objects round-robin, so object number `seq`
//! lands in bucket `seq % buckets` under prefix `p<(seq / buckets) % prefixes>/`. With one of each (the
//! default) keys keep their plain names (`bench/pool/3`).

/// An object of the run: which bucket (index into the run's buckets), its key, its size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Object {
    pub(crate) bucket: usize,
    pub(crate) key: String,
    pub(crate) size: u64,
}

/// How a run spreads objects over buckets and prefixes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout {
    pub(crate) buckets: usize,
    pub(crate) prefixes: usize,
}

impl Layout {
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
        };
        assert_eq!(plain.place(7, "bench/pool/7"), (0, "bench/pool/7".into()));
        let spread = Layout {
            buckets: 2,
            prefixes: 3,
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
    }
}
