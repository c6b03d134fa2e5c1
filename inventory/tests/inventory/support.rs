use restate_fleet_inventory::{Loaded, parse};

/// The environment the tests see: only these variables exist.
pub fn env(var: &str) -> Option<String> {
    match var {
        "LAB_S3_SECRET" => Some("s3-secret-value".into()),
        "SSH_PASSPHRASE" => Some("passphrase-value".into()),
        "DB_PASSWORD" => Some("db-password-value".into()),
        _ => None,
    }
}

pub fn ok(text: &str) -> Loaded {
    match parse("inventory.toml", text, &env) {
        Ok(loaded) => loaded,
        Err(diagnostics) => panic!("expected the inventory to parse:\n{diagnostics}"),
    }
}

/// The rendered diagnostics of an inventory that must fail.
pub fn err(text: &str) -> String {
    match parse("inventory.toml", text, &env) {
        Ok(loaded) => panic!("expected errors, got {:#?}", loaded.fleet),
        Err(diagnostics) => diagnostics.to_string(),
    }
}

/// A valid cluster header to put rules in context.
pub const CLUSTER: &str = "[cluster]\nname = \"c\"\n";

pub fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
