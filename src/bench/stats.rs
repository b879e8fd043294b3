//! Latency statistics over per-frame timings, in the form edge benchmarks report them
//! (ncnn, TFLite, onnxruntime's perf test, Arm's model cards): min, percentiles, max, mean and
//! standard deviation.

/// Summary of per-frame latencies, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct LatencyStats {
    /// Fastest frame.
    pub min: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest frame.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Population standard deviation.
    pub std: f64,
}

impl LatencyStats {
    /// Statistics of `samples_ms`; `None` when there are none. Percentiles interpolate
    /// linearly between order statistics (NumPy's default), so p50 of an even count is the
    /// mean of the middle two.
    pub fn from_samples(samples_ms: &[f64]) -> Option<LatencyStats> {
        if samples_ms.is_empty() {
            return None;
        }
        let mut sorted = samples_ms.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len() as f64;
        let mean = sorted.iter().sum::<f64>() / n;
        let var = sorted.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        Some(LatencyStats {
            min: sorted[0],
            p50: percentile(&sorted, 50.0),
            p90: percentile(&sorted, 90.0),
            p99: percentile(&sorted, 99.0),
            max: sorted[sorted.len() - 1],
            mean,
            std: var.sqrt(),
        })
    }
}

/// The `q`-th percentile of ascending, non-empty `sorted`, linearly interpolated.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let rank = q / 100.0 * (sorted.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_numpy_percentiles() {
        // np.percentile([5, 1, 4, 2, 3, 10, 7, 6, 9, 8], [50, 90, 99]) = [5.5, 9.1, 9.91]
        let s = LatencyStats::from_samples(&[5., 1., 4., 2., 3., 10., 7., 6., 9., 8.]).unwrap();
        assert_eq!((s.min, s.max), (1.0, 10.0));
        assert!((s.p50 - 5.5).abs() < 1e-12);
        assert!((s.p90 - 9.1).abs() < 1e-12);
        assert!((s.p99 - 9.91).abs() < 1e-12);
        assert!((s.mean - 5.5).abs() < 1e-12);
        // np.std(range(1, 11)) = 2.8722813232690143
        assert!((s.std - 2.872_281_323_269_014_3).abs() < 1e-12);
    }

    #[test]
    fn one_sample_and_none() {
        let s = LatencyStats::from_samples(&[3.25]).unwrap();
        assert_eq!(
            (s.min, s.p50, s.p99, s.max, s.std),
            (3.25, 3.25, 3.25, 3.25, 0.0)
        );
        assert_eq!(LatencyStats::from_samples(&[]), None);
    }
}
