//! Coordinator <-> agent messages.
