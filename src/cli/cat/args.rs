//! mptcp-cat's command line (DESIGN.md contract, ncat's option letters).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser, ValueEnum};

const AFTER_HELP: &str = "\
Examples:
  mptcp-cat -v 10.0.0.2 5000 < file          send a file over the kernel's MPTCP, report subflows
  mptcp-cat -l -k 5000 > out                 serve several clients at once (kernel MPTCP)
  mptcp-cat --require-mptcp host 80           fail if the peer falls back to plain TCP
  mptcp-cat --local 10.0.1.1/24 --local 10.0.2.1/24 --limits 2 10.0.9.1 5000
                                             client opening a subflow from each extra address
  mptcp-cat --stack embedded --tun mptcp0 --local 10.200.0.2/24 10.200.0.1 5000
                                             our own MPTCP stack through a TUN device
  mptcp-cat --sim --path rate=50mbit,delay=20ms --path rate=10mbit,delay=80ms < file
                                             client and server, both ours, over a simulated network

Exit status: 0 on a clean end; 1 with a one-line reason on any failure; 2 on a usage error.";

/// ncat-style client and server over MPTCP: the host kernel's (`--stack
/// kernel`) or this project's embedded stack through a TUN device.
#[derive(Parser, Debug, Clone)]
#[command(name = "mptcp-cat", version, about, after_help = AFTER_HELP)]
pub struct CatArgs {
    /// Listen for incoming connections: `mptcp-cat -l [ADDR] PORT`.
    #[arg(short = 'l', long)]
    pub listen: bool,
    /// With -l, serve several clients, concurrently, and keep listening.
    /// Standard input goes to every connected client.
    #[arg(short = 'k', long = "keep-open")]
    pub keep_open: bool,
    /// Only send: what the peer sends is discarded; end once standard input is sent.
    #[arg(long, conflicts_with = "recv_only")]
    pub send_only: bool,
    /// Only receive: standard input is not read; end when the peer closes.
    #[arg(long)]
    pub recv_only: bool,
    /// Do not shut down the write side when standard input ends.
    #[arg(long)]
    pub no_shutdown: bool,
    /// Connect timeout (e.g. 3, 500ms, 2s, 1m).
    #[arg(short = 'w', long = "wait", value_name = "TIME", value_parser = parse_duration)]
    pub connect_timeout: Option<Duration>,
    /// Idle timeout: fail when nothing is sent or received for this long.
    #[arg(short = 'i', long = "idle-timeout", value_name = "TIME", value_parser = parse_duration)]
    pub idle_timeout: Option<Duration>,
    /// Write all session data, both directions, to FILE.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write all session data, both directions, as a hex dump (ncat's format) to FILE.
    #[arg(short = 'x', long = "hex-dump", value_name = "FILE")]
    pub hex_dump: Option<PathBuf>,
    /// Run PROG (split on spaces) with the connection as its standard input and output.
    #[arg(short = 'e', long = "exec", value_name = "PROG", conflicts_with = "sh_exec")]
    pub exec: Option<String>,
    /// Run CMD with /bin/sh -c, with the connection as its standard input and output.
    #[arg(short = 'c', long = "sh-exec", value_name = "CMD")]
    pub sh_exec: Option<String>,
    /// IPv4 only.
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// IPv6 only.
    #[arg(short = '6')]
    pub ipv6: bool,
    /// Source address of the connection (client).
    #[arg(short = 's', long = "source", value_name = "ADDR")]
    pub source: Option<IpAddr>,
    /// Source port of the connection (client).
    #[arg(short = 'p', long = "source-port", value_name = "PORT")]
    pub source_port: Option<u16>,
    /// Verbose: negotiation result, token, every subflow as it opens and
    /// closes, per-subflow bytes at exit. -vv adds per-subflow RTT and cwnd.
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count)]
    pub verbose: u8,
    /// Fail when the connection falls back to plain TCP.
    #[arg(long)]
    pub require_mptcp: bool,
    /// Which MPTCP implementation carries the connection. Default: kernel,
    /// or embedded when --tun is given.
    #[arg(long, value_enum)]
    pub stack: Option<StackKind>,
    /// TUN device for the embedded stack (default mptcp0; created if missing,
    /// an existing persistent one is reused with its addresses).
    #[arg(long, value_name = "NAME")]
    pub tun: Option<String>,
    /// A local address, as `ip mptcp endpoint` takes it:
    /// ADDR[/PREFIX][,subflow][,signal][,backup][,fullmesh][,port=N]. The first
    /// is the primary address; the others open subflows (client, default
    /// `subflow`) or are announced (server, default `signal`).
    #[arg(long = "local", value_name = "SPEC", value_parser = LocalSpec::parse)]
    pub local: Vec<LocalSpec>,
    /// Path-manager limits: SUBFLOWS[,ADD_ADDR_ACCEPTED] (as `ip mptcp limits set`).
    #[arg(long, value_name = "SUBFLOWS[,ADD_ADDR_ACCEPTED]", value_parser = Limits::parse)]
    pub limits: Option<Limits>,
    /// Packet scheduler (kernel: a name from net.mptcp.available_schedulers;
    /// embedded: default, roundrobin, redundant).
    #[arg(long, value_name = "NAME")]
    pub scheduler: Option<String>,
    /// Congestion control (kernel: a name from tcp_available_congestion_control;
    /// embedded: cubic, newreno).
    #[arg(long, value_name = "NAME")]
    pub cc: Option<String>,
    /// Use TCP Fast Open (RFC 7413; with MPTCP, RFC 8684 Appendix B): a
    /// client asks for a cookie and, once it has one, sends its first bytes
    /// in the SYN; a listener issues cookies and takes SYN data.
    #[arg(long)]
    pub fastopen: bool,
    /// Embedded client: keep the Fast Open cookies in FILE across runs
    /// (read at start if it exists, written at the end).
    #[arg(long, value_name = "FILE", requires = "fastopen")]
    pub fastopen_cache: Option<std::path::PathBuf>,
    /// End with MP_FASTCLOSE (an abortive close) instead of a DATA_FIN, once
    /// everything sent is acknowledged.
    #[arg(long)]
    pub abort: bool,
    /// Embedded stack: a plain TUN, without the virtio-net header and its
    /// checksum/TSO offloads (which are used by default: our segments go to
    /// the kernel merged into TSO super-packets, the kernel's come as such).
    #[arg(long)]
    pub no_tun_offload: bool,
    /// Write every packet the embedded stack sends and receives to FILE (pcap).
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// Run client and server, both our stack, over a simulated network in
    /// virtual time (`mptcp-cat --sim --help` lists its options).
    #[arg(long)]
    pub sim: bool,
    /// HOST PORT (client) or [ADDR] PORT (with -l).
    #[arg(value_name = "HOST PORT", num_args = 0..=2)]
    pub target: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StackKind {
    /// The host kernel's MPTCP sockets (IPPROTO_MPTCP).
    Kernel,
    /// This project's sans-IO stack through a TUN device.
    Embedded,
}

