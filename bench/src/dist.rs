//! What a run draws at random: object sizes (fixed, a uniform range, or log-normal around a median, clamped)
//! and which pool object a read goes to (sequential, uniform, or Zipf-distributed so a few objects are hot).
//! The command-line forms are parsed here too. Pure functions of an RNG, so tests can fix the seed.

use std::fmt;

use rand::Rng;
use rand_distr::{Distribution as _, LogNormal, Zipf};

use crate::units::{format_size, parse_size};

/// Largest object a single PUT may carry in S3 (5 GiB), and so the largest size any distribution draws.
pub(crate) const MAX_OBJECT: u64 = 5 << 30;
/// Standard-normal quantile of 99.9 %: the default clamp of a log-normal is median·e^(this·σ).
const Z_999: f64 = 3.09;

/// The `--size` value: one size, or an inclusive range `MIN..MAX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeArg {
    /// Every object has this size (and, with `--size-dist lognormal`, it is the median).
    Fixed(u64),
    /// Sizes drawn uniformly from `min..=max`.
    Range { min: u64, max: u64 },
}

/// Parses `--size`: `4KiB` or `4KiB..1MiB`.
pub(crate) fn parse_size_arg(s: &str) -> Result<SizeArg, String> {
    let Some((lo, hi)) = s.split_once("..") else {
        return match parse_size(s)? {
            n if n > MAX_OBJECT => Err(format!("size {s:?} is over S3's 5GiB limit for one PUT")),
            n => Ok(SizeArg::Fixed(n)),
        };
    };
    let (min, max) = (parse_size(lo)?, parse_size(hi)?);
    if min > max {
        return Err(format!(
            "size range {s:?}: the minimum is larger than the maximum"
        ));
    }
    if max > MAX_OBJECT {
        return Err(format!(
            "size range {s:?} goes over S3's 5GiB limit for one PUT"
        ));
    }
    Ok(SizeArg::Range { min, max })
}

/// How object sizes are drawn.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum SizeDist {
    Fixed(u64),
    /// Uniform over `min..=max`.
    Uniform {
        min: u64,
        max: u64,
    },
    /// Log-normal with this median and σ (of the size's natural log), clamped to `1..=max`.
    LogNormal {
        median: u64,
        sigma: f64,
        max: u64,
    },
}

impl SizeDist {
    /// A log-normal around `median`; `max` defaults to its 99.9th percentile (median·e^(3.09σ)).
    pub(crate) fn lognormal(median: u64, sigma: f64, max: Option<u64>) -> Result<SizeDist, String> {
        if !(sigma.is_finite() && sigma > 0.0 && sigma <= 10.0) {
            return Err(format!("--size-sigma {sigma} must be in (0, 10]"));
        }
        if median == 0 {
            return Err("--size-dist lognormal needs a median --size of at least 1 byte".into());
        }
        let max = match max {
            Some(m) if m < median => {
                return Err(format!(
                    "--size-max {} is below the median --size {}",
                    format_size(m),
                    format_size(median)
                ));
            }
            Some(m) if m > MAX_OBJECT => {
                return Err(format!(
                    "--size-max {} is over S3's 5GiB limit for one PUT",
                    format_size(m)
                ));
            }
            Some(m) => m,
            // The percentile may lie past what one PUT carries: the draws stop there.
            None => (median as f64 * (Z_999 * sigma).exp()).round() as u64,
        };
        Ok(SizeDist::LogNormal {
            median,
            sigma,
            max: max.min(MAX_OBJECT),
        })
    }

    /// The largest size this distribution draws (what the payload buffer must cover).
    pub(crate) fn max(&self) -> u64 {
        match *self {
            SizeDist::Fixed(s) => s,
            SizeDist::Uniform { max, .. } | SizeDist::LogNormal { max, .. } => max,
        }
    }

    /// The median size (the fixed size, the range's midpoint, the log-normal's median).
    pub(crate) fn median(&self) -> u64 {
        match *self {
            SizeDist::Fixed(s) => s,
            SizeDist::Uniform { min, max } => min + (max - min) / 2,
            SizeDist::LogNormal { median, .. } => median,
        }
    }

    pub(crate) fn is_fixed(&self) -> bool {
        matches!(self, SizeDist::Fixed(_))
    }

    /// A sampler for one worker.
    pub(crate) fn sampler(&self) -> SizeSampler {
        match *self {
            SizeDist::Fixed(s) => SizeSampler::Fixed(s),
            SizeDist::Uniform { min, max } => SizeSampler::Uniform { min, max },
            SizeDist::LogNormal { median, sigma, max } => SizeSampler::LogNormal {
                dist: LogNormal::new((median as f64).ln(), sigma)
                    .expect("sigma was checked to be finite and positive"),
                max,
            },
        }
    }
}

