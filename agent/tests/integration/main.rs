//! Runs the built agent binary as the coordinator does: JSON on stdin, JSON on stdout.

mod cli;
mod harness;
mod real_server;
