//! Settings that cannot work fail at startup, with a message naming them.

use std::panic::{AssertUnwindSafe, catch_unwind};

use axum::Router;
use sessionmanager_axum::{SameSite, SessionLayer};
use sessionmanager_core::MemoryStore;

use crate::app::memory;

fn panic_message(build: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(build)).expect_err("should panic");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap()
}

fn layer() -> SessionLayer<MemoryStore> {
    SessionLayer::new(memory())
}

#[test]
fn values_that_break_the_set_cookie_header_are_refused() {
    for name in ["", "a b", "a;b", "a=b", "sé", "a\tb"] {
        let msg = panic_message(|| drop(layer().with_cookie_name(name)));
        assert!(msg.contains("invalid cookie name"), "{name:?}: {msg}");
    }
    for path in ["", "app", "/a;b", "/a b", "/\n"] {
        let msg = panic_message(|| drop(layer().with_path(path)));
        assert!(msg.contains("invalid cookie path"), "{path:?}: {msg}");
    }
    for domain in ["", "a b", "a;b", "exa_mple.com", "x.com; Secure"] {
        let msg = panic_message(|| drop(layer().with_domain(domain)));
        assert!(msg.contains("invalid cookie domain"), "{domain:?}: {msg}");
    }
}

#[test]
fn combinations_browsers_reject_fail_when_the_layer_is_applied() {
    let cases = [
        (
            layer().with_same_site(SameSite::None).with_secure(false),
            "SameSite=None",
        ),
        (
            layer().with_cookie_name("__Secure-id").with_secure(false),
            "requires Secure",
        ),
        (
            layer().with_cookie_name("__Host-id").with_path("/app"),
            "requires Secure, Path=/ and no Domain",
        ),
        (
            layer()
                .with_cookie_name("__Host-id")
                .with_domain("example.com"),
            "requires Secure, Path=/ and no Domain",
        ),
    ];
    for (layer, expected) in cases {
        let msg = panic_message(|| drop(Router::<()>::new().layer(layer)));
        assert!(msg.contains(expected), "{msg}");
    }
    // The same names with what they require are fine.
    let _ = Router::<()>::new().layer(layer().with_cookie_name("__Host-id"));
    let _ = Router::<()>::new().layer(layer().with_cookie_name("__Secure-id").with_path("/a"));
}
