// mimalloc: a loaded 100,000-task DAG is millions of small allocations, on
// which glibc's allocator spent a fifth of `dag validate`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // No transparent huge pages, as mimalloc's own `MIMALLOC_ALLOW_THP=0`
    // would do: mimalloc asks for them, and when the kernel has to compact
    // memory to find one, a fault stalls for milliseconds (a 100,000-task
    // `dag validate` took 0.6 s or 1.6 s at random). Small pages cost the
    // same every time. Tasks started by `dag` inherit the setting; with
    // `MIMALLOC_ALLOW_THP` set, mimalloc decides instead.
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: prctl with PR_SET_THP_DISABLE takes plain integers and
        // only sets a flag on this process.
        unsafe {
            libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        }
    }
    dag::app::main()
}
