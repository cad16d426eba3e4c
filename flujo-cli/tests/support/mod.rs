//! Runs the `flujo` binary as a user does.

use std::process::Command;

/// `flujo <args>`: whether it succeeded, its stdout and its stderr.
pub fn flujo(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_flujo"))
        .args(args)
        .output()
        .expect("the flujo binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
