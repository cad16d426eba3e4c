//! `cfg(durable_ledger)`: a durable cost ledger (SQLite or PostgreSQL) is compiled in.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(durable_ledger)");
    if std::env::var_os("CARGO_FEATURE_SQLITE").is_some()
        || std::env::var_os("CARGO_FEATURE_POSTGRES").is_some()
    {
        println!("cargo::rustc-cfg=durable_ledger");
    }
}
