//! Where command output goes: stdout and stderr, or — when a running daemon
//! executes a read-only command on behalf of a client — buffers sent back
//! over the API, which the client prints to its own stdout and stderr.
//! Commands write with [`outln!`], [`out!`] and [`errln!`] instead of
//! `println!`/`eprintln!`, so the same code prints the same text, on the
//! same stream, in both places.

use std::cell::RefCell;
use std::io::Write;

/// What a captured command wrote: (stdout, stderr).
type Buffers = (Vec<u8>, Vec<u8>);

thread_local! {
    static CAPTURE: RefCell<Option<Buffers>> = const { RefCell::new(None) };
}

#[derive(Clone, Copy)]
enum Stream {
    Out,
    Err,
}

fn write_to(stream: Stream, args: std::fmt::Arguments<'_>) {
    let captured = CAPTURE.with(|capture| {
        let mut capture = capture.borrow_mut();
        match capture.as_mut() {
            Some((out, err)) => {
                let buffer = match stream {
                    Stream::Out => out,
                    Stream::Err => err,
                };
                let _ = buffer.write_fmt(args);
                true
            }
            None => false,
        }
    });
    if !captured {
        let _ = match stream {
            Stream::Out => std::io::stdout().lock().write_fmt(args),
            Stream::Err => std::io::stderr().lock().write_fmt(args),
        };
    }
}

/// Writes to this thread's captured stdout if set, else stdout.
pub fn write(args: std::fmt::Arguments<'_>) {
    write_to(Stream::Out, args);
}

/// Writes to this thread's captured stderr if set, else stderr.
pub fn write_err(args: std::fmt::Arguments<'_>) {
    write_to(Stream::Err, args);
}

/// Whether this thread's output is being captured for a client (then it is
/// never coloured: the client's terminal is not ours to ask).
pub fn capturing() -> bool {
    CAPTURE.with(|capture| capture.borrow().is_some())
}

/// Runs `f` with this thread's output captured; returns what it wrote to
/// stdout and to stderr.
pub fn capture<T>(f: impl FnOnce() -> T) -> (T, Vec<u8>, Vec<u8>) {
    CAPTURE.with(|capture| *capture.borrow_mut() = Some(Buffers::default()));
    let result = f();
    let (out, err) = CAPTURE.with(|capture| capture.borrow_mut().take().unwrap_or_default());
    (result, out, err)
}

macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::console::write(format_args!($($arg)*)) };
}

macro_rules! outln {
    () => { $crate::cli::console::write(format_args!("\n")) };
    ($($arg:tt)*) => {{
        $crate::cli::console::write(format_args!($($arg)*));
        $crate::cli::console::write(format_args!("\n"));
    }};
}

macro_rules! errln {
    ($($arg:tt)*) => {{
        $crate::cli::console::write_err(format_args!($($arg)*));
        $crate::cli::console::write_err(format_args!("\n"));
    }};
}

pub(crate) use {errln, out, outln};

#[cfg(test)]
mod tests {
    #[test]
    fn captured_output_is_returned_not_printed() {
        let (value, out, err) = super::capture(|| {
            outln!("a {}", 1);
            out!("b");
            outln!();
            errln!("problem {}", 2);
            7
        });
        assert_eq!(value, 7);
        assert_eq!(String::from_utf8_lossy(&out), "a 1\nb\n");
        assert_eq!(String::from_utf8_lossy(&err), "problem 2\n");
    }
}
