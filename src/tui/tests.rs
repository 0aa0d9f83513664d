//! Rendering checked against expected screens (ratatui TestBackend).
use std::time::Duration;

use crossterm::event::KeyCode;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::app::App;
use super::app::tests::{key, update};
use super::text::tests::client_snapshot;
use crate::control::ControlEvent;
use crate::diag::{LogEvent, Note, Update};

fn screen(app: &App, w: u16, h: u16) -> Vec<String> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| f.render_widget(app, f.area())).unwrap();
    let buf = t.backend().buffer().clone();
    (0..h)
        .map(|y| (0..w).map(|x| buf[(x, y)].symbol().to_string()).collect::<String>().trim_end().to_string())
        .collect()
}

fn client_app() -> App {
    let mut app = App::new(Duration::from_secs(1));
    let mut u = update(client_snapshot().connections);
    u.notes = vec![Note::warn("kernel events", "path-manager events need CAP_NET_ADMIN (run as root)")];
    u.events = vec![LogEvent {
        at: Duration::from_millis(1500),
        source: "kernel".into(),
        event: ControlEvent {
            kind: "sub_established".into(),
            token: Some("0xf4558206".into()),
            local: Some("10.77.2.1:53087".into()),
            remote: Some("10.77.1.2:10000".into()),
            id_loc: Some(2),
            id_rem: Some(0),
            backup: Some(false),
            ..Default::default()
        },
    }];
    app.ingest(u, Duration::ZERO);
    app
}

fn dump(lines: &[String]) -> String {
    lines.join("\n")
}

#[test]
fn full_screen() {
    let s = screen(&client_app(), 160, 22);
    let want: [&str; 22] = [
        " mptcp-ss  1 connection | every 1s | sort: source | ? help",
        "! kernel events: path-manager events need CAP_NET_ADMIN (run as root)",
        &format!("┏ Connections {}┓", "━".repeat(145)),
        "┃Source State      Local           Remote          Token    Subflows Fallback Send       Recv                                                                  ┃",
        "┃kernel ESTAB      10.77.1.1:49122 10.77.1.2:10000 f4558206 1/2      no       0          0                                                                     ┃",
        &format!("┗{}┛", "━".repeat(158)),
        "┌ Subflows of 10.77.1.1:49122 f4558206 ────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────┐",
        "│Local           Remote          State      Ids   Flags  Tokens rem/loc    Seq              Sfseq    Ssnoff   Maplen Cwnd  RTT       Sent     Recv     Share   │",
        "│10.77.1.1:49122 10.77.1.2:10000 ESTAB      0/0   Mmec   0000/f4558206     8a030cc9cb1ce209 1        f8bae334 0      34    0.144ms   49.2kB   -        50%     │",
        "│10.77.2.1:53087 10.77.1.2:10000 ESTAB      2/0   Jjec   c059bd1d/f4558206 8a030cc9cb1ce209 0        d3961704 0      34    0.411ms   49.2kB   -        50%     │",
        "└──────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────┘",
        "┌ Subflow rates ───────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────┐",
        "│10.77.1.1:49122 0                                                                                                                                             │",
        "│10.77.2.1:53087 0                                                                                                                                             │",
        "└──────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────┘",
        "┌ Events (1) ──────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────┐",
        "│+1.500s kernel         sub_established  0xf4558206 10.77.2.1:53087 -> 10.77.1.2:10000 ids 2/0                                                                 │",
        "│                                                                                                                                                              │",
        "│                                                                                                                                                              │",
        "│                                                                                                                                                              │",
        "└──────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────┘",
        " q quit  ? help  jk/arrows move  Tab pane  Enter details  / filter  s sort  p pause",
    ];
    assert_eq!(s, want, "got:\n{}", dump(&s));
}

#[test]
fn narrow_terminal_keeps_the_key_columns() {
    let s = screen(&client_app(), 80, 24);
    let at = |i: usize| s[i].as_str();
    assert_eq!(
        at(3),
        "┃State      Local           Remote          Token    Subflows Send             ┃",
        "{}",
        dump(&s)
    );
    assert_eq!(at(7), "│Local           Remote          Ids   Flags  Tokens rem/loc    Ssnoff   Share │");
    assert_eq!(at(9), "│10.77.2.1:53087 10.77.1.2:10000 2/0   Jjec   c059bd1d/f4558206 d3961704 50%   │");
}

