//! Scenario files: `halb-loadtest scenario FILE.toml` runs a list of runs, each optionally
//! expanded over a matrix of option values, and writes one JSON and one percentile
//! distribution per run, a markdown summary and (with `plot = true`) one SVG with every
//! run's percentile curve.
//!
//! ```toml
//! title = "direct vs halb"     # optional: summary and plot title
//! plot = true                  # optional: <out>/latency.svg
//! [defaults]                   # any command-line option, by its long name
//! duration = "10s"
//! warmup = "2s"
//! [[run]]
//! name = "direct"
//! url = "http://127.0.0.1:8080/"
//! matrix = { connections = [16, 64], rate = [1000, 5000] }
//! ```
//!
//! Options become command-line arguments (`key = value` is `--key value`, `key = true` is
//! `--key`), so a scenario accepts exactly what the command line does. A matrix run is
//! named `<name>-<key><value>...` for each combination, keys in alphabetical order.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Parser as _;
use toml::{Table, Value};

use crate::{histogram, plot, write_file, Cli, Outcome};

#[derive(clap::Parser, Debug)]
#[command(
    name = "halb-loadtest scenario",
    about = "Run the runs of a TOML scenario file, writing JSON, a summary and plots"
)]
struct ScenarioCli {
    /// The scenario file (TOML)
    file: PathBuf,
    /// Results directory (default: ./loadtest-results/<date>/, or the file's `out`)
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write <out>/latency.svg with every run's curve (as `plot = true` in the file)
    #[arg(long)]
    plot: bool,
}

/// One expanded run: its name and the command line it stands for.
#[derive(Debug)]
pub struct Run {
    pub name: String,
    pub cli: Cli,
}

/// The parsed scenario.
#[derive(Debug)]
pub struct Scenario {
    pub title: Option<String>,
    pub plot: bool,
    pub out: Option<PathBuf>,
    pub runs: Vec<Run>,
}

