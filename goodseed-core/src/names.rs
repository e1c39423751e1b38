//! Readable run ids in 0.4.0's `adjective-animal` style, and 0.4.0's `-2`, `-3`, …
//! suffixing when an id is taken.
//!
//! Randomness is passed in, so this module stays free of I/O and tests are
//! deterministic. The word lists are our own.

use crate::{MAX_RUN_ID_LEN, RunId};

/// Source of randomness for [`generate_run_id`].
pub trait RandomIndex {
    /// Returns a uniformly random index below `bound` (`bound >= 1`).
    fn random_index(&mut self, bound: usize) -> usize;
}

/// Any `FnMut(bound) -> index` closure is a source of randomness.
impl<F: FnMut(usize) -> usize> RandomIndex for F {
    fn random_index(&mut self, bound: usize) -> usize {
        self(bound)
    }
}

/// No free run id could be found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NamesError {
    /// The base id and every suffixed id up to `base-999` are taken (0.4.0's limit).
    #[error("no free run id: {base} and {base}-2 to {base}-{LAST_SUFFIX} are all taken")]
    Exhausted {
        /// The id that was taken first.
        base: RunId,
    },
    /// The base id is taken and adding the next suffix would pass the run-id length limit.
    #[error(
        "run id {base} is taken and too long to add the suffix -{suffix} \
         (run ids are at most {MAX_RUN_ID_LEN} characters)"
    )]
    TooLongToSuffix {
        /// The id that was taken.
        base: RunId,
        /// The suffix that did not fit.
        suffix: u32,
    },
}

/// The last suffix tried, as in 0.4.0.
const LAST_SUFFIX: u32 = 999;

/// Lowercase ASCII letters only, so every `adjective-animal` pair is a valid [`RunId`].
const ADJECTIVES: [&str; 48] = [
    "brave", "breezy", "bright", "brisk", "clever", "cosmic", "crisp", "curious", "dapper", "deft",
    "fancy", "fluffy", "fuzzy", "glad", "grand", "hardy", "humble", "jaunty", "kind", "lucky",
    "mellow", "mighty", "nimble", "plucky", "polite", "quiet", "radiant", "rosy", "rustic",
    "shiny", "silent", "silver", "sleek", "snowy", "solar", "spry", "steady", "sunny", "tidy",
    "tiny", "tough", "trusty", "upbeat", "velvet", "wise", "witty", "young", "zesty",
];

/// Lowercase ASCII letters only, so every `adjective-animal` pair is a valid [`RunId`].
const ANIMALS: [&str; 48] = [
    "alpaca", "antelope", "beaver", "bison", "bobcat", "camel", "condor", "coyote", "crane",
    "dingo", "donkey", "ferret", "finch", "gecko", "gibbon", "goose", "hamster", "hare", "hippo",
    "impala", "jackal", "kiwi", "lark", "llama", "lynx", "magpie", "marmot", "moose", "ocelot",
    "oriole", "osprey", "owl", "panda", "parrot", "penguin", "puffin", "rabbit", "seal", "shark",
    "sloth", "sparrow", "squid", "stork", "tapir", "tiger", "weasel", "yak", "zebra",
];

/// Picks one word; an index out of range (a faulty source) wraps round rather than panics.
fn pick<'w>(rng: &mut impl RandomIndex, words: &[&'w str]) -> &'w str {
    words[rng.random_index(words.len()) % words.len()]
}

/// Generates a readable run id such as `brisk-puffin` from 48 adjectives and 48 animals
/// (2,304 combinations).
///
/// ```
/// use goodseed_core::names::generate_run_id;
///
/// // Any `FnMut(bound) -> index` is a source of randomness; a real caller passes a
/// // random number generator.
/// let id = generate_run_id(&mut |_bound: usize| 0);
/// assert_eq!(id.as_str(), "brave-alpaca");
/// ```
pub fn generate_run_id(rng: &mut impl RandomIndex) -> RunId {
    let adjective = pick(rng, &ADJECTIVES);
    let animal = pick(rng, &ANIMALS);
    RunId::parse(&format!("{adjective}-{animal}"))
        .expect("the word lists hold short lowercase ASCII words only")
}

