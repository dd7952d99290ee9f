//! One exit-code convention for `hazgate`, `hazingest` and `hazsim`, so scripts and
//! systemd read all three alike:
//!
//! - `0`: done, and all is well;
//! - `1`: the command ran and found a fault: a device or the broker did not answer,
//!   nothing read well, a daemon stopped on an error;
//! - `2`: nothing was done: a flag or a configuration was refused (clap also exits 2 on a
//!   usage error).

use std::process::ExitCode;

pub const FAULT: u8 = 1;
pub const REFUSED: u8 = 2;

pub fn fault() -> ExitCode {
    ExitCode::from(FAULT)
}

pub fn refused() -> ExitCode {
    ExitCode::from(REFUSED)
}

/// An error meaning nothing was done because the input (a flag, a config file) was
/// refused; anything else at a binary's edge is a fault.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// The exit code for an error that reached a binary's edge.
pub fn for_error(e: &(dyn std::error::Error + 'static)) -> ExitCode {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.is::<Refused>() {
            return refused();
        }
        cause = c.source();
    }
    fault()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("wrapped")]
    struct Wrapped(#[source] Refused);

    #[test]
    fn a_refusal_anywhere_in_the_chain_is_2() {
        assert_eq!(for_error(&Refused("bad".into())), refused());
        assert_eq!(for_error(&Wrapped(Refused("bad".into()))), refused());
        assert_eq!(for_error(&std::io::Error::other("disk")), fault());
    }
}
