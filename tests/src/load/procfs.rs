//! What `/proc` tells about a process: its CPU time and resident memory,
//! and which process runs a given command line.

use std::path::Path;
use std::process::Command;

/// Clock ticks per second (`getconf CLK_TCK`; 100 on every Linux in use).
pub fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// User plus system CPU seconds `pid` has used so far (all its threads,
/// living and exited), from `/proc/<pid>/stat` (fields 14 and 15).
pub fn cpu_seconds(pid: u32, ticks: u64) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace();
    // `rest` starts at field 3 (state): utime is field 14, stime field 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let total = utime.saturating_add(stime);
    #[expect(clippy::cast_precision_loss, reason = "ticks of a test run")]
    Some(total as f64 / ticks as f64)
}

/// This process's CPU seconds.
pub fn own_cpu_seconds(ticks: u64) -> Option<f64> {
    cpu_seconds(std::process::id(), ticks)
}

/// Resident set size of `pid` in KiB (`VmRSS` in `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The process whose command line runs a binary named `binary` with an
/// argument equal to `argument` (the harness starts each party with its own
/// configuration file, so the pair names one process).
pub fn find_pid(binary: &str, argument: &Path) -> Option<u32> {
    let argument = argument.to_string_lossy();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let mut args = cmdline
                .split(|&b| b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned());
            let program = args.next()?;
            let named = Path::new(&program)
                .file_name()
                .is_some_and(|n| n.to_string_lossy() == binary);
            (named && args.any(|a| a == argument)).then_some(pid)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_cpu_time_and_memory() {
        let ticks = clock_ticks();
        assert!(own_cpu_seconds(ticks).is_some());
        assert!(rss_kib(std::process::id()).is_some_and(|k| k > 0));
    }
}
