//! A running process's memory, read as an attacker with root on the appliance would: every
//! writable mapping (heap, thread stacks, anonymous memory) through `/proc/PID/mem`. The daemon
//! is not dumpable, so only root may read it.

use std::io::BufRead;
use std::os::unix::fs::FileExt;

/// How much is read at once.
const CHUNK: usize = 1 << 20;

/// Which of `secrets` (label, text) occur in the writable memory of process `pid`: each label
/// found, with how many times. Secrets themselves never appear in what this returns.
pub fn secrets_in_memory(pid: u32, secrets: &[(&str, &str)]) -> Vec<String> {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test reads the daemon's memory through /proc/PID/mem; the daemon is not dumpable, so only root may: run the tests as root"
    );
    let maps = std::fs::File::open(format!("/proc/{pid}/maps"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/maps: {e}"));
    let mem = std::fs::File::open(format!("/proc/{pid}/mem"))
        .unwrap_or_else(|e| panic!("open /proc/{pid}/mem: {e}"));
    let mut starts = [false; 256];
    for (_, secret) in secrets {
        assert!(!secret.is_empty(), "an empty secret is found everywhere");
        starts[usize::from(secret.as_bytes()[0])] = true;
    }
    let overlap = secrets.iter().map(|(_, s)| s.len()).max().unwrap_or(0);
    let mut counts = vec![0usize; secrets.len()];
    let mut searched = 0usize;
    for line in std::io::BufReader::new(maps).lines() {
        let line = line.expect("maps line");
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !perms.starts_with("rw") {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
        else {
            continue;
        };
        // A chunk starts `overlap` bytes early, so a secret across a chunk boundary is found;
        // a hit is counted in the chunk where it ends (the previous one held it only in part).
        let mut at = start;
        let mut buf = vec![0u8; CHUNK + overlap];
        while at < end {
            let from = at.saturating_sub(overlap as u64).max(start);
            let len = usize::try_from((end - from).min((CHUNK + overlap) as u64)).expect("fits");
            let Ok(n) = mem.read_at(&mut buf[..len], from) else {
                break; // a guard page or a mapping that went away
            };
            let skip = usize::try_from(at - from).expect("fits");
            if n <= skip {
                break;
            }
            // One pass over the chunk, looking closer only where a secret could start.
            let chunk = &buf[..n];
            for (hit, byte) in chunk.iter().enumerate() {
                if !starts[usize::from(*byte)] {
                    continue;
                }
                for (i, (_, secret)) in secrets.iter().enumerate() {
                    if hit + secret.len() > skip && chunk[hit..].starts_with(secret.as_bytes()) {
                        counts[i] += 1;
                    }
                }
            }
            searched += n - skip;
            at = from + n as u64;
        }
    }
    assert!(
        searched > 0,
        "nothing of process {pid}'s memory could be read"
    );
    secrets
        .iter()
        .zip(counts)
        .filter(|(_, n)| *n > 0)
        .map(|((label, _), n)| format!("{label} ({n} times)"))
        .collect()
}
