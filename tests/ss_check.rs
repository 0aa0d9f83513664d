//! `mptcp-ss --check` against the kernel: each misconfiguration people report
//! is built in a namespace of its own, and the doctor must name it (and
//! nothing else); a correct two-path client and server, with a live
//! connection using both paths, yield no finding.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Child;
use std::time::Duration;

use common::{NetNs, bin, interop_opted_out, require_interop, wait_until};

/// A client and a server namespace joined by two links:
/// c1 10.1.1.1 <-> s1 10.1.1.2 and c2 10.1.2.1 <-> s2 10.1.2.2.
struct TwoPaths {
    cli: NetNs,
    srv: NetNs,
}

fn two_paths(tag: &str) -> TwoPaths {
    let cli = NetNs::new(&format!("chk{tag}c"));
    let srv = NetNs::new(&format!("chk{tag}s"));
    NetNs::veth(&cli, "c1", "10.1.1.1/24", &srv, "s1", "10.1.1.2/24");
    NetNs::veth(&cli, "c2", "10.1.2.1/24", &srv, "s2", "10.1.2.2/24");
    TwoPaths { cli, srv }
}

/// The client as it should be: a subflow endpoint on its second address,
/// limits that allow it and the server's announcements, and a route that
/// sends packets from that address out of its own link.
const GOOD_CLIENT: &str = "ip mptcp limits set subflow 2 add_addr_accepted 2; \
     ip mptcp endpoint add 10.1.2.1 dev c2 subflow; \
     ip rule add from 10.1.2.1 table 102; ip route add 10.1.1.0/24 via 10.1.2.2 dev c2 table 102";
/// The server as it should be: it announces its second address.
const GOOD_SERVER: &str = "ip mptcp limits set subflow 2 add_addr_accepted 0; \
     ip mptcp endpoint add 10.1.2.2 dev s2 signal";

fn sock_py() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/check/sock.py")
}

/// A socket process, killed and reaped when dropped.
struct Held(Child);

impl Drop for Held {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start tests/check/sock.py in `ns` and wait for its "ready" line.
fn sock(ns: &NetNs, args: &[&str]) -> Held {
    let py = sock_py();
    let mut all = vec![py.to_str().unwrap()];
    all.extend_from_slice(args);
    let mut child = ns.spawn("python3", &all);
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    if line.trim() != "ready" {
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        panic!("sock.py {args:?} in {} did not start: {}", ns.name, String::from_utf8_lossy(&out.stderr));
    }
    Held(child)
}

/// The doctor's finding codes in `ns`, checking that the exit status says
/// whether there were any, and that every finding has a fix.
fn check(ns: &NetNs, extra: &[&str]) -> Vec<String> {
    let out = ns.cmd(bin("mptcp-ss")).args(["--check", "--json"]).args(extra).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let v: serde_json::Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("--check --json: {e}: {stdout:?} {stderr}"));
    let list = v.as_array().expect("a list of findings");
    for f in list {
        assert!(f["problem"].as_str().is_some_and(|s| !s.is_empty()), "{f}");
        assert!(f["fix"].as_str().is_some_and(|s| !s.is_empty()), "{f}");
    }
    assert_eq!(out.status.code(), Some(if list.is_empty() { 0 } else { 1 }), "{stdout}{stderr}");
    list.iter().map(|f| f["code"].as_str().unwrap().to_string()).collect()
}

fn setup() -> bool {
    if interop_opted_out("ss_check") {
        return false;
    }
    require_interop(&["python3", "nft"]);
    true
}