impl fmt::Display for SizeDist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SizeDist::Fixed(s) => f.write_str(&format_size(s)),
            SizeDist::Uniform { min, max } => {
                write!(f, "uniform {}..{}", format_size(min), format_size(max))
            }
            SizeDist::LogNormal { median, sigma, max } => write!(
                f,
                "lognormal median {} sigma {sigma} max {}",
                format_size(median),
                format_size(max)
            ),
        }
    }
}

/// Draws sizes of one [`SizeDist`].
pub(crate) enum SizeSampler {
    Fixed(u64),
    Uniform { min: u64, max: u64 },
    LogNormal { dist: LogNormal<f64>, max: u64 },
}

impl SizeSampler {
    pub(crate) fn sample(&self, rng: &mut impl Rng) -> u64 {
        match self {
            SizeSampler::Fixed(s) => *s,
            SizeSampler::Uniform { min, max } => rng.random_range(*min..=*max),
            SizeSampler::LogNormal { dist, max } => {
                (dist.sample(rng).round() as u64).clamp(1, *max)
            }
        }
    }
}

/// Which pool object a read picks (`--keys`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyDist {
    /// Each worker walks the pool in order (worker w reads w, w + concurrency, ...), wrapping around.
    Seq,
    /// Every object equally likely.
    Uniform,
    /// Zipf over the pool: object i (0-based) is picked with weight 1/(i+1)^s (`--zipf-s`).
    Zipf,
}

/// Picks pool indexes for one worker.
pub(crate) enum KeyPicker {
    Seq { next: usize, step: usize },
    Uniform,
    Zipf(Zipf<f64>),
}

impl KeyPicker {
    /// A picker over a pool of `pool` objects for worker `worker` of `workers`.
    pub(crate) fn new(
        dist: KeyDist,
        zipf_s: f64,
        pool: usize,
        worker: usize,
        workers: usize,
    ) -> KeyPicker {
        match dist {
            KeyDist::Seq => KeyPicker::Seq {
                next: worker,
                step: workers.max(1),
            },
            KeyDist::Uniform => KeyPicker::Uniform,
            KeyDist::Zipf => KeyPicker::Zipf(
                Zipf::new(pool.max(1) as f64, zipf_s).expect("--zipf-s was checked to be positive"),
            ),
        }
    }

    /// The next pool index, below `pool` (which must not be 0).
    pub(crate) fn pick(&mut self, rng: &mut impl Rng, pool: usize) -> usize {
        match self {
            KeyPicker::Seq { next, step } => {
                let i = *next % pool;
                *next = next.wrapping_add(*step);
                i
            }
            KeyPicker::Uniform => rng.random_range(0..pool),
            // Zipf draws ranks 1..=pool
            KeyPicker::Zipf(z) => (z.sample(rng) as usize).clamp(1, pool) - 1,
        }
    }
}

/// Parses `--zipf-s`: a finite exponent above 0.
pub(crate) fn parse_zipf_s(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 100.0 => Ok(v),
        _ => Err(format!(
            "invalid --zipf-s {s:?}: expected a number in (0, 100], e.g. 1.1"
        )),
    }
}

