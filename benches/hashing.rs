//! Hashing benchmark (release build): `cargo bench --bench hashing`.
//!
//! One 256 MiB input, hashed the way a task's inputs are:
//! - without digest reuse: the whole file is read and hashed. The file was
//!   just written, so the page cache is warm and this measures blake3 and
//!   memory bandwidth, not the disk;
//! - with digest reuse: size, times, inode and device match what was
//!   remembered, so it costs a `stat` and one store lookup;
//! - end to end: a one-task DAG reading the file, first run and then up to
//!   date (its input checked through the remembered digest).

mod common;

use std::fs::{File, FileTimes};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use common::{RunOptions, report};
use dag::cache::{DigestMemo, SETTLE};
use dag::execute::hash_file;
use dag::parse::load_dag;
use dag_state::Store;

const SIZE: usize = 256 << 20;

const DAG: &str = r#"
name: hashing
tasks:
  measure:
    operator: shell
    inputs: { data: big.bin }
    params: { command: "wc -c < big.bin > size.txt" }
    outputs: { size: size.txt }
"#;

/// Writes `SIZE` bytes of xorshift noise (incompressible, unlike zeros),
/// then backdates the file an hour and waits until the change that made
/// (which moves the ctime) has settled, so its digest may be remembered.
fn write_input(path: &Path) -> std::io::Result<()> {
    let mut writer = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..SIZE / block.len() {
        for chunk in block.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes());
        }
        writer.write_all(&block)?;
    }
    writer.flush()?;
    drop(writer);
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    File::options()
        .write(true)
        .open(path)?
        .set_times(FileTimes::new().set_modified(an_hour_ago))?;
    std::thread::sleep(SETTLE + Duration::from_millis(100));
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("big.bin");
    write_input(&input)?;
    let mib = SIZE as f64 / f64::from(1 << 20);

    let mut samples: Vec<Duration> = (0..7)
        .map(|_| {
            let started = Instant::now();
            let (_, size) = hash_file(&input).expect("hash the input");
            assert_eq!(size, SIZE as u64);
            started.elapsed()
        })
        .collect();
    report("256 MiB input, hashed (no reuse)", &mut samples, None);
    samples.sort();
    println!(
        "{:<48} {:.0} MiB/s",
        "",
        mib / samples[samples.len() / 2].as_secs_f64()
    );

    {
        let (store, _) = Store::open(&dir.path().join("memo"))?;
        let memo = DigestMemo::new(&store);
        let (expected, _) = memo.hash(&input)?;
        let remembered = store.known_digest(&input)?;
        assert_eq!(remembered.map(|known| known.digest), Some(expected.clone()));
        let mut samples: Vec<Duration> = (0..1001)
            .map(|_| {
                let started = Instant::now();
                let (digest, _) = memo.hash(&input).expect("hash through the memo");
                assert_eq!(digest, expected);
                started.elapsed()
            })
            .collect();
        report(
            "256 MiB input, remembered digest reused",
            &mut samples,
            Some((1, "check")),
        );
    }

    let registry = Arc::new(dag::ops::registry());
    let owned = DAG.to_string();
    let dag = load_dag(
        Path::new("hashing.yaml"),
        &mut |_| Ok(owned.clone()),
        &registry,
    )
    .unwrap_or_else(|diagnostics| panic!("{}", diagnostics[0].render(false)));
    let dag = Arc::new(dag);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (first, _, _) =
        common::run_dag(&runtime, &dag, &registry, dir.path(), RunOptions::default());
    let mut samples = vec![first];
    report("DAG reading it, first run", &mut samples, None);
    let mut samples: Vec<Duration> = (0..7)
        .map(|_| {
            let (elapsed, _, tasks) =
                common::run_dag(&runtime, &dag, &registry, dir.path(), RunOptions::default());
            assert_eq!(tasks[0].status, dag_state::TaskStatus::UpToDate);
            elapsed
        })
        .collect();
    report("DAG reading it, up to date", &mut samples, None);
    Ok(())
}
