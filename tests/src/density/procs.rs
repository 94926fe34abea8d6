//! A process tree's CPU time and memory, read from `/proc`: a root pid and every descendant
//! (found through `/proc/<pid>/task/<tid>/children`), summed. CPU is `utime + stime` of each
//! live process (a child that exits inside a window takes its time with it); RSS from
//! `/proc/<pid>/status` (`VmRSS`), PSS from `/proc/<pid>/smaps_rollup` (`Pss`: shared pages
//! split between the processes sharing them, so a process-per-job tree is not counted twice).

use std::collections::BTreeSet;

/// Kernel clock ticks per second for `/proc/<pid>/stat` (`USER_HZ`, 100 on Linux).
const CLK_TCK: f64 = 100.0;

/// One reading of a set of process trees.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    /// CPU seconds (user + system) the live processes have used.
    pub cpu_s: f64,
    pub rss_kb: f64,
    pub pss_kb: f64,
    /// Processes in the trees.
    pub procs: usize,
}

/// `roots` and all their descendants, each pid once.
pub fn tree(roots: &[u32]) -> Vec<u32> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<u32> = roots.to_vec();
    // Bounded: a pid is visited once, and there are finitely many.
    while let Some(pid) = todo.pop() {
        if !seen.insert(pid) {
            continue;
        }
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            todo.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
    }
    seen.into_iter()
        .filter(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
        .collect()
}

/// CPU seconds `pid` has used (0 when it is gone).
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command: utime is the 14th, stime the 15th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / CLK_TCK
}

/// The first number on the line starting with `key` in `text` (kB in `/proc`'s files).
fn field_kb(text: &str, key: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Every process of the trees under `roots`, summed.
pub fn sample(roots: &[u32]) -> Sample {
    sample_pids(&tree(roots))
}

/// `pids` (not their children), summed; a pid that is gone counts for nothing.
pub fn sample_pids(pids: &[u32]) -> Sample {
    let pids: Vec<u32> = pids
        .iter()
        .copied()
        .filter(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
        .collect();
    let mut s = Sample {
        procs: pids.len(),
        ..Sample::default()
    };
    for pid in pids {
        s.cpu_s += cpu_seconds(pid);
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        s.rss_kb += field_kb(&status, "VmRSS:");
        let rollup =
            std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
        s.pss_kb += field_kb(&rollup, "Pss:");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_measured() {
        let s = sample(&[std::process::id()]);
        assert!(s.procs >= 1);
        assert!(s.rss_kb > 0.0 && s.pss_kb > 0.0, "{s:?}");
    }

    #[test]
    fn fields_are_read_in_kb() {
        let text = "Rss:    2048 kB\nPss:     1024 kB\nPss_Anon: 12 kB\n";
        assert_eq!(field_kb(text, "Pss:"), 1024.0);
        assert_eq!(field_kb(text, "Swap:"), 0.0);
    }
}
