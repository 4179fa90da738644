//! The latency percentile distribution in HdrHistogram's classic text format (as Java's
//! `outputPercentileDistribution` and wrk2's `--latency` detailed spectrum), and the
//! points of the same distribution for the plot.

use hdrhistogram::Histogram;

/// Percentile ticks per half distance to 100%, as wrk2 and HdrHistogram's default.
pub const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// One step of the distribution: the value (histogram units) at a percentile level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    pub value: u64,
    /// The quantile iterated to, 0.0 to 1.0.
    pub quantile: f64,
    /// Recorded values at or below `value`.
    pub total_count: u64,
}

/// The distribution's steps, `ticks` per half distance to 100%, the last at quantile 1.0.
pub fn steps(hist: &Histogram<u64>, ticks: u32) -> Vec<Step> {
    if hist.is_empty() {
        return Vec::new();
    }
    let len = hist.len() as f64;
    hist.iter_quantiles(ticks)
        .map(|v| Step {
            value: v.value_iterated_to(),
            quantile: v.quantile_iterated_to(),
            total_count: (v.quantile() * len).round() as u64,
        })
        .collect()
}

/// The classic text format, values divided by `unit_ratio` (1000.0: µs recorded, ms shown).
pub fn percentile_distribution(hist: &Histogram<u64>, unit_ratio: f64) -> String {
    let digits = hist.sigfig() as usize;
    let mut out = format!(
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    for step in steps(hist, TICKS_PER_HALF_DISTANCE) {
        let value = step.value as f64 / unit_ratio;
        if step.quantile < 1.0 {
            out += &format!(
                "{value:>12.digits$} {:>2.12} {:>10} {:>14.2}\n",
                step.quantile,
                step.total_count,
                1.0 / (1.0 - step.quantile)
            );
        } else {
            out += &format!(
                "{value:>12.digits$} {:>2.12} {:>10}\n",
                step.quantile, step.total_count
            );
        }
    }
    let (mean, stdev, max) = if hist.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (
            hist.mean() / unit_ratio,
            hist.stdev() / unit_ratio,
            hist.max() as f64 / unit_ratio,
        )
    };
    // Sub-buckets: the power of two at or above 2 * 10^sigfig (single-unit resolution).
    let sub_buckets = (2 * 10u64.pow(hist.sigfig() as u32)).next_power_of_two();
    out += &format!("#[Mean    = {mean:>12.digits$}, StdDeviation   = {stdev:>12.digits$}]\n");
    out += &format!(
        "#[Max     = {max:>12.digits$}, Total count    = {:>12}]\n",
        hist.len()
    );
    out += &format!(
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]\n",
        hist.buckets(),
        sub_buckets
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_format() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        for v in 1..=1000u64 {
            h.record(v * 10).unwrap();
        }
        let text = percentile_distribution(&h, 1000.0);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("Value") && lines[0].contains("1/(1-Percentile)"));
        assert_eq!(lines[1], "");
        let rows: Vec<Vec<&str>> = lines[2..]
            .iter()
            .take_while(|l| !l.starts_with('#'))
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert!(rows.len() > 20);
        assert_eq!(rows[0][0], "0.010");
        assert_eq!(rows[0][1], "0.000000000000");
        assert_eq!(rows[0][2], "1");
        assert_eq!(rows[0][3], "1.00");
        let last = rows.last().unwrap();
        assert_eq!(last.len(), 3);
        assert_eq!((last[1], last[2]), ("1.000000000000", "1000"));
        assert!(text.contains("Total count    =         1000]"));
        assert!(text.contains("SubBuckets     =         2048]"));
    }

    #[test]
    fn empty() {
        let h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        let text = percentile_distribution(&h, 1000.0);
        assert!(text.contains("Total count    =            0]"));
        assert!(steps(&h, 5).is_empty());
    }
}
