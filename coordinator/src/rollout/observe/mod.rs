//! Reaching facts, changing nothing and deciding nothing: every host's facts and the cluster's
//! view, each host's restate-server binaries, the host checks' answers, what a leaving node's
//! host is, which restatectl runs where, whether the snapshot store answers. Async; uses neither
//! `decide` nor `act` (what to look at is passed in).

pub mod binaries;
pub mod certificates;
pub mod cluster;
pub mod host_checks;
pub mod leaving;
pub mod restatectl;
pub mod snapshot_store;
