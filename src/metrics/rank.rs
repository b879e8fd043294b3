//! Mean rank: how papers summarise a comparison of many methods over many metrics.
//!
//! For each metric the methods are ranked by their mean value (rank 1 = best, in the
//! metric's [`Better`] direction); tied values share the average of the ranks they span; a
//! NaN value ranks after every number. A method's mean rank is the average of its ranks over
//! the metrics, so lower is better.

use super::Better;

/// Ranks of `values` (one per method) for one metric: 1 = best, ties averaged, NaN last
/// (NaNs tie with each other).
///
/// ```
/// use ship_edge::metrics::{Better, rank::ranks};
/// assert_eq!(ranks(&[0.5, 0.9, 0.5], Better::Higher), [2.5, 1.0, 2.5]);
/// assert_eq!(ranks(&[3.0, f64::NAN, 1.0], Better::Lower), [2.0, 3.0, 1.0]);
/// ```
pub fn ranks(values: &[f64], better: Better) -> Vec<f64> {
    // Sort key: best first, NaN after everything.
    let key = |v: f64| match better {
        Better::Higher => -v,
        Better::Lower => v,
    };
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| {
        let (ka, kb) = (key(values[a]), key(values[b]));
        match (ka.is_nan(), kb.is_nan()) {
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => std::cmp::Ordering::Greater,
            (false, true) => std::cmp::Ordering::Less,
            (false, false) => ka.total_cmp(&kb),
        }
    });
    let same = |a: f64, b: f64| a == b || (a.is_nan() && b.is_nan());
    let mut out = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && same(values[order[end]], values[order[start]]) {
            end += 1;
        }
        // Positions start..end (0-based) hold ranks start+1..=end: their average.
        let shared = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            out[i] = shared;
        }
        start = end;
    }
    out
}

/// Mean rank of each method over the metrics. `means[m][k]` is method `m`'s mean value of
/// metric `k`; `better[k]` is metric `k`'s direction. With no metrics every rank is NaN.
///
/// ```
/// use ship_edge::metrics::{Better, rank::mean_ranks};
/// // Two methods, two metrics: each wins one.
/// let r = mean_ranks(&[vec![1.0, 5.0], vec![2.0, 4.0]], &[Better::Higher, Better::Higher]);
/// assert_eq!(r, [1.5, 1.5]);
/// ```
pub fn mean_ranks(means: &[Vec<f64>], better: &[Better]) -> Vec<f64> {
    let mut total = vec![0.0; means.len()];
    for (k, &b) in better.iter().enumerate() {
        let column: Vec<f64> = means.iter().map(|row| row[k]).collect();
        for (t, r) in total.iter_mut().zip(ranks(&column, b)) {
            *t += r;
        }
    }
    let n = better.len() as f64;
    total.into_iter().map(|t| t / n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_is_better_reverses_the_order() {
        assert_eq!(ranks(&[0.1, 0.3, 0.2], Better::Lower), [1.0, 3.0, 2.0]);
        assert_eq!(ranks(&[0.1, 0.3, 0.2], Better::Higher), [3.0, 1.0, 2.0]);
    }

    #[test]
    fn ties_share_the_average_rank() {
        assert_eq!(
            ranks(&[7.0, 7.0, 7.0, 1.0], Better::Higher),
            [2.0, 2.0, 2.0, 4.0]
        );
        assert_eq!(
            ranks(&[f64::NAN, 1.0, f64::NAN], Better::Higher),
            [2.5, 1.0, 2.5]
        );
    }

    #[test]
    fn mean_rank_averages_over_metrics() {
        let means = vec![
            vec![7.0, 0.2, 0.5],
            vec![6.0, 0.1, 0.9],
            vec![8.0, 0.3, 0.1],
        ];
        let better = [Better::Higher, Better::Lower, Better::Higher];
        // method 0: ranks 2, 2, 2; method 1: 3, 1, 1; method 2: 1, 3, 3.
        let r = mean_ranks(&means, &better);
        assert_eq!(r, [2.0, 5.0 / 3.0, 7.0 / 3.0]);
    }
}