#[test]
fn a_correct_two_path_setup_has_no_finding() {
    if !setup() {
        return;
    }
    let t = two_paths("ok");
    t.cli.sh(GOOD_CLIENT);
    t.srv.sh(GOOD_SERVER);
    let _server = sock(&t.srv, &["listen", "mptcp", "0.0.0.0", "5000"]);
    assert_eq!(check(&t.srv, &["--port", "5000"]), Vec::<String>::new());
    let _client = sock(&t.cli, &["connect", "mptcp", "10.1.1.2", "5000"]);
    // The second path joins: the server has taken the join's last ACK.
    wait_until("the join on the second path", Duration::from_secs(10), || {
        t.srv.mptcp_mib().get("MPTcpExtMPJoinAckRx").copied() >= Some(1)
    });
    assert_eq!(check(&t.cli, &[]), Vec::<String>::new());
    assert_eq!(check(&t.srv, &["--port", "5000"]), Vec::<String>::new());
    // The text form says so too.
    let out = t.cli.cmd(bin("mptcp-ss")).arg("--check").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "no problem found\n");
}

/// Each case: shell lines for the client namespace (on top of two links and,
/// unless it says otherwise, the good client's setup), the doctor's extra
/// arguments, and the findings expected.
struct Case {
    name: &'static str,
    good_client: bool,
    cli: &'static str,
    args: &'static [&'static str],
    expect: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        name: "mptcp disabled",
        good_client: true,
        cli: "sysctl -qw net.mptcp.enabled=0",
        args: &[],
        expect: &["mptcp-disabled"],
    },
    Case {
        name: "userspace PM without a daemon",
        good_client: true,
        cli: "sysctl -qw net.mptcp.pm_type=1",
        args: &[],
        expect: &["userspace-pm-missing"],
    },
    Case {
        name: "subflow limit 0",
        good_client: true,
        cli: "ip mptcp limits set subflow 0 add_addr_accepted 2",
        args: &[],
        expect: &["subflow-limit-zero"],
    },
    Case {
        name: "fewer subflows allowed than endpoints",
        good_client: true,
        cli: "ip mptcp limits set subflow 1 add_addr_accepted 2; ip addr add 10.1.3.1/24 dev c2; \
              ip mptcp endpoint add 10.1.3.1 dev c2 subflow",
        args: &[],
        expect: &["subflow-limit-low"],
    },
    Case {
        name: "a client that ignores announcements",
        good_client: true,
        cli: "ip mptcp limits set subflow 2 add_addr_accepted 0",
        args: &[],
        expect: &["add-addr-accepted-zero"],
    },
    Case {
        name: "fullmesh with room for one subflow",
        good_client: false,
        cli: "ip mptcp limits set subflow 1 add_addr_accepted 2; ip mptcp endpoint add 10.1.2.1 dev c2 subflow fullmesh; \
              ip rule add from 10.1.2.1 table 102; ip route add 10.1.1.0/24 via 10.1.2.2 dev c2 table 102",
        args: &[],
        expect: &["fullmesh-limit"],
    },
    Case {
        name: "an endpoint without a flag",
        good_client: false,
        cli: "ip mptcp limits set subflow 2 add_addr_accepted 2; ip mptcp endpoint add 10.1.2.1 dev c2",
        args: &[],
        expect: &["endpoint-no-flag"],
    },
    Case {
        name: "signal instead of subflow on a client",
        good_client: false,
        cli: "ip mptcp limits set subflow 2 add_addr_accepted 2; ip mptcp endpoint add 10.1.2.1 dev c2 signal",
        args: &[],
        expect: &["signal-without-listener"],
    },
    Case {
        name: "an endpoint whose address is gone",
        good_client: true,
        cli: "ip addr del 10.1.2.1/24 dev c2",
        args: &[],
        expect: &["endpoint-address-missing"],
    },
    Case {
        name: "an endpoint whose interface is down",
        good_client: true,
        cli: "ip link set c2 down",
        args: &[],
        expect: &["endpoint-interface-down"],
    },
    Case {
        name: "no route from the endpoint to the peer",
        good_client: false,
        cli: "ip mptcp limits set subflow 2 add_addr_accepted 2; ip mptcp endpoint add 10.1.2.1 dev c2 subflow",
        args: &["--peer", "203.0.113.9"],
        expect: &["endpoint-no-route"],
    },
    Case {
        name: "the endpoint's packets leave through the other link",
        good_client: false,
        cli: "ip mptcp limits set subflow 2 add_addr_accepted 2; ip mptcp endpoint add 10.1.2.1 dev c2 subflow; \
              ip route add default via 10.1.1.2 dev c1",
        args: &[],
        expect: &["endpoint-wrong-route"],
    },
    Case {
        name: "strict rp_filter on a multi-homed host",
        good_client: true,
        cli: "sysctl -qw net.ipv4.conf.all.rp_filter=1",
        args: &[],
        expect: &["rp-filter-strict", "rp-filter-strict"],
    },
    Case {
        name: "a firewall that drops MPTCP",
        good_client: true,
        cli: "nft add table inet t; nft add chain inet t c '{ type filter hook input priority 0; }'; \
              nft add rule inet t c tcp option mptcp exists drop",
        args: &[],
        expect: &["firewall-drops-mptcp"],
    },
];

