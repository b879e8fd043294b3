//! The result of an evaluation: per-image scores of every method, their means, and the mean
//! rank over the metrics; written as JSON (the shape other tools read) or CSV.

use serde_json::{Map, Value, json};

use crate::metrics::Better;
use crate::metrics::rank::mean_ranks;

/// Scores of one method.
#[derive(Debug, Clone, PartialEq)]
pub struct MethodScores {
    /// The method's name as given on the command line (`max`, `SeAFusion`, a model's name).
    pub name: String,
    /// `images[i][k]`: metric `k` on image `i` (the order of [`Report::images`] and
    /// [`Report::metrics`]).
    pub images: Vec<Vec<f64>>,
    /// Mean of each metric over the images.
    pub mean: Vec<f64>,
    /// Mean rank over the metrics among the report's methods (1 = best on every metric).
    pub rank: f64,
}

/// Scores of several methods on one dataset under one convention.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The metric convention (`default`, `cddfuse`, `tang2022`, `vivone`): numbers from
    /// different conventions are not comparable.
    pub convention: String,
    /// Further facts the numbers depend on (e.g. `protocol`, `ratio`, `sensor`), written
    /// into the JSON next to `convention`.
    pub context: Vec<(String, Value)>,
    /// Metric names, in column order.
    pub metrics: Vec<String>,
    /// Which way each metric improves.
    pub better: Vec<Better>,
    /// Image stems, in row order.
    pub images: Vec<String>,
    /// The methods, in the order they were given.
    pub methods: Vec<MethodScores>,
}

impl Report {
    /// An empty report for `metrics` (name and direction) over `images`.
    pub fn new(convention: &str, metrics: Vec<(String, Better)>, images: Vec<String>) -> Report {
        let (metrics, better) = metrics.into_iter().unzip();
        Report {
            convention: convention.to_owned(),
            context: Vec::new(),
            metrics,
            better,
            images,
            methods: Vec::new(),
        }
    }

    /// Adds a method's per-image scores (`images[i][k]`, one row per image) and recomputes
    /// every method's means and mean rank.
    ///
    /// # Panics
    /// If the rows do not match the report's images and metrics (a programming error).
    pub fn push(&mut self, name: &str, images: Vec<Vec<f64>>) {
        assert_eq!(images.len(), self.images.len(), "one row per image");
        assert!(
            images.iter().all(|r| r.len() == self.metrics.len()),
            "one value per metric"
        );
        let n = images.len() as f64;
        let mean = (0..self.metrics.len())
            .map(|k| images.iter().map(|r| r[k]).sum::<f64>() / n)
            .collect();
        self.methods.push(MethodScores {
            name: name.to_owned(),
            images,
            mean,
            rank: f64::NAN,
        });
        let means: Vec<Vec<f64>> = self.methods.iter().map(|m| m.mean.clone()).collect();
        for (m, r) in self
            .methods
            .iter_mut()
            .zip(mean_ranks(&means, &self.better))
        {
            m.rank = r;
        }
    }

    /// The report restricted to `names` (matched case-insensitively, kept in the given order),
    /// with means and mean ranks over those metrics only: papers rank methods over a chosen
    /// subset (e.g. EN, SD, SF, MI, SCD, VIF, Qabf, SSIM), and the rank depends on it.
    pub fn select(&self, names: &[String]) -> Result<Report, String> {
        let columns = metric_columns(&self.metrics, names)?;
        let mut out = Report {
            metrics: columns.iter().map(|&k| self.metrics[k].clone()).collect(),
            better: columns.iter().map(|&k| self.better[k]).collect(),
            methods: Vec::with_capacity(self.methods.len()),
            ..self.clone()
        };
        for m in &self.methods {
            let rows = m
                .images
                .iter()
                .map(|row| columns.iter().map(|&k| row[k]).collect())
                .collect();
            out.push(&m.name, rows);
        }
        Ok(out)
    }

