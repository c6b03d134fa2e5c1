//! Restate admin gRPC subset.