/// Endpoint flags, as `ip mptcp endpoint` spells them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndpointFlags {
    pub subflow: bool,
    pub signal: bool,
    pub backup: bool,
    pub fullmesh: bool,
}

impl EndpointFlags {
    pub fn is_empty(&self) -> bool {
        !(self.subflow || self.signal || self.backup || self.fullmesh)
    }
}

/// One `--local` argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalSpec {
    pub addr: IpAddr,
    /// The prefix length when given (the embedded stack needs it).
    pub prefix: Option<u8>,
    pub flags: EndpointFlags,
    pub port: Option<u16>,
}

impl LocalSpec {
    pub fn parse(s: &str) -> Result<LocalSpec, String> {
        let mut parts = s.split(',');
        let first = parts.next().unwrap_or_default().trim();
        let (addr, prefix) = match first.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (first, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| format!("{addr:?} is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => {
                let n: u8 = p.parse().map_err(|_| format!("prefix {p:?} is not a number"))?;
                if n > max {
                    return Err(format!("prefix /{n} is longer than {max}"));
                }
                Some(n)
            }
            None => None,
        };
        let mut flags = EndpointFlags::default();
        let mut port = None;
        for f in parts {
            match f.trim() {
                "subflow" => flags.subflow = true,
                "signal" => flags.signal = true,
                "backup" => flags.backup = true,
                "fullmesh" => flags.fullmesh = true,
                p if p.starts_with("port=") => {
                    port = Some(p[5..].parse::<u16>().map_err(|_| format!("bad port in {p:?}"))?);
                }
                "" => {}
                other => {
                    return Err(format!("unknown endpoint flag {other:?} (subflow, signal, backup, fullmesh, port=N)"));
                }
            }
        }
        Ok(LocalSpec { addr, prefix, flags, port })
    }

