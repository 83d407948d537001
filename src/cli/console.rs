//! Where command output goes: stdout, or — when a running daemon executes a
//! read-only command on behalf of a client — a buffer sent back over the
//! API. Commands write with [`outln!`] and [`out!`] instead of `println!`,
//! so the same code prints the same text in both places.

use std::cell::RefCell;
use std::io::Write;

thread_local! {
    static CAPTURE: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

/// Writes to the capture buffer of this thread if one is set, else stdout.
pub fn write(args: std::fmt::Arguments<'_>) {
    let captured = CAPTURE.with(|capture| {
        let mut capture = capture.borrow_mut();
        match capture.as_mut() {
            Some(buffer) => {
                let _ = buffer.write_fmt(args);
                true
            }
            None => false,
        }
    });
    if !captured {
        let _ = std::io::stdout().lock().write_fmt(args);
    }
}

/// Runs `f` with this thread's output captured; returns what it wrote.
pub fn capture<T>(f: impl FnOnce() -> T) -> (T, Vec<u8>) {
    CAPTURE.with(|capture| *capture.borrow_mut() = Some(Vec::new()));
    let result = f();
    let output = CAPTURE.with(|capture| capture.borrow_mut().take().unwrap_or_default());
    (result, output)
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

pub(crate) use {out, outln};

#[cfg(test)]
mod tests {
    #[test]
    fn captured_output_is_returned_not_printed() {
        let (value, bytes) = super::capture(|| {
            outln!("a {}", 1);
            out!("b");
            outln!();
            7
        });
        assert_eq!(value, 7);
        assert_eq!(String::from_utf8_lossy(&bytes), "a 1\nb\n");
    }
}
