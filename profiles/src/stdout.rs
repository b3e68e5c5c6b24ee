//! Writing command output to stdout without panicking when the reader goes
//! away (`openclawctl status | head -1`): `println!` panics on `EPIPE`
//! because Rust ignores `SIGPIPE`; [`outln!`](crate::outln) and
//! [`out!`](crate::out) exit quietly (status 0, as ripgrep does) when
//! stdout is closed, and with a message and status 2 on any other write
//! error.

use std::fmt;
use std::io::Write;

/// Writes `args` (and a newline when `newline`) to stdout; see the module docs.
pub fn write(args: fmt::Arguments<'_>, newline: bool) {
    let mut out = std::io::stdout().lock();
    let result = out
        .write_fmt(args)
        .and_then(|()| {
            if newline {
                out.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|()| if newline { out.flush() } else { Ok(()) });
    if let Err(e) = result {
        closed(e);
    }
}

/// Writes raw bytes to stdout; see the module docs.
pub fn write_bytes(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        closed(e);
    }
}

/// Flushes stdout; see the module docs.
pub fn flush() {
    if let Err(e) = std::io::stdout().flush() {
        closed(e);
    }
}

fn closed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    let _ = writeln!(std::io::stderr(), "cannot write to stdout: {e}");
    std::process::exit(2);
}

/// `println!` that exits quietly when stdout is closed.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::stdout::write(format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::stdout::write(format_args!($($arg)*), true)
    };
}

/// `print!` that exits quietly when stdout is closed.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::stdout::write(format_args!($($arg)*), false)
    };
}