#[test]
fn empty_view_says_so() {
    let mut app = App::new(Duration::from_millis(500));
    app.ingest(
        Update {
            snapshot: Some(Default::default()),
            notes: vec![Note::warn("kernel", "not CAP_NET_ADMIN: the kernel withholds subflow seq")],
            ..Default::default()
        },
        Duration::ZERO,
    );
    let s = screen(&app, 100, 20);
    assert_eq!(s[0], " mptcp-ss  0 connections | every 0.5s | sort: source | ? help");
    assert_eq!(s[1], "! kernel: not CAP_NET_ADMIN: the kernel withholds subflow seq");
    assert!(s[3].starts_with("┃no MPTCP connections"), "{}", dump(&s));
    assert!(s.iter().any(|l| l.starts_with("│no events yet")));
}

#[test]
fn help_overlay_spells_out_the_flags() {
    let mut app = client_app();
    app.on_key(key(KeyCode::Char('?')));
    let s = dump(&screen(&app, 120, 40));
    for want in [
        " Help ",
        "q              quit",
        "M  the peer sent MP_CAPABLE",
        "j  we sent MP_JOIN",
        "b  we marked this subflow backup",
        "e  fully established (the peer's key or HMAC was confirmed)",
        "v  the current DSS mapping is valid",
    ] {
        assert!(s.contains(want), "missing {want:?} in\n{s}");
    }
    app.on_key(key(KeyCode::Esc));
    assert!(!dump(&screen(&app, 120, 40)).contains(" Help "));
}

#[test]
fn details_show_every_ss_field() {
    let mut app = client_app();
    app.on_key(key(KeyCode::Enter));
    let s = dump(&screen(&app, 200, 40));
    assert!(s.contains(" Details (Esc closes) "), "{s}");
    assert!(s.contains("mptcp ESTAB 10.77.1.1:49122 -> 10.77.1.2:10000  (kernel)"), "{s}");
    assert!(s.contains("subflows:1 subflows_max:2 remote_key token:f4558206 write_seq:f1bd89048a0dfeb2"), "{s}");
    assert!(
        s.contains("tcp-ulp-mptcp flags:Jjec token:c059bd1d(id:0)/f4558206(id:2) seq:8a030cc9cb1ce209 sfseq:0 ssnoff:d3961704 maplen:0"),
        "{s}"
    );
}

#[test]
fn filter_and_pause_show_in_the_title() {
    let mut app = client_app();
    for k in [KeyCode::Char('/'), KeyCode::Char('z'), KeyCode::Char('z')] {
        app.on_key(key(k));
    }
    let s = screen(&app, 100, 20);
    assert_eq!(s[19], " filter: zz_   Enter keeps it, Esc cancels");
    assert!(s[3].starts_with("┃no connection matches the filter"), "{}", dump(&s));
    app.on_key(key(KeyCode::Enter));
    app.on_key(key(KeyCode::Char('p')));
    let s = screen(&app, 100, 20);
    assert_eq!(s[0], " mptcp-ss  1 connection (0 shown) | every 1s | sort: source | filter: zz | PAUSED | ? help");
}

#[test]
fn sparklines_follow_the_rates() {
    let mut app = App::new(Duration::from_secs(1));
    let mut snap = client_snapshot();
    let step = |snap: &mut crate::snapshot::Snapshot, a: u64, b: u64| {
        let c = &mut snap.connections[0];
        c.subflows[0].bytes_sent = Some(a);
        c.subflows[1].bytes_sent = Some(b);
        c.bytes_sent = Some(a + b);
    };
    for (i, (a, b)) in [(0, 0), (1000, 0), (2000, 8000), (3000, 16000)].into_iter().enumerate() {
        step(&mut snap, a, b);
        app.ingest(update(snap.connections.clone()), Duration::from_secs(i as u64));
    }
    let s = screen(&app, 100, 30);
    let rates: Vec<&String> = s.iter().filter(|l| l.starts_with("│10.77.")).skip(2).collect();
    assert_eq!(rates.len(), 2, "{}", dump(&s));
    // The first subflow: a steady 1 kB/s, a bar at every sample but the first.
    assert!(rates[0].starts_with("│10.77.1.1:49122 1.0kB/s"), "{}", dump(&s));
    // The second: nothing, nothing, then 8 kB/s twice: full bars at the end.
    assert!(rates[1].starts_with("│10.77.2.1:53087 8.0kB/s"), "{}", dump(&s));
    let bars = |l: &str| l.chars().skip(31).take(4).collect::<String>();
    assert_eq!(bars(rates[1]), "  ██", "{}", dump(&s));
    assert_eq!(bars(rates[0]).chars().filter(|c| *c != ' ').count(), 3, "{}", dump(&s));
    assert!(s[3].contains("9.0kB/s"), "connection send rate: {}", dump(&s));
}

