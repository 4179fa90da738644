//! "Did you mean ...?" suggestions for misspelled keys and names.

/// The candidate closest to `word`, if it is close enough to be a plausible typo.
///
/// Closeness is the Damerau-Levenshtein distance between the lowercased strings; a
/// candidate qualifies when at most a third of the longer string differs (at least one
/// edit is always allowed), so `"ap"` → `"app"` and `"consistant"` → `"consistent"`, but
/// `"x"` suggests nothing.
pub fn closest<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let word_lc = word.to_ascii_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for cand in candidates {
        if cand == word {
            continue;
        }
        let dist = strsim::damerau_levenshtein(&word_lc, &cand.to_ascii_lowercase());
        let longer = word.chars().count().max(cand.chars().count());
        let allowed = (longer / 3).max(1);
        let better = match best {
            Some((d, _)) => dist < d,
            None => true,
        };
        if dist <= allowed && better {
            best = Some((dist, cand));
        }
    }
    best.map(|(_, c)| c)
}

/// `" (did you mean \"x\"?)"` when a close candidate exists, else an empty string.
pub fn did_you_mean<'a, I>(word: &str, candidates: I) -> String
where
    I: IntoIterator<Item = &'a str>,
{
    match closest(word, candidates) {
        Some(c) => format!(" (did you mean \"{c}\"?)"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_words() {
        assert_eq!(closest("ap", ["app", "api"]), Some("app"));
        assert_eq!(
            closest("consistant", ["map-based", "consistent"]),
            Some("consistent")
        );
        assert_eq!(
            closest("frontends", ["frontend", "backend"]),
            Some("frontend")
        );
        assert_eq!(
            closest("RoundRobin", ["roundrobin", "first"]),
            Some("roundrobin")
        );
        assert_eq!(closest("adress", ["name", "address"]), Some("address"));
    }

    #[test]
    fn no_suggestion_when_far() {
        assert_eq!(closest("x", ["roundrobin", "leastconn"]), None);
        assert_eq!(closest("zzzzzz", ["app"]), None);
        assert_eq!(did_you_mean("zzzzzz", ["app"]), "");
        assert_eq!(did_you_mean("ap", ["app"]), " (did you mean \"app\"?)");
    }

    #[test]
    fn picks_the_closest() {
        assert_eq!(closest("serve", ["servers", "server"]), Some("server"));
    }
}
