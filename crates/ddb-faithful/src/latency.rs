//! Per-request latency of the endpoint: none, or log-normal from a median and a 99th percentile.

use rand_distr::LogNormal;

/// Per-request latency: none, or log-normal from a median and a 99th percentile.
#[derive(Clone, Copy, Debug)]
pub enum Latency {
    None,
    LogNormal { median_ms: f64, p99_ms: f64 },
}

impl Latency {
    /// Parse `none` or `MEDIAN_MS:P99_MS`.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text == "none" {
            return Ok(Self::None);
        }
        let (median, p99) = text.split_once(':').ok_or_else(|| {
            format!("latency {text:?}: expected `none` or MEDIAN_MS:P99_MS, e.g. 4:15")
        })?;
        let median_ms: f64 = median
            .parse()
            .map_err(|_| format!("latency median {median:?} is not a number"))?;
        let p99_ms: f64 = p99
            .parse()
            .map_err(|_| format!("latency p99 {p99:?} is not a number"))?;
        if !(median_ms > 0.0 && p99_ms >= median_ms) {
            return Err(format!("latency {text:?}: need 0 < median <= p99"));
        }
        Ok(Self::LogNormal { median_ms, p99_ms })
    }

    pub(crate) fn distribution(self) -> Option<LogNormal<f64>> {
        match self {
            Self::None => None,
            Self::LogNormal { median_ms, p99_ms } => {
                // z(0.99) = 2.3263: sigma puts the 99th percentile at p99_ms.
                let sigma = (p99_ms / median_ms).ln() / 2.326_347_874;
                LogNormal::new(median_ms.ln(), sigma).ok()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;
    use rand_distr::Distribution;

    #[test]
    fn latency_samples_have_the_configured_median_and_p99() {
        let distribution = Latency::parse("4:15")
            .ok()
            .and_then(Latency::distribution)
            .expect("a log-normal distribution");
        let mut rng = SmallRng::seed_from_u64(7);
        let mut samples: Vec<f64> = (0..100_000)
            .map(|_| distribution.sample(&mut rng))
            .collect();
        samples.sort_by(f64::total_cmp);
        let median = samples[50_000];
        let p99 = samples[99_000];
        assert!((3.9..4.1).contains(&median), "median {median}");
        assert!((14.0..16.0).contains(&p99), "p99 {p99}");
    }

    #[test]
    fn latency_flags_are_checked() {
        assert!(matches!(Latency::parse("none"), Ok(Latency::None)));
        assert!(Latency::parse("4").is_err());
        assert!(Latency::parse("15:4").is_err());
        assert!(Latency::parse("a:b").is_err());
    }
}