#[test]
fn tiny_terminals_do_not_panic() {
    let mut app = client_app();
    for (w, h) in [(1, 1), (10, 5), (30, 8), (200, 6), (5, 100)] {
        screen(&app, w, h);
        app.on_key(key(KeyCode::Char('?')));
        screen(&app, w, h);
        app.on_key(key(KeyCode::Enter));
        app.on_key(key(KeyCode::Enter));
        screen(&app, w, h);
        app.on_key(key(KeyCode::Esc));
    }
}

/// A connection and an event whose text carries escape sequences, a C1
/// control and a right-to-left override, as a hostile source would send.
fn hostile_app() -> App {
    let mut app = App::new(Duration::from_secs(1));
    let mut snap = client_snapshot();
    let c = &mut snap.connections[0];
    c.source = "embedded:7\u{1b}[2J".into();
    c.state = "ESTAB\u{1b}[31m".into();
    c.local = "10.77.1.1:49122\u{202e}".into();
    c.fallback_reason = Some("\u{1b}]0;pwned\u{7}".into());
    c.subflows[0].flags = "Mm\u{9b}".into();
    let mut u = update(snap.connections);
    u.notes = vec![Note::warn("embedded", "control socket x: the server refused: \u{1b}[5mblink")];
    u.events = vec![LogEvent {
        at: Duration::ZERO,
        source: "embedded:7".into(),
        event: ControlEvent { kind: "created\u{1b}[K".into(), reason: Some("a\nb".into()), ..Default::default() },
    }];
    app.ingest(u, Duration::ZERO);
    app
}

#[test]
fn text_from_sources_is_shown_escaped() {
    let mut app = hostile_app();
    let s = dump(&screen(&app, 200, 30));
    for want in [
        "! embedded: control socket x: the server refused: \\x1b[5mblink",
        // Fixed-width columns cut the escaped text, as any other.
        "embedded:7\\x1b[2J ESTAB\\x1b[ 10.77.1.1:49122\\u{202e} 10.77.1.2:10000",
        "Subflows of 10.77.1.1:49122\\u{202e} f4558206",
        "ESTAB      0/0   Mm\\u{0 0000/f4558206",
        "embedded:7     created\\x1b[K",
        "(a\\nb)",
    ] {
        assert!(s.contains(want), "missing {want:?} in\n{s}");
    }
    app.on_key(key(KeyCode::Enter));
    let s = dump(&screen(&app, 200, 30));
    assert!(
        s.contains("mptcp ESTAB\\x1b[31m 10.77.1.1:49122\\u{202e} -> 10.77.1.2:10000  (embedded:7\\x1b[2J)"),
        "{s}"
    );
    assert!(s.contains("fallback_reason:\"\\x1b]0;pwned\\x07\""), "{s}");
    assert!(!s.chars().any(|c| crate::tui::escape::is_unsafe(c) && c != '\n'), "{s:?}");
}

#[test]
fn once_text_and_event_lines_are_escaped() {
    let mut snap = client_snapshot();
    snap.connections[0].state = "ESTAB\u{1b}[31m".into();
    snap.connections[0].subflows[1].state = Some("ESTAB\r\n`-tcp FAKE".into());
    let mut out = String::new();
    super::text::write_snapshot(&snap, &mut out);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 7, "a line from a source stays one line:\n{out}");
    assert!(lines[1].starts_with("mptcp ESTAB\\x1b[31m "), "{out}");
    assert!(lines[5].starts_with("`-tcp ESTAB\\r\\n`-tcp FAKE "), "{out}");
    assert!(!out.chars().any(|c| crate::tui::escape::is_unsafe(c) && c != '\n' && c != '\t'), "{out:?}");
    let e = LogEvent {
        at: Duration::from_millis(1500),
        source: "embedded:7".into(),
        event: ControlEvent {
            kind: "sub_closed".into(),
            reason: Some("\u{1b}[1A\u{1b}[2Kfake line".into()),
            ..Default::default()
        },
    };
    assert_eq!(super::view::event_text(&e), "+1.500s embedded:7     sub_closed       (\\x1b[1A\\x1b[2Kfake line)");
}
