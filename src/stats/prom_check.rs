//! A strict validator of the Prometheus text exposition format (0.0.4), as halb writes
//! it. Used by the unit tests of [`crate::stats::render::prometheus`] and by integration
//! tests against a live `/metrics`.
//!
//! Stricter than Prometheus' own parser, on purpose:
//! - the text is non-empty and ends with `\n`; no empty line; no CRLF line end (a raw
//!   CR is only acceptable inside a label value or a HELP text);
//! - a line is `# HELP name text`, `# TYPE name counter|gauge`, or a sample
//!   `name{label="value",...} value [timestamp]` with single spaces as separators; no
//!   other comment;
//! - metric names match `[a-zA-Z_:][a-zA-Z0-9_:]*`, label names `[a-zA-Z_][a-zA-Z0-9_]*`
//!   and do not start with `__`; no trailing comma; no label twice in one sample;
//! - label values escape only `\\`, `\"` and `\n`; HELP texts only `\\` and `\n`;
//! - values are floats (`1`, `-2.5`, `1e3`, `NaN`, `+Inf`, `-Inf`); timestamps integers;
//! - every family has exactly one `# TYPE`, before its first sample, and at most one
//!   `# HELP`, before its first sample too; a sample's name is its family's name (no
//!   histogram or summary suffixes: halb exports neither);
//! - a family's lines are contiguous: once another family starts, it never comes back;
//! - counters end in `_total` and have non-negative, non-NaN values; gauges do not end
//!   in `_total`;
//! - no two samples have the same name and label set (label order does not matter).

use std::collections::{BTreeMap, HashMap, HashSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    Counter,
    Gauge,
}

#[derive(Default)]
struct Family {
    help: bool,
    ty: Option<Type>,
    samples: usize,
}

/// Validate `text`; `Ok(number of samples)`, or `Err("line N: what is wrong")`.
pub fn validate(text: &str) -> Result<usize, String> {
    if text.is_empty() {
        return Err("empty exposition".into());
    }
    if !text.ends_with('\n') {
        return Err("the last line does not end with a line feed".into());
    }
    let mut families: HashMap<String, Family> = HashMap::new();
    let mut current: Option<String> = None;
    let mut closed: HashSet<String> = HashSet::new();
    let mut series: HashSet<(String, BTreeMap<String, String>)> = HashSet::new();
    let mut samples = 0;
    for (i, line) in text[..text.len() - 1].split('\n').enumerate() {
        let n = i + 1;
        let err = |what: String| format!("line {n}: {what}: {line:?}");
        if line.is_empty() {
            return Err(err("empty line".into()));
        }
        if line.ends_with('\r') {
            return Err(err("carriage return at the end of the line".into()));
        }
        let parsed = match line.strip_prefix('#') {
            Some(rest) => comment(rest),
            None => sample(line),
        }
        .map_err(err)?;
        let name = match &parsed {
            Line::Help(name) | Line::Type(name, _) | Line::Sample(name, ..) => name.clone(),
        };
        // Contiguity: switching families closes the previous one for good.
        if current.as_deref() != Some(name.as_str()) {
            if closed.contains(&name) {
                return Err(err(format!(
                    "family {name} is interleaved with another family"
                )));
            }
            if let Some(prev) = current.take() {
                closed.insert(prev);
            }
            current = Some(name.clone());
        }
        let family = families.entry(name.clone()).or_default();
        match parsed {
            Line::Help(_) => {
                if family.help {
                    return Err(err(format!("second HELP for {name}")));
                }
                if family.samples > 0 {
                    return Err(err(format!("HELP for {name} after its samples")));
                }
                family.help = true;
            }
            Line::Type(_, ty) => {
                if family.ty.is_some() {
                    return Err(err(format!("second TYPE for {name}")));
                }
                if family.samples > 0 {
                    return Err(err(format!("TYPE for {name} after its samples")));
                }
                match ty {
                    Type::Counter if !name.ends_with("_total") => {
                        return Err(err(format!("counter {name} does not end in _total")))
                    }
                    Type::Gauge if name.ends_with("_total") => {
                        return Err(err(format!("gauge {name} ends in _total")))
                    }
                    _ => {}
                }
                family.ty = Some(ty);
            }
            Line::Sample(_, labels, value) => {
                let Some(ty) = family.ty else {
                    return Err(err(format!("sample of {name} without a TYPE before it")));
                };
                if ty == Type::Counter && (value.is_nan() || value < 0.0) {
                    return Err(err(format!("counter {name} has value {value}")));
                }
                family.samples += 1;
                samples += 1;
                if !series.insert((name, labels)) {
                    return Err(err("duplicate series".into()));
                }
            }
        }
    }
    Ok(samples)
}

