//! The inventory: one TOML file that describes a Restate fleet.