    /// The first host address of the prefix (the kernel's side of a TUN link):
    /// 10.200.0.2/24 -> 10.200.0.1.
    pub fn first_host(&self) -> Option<IpAddr> {
        Some(crate::sys::tun::first_host(self.addr, self.prefix?))
    }
}

/// `--limits SUBFLOWS[,ADD_ADDR_ACCEPTED]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub subflows: u32,
    pub add_addr_accepted: Option<u32>,
}

impl Limits {
    pub fn parse(s: &str) -> Result<Limits, String> {
        let mut it = s.split(',');
        let n = |x: Option<&str>| -> Result<Option<u32>, String> {
            match x {
                None => Ok(None),
                Some(v) => {
                    let v: u32 = v.trim().parse().map_err(|_| format!("{v:?} is not a number"))?;
                    if v > 8 {
                        return Err(format!("{v} is above the kernel's maximum of 8"));
                    }
                    Ok(Some(v))
                }
            }
        };
        let subflows = n(it.next())?.ok_or("missing SUBFLOWS")?;
        let add_addr_accepted = n(it.next())?;
        if it.next().is_some() {
            return Err("expected SUBFLOWS[,ADD_ADDR_ACCEPTED]".into());
        }
        Ok(Limits { subflows, add_addr_accepted })
    }
}

/// ncat's time syntax: a number of seconds, or a number with ms, s, m or h.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, mult_ms) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3_600_000.0)
    } else {
        (s, 1000.0)
    };
    let v: f64 = num.parse().map_err(|_| format!("{s:?} is not a time (e.g. 3, 500ms, 2s, 1m)"))?;
    if !(v > 0.0 && v.is_finite()) {
        return Err(format!("{s:?}: the time must be greater than 0"));
    }
    Ok(Duration::from_micros((v * mult_ms * 1000.0).round() as u64))
}

/// What the positional arguments mean once -l is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Connect { host: String, port: u16 },
    Listen { addr: Option<String>, port: u16 },
}

impl CatArgs {
    pub fn target(&self) -> Result<Target, String> {
        let port = |p: &str| -> Result<u16, String> { p.parse::<u16>().map_err(|_| format!("{p:?} is not a port")) };
        match (self.listen, self.target.as_slice()) {
            (false, [host, p]) => Ok(Target::Connect { host: host.clone(), port: port(p)? }),
            (false, _) => Err("a client needs HOST PORT (or -l to listen)".into()),
            (true, [p]) => Ok(Target::Listen { addr: None, port: port(p)? }),
            (true, [a, p]) => Ok(Target::Listen { addr: Some(a.clone()), port: port(p)? }),
            (true, _) => Err("-l needs [ADDR] PORT".into()),
        }
    }

    /// The stack to use.
    pub fn stack_kind(&self) -> StackKind {
        self.stack.unwrap_or(if self.tun.is_some() { StackKind::Embedded } else { StackKind::Kernel })
    }

    /// Combinations clap cannot express.
    pub fn validate(&self) -> Result<(), String> {
        if self.keep_open && !self.listen {
            return Err("-k/--keep-open only applies with -l".into());
        }
        if self.listen && (self.source.is_some() || self.source_port.is_some()) {
            return Err("-s/-p set the source of a client; with -l give the address as [ADDR] PORT".into());
        }
        if let Some(s) = &self.source {
            if (self.ipv4 && s.is_ipv6()) || (self.ipv6 && s.is_ipv4()) {
                return Err(format!("-s {s} does not match the address family chosen by -4/-6"));
            }
        }
        if (self.exec.is_some() || self.sh_exec.is_some()) && (self.send_only || self.recv_only) {
            return Err("-e/-c give the connection to a program: --send-only/--recv-only do not apply".into());
        }
        if self.abort && self.no_shutdown {
            return Err("--abort and --no-shutdown contradict each other".into());
        }
        let stack = self.stack_kind();
        if stack == StackKind::Kernel && self.fastopen_cache.is_some() {
            return Err("--fastopen-cache is for --stack embedded (the kernel keeps its own cookies)".into());
        }
        if stack == StackKind::Kernel && self.tun.is_some() {
            return Err("--tun is for --stack embedded".into());
        }
        if stack == StackKind::Kernel && self.no_tun_offload {
            return Err("--no-tun-offload is for --stack embedded".into());
        }
        if stack == StackKind::Kernel && self.pcap.is_some() {
            return Err("--pcap records the embedded stack's packets; for the kernel stack use tcpdump".into());
        }
        if stack == StackKind::Embedded {
            if self.local.is_empty() {
                return Err("--stack embedded needs at least one --local ADDR/PREFIX".into());
            }
            if let Some(l) = self.local.iter().find(|l| l.prefix.is_none()) {
                return Err(format!("--local {}: the embedded stack needs a prefix (e.g. {}/24)", l.addr, l.addr));
            }
        }
        Ok(())
    }
}