type Labels = BTreeMap<String, String>;

/// One parsed line.
enum Line {
    Help(String),
    Type(String, Type),
    Sample(String, Labels, f64),
}

/// A comment line; `rest` follows its `#`.
fn comment(rest: &str) -> Result<Line, String> {
    if let Some(rest) = rest.strip_prefix(" HELP ") {
        let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
        check_metric_name(name)?;
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '\\' && !matches!(chars.next(), Some('\\' | 'n')) {
                return Err("bad escape in HELP text".into());
            }
        }
        Ok(Line::Help(name.to_owned()))
    } else if let Some(rest) = rest.strip_prefix(" TYPE ") {
        let (name, ty) = rest
            .split_once(' ')
            .ok_or_else(|| "TYPE without a type".to_string())?;
        check_metric_name(name)?;
        let ty = match ty {
            "counter" => Type::Counter,
            "gauge" => Type::Gauge,
            other => return Err(format!("unsupported TYPE {other:?}")),
        };
        Ok(Line::Type(name.to_owned(), ty))
    } else {
        Err("comment that is neither HELP nor TYPE".into())
    }
}

/// A sample line.
fn sample(line: &str) -> Result<Line, String> {
    let name_end = line
        .find(['{', ' '])
        .ok_or_else(|| "sample without a value".to_string())?;
    let name = &line[..name_end];
    check_metric_name(name)?;
    let mut rest = &line[name_end..];
    let mut labels = Labels::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = parse_labels(after, &mut labels)?;
    }
    let rest = rest
        .strip_prefix(' ')
        .ok_or_else(|| "no single space before the value".to_string())?;
    let (value, timestamp) = match rest.split_once(' ') {
        Some((v, t)) => (v, Some(t)),
        None => (rest, None),
    };
    let value = parse_value(value)?;
    if let Some(t) = timestamp {
        let digits = t.strip_prefix('-').unwrap_or(t);
        if digits.is_empty()
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || t.parse::<i64>().is_err()
        {
            return Err(format!("bad timestamp {t:?}"));
        }
    }
    Ok(Line::Sample(name.to_owned(), labels, value))
}

/// Parse `name="value",...}` into `labels`; returns what follows the `}`.
fn parse_labels<'a>(mut s: &'a str, labels: &mut Labels) -> Result<&'a str, String> {
    if let Some(rest) = s.strip_prefix('}') {
        return Ok(rest); // `{}`: allowed, no labels
    }
    loop {
        let eq = s.find('=').ok_or_else(|| "label without '='".to_string())?;
        let lname = &s[..eq];
        check_label_name(lname)?;
        s = s[eq + 1..]
            .strip_prefix('"')
            .ok_or_else(|| format!("value of label {lname} is not quoted"))?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err(format!("unterminated value of label {lname}")),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    _ => return Err(format!("bad escape in the value of label {lname}")),
                },
                Some((_, '\n')) => return Err("raw newline in a label value".into()),
                Some((_, c)) => value.push(c),
            }
        };
        if labels.insert(lname.to_owned(), value).is_some() {
            return Err(format!("label {lname} twice"));
        }
        s = &s[end + 1..];
        if let Some(rest) = s.strip_prefix('}') {
            return Ok(rest);
        }
        s = s
            .strip_prefix(',')
            .ok_or_else(|| "labels not separated by ','".to_string())?;
        if s.starts_with('}') {
            return Err("trailing comma in the label set".into());
        }
    }
}

fn parse_value(v: &str) -> Result<f64, String> {
    match v {
        "NaN" => return Ok(f64::NAN),
        "+Inf" | "Inf" => return Ok(f64::INFINITY),
        "-Inf" => return Ok(f64::NEG_INFINITY),
        _ => {}
    }
    let digits = v.strip_prefix(['+', '-']).unwrap_or(v);
    if !digits.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        || !v
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return Err(format!("bad value {v:?}"));
    }
    v.parse::<f64>().map_err(|_| format!("bad value {v:?}"))
}

fn check_metric_name(name: &str) -> Result<(), String> {
    let mut b = name.bytes();
    let ok = matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':');
    if ok {
        Ok(())
    } else {
        Err(format!("invalid metric name {name:?}"))
    }
}

fn check_label_name(name: &str) -> Result<(), String> {
    let mut b = name.bytes();
    let ok = matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
        && !name.starts_with("__");
    if ok {
        Ok(())
    } else {
        Err(format!("invalid label name {name:?}"))
    }
}
