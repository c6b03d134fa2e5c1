//! One test binary for the inventory crate; modules by topic, shared helpers in `support`.

mod ansible;
mod limit;
mod model;
mod no_panic;
mod rules;
mod support;
