//! The `http` target's seeds reach their handlers and are answered as well-formed requests
//! are, so that mutations of them explore past the extractors. A test binary of its own: the
//! target's runtime is one per process, and the seeds must meet it fresh (a trial started
//! twice is refused the second time).

/// The `http` seeds reach their handlers and are answered as a well-formed request is: each
/// route's seed succeeds, so mutations of it explore past the extractors.
#[test]
fn the_http_seeds_are_answered_200() {
    for seed in govern_fuzz::http::seeds() {
        let answer = govern_fuzz::http::answer(&seed.bytes);
        let Some((status, json)) = answer else { panic!("{}: no request", seed.name) };
        assert!(status.is_success(), "{}: {status} {json}", seed.name);
    }
}
