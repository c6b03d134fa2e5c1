//! The typed admin client against real restate-server 1.7.12 processes on loopback, compared with
//! what restatectl 1.7.12 prints for the same cluster.

mod harness;
mod migration;
mod single_node;
mod three_nodes;