    /// The JSON document: `{"convention", <context>..., "metrics": [...], "methods": {NAME:
    /// {"mean": {METRIC: v}, "rank": r, "images": {STEM: {METRIC: v}}}}}`. Non-finite values
    /// are written as `null`.
    pub fn to_json(&self) -> Value {
        let row = |values: &[f64]| -> Value {
            let mut m = Map::new();
            for (name, &v) in self.metrics.iter().zip(values) {
                m.insert(name.clone(), number(v));
            }
            Value::Object(m)
        };
        let mut methods = Map::new();
        for method in &self.methods {
            let mut images = Map::new();
            for (stem, values) in self.images.iter().zip(&method.images) {
                images.insert(stem.clone(), row(values));
            }
            methods.insert(
                method.name.clone(),
                json!({"mean": row(&method.mean), "rank": number(method.rank), "images": images}),
            );
        }
        let mut doc = Map::new();
        doc.insert("convention".into(), Value::from(self.convention.clone()));
        for (k, v) in &self.context {
            doc.insert(k.clone(), v.clone());
        }
        doc.insert("metrics".into(), json!(self.metrics));
        doc.insert("methods".into(), Value::Object(methods));
        Value::Object(doc)
    }

    /// The table of means as Markdown, for model cards and papers: one row per method, the
    /// best value per metric in bold, and the mean rank.
    pub fn to_markdown(&self) -> String {
        let mut out = String::from("| method |");
        for (m, b) in self.metrics.iter().zip(&self.better) {
            out += &format!(" {m} {} |", b.arrow());
        }
        out += " mean rank |\n|---|";
        out += &"---:|".repeat(self.metrics.len() + 1);
        out += "\n";
        let best: Vec<Option<usize>> = (0..self.metrics.len())
            .map(|k| best_index(self.methods.iter().map(|m| m.mean[k]), self.better[k]))
            .collect();
        for (i, m) in self.methods.iter().enumerate() {
            out += &format!("| {} |", m.name.replace('|', "\\|"));
            for (k, &v) in m.mean.iter().enumerate() {
                let cell = format_value(v);
                if best[k] == Some(i) {
                    out += &format!(" **{cell}** |");
                } else {
                    out += &format!(" {cell} |");
                }
            }
            out += &format!(" {:.2} |\n", m.rank);
        }
        out
    }

    /// Per-image rows as CSV: `method,image,<metrics...>`, full precision.
    pub fn to_csv(&self) -> String {
        let mut out = format!("method,image,{}\n", self.metrics.join(","));
        for method in &self.methods {
            for (stem, values) in self.images.iter().zip(&method.images) {
                let cells: Vec<String> = values.iter().map(|v| v.to_string()).collect();
                out.push_str(&format!(
                    "{},{},{}\n",
                    csv_field(&method.name),
                    csv_field(stem),
                    cells.join(",")
                ));
            }
        }
        out
    }
}

fn number(v: f64) -> Value {
    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
}

/// The index of the best finite value (first on ties), or `None` when none is finite.
pub fn best_index(values: impl Iterator<Item = f64>, better: Better) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, v) in values.enumerate().filter(|(_, v)| v.is_finite()) {
        let wins = best.is_none_or(|(_, b)| match better {
            Better::Higher => v > b,
            Better::Lower => v < b,
        });
        if wins {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| i)
}

/// A metric value for tables: four digits after the point for small values, fewer for
/// large ones.
pub fn format_value(v: f64) -> String {
    if !v.is_finite() {
        return "nan".into();
    }
    match v.abs() {
        a if a >= 100.0 => format!("{v:.2}"),
        a if a >= 10.0 => format!("{v:.3}"),
        _ => format!("{v:.4}"),
    }
}

