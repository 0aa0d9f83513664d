//! Shared helpers for integration tests: locating test data and built
//! binaries, and network namespaces for kernel-interop tests.
//!
//! Interop tests need root, /dev/net/tun, iproute2 (`ip`, `ss`, `nstat`) and
//! an MPTCP-enabled kernel. When a requirement is missing they FAIL with a
//! message that names it, so CI never skips them silently. A developer
//! without root can opt out explicitly with MPTCP_TOOLS_SKIP_INTEROP=1.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The project's testdata directory.
pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

/// A binary of this package, built by cargo for integration tests.
pub fn bin(name: &str) -> PathBuf {
    let path = match name {
        "mptcp-dump" => option_env!("CARGO_BIN_EXE_mptcp-dump"),
        "mptcp-token" => option_env!("CARGO_BIN_EXE_mptcp-token"),
        "mptcp-cat" => option_env!("CARGO_BIN_EXE_mptcp-cat"),
        "mptcp-ss" => option_env!("CARGO_BIN_EXE_mptcp-ss"),
        other => panic!("unknown binary {other}"),
    };
    PathBuf::from(path.unwrap_or_else(|| panic!("binary {name} is not built by this package")))
}

/// Whether the developer explicitly opted out of interop tests.
pub fn interop_opted_out(test: &str) -> bool {
    if std::env::var_os("MPTCP_TOOLS_SKIP_INTEROP").is_some_and(|v| v == "1") {
        eprintln!("SKIPPED {test}: MPTCP_TOOLS_SKIP_INTEROP=1");
        return true;
    }
    false
}

fn which(tool: &str) -> bool {
    std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file())).unwrap_or(false)
}

