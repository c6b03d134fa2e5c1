//! Carrying the plan out: the executor runs each step behind its health gates, one file per kind
//! of step (install and upgrade, restart with its handover, live change, join, membership,
//! removal, reboot), restatectl and the admin RPCs they need, the locks, and verify. Uses
//! `decide` (the steps, the patches) and `observe` (a fresh look after a change).

mod agent;
mod drain;
mod executor;
mod install;
mod join;
mod live;
pub mod lock;
mod loglet;
mod membership;
mod metadata_list;
mod reboot;
mod remove;
mod restart;
mod restatectl;
mod snapshot;
mod tls;
mod upgrade;
pub mod verify;

pub use executor::{Executor, Timeouts};