impl CatArgs {
    /// The ncat session rules of this command line.
    pub fn session_rules(&self, stdin_tty: bool) -> crate::session::Rules {
        crate::session::Rules {
            keep_open: self.keep_open,
            send_only: self.send_only,
            recv_only: self.recv_only,
            no_shutdown: self.no_shutdown,
            abort: self.abort,
            idle_timeout: self.idle_timeout,
            stdin_tty,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<CatArgs, clap::Error> {
        CatArgs::try_parse_from(std::iter::once("mptcp-cat").chain(args.iter().copied()))
    }

    #[test]
    fn local_specs() {
        let l = LocalSpec::parse("10.200.0.2/24,subflow,backup,port=4000").unwrap();
        assert_eq!(l.addr, "10.200.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(l.prefix, Some(24));
        assert!(l.flags.subflow && l.flags.backup && !l.flags.signal);
        assert_eq!(l.port, Some(4000));
        assert_eq!(l.first_host(), Some("10.200.0.1".parse().unwrap()));
        let l6 = LocalSpec::parse("2001:db8::5/64,signal").unwrap();
        assert_eq!(l6.first_host(), Some("2001:db8::1".parse().unwrap()));
        assert!(LocalSpec::parse("10.0.0.1/33").is_err());
        assert!(LocalSpec::parse("10.0.0.1,bogus").unwrap_err().contains("bogus"));
        assert!(LocalSpec::parse("nope").is_err());
        assert_eq!(LocalSpec::parse("10.0.0.9").unwrap().first_host(), None);
    }

    #[test]
    fn limits_and_durations() {
        assert_eq!(Limits::parse("2").unwrap(), Limits { subflows: 2, add_addr_accepted: None });
        assert_eq!(Limits::parse("4,2").unwrap(), Limits { subflows: 4, add_addr_accepted: Some(2) });
        assert!(Limits::parse("9").is_err());
        assert!(Limits::parse("1,2,3").is_err());
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn targets() {
        let a = parse(&["-v", "10.0.0.2", "5000"]).unwrap();
        assert_eq!(a.target().unwrap(), Target::Connect { host: "10.0.0.2".into(), port: 5000 });
        assert_eq!(a.stack_kind(), StackKind::Kernel);
        let a = parse(&["-l", "-k", "5000"]).unwrap();
        assert_eq!(a.target().unwrap(), Target::Listen { addr: None, port: 5000 });
        let a = parse(&["-l", "127.0.0.1", "5000"]).unwrap();
        assert_eq!(a.target().unwrap(), Target::Listen { addr: Some("127.0.0.1".into()), port: 5000 });
        assert!(parse(&["10.0.0.2"]).unwrap().target().is_err());
        assert!(parse(&["host", "http"]).unwrap().target().is_err());
        assert!(parse(&["--send-only", "--recv-only", "h", "1"]).is_err());
        assert!(parse(&["-4", "-6", "h", "1"]).is_err());
        let a = parse(&["--tun", "t0", "--local", "10.1.0.2/24", "h", "1"]).unwrap();
        assert_eq!(a.stack_kind(), StackKind::Embedded);
        assert!(a.validate().is_ok());
        assert!(parse(&["-k", "h", "1"]).unwrap().validate().is_err());
        assert!(parse(&["--stack", "embedded", "h", "1"]).unwrap().validate().is_err());
        assert!(parse(&["--stack", "embedded", "--local", "10.0.0.1", "h", "1"]).unwrap().validate().is_err());
        let a = parse(&["--local", "10.0.1.1/24", "--local", "10.0.2.1,backup", "--limits", "2,1", "h", "1"]).unwrap();
        assert_eq!(a.local.len(), 2);
        assert_eq!(a.limits, Some(Limits { subflows: 2, add_addr_accepted: Some(1) }));
    }
}
