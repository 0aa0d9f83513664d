use super::gather::mptcp_rules;
use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn addr(a: &str, iface: &str) -> Address {
    Address { addr: ip(a), iface: iface.into(), up: true, loopback: false }
}

fn ep(id: u8, a: &str, flags: u32) -> Endpoint {
    Endpoint { id, addr: ip(a), port: None, flags, ifindex: None }
}

fn conn(outgoing: bool, subflows: u8, fallback: bool) -> Connection {
    Connection {
        local: (ip("10.0.1.1"), if outgoing { 40000 } else { 80 }),
        remote: (ip("10.0.1.2"), if outgoing { 80 } else { 40000 }),
        fallback,
        subflows,
        outgoing,
    }
}

/// A client with two paths set up as it should be: two interfaces, a
/// subflow endpoint on the second, limits that allow it and the server's
/// announcements, loose rp_filter, one connection using both paths.
fn good_client() -> Host {
    Host {
        support: Some(MptcpSupport::Enabled { on: true, pm_type: 0 }),
        limits: Some((2, 2)),
        endpoints: vec![ep(1, "10.0.2.1", flag::SUBFLOW)],
        addresses: vec![addr("10.0.1.1", "eth0"), addr("10.0.2.1", "eth1")],
        routes: vec![RouteCheck { from: ip("10.0.2.1"), to: ip("10.0.1.2"), result: Ok("eth1".into()) }],
        rp_filter_all: 0,
        rp_filter: vec![("eth0".into(), 2), ("eth1".into(), 2)],
        listeners: vec![],
        connections: vec![conn(true, 1, false)],
        userspace_pm: false,
        firewall: vec![],
        ports: vec![],
    }
}

/// A server announcing its second address.
fn good_server() -> Host {
    Host {
        endpoints: vec![ep(1, "10.0.2.2", flag::SIGNAL)],
        addresses: vec![addr("10.0.1.2", "eth0"), addr("10.0.2.2", "eth1")],
        routes: vec![],
        listeners: vec![Listener { addr: ip("0.0.0.0"), port: 80, mptcp: true }],
        connections: vec![conn(false, 1, false)],
        ports: vec![80],
        ..good_client()
    }
}

fn codes(h: &Host) -> Vec<&'static str> {
    check(h).iter().map(|f| f.code).collect()
}

#[test]
fn correct_setups_have_no_finding() {
    assert_eq!(check(&good_client()), vec![]);
    assert_eq!(check(&good_server()), vec![]);
}

#[test]
fn kernel_without_mptcp_or_disabled() {
    let h = Host { support: Some(MptcpSupport::Absent), ..good_client() };
    assert_eq!(codes(&h), ["mptcp-missing"]);
    let h = Host { support: Some(MptcpSupport::Enabled { on: false, pm_type: 0 }), ..good_client() };
    let f = check(&h);
    assert_eq!(f[0].code, "mptcp-disabled");
    assert_eq!(f[0].fix, "sysctl -w net.mptcp.enabled=1");
}

#[test]
fn userspace_pm_without_a_daemon() {
    let mut h = Host { support: Some(MptcpSupport::Enabled { on: true, pm_type: 1 }), ..good_client() };
    assert_eq!(codes(&h), ["userspace-pm-missing"]);
    h.userspace_pm = true;
    assert_eq!(codes(&h), Vec::<&str>::new());
}

#[test]
fn limits_that_cannot_serve_the_endpoints() {
    let h = Host { limits: Some((0, 2)), ..good_client() };
    let f = check(&h);
    assert_eq!(f[0].code, "subflow-limit-zero");
    assert_eq!(f[0].fix, "ip mptcp limits set subflow 1 add_addr_accepted 2");

    let mut h = good_client();
    h.endpoints.push(ep(2, "10.0.3.1", flag::SUBFLOW));
    h.addresses.push(addr("10.0.3.1", "eth2"));
    h.limits = Some((1, 2));
    h.connections[0].subflows = 1;
    let f = check(&h);
    assert_eq!(codes(&h), ["subflow-limit-low"]);
    assert!(f[0].problem.contains("the last 1 are never used"), "{}", f[0].problem);

    let h = Host { limits: Some((2, 0)), ..good_client() };
    assert_eq!(codes(&h), ["add-addr-accepted-zero"]);
    // A server does not need to accept announcements.
    let h = Host { limits: Some((2, 0)), ..good_server() };
    assert_eq!(codes(&h), Vec::<&str>::new());

    let mut h = Host { limits: Some((1, 2)), ..good_client() };
    h.endpoints[0].flags = flag::SUBFLOW | flag::FULLMESH;
    assert_eq!(codes(&h), ["fullmesh-limit"]);
}

