//! `keyward-image`: builds, signs, verifies and installs firmware images. Not built yet: the
//! firmware-image issue delivers it.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "keyward-image: not yet: firmware images (build, verify, install, rollback) arrive with their issue"
    );
    ExitCode::from(2)
}
