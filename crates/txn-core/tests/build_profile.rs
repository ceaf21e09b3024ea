//! The profile the tests run in checks arithmetic overflow, as the shipped binaries do.
//!
//! `make test` runs `cargo test --release`; Cargo.toml's release profile sets
//! `overflow-checks = true`. Without it an overflow in an amount or a counter would wrap to a
//! wrong number, silently, in the tests and in the Lambda alike.

#[test]
fn integer_overflow_panics() {
    let largest = std::hint::black_box(i64::MAX);
    let outcome = std::panic::catch_unwind(|| largest + std::hint::black_box(1));
    assert!(
        outcome.is_err(),
        "i64::MAX + 1 did not panic: this profile has overflow-checks off"
    );
}
