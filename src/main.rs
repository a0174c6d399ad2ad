// mimalloc: the event path allocates many small maps and strings; glibc's allocator spent a
// quarter of the run time on them in profiles. Its v2 line (feature `v2`): event buffers made by
// a packet worker are freed on the output's threads, and v3 kept more of that memory (peak RSS
// on the 1 GiB benchmark corpus 203-225 MB against 181-193 MB, the same CPU).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(packetbeat::cmd::main());
}
