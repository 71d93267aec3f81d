//! The `parqour` binary: everything is in the library; see `parqour::cli`.

fn main() -> std::process::ExitCode {
    tune_allocator();
    parqour::cli::main()
}

/// Batches, pages and parts are large, short-lived buffers, and how glibc recycles them decides
/// both system time and peak memory. By default glibc raises its mmap threshold as they are
/// freed (up to 32 MiB) and keeps 8 arenas per core, each holding what it freed: peak memory
/// then grows with the length of the run (852 MB of Avro: 223 MiB). Mapping every buffer over
/// 1 MiB instead bounds memory but maps, faults in, zeroes and unmaps each page and read chunk:
/// a fifth of the cpu time went to the kernel. So: buffers up to 16 MiB (pages, read chunks,
/// column buffers) are recycled from the heap, an arena keeps up to 16 MiB free before it
/// returns memory, and there are few arenas (below). Measured with `parqour convert` on 345 MB
/// of deflate Avro, 2 cores, alternating runs: 6.67 -> 5.88 cpu-s (system 1.68 -> 1.08 s), peak
/// RSS 122 -> 138 MiB; `parqour run` on ten times the input peaks at 156 MiB. The bound was
/// 4 MiB until the column of a group of text records (JSON payloads: 6-8 MiB of strings per
/// group) was mapped afresh for every group: 16 MiB took 1,600,000 such records from 2.76 to
/// 2.61 cpu-s, and left the benchmark's events and ten times them at the same peak
/// (115-124 MiB). Arenas: buffers are made on one thread and freed on another (batches,
/// pages, parts), and a chunk goes back to the arena it came from, so every arena keeps free
/// memory that only its own threads reuse, and peak memory is the sum of the arenas' peaks: with
/// one arena per core, the benchmark's events peaked at 94-105 MiB and ten times them at
/// 113-118 MiB; with one arena for 2 cores, at 86-90 and 94-96 MiB, for the same cpu time (12
/// alternating runs: 3.42-3.59 user-s either way). A conversion makes ~65,000 allocations per
/// cpu-second, a tenth of them past the 1 KiB the per-thread cache holds, so it is not the
/// arena's lock that limits a few cores: one arena serves up to 8 cores, and each 8 more get
/// one more. glibc's own `MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_` and
/// `MALLOC_ARENA_MAX`, when set, win.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn tune_allocator() {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let settings = [
        ("MALLOC_MMAP_THRESHOLD_", libc::M_MMAP_THRESHOLD, 16 << 20),
        ("MALLOC_TRIM_THRESHOLD_", libc::M_TRIM_THRESHOLD, 16 << 20),
        (
            "MALLOC_ARENA_MAX",
            libc::M_ARENA_MAX,
            cores.div_ceil(8).clamp(1, 8),
        ),
    ];
    for (env, param, value) in settings {
        if std::env::var_os(env).is_none() {
            // SAFETY: mallopt only changes allocator parameters; it is called before any other
            // thread exists. A failure (return 0) leaves the default, harmlessly.
            unsafe {
                libc::mallopt(param, value as libc::c_int);
            }
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}