pub fn main(args: &[OsString]) -> ExitCode {
    let cli = ScenarioCli::parse_from(
        std::iter::once(OsString::from("halb-loadtest scenario")).chain(args.iter().cloned()),
    );
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("halb-loadtest scenario: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: &ScenarioCli) -> Result<ExitCode, String> {
    let text = std::fs::read_to_string(&cli.file)
        .map_err(|e| format!("cannot read {}: {e}", cli.file.display()))?;
    let scenario = parse(&text).map_err(|e| format!("{}: {e}", cli.file.display()))?;
    let out = cli
        .out
        .clone()
        .or(scenario.out.clone())
        .unwrap_or_else(|| Path::new("loadtest-results").join(today()));
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let title = scenario.title.clone().unwrap_or_else(|| {
        cli.file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    });

    let mut results: Vec<(&Run, Outcome)> = Vec::new();
    let total = scenario.runs.len();
    for (i, run) in scenario.runs.iter().enumerate() {
        eprintln!("[{}/{total}] {}", i + 1, run.name);
        let outcome = crate::measure(&run.cli).map_err(|e| format!("run {}: {e}", run.name))?;
        crate::write_files(&run.cli, &outcome)?;
        let json = serde_json::to_string_pretty(&with_name(&outcome.json, &run.name))
            .expect("JSON values serialize");
        write_file(&out.join(format!("{}.json", run.name)), &(json + "\n"))?;
        write_file(
            &out.join(format!("{}.hgrm", run.name)),
            &histogram::percentile_distribution(&outcome.stats.hist, 1000.0),
        )?;
        print!("== {} ==\n{}", run.name, outcome.text);
        results.push((run, outcome));
    }

    let summary = summary(&title, &results);
    write_file(&out.join("summary.md"), &summary)?;
    print!("\n{summary}");
    if scenario.plot || cli.plot {
        let series: Vec<plot::Series> = results
            .iter()
            .map(|(run, o)| plot::Series {
                label: format!("{}: {}", run.name, o.title),
                points: o.curve(),
            })
            .collect();
        write_file(&out.join("latency.svg"), &plot::svg(&title, &series))?;
    }
    eprintln!("results in {}", out.display());
    Ok(if results.iter().all(|(_, o)| o.stats.ok > 0) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn with_name(json: &serde_json::Value, name: &str) -> serde_json::Value {
    let mut v = serde_json::json!({ "name": name });
    if let (Some(dst), Some(src)) = (v.as_object_mut(), json.as_object()) {
        dst.extend(src.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    v
}

/// The markdown table: one row per run.
fn summary(title: &str, results: &[(&Run, Outcome)]) -> String {
    let mut out = format!(
        "# {title}\n\n| name | req/s | bytes/s | p50 (µs) | p99 (µs) | p99.9 (µs) | max (µs) | errors |\n|---|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    for (run, o) in results {
        let j = &o.json;
        let num = |v: &serde_json::Value| v.as_f64().map(|f| format!("{f:.1}"));
        let lat = |k: &str| {
            j["latency_us"][k]
                .as_u64()
                .map_or("-".to_string(), |v| v.to_string())
        };
        out += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            run.name,
            num(&j["requests_per_sec"]).unwrap_or_else(|| "-".into()),
            num(&j["bytes_per_sec"]).unwrap_or_else(|| "-".into()),
            lat("p50"),
            lat("p99"),
            lat("p999"),
            lat("max"),
            j["errors_total"].as_u64().unwrap_or(0),
        );
    }
    out
}

/// Parses and expands a scenario, checking every run's options.
pub fn parse(text: &str) -> Result<Scenario, String> {
    let mut table: Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
    let title = match table.remove("title") {
        None => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err("title must be a string".into()),
    };
    let plot = match table.remove("plot") {
        None => false,
        Some(Value::Boolean(b)) => b,
        Some(_) => return Err("plot must be true or false".into()),
    };
    let out = match table.remove("out") {
        None => None,
        Some(Value::String(s)) => Some(PathBuf::from(s)),
        Some(_) => return Err("out must be a string".into()),
    };
    let defaults = match table.remove("defaults") {
        None => Table::new(),
        Some(Value::Table(t)) => t,
        Some(_) => return Err("[defaults] must be a table".into()),
    };
    let entries = match table.remove("run") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        _ => return Err("no [[run]] entries".into()),
    };
    if let Some(key) = table.keys().next() {
        return Err(format!(
            "unknown key {key:?} (top level: title, plot, out, [defaults], [[run]])"
        ));
    }
    let mut runs = Vec::new();
    for (i, entry) in entries.into_iter().enumerate() {
        let Value::Table(mut entry) = entry else {
            return Err(format!("run {}: not a table", i + 1));
        };
        let name = match entry.remove("name") {
            None => format!("run{}", i + 1),
            Some(Value::String(s)) if valid_name(&s) => s,
            Some(v) => {
                return Err(format!(
                    "run {}: bad name {v} (letters, digits, '.', '_', '-')",
                    i + 1
                ))
            }
        };
        let matrix = match entry.remove("matrix") {
            None => Table::new(),
            Some(Value::Table(t)) => t,
            Some(_) => return Err(format!("run {name}: matrix must be a table of arrays")),
        };
        let mut options = defaults.clone();
        options.extend(entry);
        for (suffix, combination) in expand(&matrix).map_err(|e| format!("run {name}: {e}"))? {
            let mut options = options.clone();
            options.extend(combination);
            let name = format!("{name}{suffix}");
            let cli = to_cli(&options).map_err(|e| format!("run {name}: {e}"))?;
            runs.push(Run { name, cli });
        }
    }
    let mut names: Vec<&str> = runs.iter().map(|r| r.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("two runs named {:?}", w[0]));
    }
    Ok(Scenario {
        title,
        plot,
        out,
        runs,
    })
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// A value as a command-line argument (and in a run name).
fn arg_text(value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Integer(i) => Ok(i.to_string()),
        Value::Float(f) => Ok(f.to_string()),
        other => Err(format!("{other} is not a string or a number")),
    }
}

/// The cartesian product of a matrix: (name suffix, option values) per combination.
fn expand(matrix: &Table) -> Result<Vec<(String, Table)>, String> {
    let mut combos = vec![(String::new(), Table::new())];
    for (key, values) in matrix {
        let Value::Array(values) = values else {
            return Err(format!("matrix.{key} must be an array"));
        };
        if values.is_empty() {
            return Err(format!("matrix.{key} is empty"));
        }
        let mut next = Vec::new();
        for (suffix, combo) in &combos {
            for value in values {
                let text: String = arg_text(value)
                    .map_err(|e| format!("matrix.{key}: {e}"))?
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '.' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                let mut combo = combo.clone();
                combo.insert(key.clone(), value.clone());
                next.push((format!("{suffix}-{key}{text}"), combo));
            }
        }
        combos = next;
    }
    Ok(combos)
}

/// Options (with `url`) to a parsed command line.
fn to_cli(options: &Table) -> Result<Cli, String> {
    let mut args = vec!["halb-loadtest".to_string()];
    let mut url = None;
    for (key, value) in options {
        if key == "url" {
            url = Some(arg_text(value).map_err(|e| format!("url: {e}"))?);
            continue;
        }
        let flag = format!("--{}", key.replace('_', "-"));
        match value {
            Value::Boolean(true) => args.push(flag),
            Value::Boolean(false) => {}
            v => {
                args.push(flag);
                args.push(arg_text(v).map_err(|e| format!("{key}: {e}"))?);
            }
        }
    }
    let url = url.ok_or("no url")?;
    args.push("--".into());
    args.push(url);
    Cli::try_parse_from(args).map_err(|e| e.render().to_string().trim_end().to_string())
}

/// Today's date (UTC), YYYY-MM-DD.
fn today() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(20_000), (2024, 10, 4));
    }

    #[test]
    fn expands_a_matrix() {
        let s = parse(
            r#"
            plot = true
            [defaults]
            duration = "2s"
            close = true
            [[run]]
            name = "a"
            url = "http://127.0.0.1:1/"
            matrix = { connections = [16, 64], rate = [1000, 5000.5] }
            [[run]]
            url = "tcp://127.0.0.1:1"
            close = false
            payload = 10
            "#,
        )
        .unwrap();
        assert!(s.plot);
        let names: Vec<&str> = s.runs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "a-connections16-rate1000",
                "a-connections16-rate5000.5",
                "a-connections64-rate1000",
                "a-connections64-rate5000.5",
                "run2"
            ]
        );
        let c = &s.runs[3].cli;
        assert_eq!((c.connections, c.rate, c.close), (64, Some(5000.5), true));
        assert_eq!(c.duration, Some(std::time::Duration::from_secs(2)));
        let c = &s.runs[4].cli;
        assert_eq!((c.close, c.payload, c.connections), (false, Some(10), 10));
    }

    #[test]
    fn tls_options_map_to_arguments() {
        let s = parse(
            r#"
            [defaults]
            cacert = "ca.pem"
            sni = "example.test"
            [[run]]
            url = "https://127.0.0.1:8443/"
            tls_resume = true
            matrix = { tls_version = [1.2, "1.3"] }
            "#,
        )
        .unwrap();
        assert_eq!(s.runs.len(), 2);
        let c = &s.runs[1].cli;
        assert!(c.tls_resume && !c.insecure);
        assert_eq!(c.tls_version.as_deref(), Some("1.3"));
        assert_eq!(s.runs[0].cli.tls_version.as_deref(), Some("1.2"));
        assert_eq!(c.cacert.as_deref(), Some(std::path::Path::new("ca.pem")));
        assert_eq!(c.sni.as_deref(), Some("example.test"));
    }

    #[test]
    fn readme_example_parses() {
        let readme = include_str!("../README.md");
        let start = readme.find("```toml\n").expect("a toml example") + 8;
        let example = &readme[start..start + readme[start..].find("```").unwrap()];
        let s = parse(example).unwrap();
        let names: Vec<&str> = s.runs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names.len(), 6);
        assert_eq!(names[0], "direct-connections16-rate1000");
        assert_eq!(names[4..], ["halb", "echo-1k"]);
        assert!(s.runs[4].cli.close && s.plot);
    }

    #[test]
    fn refuses_mistakes() {
        for bad in [
            "",
            "[[run]]\nname = \"x\"",
            "[[run]]\nurl = \"http://h/\"\nconections = 3",
            "[[run]]\nurl = \"http://h/\"\nmatrix = { rate = 3 }",
            "[[run]]\nurl = \"http://h/\"\nname = \"a/b\"",
            "[[run]]\nurl = \"http://h/\"\nname = \"a\"\n[[run]]\nurl = \"http://h/\"\nname = \"a\"",
            "bogus = 1\n[[run]]\nurl = \"http://h/\"",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