#[test]
fn each_misconfiguration_is_found_in_its_own_namespace() {
    if !setup() {
        return;
    }
    let mut failures = Vec::new();
    for (i, c) in CASES.iter().enumerate() {
        let t = two_paths(&format!("m{i}"));
        if c.good_client {
            t.cli.sh(GOOD_CLIENT);
        }
        t.cli.sh(c.cli);
        let got = check(&t.cli, c.args);
        if got != c.expect {
            failures.push(format!("{}: expected {:?}, found {got:?}", c.name, c.expect));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn server_side_mistakes() {
    if !setup() {
        return;
    }
    // A subflow endpoint on a host that only listens.
    let t = two_paths("sv1");
    t.srv.sh("ip mptcp endpoint add 10.1.2.2 dev s2 subflow");
    let l = sock(&t.srv, &["listen", "mptcp", "0.0.0.0", "5000"]);
    assert_eq!(check(&t.srv, &[]), ["subflow-on-server"]);
    drop(l);
    // A plain TCP server on the port that should speak MPTCP, and a port
    // nothing listens on.
    let t = two_paths("sv2");
    t.srv.sh(GOOD_SERVER);
    let _a = sock(&t.srv, &["listen", "mptcp", "0.0.0.0", "5000"]);
    let _b = sock(&t.srv, &["listen", "tcp", "0.0.0.0", "5001"]);
    assert_eq!(
        check(&t.srv, &["--port", "5000", "--port", "5001", "--port", "5002"]),
        ["listener-not-mptcp", "port-not-listening"]
    );
}

#[test]
fn live_connections_that_fell_back_or_lack_subflows() {
    if !setup() {
        return;
    }
    // An MPTCP client of a plain TCP server falls back.
    let t = two_paths("lv1");
    t.cli.sh(GOOD_CLIENT);
    let _server = sock(&t.srv, &["listen", "tcp", "0.0.0.0", "5000"]);
    let _client = sock(&t.cli, &["connect", "mptcp", "10.1.1.2", "5000"]);
    assert_eq!(check(&t.cli, &[]), ["connection-fallback"]);

    // The server's subflow limit 0 refuses the join the client's endpoint
    // asks for: the connection keeps one path.
    let t = two_paths("lv2");
    t.cli.sh(GOOD_CLIENT);
    t.srv.sh("ip mptcp limits set subflow 0 add_addr_accepted 0");
    let _server = sock(&t.srv, &["listen", "mptcp", "0.0.0.0", "5000"]);
    let _client = sock(&t.cli, &["connect", "mptcp", "10.1.1.2", "5000"]);
    wait_until("the refused join", Duration::from_secs(10), || {
        t.srv.mptcp_mib().get("MPTcpExtMPJoinSynRx").copied() >= Some(1)
            && t.cli.sh("ss -Hnt state syn-sent").trim().is_empty()
    });
    assert_eq!(check(&t.cli, &[]), ["connection-few-subflows"]);
}