/// Parses `--size-sigma`.
pub(crate) fn parse_sigma(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 10.0 => Ok(v),
        _ => Err(format!(
            "invalid --size-sigma {s:?}: expected a number in (0, 10], e.g. 1.0"
        )),
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng as _;
    use rand::rngs::SmallRng;

    use super::*;

    #[test]
    fn size_arguments() {
        assert_eq!(parse_size_arg("4KiB"), Ok(SizeArg::Fixed(4096)));
        assert_eq!(
            parse_size_arg("4KiB..1MiB"),
            Ok(SizeArg::Range {
                min: 4096,
                max: 1 << 20
            })
        );
        assert_eq!(
            parse_size_arg("0..0"),
            Ok(SizeArg::Range { min: 0, max: 0 })
        );
        assert!(parse_size_arg("1MiB..4KiB").is_err());
        assert!(parse_size_arg("4KiB..").is_err());
        assert!(parse_size_arg("..4KiB").is_err());
        assert!(parse_size_arg("4KiB..6GiB").is_err());
        assert!(parse_size_arg("6GiB").is_err());
    }

    #[test]
    fn uniform_sizes_stay_in_bounds_and_cover_them() {
        let s = SizeDist::Uniform {
            min: 4096,
            max: 8192,
        }
        .sampler();
        let mut rng = SmallRng::seed_from_u64(7);
        let sizes: Vec<u64> = (0..20_000).map(|_| s.sample(&mut rng)).collect();
        assert!(sizes.iter().all(|&n| (4096..=8192).contains(&n)));
        assert!(sizes.iter().any(|&n| n < 4096 + 100));
        assert!(sizes.iter().any(|&n| n > 8192 - 100));
        let mean = sizes.iter().sum::<u64>() as f64 / sizes.len() as f64;
        assert!((mean - 6144.0).abs() < 60.0, "mean {mean}");
    }

    #[test]
    fn lognormal_median_is_the_size_and_max_clamps() {
        let d = SizeDist::lognormal(64 << 10, 1.0, None).unwrap();
        // default clamp: the 99.9th percentile, e^3.09 ≈ 22 times the median
        assert_eq!(d.max(), (65536.0 * 3.09f64.exp()).round() as u64);
        let s = d.sampler();
        let mut rng = SmallRng::seed_from_u64(42);
        let mut sizes: Vec<u64> = (0..20_001).map(|_| s.sample(&mut rng)).collect();
        sizes.sort_unstable();
        let median = sizes[sizes.len() / 2] as f64;
        assert!(
            (median / 65536.0 - 1.0).abs() < 0.05,
            "median {median} not within 5% of 64KiB"
        );
        assert!(sizes[0] >= 1 && *sizes.last().unwrap() <= d.max());
        let tight = SizeDist::lognormal(1000, 2.0, Some(2000))
            .unwrap()
            .sampler();
        assert!((0..5000).all(|_| tight.sample(&mut rng) <= 2000));
        assert!(SizeDist::lognormal(1000, 1.0, Some(999)).is_err());
        assert!(SizeDist::lognormal(0, 1.0, None).is_err());
        assert!(SizeDist::lognormal(1000, 1.0, Some(10 << 30)).is_err());
        assert!(SizeDist::lognormal(1000, 0.0, None).is_err());
        assert_eq!(
            SizeDist::lognormal(1 << 30, 5.0, None).unwrap().max(),
            MAX_OBJECT
        );
    }

    #[test]
    fn zipf_ranks_fall_off_as_a_power_law() {
        let pool = 1000;
        let mut picker = KeyPicker::new(KeyDist::Zipf, 1.1, pool, 0, 1);
        let mut rng = SmallRng::seed_from_u64(1);
        let mut counts = vec![0u64; pool];
        let draws = 200_000;
        for _ in 0..draws {
            counts[picker.pick(&mut rng, pool)] += 1;
        }
        assert!(counts[0] > counts[1] && counts[1] > counts[2] && counts[2] > counts[9]);
        // f(1)/f(2) = 2^1.1 ≈ 2.14; f(1)/f(10) = 10^1.1 ≈ 12.6
        let r12 = counts[0] as f64 / counts[1] as f64;
        let r1_10 = counts[0] as f64 / counts[9] as f64;
        assert!((r12 - 2.14).abs() < 0.2, "f1/f2 = {r12}");
        assert!((r1_10 - 12.6).abs() < 2.5, "f1/f10 = {r1_10}");
        // the hottest 1% of objects take a large share; the tail still gets some
        let top10: u64 = counts[..10].iter().sum();
        assert!(top10 as f64 / draws as f64 > 0.4, "top 10 share {top10}");
        assert!(counts[500..].iter().sum::<u64>() > 0);
    }

    #[test]
    fn seq_walks_and_uniform_covers_the_pool() {
        let mut rng = SmallRng::seed_from_u64(3);
        let mut seq = KeyPicker::new(KeyDist::Seq, 1.1, 10, 2, 4);
        let walked: Vec<usize> = (0..5).map(|_| seq.pick(&mut rng, 10)).collect();
        assert_eq!(walked, [2, 6, 0, 4, 8]);
        let mut uni = KeyPicker::new(KeyDist::Uniform, 1.1, 10, 0, 1);
        let mut seen = [false; 10];
        for _ in 0..1000 {
            seen[uni.pick(&mut rng, 10)] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn exponent_parsers() {
        assert_eq!(parse_zipf_s("1.1"), Ok(1.1));
        assert!(parse_zipf_s("0").is_err());
        assert!(parse_zipf_s("nan").is_err());
        assert!(parse_zipf_s("x").is_err());
        assert_eq!(parse_sigma("0.5"), Ok(0.5));
        assert!(parse_sigma("-1").is_err());
    }

    #[test]
    fn descriptions() {
        assert_eq!(SizeDist::Fixed(4096).to_string(), "4KiB");
        assert_eq!(
            SizeDist::Uniform {
                min: 4096,
                max: 1 << 20
            }
            .to_string(),
            "uniform 4KiB..1MiB"
        );
        assert_eq!(
            SizeDist::lognormal(65536, 1.0, Some(1 << 20))
                .unwrap()
                .to_string(),
            "lognormal median 64KiB sigma 1 max 1MiB"
        );
    }
}