/// Panics with a clear message unless the machine can run kernel-interop
/// tests: root, /dev/net/tun, MPTCP enabled, and the named tools on PATH.
pub fn require_interop(tools: &[&str]) {
    let uid = unsafe { libc_geteuid() };
    assert_eq!(
        uid, 0,
        "kernel-interop tests need root (network namespaces, TUN devices); run as root, \
         or set MPTCP_TOOLS_SKIP_INTEROP=1 to skip them explicitly"
    );
    assert!(Path::new("/dev/net/tun").exists(), "kernel-interop tests need /dev/net/tun (modprobe tun)");
    let enabled = std::fs::read_to_string("/proc/sys/net/mptcp/enabled").unwrap_or_default();
    assert_eq!(
        enabled.trim(),
        "1",
        "kernel-interop tests need MPTCP enabled: sysctl -w net.mptcp.enabled=1 \
         (read {enabled:?} from /proc/sys/net/mptcp/enabled)"
    );
    for t in ["ip", "nstat", "ss"].iter().chain(tools) {
        assert!(which(t), "kernel-interop tests need `{t}` on PATH (.ci/run installs it)");
    }
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Poll `f` until it gives a value or `deadline` passes (`None`). Polls at
/// once, then backs off 1, 2, 4 ... ms, at most 20 ms apart, so a condition
/// that is already true costs nothing and a slow one costs little CPU.
pub fn poll_until<T>(deadline: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + deadline;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        let now = Instant::now();
        if now >= end {
            return None;
        }
        std::thread::sleep(pause.min(end - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Wait until `cond` holds, failing the test with `what` once `deadline` has
/// passed.
pub fn wait_until(what: &str, deadline: Duration, mut cond: impl FnMut() -> bool) {
    if poll_until(deadline, || cond().then_some(())).is_none() {
        panic!("timed out after {deadline:?} waiting for {what}");
    }
}

/// [`poll_until`], failing the test with `what` once `deadline` has passed.
pub fn wait_for<T>(what: &str, deadline: Duration, f: impl FnMut() -> Option<T>) -> T {
    poll_until(deadline, f).unwrap_or_else(|| panic!("timed out after {deadline:?} waiting for {what}"))
}

/// A network namespace that is deleted (with its processes killed) on drop.
pub struct NetNs {
    pub name: String,
}

impl NetNs {
    /// Wait (at most 10 s) until something listens on TCP `port` here.
    pub fn wait_listen(&self, port: u16) {
        let listening = || self.sh(&format!("ss -Hltn 'sport = :{port}'")).contains(&format!(":{port}"));
        wait_until(&format!("a listener on port {port} in {}", self.name), Duration::from_secs(10), listening);
    }

    /// A fresh namespace named `mt-PREFIX-PID-N`, loopback up.
    pub fn new(prefix: &str) -> NetNs {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("mt-{prefix}-{}-{n}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        run_ok(Command::new("ip").args(["netns", "add", &name]));
        let ns = NetNs { name };
        ns.sh("ip link set lo up");
        ns
    }

    /// A `Command` that runs `program` inside the namespace.
    pub fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// Run a shell command line inside the namespace; panics on failure.
    pub fn sh(&self, line: &str) -> String {
        let out = run_ok(self.cmd("sh").args(["-c", line]));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run a shell command line inside the namespace; returns the output
    /// whatever the exit status.
    pub fn sh_any(&self, line: &str) -> Output {
        self.cmd("sh").args(["-c", line]).output().expect("spawn sh")
    }

    /// Start a long-running program inside the namespace.
    pub fn spawn(&self, program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Child {
        self.cmd(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn in netns")
    }

    /// The namespace's MIB counters (`nstat -az`), by name.
    pub fn nstat(&self) -> BTreeMap<String, u64> {
        parse_nstat(&self.sh("nstat -az"))
    }

    /// Only the MPTcpExt counters.
    pub fn mptcp_mib(&self) -> BTreeMap<String, u64> {
        self.nstat().into_iter().filter(|(k, _)| k.starts_with("MPTcpExt")).collect()
    }

    /// Connect two namespaces with a veth pair and give each end an address
    /// (`a_addr` / `b_addr` in CIDR form).
    pub fn veth(a: &NetNs, a_if: &str, a_addr: &str, b: &NetNs, b_if: &str, b_addr: &str) {
        run_ok(
            Command::new("ip")
                .args(["link", "add", a_if, "netns", &a.name, "type", "veth", "peer", "name", b_if, "netns", &b.name]),
        );
        a.sh(&format!("ip addr add {a_addr} dev {a_if} nodad && ip link set {a_if} up"));
        b.sh(&format!("ip addr add {b_addr} dev {b_if} nodad && ip link set {b_if} up"));
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Kill whatever still runs inside, then delete the namespace.
        if let Ok(out) = Command::new("ip").args(["netns", "pids", &self.name]).output() {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).output();
            }
        }
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}

/// Parse `nstat -az` output ("Name value rate" lines).
pub fn parse_nstat(text: &str) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        if let (Some(k), Some(v)) = (it.next(), it.next()) {
            if let Ok(v) = v.parse::<u64>() {
                m.insert(k.to_string(), v);
            }
        }
    }
    m
}

/// Run a command, panicking with its stderr if it fails.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}: {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The MPTcpExt counters that must stay zero in a healthy exchange.
pub const MIB_MUST_BE_ZERO: &[&str] = &[
    "MPTcpExtMPCapableFallbackACK",
    "MPTcpExtMPCapableFallbackSYNACK",
    "MPTcpExtMPCapableDataFallback",
    "MPTcpExtMPFallbackTokenInit",
    "MPTcpExtMPJoinSynAckHMacFailure",
    "MPTcpExtMPJoinAckHMacFailure",
    "MPTcpExtMPJoinNoTokenFound",
    "MPTcpExtDSSNotMatching",
    "MPTcpExtDSSCorruptionFallback",
    "MPTcpExtDSSCorruptionReset",
    "MPTcpExtDSSNoMatchTCP",
    "MPTcpExtDssFallback",
    "MPTcpExtInfiniteMapRx",
    "MPTcpExtInfiniteMapTx",
    "MPTcpExtDataCsumErr",
    "MPTcpExtMPFailRx",
    "MPTcpExtMPFailTx",
    "MPTcpExtFallbackFailed",
];

/// Assert that none of [`MIB_MUST_BE_ZERO`] moved.
pub fn assert_mib_clean(mib: &BTreeMap<String, u64>) {
    let bad: Vec<_> =
        MIB_MUST_BE_ZERO.iter().filter_map(|k| mib.get(*k).filter(|v| **v != 0).map(|v| format!("{k}={v}"))).collect();
    assert!(bad.is_empty(), "kernel MPTCP error counters moved: {}", bad.join(" "));
}

/// Random bytes from a seeded xorshift, for byte-for-byte transfer checks.
pub fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// Wait for `child` at most `secs`, draining its piped stdout and stderr
/// meanwhile (its stdin, if piped, is closed first); on overrun it is killed
/// and the status is `None`.
pub fn wait_with_deadline(mut child: Child, secs: u64) -> (Option<ExitStatus>, Output) {
    fn drain(r: Option<impl std::io::Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut v);
            }
            v
        })
    }
    drop(child.stdin.take());
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let status = poll_until(Duration::from_secs(secs), || child.try_wait().expect("try_wait"));
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    let exit = status.unwrap_or_else(|| child.wait().expect("wait"));
    (status, Output { status: exit, stdout, stderr })
}

/// [`wait_with_deadline`], failing the test when `what` overruns.
pub fn finish(child: Child, what: &str, secs: u64) -> Output {
    match wait_with_deadline(child, secs) {
        (Some(_), out) => out,
        (None, out) => panic!("{what} did not finish within {secs}s; stderr: {}", String::from_utf8_lossy(&out.stderr)),
    }
}

// ----------------------------------------------------------------------
// Process figures (tests/cat_hostile.rs): memory and CPU of a process,
// from /proc, for bounds that a hostile peer must not break.
// ----------------------------------------------------------------------

/// VmRSS and VmHWM of process `pid`, in KiB (from /proc/PID/status).
pub fn proc_rss_kib(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} for process {pid}"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU time process `pid` used so far, user plus system (from /proc/PID/stat).
pub fn proc_cpu(pid: u32) -> Duration {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or_else(|| panic!("no /proc/{pid}/stat"));
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 here.
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_micros(ticks * 1_000_000 / hz)
}
