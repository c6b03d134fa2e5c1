//! Wire contracts shared by the coordinator and the agent.

/// Coordinator <-> agent: JSON documents on the agent's stdin/stdout.
pub mod agent;

/// Restate's admin gRPC API (the subset the fleet tool uses), client side only.
#[cfg(feature = "grpc")]
pub mod admin;