#[test]
fn endpoints_that_do_nothing_or_the_wrong_thing() {
    let mut h = good_client();
    h.endpoints[0].flags = flag::BACKUP;
    let f = check(&h);
    assert_eq!(f[0].code, "endpoint-no-flag");
    assert!(f[0].fix.starts_with("ip mptcp endpoint del id 1;"), "{}", f[0].fix);

    // signal on a client: swapped flags.
    let mut h = good_client();
    h.endpoints[0].flags = flag::SIGNAL;
    assert!(codes(&h).contains(&"signal-without-listener"), "{:?}", codes(&h));
    // subflow on a server: swapped the other way.
    let mut h = good_server();
    h.endpoints[0].flags = flag::SUBFLOW;
    assert_eq!(codes(&h), ["subflow-on-server"]);
    // A port endpoint with nothing on its port.
    let mut h = good_server();
    h.endpoints[0].port = Some(8080);
    assert_eq!(codes(&h), ["port-endpoint-unserved"]);
    h.listeners.push(Listener { addr: ip("10.0.2.2"), port: 8080, mptcp: true });
    assert_eq!(codes(&h), Vec::<&str>::new());
    // The kernel's listener for a port endpoint is not an application's.
    h.listeners.remove(0);
    h.connections.clear();
    h.ports.clear();
    assert_eq!(codes(&h), ["signal-without-listener"]);
}

#[test]
fn addresses_interfaces_and_routes() {
    let mut h = good_client();
    h.addresses.retain(|a| a.iface != "eth1");
    h.routes.clear();
    assert_eq!(codes(&h), ["endpoint-address-missing"]);

    let mut h = good_client();
    h.addresses[1].up = false;
    let f = check(&h);
    assert_eq!(f[0].code, "endpoint-interface-down");
    assert_eq!(f[0].fix, "ip link set eth1 up");

    let mut h = good_client();
    h.routes[0].result = Err("Network is unreachable".into());
    assert_eq!(codes(&h), ["endpoint-no-route"]);
    h.routes[0].result = Ok("eth0".into());
    let f = check(&h);
    assert_eq!(f[0].code, "endpoint-wrong-route");
    assert!(f[0].problem.contains("leave through eth0, not through eth1"), "{}", f[0].problem);
    assert!(f[0].fix.contains("ip rule add from 10.0.2.1 table 100"), "{}", f[0].fix);
}

#[test]
fn strict_rp_filter_on_a_multi_homed_host() {
    // The kernel takes the larger of conf/all and conf/IFACE: 2 (loose) wins.
    let mut h = Host { rp_filter_all: 1, ..good_client() };
    assert_eq!(codes(&h), Vec::<&str>::new());
    h.rp_filter.iter_mut().for_each(|r| r.1 = 0);
    assert_eq!(codes(&h), ["rp-filter-strict", "rp-filter-strict"]);
    let mut h = good_client();
    h.rp_filter[1].1 = 1;
    let f = check(&h);
    assert_eq!(codes(&h), ["rp-filter-strict"]);
    assert!(f[0].problem.contains("on eth1"));
    // One interface: nothing to filter between.
    let mut h = Host { rp_filter_all: 1, ..good_client() };
    h.addresses.truncate(1);
    h.endpoints.clear();
    h.routes.clear();
    assert_eq!(codes(&h), Vec::<&str>::new());
}

#[test]
fn live_state() {
    let mut h = good_client();
    h.connections[0].fallback = true;
    assert_eq!(codes(&h), ["connection-fallback"]);

    let mut h = good_client();
    h.connections[0].subflows = 0;
    let f = check(&h);
    assert_eq!(codes(&h), ["connection-few-subflows"]);
    assert!(f[0].problem.contains("has 0 additional subflow(s) where the endpoints and limits allow 1"));

    let mut h = good_server();
    h.listeners[0].mptcp = false;
    h.connections.clear();
    // The signal endpoint now has no MPTCP listener either.
    assert_eq!(codes(&h), ["signal-without-listener", "listener-not-mptcp"]);
    h.ports = vec![81];
    assert!(codes(&h).contains(&"port-not-listening"));
}

#[test]
fn firewall_rules_that_drop_or_strip_option_30() {
    let nft = "table inet filter {\n\tchain input {\n\t\ttcp option mptcp exists drop\n\t\ttcp dport 22 accept\n\t}\n}";
    assert_eq!(mptcp_rules(nft), ["tcp option mptcp exists drop"]);
    let ipt = "*mangle\n-A FORWARD -p tcp -j TCPOPTSTRIP --strip-options 30\n-A INPUT -p tcp --dport 80 -j ACCEPT\n\
               *filter\n-A INPUT -p tcp -m tcp --tcp-option 30 -j DROP\n-A INPUT -p tcp -j TCPOPTSTRIP --strip-options 8";
    assert_eq!(
        mptcp_rules(ipt),
        ["-A FORWARD -p tcp -j TCPOPTSTRIP --strip-options 30", "-A INPUT -p tcp -m tcp --tcp-option 30 -j DROP"]
    );
    let h = Host { firewall: mptcp_rules(nft), ..good_client() };
    assert_eq!(codes(&h), ["firewall-drops-mptcp"]);
}

#[test]
fn text_output() {
    let mut out = Vec::new();
    write_text(&mut out, &[]).unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), "no problem found\n");
    let mut out = Vec::new();
    write_text(&mut out, &check(&Host { limits: Some((2, 0)), ..good_client() })).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "problem: add_addr_accepted is 0 on a host that opens connections: every address a server announces \
         (ADD_ADDR) is ignored and no subflow goes to it\n    fix: ip mptcp limits set subflow 2 add_addr_accepted 2\n"
    );
}