/// 0.4.0's collision rule for generated ids: `base` if it is free, otherwise the first
/// free one of `base-2`, `base-3`, … `base-999`. `exists` says whether an id is taken.
///
/// A base so long that a suffix would pass [`MAX_RUN_ID_LEN`] is an error rather than
/// being cut short, so the id always starts with the base as given.
pub fn unique_run_id(
    base: &RunId,
    mut exists: impl FnMut(&RunId) -> bool,
) -> Result<RunId, NamesError> {
    if !exists(base) {
        return Ok(base.clone());
    }
    for suffix in 2..=LAST_SUFFIX {
        let candidate = format!("{base}-{suffix}");
        // A valid base followed by `-` and digits can only fail on length.
        let Ok(candidate) = RunId::parse(&candidate) else {
            return Err(NamesError::TooLongToSuffix { base: base.clone(), suffix });
        };
        if !exists(&candidate) {
            return Ok(candidate);
        }
    }
    Err(NamesError::Exhausted { base: base.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn id(text: &str) -> RunId {
        RunId::parse(text).expect("test id is valid")
    }

    /// Runs `unique_run_id` with `taken` as the existing ids; renders the outcome.
    fn check_unique(base: &str, taken: &[&str], expect: &str) {
        let taken: HashSet<String> = taken.iter().map(|s| (*s).to_owned()).collect();
        let got = match unique_run_id(&id(base), |candidate| taken.contains(candidate.as_str())) {
            Ok(found) => format!("ok {found}"),
            Err(err) => format!("error: {err}"),
        };
        assert_eq!(got, expect);
    }

    #[test]
    fn word_lists_are_distinct_lowercase_letters() {
        for words in [&ADJECTIVES, &ANIMALS] {
            let distinct: HashSet<&str> = words.iter().copied().collect();
            assert_eq!(distinct.len(), words.len(), "no word repeats");
            for word in words {
                assert!(!word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase()), "{word}");
            }
        }
    }

    #[test]
    fn every_combination_is_a_valid_run_id() {
        let mut seen = HashSet::new();
        for a in 0..ADJECTIVES.len() {
            for b in 0..ANIMALS.len() {
                let mut picks = [a, b].into_iter();
                let generated = generate_run_id(&mut |_| picks.next().unwrap_or(0));
                assert_eq!(RunId::parse(generated.as_str()).as_ref(), Ok(&generated));
                assert!(generated.as_str().len() + "-999".len() <= MAX_RUN_ID_LEN);
                seen.insert(generated);
            }
        }
        assert_eq!(seen.len(), 48 * 48);
    }

    #[test]
    fn generation_is_deterministic_for_a_fixed_source() {
        let mut bounds = Vec::new();
        let mut script = [3, 40, 47, 0, 12, 33].into_iter();
        let mut rng = |bound: usize| {
            bounds.push(bound);
            script.next().unwrap_or(0)
        };
        let ids: Vec<String> = (0..3).map(|_| generate_run_id(&mut rng).into()).collect();
        assert_eq!(ids, ["brisk-sparrow", "zesty-alpaca", "fuzzy-parrot"]);
        assert_eq!(bounds, [48; 6], "each word is drawn from its whole list");
        // A faulty source that ignores the bound still yields a valid id.
        assert_eq!(generate_run_id(&mut |_| 48 + 5).as_str(), "cosmic-camel");
    }

    #[test]
    fn collisions_add_suffixes() {
        check_unique("calm-otter", &[], "ok calm-otter");
        check_unique("calm-otter", &["calm-otter"], "ok calm-otter-2");
        check_unique("calm-otter", &["calm-otter", "calm-otter-2"], "ok calm-otter-3");
        check_unique("calm-otter", &["calm-otter", "calm-otter-3"], "ok calm-otter-2");
        check_unique("calm-otter", &["calm-otter-2"], "ok calm-otter");
    }

    #[test]
    fn exhaustion_is_an_error() {
        let mut asked = Vec::new();
        let result = unique_run_id(&id("x"), |candidate| {
            asked.push(candidate.to_string());
            true
        });
        assert_eq!(
            result.map_err(|e| e.to_string()),
            Err("no free run id: x and x-2 to x-999 are all taken".to_owned())
        );
        assert_eq!(asked.len(), 999, "the base, then -2 to -999");
        assert_eq!(asked.first().map(String::as_str), Some("x"));
        assert_eq!(asked.last().map(String::as_str), Some("x-999"));
    }

    #[test]
    fn long_bases_refuse_suffixes_that_do_not_fit() {
        let base = "a".repeat(125);
        let all_taken = |_: &RunId| true;
        // 125 + "-2" fits; it is free.
        check_unique(&base, &[&base], &format!("ok {base}-2"));
        // 125 + "-10" is exactly 128; "-100" would be 129.
        let err = unique_run_id(&id(&base), all_taken).map_err(|e| e.to_string());
        assert_eq!(
            err,
            Err(format!(
                "run id {base} is taken and too long to add the suffix -100 \
                 (run ids are at most 128 characters)"
            ))
        );
        let full = "b".repeat(128);
        assert_eq!(
            unique_run_id(&id(&full), all_taken),
            Err(NamesError::TooLongToSuffix { base: id(&full), suffix: 2 })
        );
        check_unique(&full, &[], &format!("ok {full}"));
    }
}