/// The column of each of `names` among `available` (case-insensitive), or an error naming the
/// unknown or repeated metric and listing the available ones.
pub fn metric_columns<S: AsRef<str>>(
    available: &[S],
    names: &[String],
) -> Result<Vec<usize>, String> {
    let mut columns = Vec::with_capacity(names.len());
    for name in names {
        let k = available
            .iter()
            .position(|m| m.as_ref().eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| {
                let list: Vec<&str> = available.iter().map(AsRef::as_ref).collect();
                format!(
                    "unknown metric {name:?}: this evaluation has {}",
                    list.join(", ")
                )
            })?;
        if columns.contains(&k) {
            return Err(format!("metric {name:?} is listed twice"));
        }
        columns.push(k);
    }
    if columns.is_empty() {
        return Err("no metrics selected".into());
    }
    Ok(columns)
}

/// Quotes a CSV field when it holds a comma, quote or newline (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        let metrics = vec![
            ("EN".to_owned(), Better::Higher),
            ("Nabf".to_owned(), Better::Lower),
        ];
        let mut r = Report::new("default", metrics, vec!["01".into(), "02".into()]);
        r.push("a", vec![vec![6.0, 0.1], vec![7.0, 0.3]]);
        r.push("b,c", vec![vec![5.0, 0.05], vec![6.0, 0.05]]);
        r
    }

    #[test]
    fn means_and_ranks() {
        let r = report();
        assert_eq!(r.methods[0].mean, [6.5, 0.2]);
        // a wins EN, b wins Nabf.
        assert_eq!((r.methods[0].rank, r.methods[1].rank), (1.5, 1.5));
    }

    #[test]
    fn selection_reranks_over_the_chosen_metrics() {
        let r = report().select(&["nabf".to_owned()]).unwrap();
        assert_eq!(r.metrics, ["Nabf"]);
        assert_eq!(r.methods[1].mean, [0.05]);
        // Only Nabf counts now, which b wins.
        assert_eq!((r.methods[0].rank, r.methods[1].rank), (2.0, 1.0));
        let err = report().select(&["EN".into(), "MI".into()]).unwrap_err();
        assert!(err.contains("\"MI\"") && err.contains("EN, Nabf"), "{err}");
        assert!(report().select(&["EN".into(), "en".into()]).is_err());
        assert!(report().select(&[]).is_err());
    }

    #[test]
    fn json_has_the_documented_shape() {
        let j = report().to_json();
        assert_eq!(j["convention"], "default");
        assert_eq!(j["metrics"], json!(["EN", "Nabf"]));
        assert_eq!(j["methods"]["a"]["mean"]["EN"], 6.5);
        assert_eq!(j["methods"]["a"]["rank"], 1.5);
        assert_eq!(j["methods"]["b,c"]["images"]["02"]["Nabf"], 0.05);
    }

    #[test]
    fn markdown_bolds_the_best_and_ends_with_the_rank() {
        let md = report().to_markdown();
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(lines[0], "| method | EN ↑ | Nabf ↓ | mean rank |");
        assert_eq!(lines[1], "|---|---:|---:|---:|");
        assert_eq!(lines[2], "| a | **6.5000** | 0.2000 | 1.50 |");
        assert_eq!(lines[3], "| b,c | 5.5000 | **0.0500** | 1.50 |");
    }

    #[test]
    fn best_index_skips_nan_and_keeps_the_first_tie() {
        let v = [f64::NAN, 2.0, 1.0, 2.0];
        assert_eq!(best_index(v.into_iter(), Better::Higher), Some(1));
        assert_eq!(best_index(v.into_iter(), Better::Lower), Some(2));
        assert_eq!(best_index([f64::NAN].into_iter(), Better::Lower), None);
    }

    #[test]
    fn csv_rows_per_method_and_image() {
        let csv = report().to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "method,image,EN,Nabf");
        assert_eq!(lines[1], "a,01,6,0.1");
        assert_eq!(lines[4], "\"b,c\",02,6,0.05");
    }
}
