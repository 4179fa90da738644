//! "Did you mean ...?" suggestions for misspelled keys and names.

/// The candidate closest to `word`, if it is close enough to be a plausible typo.
///
/// A candidate qualifies when its Damerau-Levenshtein distance to `word` (ignoring ASCII
/// case) is at most a third of the longer string (at least one edit is always allowed),
/// or when their Jaro-Winkler similarity is at least 0.85 (which catches a shared prefix
/// with a different ending, such as `"retry"` → `"retries"`). The smallest distance wins,
/// then the highest similarity. So `"ap"` → `"app"`, `"consistant"` → `"consistent"`,
/// but `"x"` suggests nothing.
pub fn closest<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let word_lc = word.to_ascii_lowercase();
    // (distance, similarity, candidate) of the best so far.
    let mut best: Option<(usize, f64, &'a str)> = None;
    for cand in candidates {
        if cand == word {
            continue;
        }
        let cand_lc = cand.to_ascii_lowercase();
        let dist = strsim::damerau_levenshtein(&word_lc, &cand_lc);
        let sim = strsim::jaro_winkler(&word_lc, &cand_lc);
        let longer = word.chars().count().max(cand.chars().count());
        if dist > (longer / 3).max(1) && sim < 0.85 {
            continue;
        }
        let better = match best {
            Some((d, s, _)) => dist < d || (dist == d && sim > s),
            None => true,
        };
        if better {
            best = Some((dist, sim, cand));
        }
    }
    best.map(|(_, _, c)| c)
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
        assert_eq!(
            closest("retry", ["mode", "retries", "redispatch"]),
            Some("retries")
        );
    }

    #[test]
    fn no_suggestion_when_far() {
        assert_eq!(closest("x", ["roundrobin", "leastconn"]), None);
        assert_eq!(closest("name", ["mode"]), None);
        assert_eq!(closest("source", ["server"]), None);
        assert_eq!(closest("zzzzzz", ["app"]), None);
        assert_eq!(did_you_mean("zzzzzz", ["app"]), "");
        assert_eq!(did_you_mean("ap", ["app"]), " (did you mean \"app\"?)");
    }

    #[test]
    fn picks_the_closest() {
        assert_eq!(closest("serve", ["servers", "server"]), Some("server"));
    }
}
