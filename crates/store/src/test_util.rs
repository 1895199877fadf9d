//! Helpers for tests of strata-store and of the crates built on it, behind
//! the `test-util` feature (on in this crate's own unit tests).
//!
//! Other crates enable it from their `[dev-dependencies]`
//! (`strata-store = { workspace = true, features = ["test-util"] }`), so it
//! never reaches a release build. This crate's own integration tests cannot
//! depend on themselves with a feature; they include this file as a module
//! (`#[path = "../src/test_util.rs"] mod test_util;`), so everything here
//! names the crate as `strata_store`, never `crate`, and plain
//! `cargo test --workspace` runs them with nothing to enable.

/// Whether a test must run rather than skip: `CI` is set to a true value
/// (as CI services set it) or `STRATA_TEST_REQUIRE_ALL=1`. A green CI then
/// means every test ran, not that some found a tool missing and returned.
pub fn require_all() -> bool {
    require_all_given(|name| std::env::var(name).ok())
}

/// [`require_all`] over an environment given as a lookup: the decision
/// alone, so it can be tested without touching the process environment.
pub fn require_all_given(var: impl Fn(&str) -> Option<String>) -> bool {
    truthy(var("CI").as_deref()) || truthy(var("STRATA_TEST_REQUIRE_ALL").as_deref())
}

/// `1`, `true`, `yes` or `on` in any case; unset, empty, `0`, `false` and
/// anything else are false.
fn truthy(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}

/// A test that cannot run here says so: it prints `skipped: {why}`, and the
/// caller returns. When every test must run ([`require_all`]) it panics
/// naming what is missing instead.
#[track_caller]
pub fn skip(why: &str) {
    if require_all() {
        panic!("{why}: this test cannot be skipped when CI or STRATA_TEST_REQUIRE_ALL is set");
    }
    eprintln!("skipped: {why}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_are_refused_under_ci_or_require_all() {
        let given = |ci: Option<&str>, all: Option<&str>| {
            require_all_given(|name| match name {
                "CI" => ci.map(str::to_owned),
                "STRATA_TEST_REQUIRE_ALL" => all.map(str::to_owned),
                _ => None,
            })
        };
        let table = [
            (None, None, false),
            (Some("true"), None, true),
            (Some("TRUE"), None, true),
            (Some("1"), None, true),
            (Some("yes"), None, true),
            (Some(""), None, false),
            (Some("0"), None, false),
            (Some("false"), None, false),
            (None, Some("1"), true),
            (None, Some("0"), false),
            (Some("false"), Some("1"), true),
        ];
        for (ci, all, want) in table {
            assert_eq!(
                given(ci, all),
                want,
                "CI={ci:?} STRATA_TEST_REQUIRE_ALL={all:?}"
            );
        }
    }
}
