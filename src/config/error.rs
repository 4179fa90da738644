//! Configuration errors: every problem found in a file, each naming file, line and key.

use std::fmt;
use std::path::PathBuf;

/// One problem found in a configuration file.
///
/// Displays as `FILE:LINE: KEY.PATH: message`, e.g.
/// `/etc/halb/halb.toml:12: frontend.web.default_backend: backend "ap" does not exist (did you mean "app"?)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file the problem is in (as given to [`crate::config::load`] / [`crate::config::parse`]).
    pub file: PathBuf,
    /// 1-based line number of the offending key, value or section header.
    pub line: usize,
    /// Dotted key path of the offending item, e.g. `backend.app.server[1].weight`
    /// (array elements are 0-based; names that are not bare TOML keys are quoted).
    pub key: String,
    /// What is wrong, and when possible how to fix it.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.file.display(),
            self.line,
            self.key,
            self.message
        )
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("{}: cannot read the configuration file: {source}", path.display())]
    Read {
        /// The file that could not be read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but has problems; all of them are listed, in file order.
    #[error("{}", DiagnosticList(diagnostics))]
    Invalid {
        /// Every problem found (never empty), sorted by line.
        diagnostics: Vec<Diagnostic>,
    },
}

impl ConfigError {
    /// Every problem found, sorted by line (empty for [`ConfigError::Read`]).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ConfigError::Read { .. } => &[],
            ConfigError::Invalid { diagnostics } => diagnostics,
        }
    }
}

/// Formats diagnostics one per line, without a trailing newline.
struct DiagnosticList<'a>(&'a [Diagnostic]);

impl fmt::Display for DiagnosticList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diag(line: usize, key: &str, message: &str) -> Diagnostic {
        Diagnostic {
            file: PathBuf::from("/etc/halb/halb.toml"),
            line,
            key: key.into(),
            message: message.into(),
        }
    }

    #[test]
    fn display_is_one_problem_per_line() {
        let err = ConfigError::Invalid {
            diagnostics: vec![
                diag(3, "global.shards", "bad"),
                diag(12, "frontend.web.bind", "worse"),
            ],
        };
        assert_eq!(
            err.to_string(),
            "/etc/halb/halb.toml:3: global.shards: bad\n/etc/halb/halb.toml:12: frontend.web.bind: worse"
        );
        assert_eq!(err.diagnostics().len(), 2);
    }

    #[test]
    fn read_error_names_the_file() {
        let err = ConfigError::Read {
            path: PathBuf::from("/nope.toml"),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        let text = err.to_string();
        assert!(text.starts_with("/nope.toml: cannot read"), "{text}");
        assert!(err.diagnostics().is_empty());
    }
}
