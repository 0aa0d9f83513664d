//! The view's state and its key handling, apart from any terminal: the run
//! loop feeds [`App::ingest`] with what the sources brought and the time
//! since start, hands keys to [`App::on_key`], and draws the app (see
//! [`super::view`]). Rates come from the difference between two snapshots.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::diag::{Level, LogEvent, Note, Update};
use crate::snapshot::{ConnSnapshot, Snapshot, SubflowSnapshot};

/// What the run loop should do after a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Continue,
    Quit,
}

/// Which pane the arrows move in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Focus {
    Connections,
    Subflows,
    Events,
}

/// The order of the connection list (`s` cycles).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    /// Source, then addresses: the order the sources gave, made stable.
    Source,
    /// Busiest first (send + receive rate).
    Rate,
    State,
    Token,
    Subflows,
}

impl SortKey {
    pub fn next(self) -> SortKey {
        match self {
            SortKey::Source => SortKey::Rate,
            SortKey::Rate => SortKey::State,
            SortKey::State => SortKey::Token,
            SortKey::Token => SortKey::Subflows,
            SortKey::Subflows => SortKey::Source,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            SortKey::Source => "source",
            SortKey::Rate => "rate",
            SortKey::State => "state",
            SortKey::Token => "token",
            SortKey::Subflows => "subflows",
        }
    }
}

/// Samples kept per subflow for its sparkline.
pub const HISTORY: usize = 120;
/// Events kept in the log.
pub const EVENT_LOG: usize = 1000;

/// A connection's identity across snapshots.
pub fn conn_key(c: &ConnSnapshot) -> String {
    match c.id {
        Some(id) => format!("{}#{id}", c.source),
        None => format!("{}|{}|{}|{}", c.source, c.token.as_deref().unwrap_or("-"), c.local, c.remote),
    }
}

/// A subflow's identity across snapshots.
pub fn subflow_key(ck: &str, s: &SubflowSnapshot) -> String {
    match s.id {
        Some(id) => format!("{ck}/#{id}"),
        None => format!("{ck}/{}|{}", s.local, s.remote),
    }
}

/// Whether `filter` (lower case) matches anything shown of the connection.
pub fn conn_matches(c: &ConnSnapshot, filter: &str) -> bool {
    if filter.is_empty() {
        return true;
    }
    let has = |s: &str| s.to_lowercase().contains(filter);
    has(&c.source)
        || has(&c.state)
        || has(&c.local)
        || has(&c.remote)
        || c.token.as_deref().is_some_and(has)
        || c.remote_token.as_deref().is_some_and(has)
        || (c.fallback && has("fallback"))
        || c.subflows.iter().any(|s| has(&s.local) || has(&s.remote) || has(&s.flags))
}

/// Rates of one connection, bytes per second.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rates {
    pub send: f64,
    pub recv: f64,
}

/// A subflow as shown: the snapshot plus derived numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct SubflowView {
    pub key: String,
    pub sf: SubflowSnapshot,
    /// Send + receive, bytes per second.
    pub rate: f64,
    /// This subflow's share of the connection's bytes (sent + received), 0..=1.
    pub share: Option<f64>,
}

/// A connection as shown.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnView {
    pub key: String,
    pub conn: ConnSnapshot,
    pub rates: Rates,
    pub subflows: Vec<SubflowView>,
}

/// Byte counters remembered for rates, and the rates they gave.
#[derive(Clone, Copy, Debug)]
struct Counters {
    at: Duration,
    sent: u64,
    recv: u64,
    rates: Rates,
}

fn conn_bytes(c: &ConnSnapshot) -> (u64, u64) {
    let sum = |f: fn(&SubflowSnapshot) -> Option<u64>| c.subflows.iter().filter_map(f).sum::<u64>();
    (
        c.bytes_sent.unwrap_or_else(|| sum(|s| s.bytes_sent)),
        c.bytes_received.unwrap_or_else(|| sum(|s| s.bytes_received)),
    )
}

fn sf_bytes(s: &SubflowSnapshot) -> (u64, u64) {
    (s.bytes_sent.unwrap_or(0), s.bytes_received.unwrap_or(0))
}

/// The counters and rates at `now` after `prev`; `false` when the clock did
/// not move (a capture read to its end), in which case the previous rates
/// stand: the last measured pace, not a drop to zero.
fn rate(prev: Option<&Counters>, now: Duration, sent: u64, recv: u64) -> (Counters, bool) {
    let fresh = Counters { at: now, sent, recv, rates: Rates::default() };
    let Some(p) = prev else { return (fresh, true) };
    let dt = now.saturating_sub(p.at).as_secs_f64();
    if dt <= 0.0 {
        return (*p, false);
    }
    let rates = Rates { send: sent.saturating_sub(p.sent) as f64 / dt, recv: recv.saturating_sub(p.recv) as f64 / dt };
    (Counters { rates, ..fresh }, true)
}

/// The whole state of the view.
#[derive(Debug)]
pub struct App {
    pub interval: Duration,
    /// Every connection of the last snapshot, with rates, in display order.
    all: Vec<ConnView>,
    /// Indices into `all` that pass the filter.
    visible: Vec<usize>,
    counters: HashMap<String, Counters>,
    history: HashMap<String, VecDeque<u64>>,
    pub events: VecDeque<LogEvent>,
    held_events: Vec<LogEvent>,
    pub notes: Vec<Note>,
    pub mib: std::collections::BTreeMap<String, u64>,
    /// The selected connection's key (kept across snapshots and re-sorts).
    selected: Option<String>,
    pub sub_selected: usize,
    /// Lines scrolled up from the newest event.
    pub event_scroll: usize,
    pub focus: Focus,
    pub filter: String,
    /// The filter being typed after `/` (None when not editing).
    pub filter_edit: Option<String>,
    pub sort: SortKey,
    pub paused: bool,
    pub help: bool,
    /// The detail pane of the selected connection or subflow (Enter).
    pub detail: bool,
    pub snapshots: u64,
}

impl App {
    pub fn new(interval: Duration) -> App {
        App {
            interval,
            all: Vec::new(),
            visible: Vec::new(),
            counters: HashMap::new(),
            history: HashMap::new(),
            events: VecDeque::new(),
            held_events: Vec::new(),
            notes: Vec::new(),
            mib: Default::default(),
            selected: None,
            sub_selected: 0,
            event_scroll: 0,
            focus: Focus::Connections,
            filter: String::new(),
            filter_edit: None,
            sort: SortKey::Source,
            paused: false,
            help: false,
            detail: false,
            snapshots: 0,
        }
    }

    /// Take what the sources brought at `now` (time since start). Rates are
    /// measured on the update's capture clock when it has one, else on
    /// `now`. While paused, snapshots are dropped and events held until the
    /// resume.
    pub fn ingest(&mut self, u: Update, now: Duration) {
        if self.paused {
            // Only the newest EVENT_LOG can be shown on resume: keep no more.
            self.held_events.extend(u.events);
            let over = self.held_events.len().saturating_sub(EVENT_LOG);
            self.held_events.drain(..over);
            return;
        }
        self.push_events(u.events);
        if let Some(snap) = u.snapshot {
            self.notes = u.notes;
            self.notes.sort_by_key(|n| std::cmp::Reverse(n.level));
            self.apply_snapshot(snap, u.clock.unwrap_or(now));
        }
    }

    fn push_events(&mut self, evs: Vec<LogEvent>) {
        for e in evs {
            self.events.push_back(e);
            if self.event_scroll > 0 {
                // Keep the lines the user scrolled to where they are.
                self.event_scroll += 1;
            }
        }
        while self.events.len() > EVENT_LOG {
            self.events.pop_front();
        }
        self.event_scroll = self.event_scroll.min(self.events.len().saturating_sub(1));
    }

    fn apply_snapshot(&mut self, snap: Snapshot, now: Duration) {
        self.snapshots += 1;
        self.mib = snap.mib;
        let mut counters = HashMap::new();
        let mut views = Vec::with_capacity(snap.connections.len());
        for c in snap.connections {
            let key = conn_key(&c);
            let (sent, recv) = conn_bytes(&c);
            let (cc, _) = rate(self.counters.get(&key), now, sent, recv);
            let rates = cc.rates;
            counters.insert(key.clone(), cc);
            let total: u64 = c.subflows.iter().map(|s| sf_bytes(s).0 + sf_bytes(s).1).sum();
            let mut subflows = Vec::with_capacity(c.subflows.len());
            for s in &c.subflows {
                let sk = subflow_key(&key, s);
                let (ss, sr) = sf_bytes(s);
                let (sc, moved) = rate(self.counters.get(&sk), now, ss, sr);
                let r = sc.rates;
                counters.insert(sk.clone(), sc);
                let has_bytes = s.bytes_sent.is_some() || s.bytes_received.is_some();
                let h = self.history.entry(sk.clone()).or_default();
                if moved {
                    h.push_back((r.send + r.recv).round() as u64);
                }
                while h.len() > HISTORY {
                    h.pop_front();
                }
                subflows.push(SubflowView {
                    key: sk,
                    sf: s.clone(),
                    rate: r.send + r.recv,
                    share: (has_bytes && total > 0).then(|| (ss + sr) as f64 / total as f64),
                });
            }
            views.push(ConnView { key, conn: c, rates, subflows });
        }
        self.history.retain(|k, _| counters.contains_key(k));
        self.counters = counters;
        self.all = views;
        self.resort();
    }

    fn resort(&mut self) {
        let key = |v: &ConnView| {
            (v.conn.source.clone(), v.conn.state == "LISTEN", v.conn.local.clone(), v.conn.remote.clone())
        };
        match self.sort {
            SortKey::Source => self.all.sort_by_key(key),
            SortKey::Rate => self.all.sort_by(|a, b| {
                (b.rates.send + b.rates.recv)
                    .total_cmp(&(a.rates.send + a.rates.recv))
                    .then_with(|| key(a).cmp(&key(b)))
            }),
            SortKey::State => {
                self.all.sort_by(|a, b| a.conn.state.cmp(&b.conn.state).then_with(|| key(a).cmp(&key(b))))
            }
            SortKey::Token => {
                self.all.sort_by(|a, b| a.conn.token.cmp(&b.conn.token).then_with(|| key(a).cmp(&key(b))))
            }
            SortKey::Subflows => {
                self.all.sort_by(|a, b| b.subflows.len().cmp(&a.subflows.len()).then_with(|| key(a).cmp(&key(b))))
            }
        }
        self.refilter();
    }

    fn refilter(&mut self) {
        let f = self.filter.to_lowercase();
        self.visible = (0..self.all.len()).filter(|&i| conn_matches(&self.all[i].conn, &f)).collect();
        // Keep the selection on the same connection; else the first one.
        let still = self.selected.as_ref().is_some_and(|k| self.visible.iter().any(|&i| &self.all[i].key == k));
        if !still {
            self.selected = self.visible.first().map(|&i| self.all[i].key.clone());
            self.sub_selected = 0;
        }
        let n = self.selected_conn().map_or(0, |c| c.subflows.len());
        self.sub_selected = self.sub_selected.min(n.saturating_sub(1));
    }

    /// The connections shown, in order.
    pub fn visible(&self) -> impl Iterator<Item = &ConnView> {
        self.visible.iter().map(|&i| &self.all[i])
    }

    pub fn visible_len(&self) -> usize {
        self.visible.len()
    }

    pub fn total_len(&self) -> usize {
        self.all.len()
    }

    /// Position of the selected connection among the visible ones.
    pub fn selected_index(&self) -> Option<usize> {
        let k = self.selected.as_ref()?;
        self.visible.iter().position(|&i| &self.all[i].key == k)
    }

    pub fn selected_conn(&self) -> Option<&ConnView> {
        self.selected_index().map(|p| &self.all[self.visible[p]])
    }

    pub fn selected_subflow(&self) -> Option<&SubflowView> {
        self.selected_conn().and_then(|c| c.subflows.get(self.sub_selected))
    }

    /// The rate history of a subflow (oldest first).
    pub fn history(&self, subflow_key: &str) -> Vec<u64> {
        self.history.get(subflow_key).map(|h| h.iter().copied().collect()).unwrap_or_default()
    }

    /// Whether any note is a warning.
    pub fn has_warnings(&self) -> bool {
        self.notes.iter().any(|n| n.level == Level::Warn)
    }

    fn select_conn_at(&mut self, pos: usize) {
        if let Some(&i) = self.visible.get(pos) {
            if self.selected.as_ref() != Some(&self.all[i].key) {
                self.sub_selected = 0;
            }
            self.selected = Some(self.all[i].key.clone());
        }
    }

    /// Move the selection of the focused pane by `delta` lines.
    fn move_by(&mut self, delta: isize) {
        let step = |cur: usize, len: usize| -> usize {
            if len == 0 {
                return 0;
            }
            (cur as isize + delta).clamp(0, len as isize - 1) as usize
        };
        match self.focus {
            Focus::Connections => {
                let cur = self.selected_index().unwrap_or(0);
                self.select_conn_at(step(cur, self.visible.len()));
            }
            Focus::Subflows => {
                let n = self.selected_conn().map_or(0, |c| c.subflows.len());
                self.sub_selected = step(self.sub_selected, n);
            }
            Focus::Events => {
                // Up scrolls back in time.
                let max = self.events.len().saturating_sub(1) as isize;
                self.event_scroll = (self.event_scroll as isize - delta).clamp(0, max) as usize;
            }
        }
    }

    /// Handle one key.
    pub fn on_key(&mut self, k: KeyEvent) -> Action {
        if k.kind == KeyEventKind::Release {
            return Action::Continue;
        }
        if k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c') {
            return Action::Quit;
        }
        if let Some(edit) = &mut self.filter_edit {
            match k.code {
                KeyCode::Enter => {
                    self.filter = self.filter_edit.take().unwrap_or_default();
                }
                KeyCode::Esc => {
                    self.filter_edit = None;
                    return Action::Continue;
                }
                KeyCode::Backspace => {
                    edit.pop();
                }
                KeyCode::Char(c) => edit.push(c),
                _ => return Action::Continue,
            }
            // The list follows the filter as it is typed.
            let shown = self.filter_edit.clone().unwrap_or_else(|| self.filter.clone());
            let saved = std::mem::replace(&mut self.filter, shown);
            self.refilter();
            if self.filter_edit.is_some() {
                self.filter = saved;
            }
            return Action::Continue;
        }
        if self.help {
            // Any key closes the help; q still quits.
            self.help = false;
            return if k.code == KeyCode::Char('q') { Action::Quit } else { Action::Continue };
        }
        match k.code {
            KeyCode::Char('q') => return Action::Quit,
            KeyCode::Esc => {
                if self.detail {
                    self.detail = false;
                } else if !self.filter.is_empty() {
                    self.filter.clear();
                    self.refilter();
                }
            }
            KeyCode::Char('?') => self.help = true,
            KeyCode::Up | KeyCode::Char('k') => self.move_by(-1),
            KeyCode::Down | KeyCode::Char('j') => self.move_by(1),
            KeyCode::PageUp => self.move_by(-10),
            KeyCode::PageDown => self.move_by(10),
            KeyCode::Home | KeyCode::Char('g') => self.move_by(-(1 << 20)),
            KeyCode::End | KeyCode::Char('G') => self.move_by(1 << 20),
            KeyCode::Tab => {
                self.focus = match self.focus {
                    Focus::Connections => Focus::Subflows,
                    Focus::Subflows => Focus::Events,
                    Focus::Events => Focus::Connections,
                }
            }
            KeyCode::BackTab => {
                self.focus = match self.focus {
                    Focus::Connections => Focus::Events,
                    Focus::Subflows => Focus::Connections,
                    Focus::Events => Focus::Subflows,
                }
            }
            KeyCode::Enter => {
                if self.focus == Focus::Connections && !self.detail && self.selected_conn().is_some() {
                    // Enter on a connection opens its details and moves to its subflows.
                    self.detail = true;
                    self.focus = Focus::Subflows;
                } else {
                    self.detail = !self.detail;
                }
            }
            KeyCode::Char('/') => self.filter_edit = Some(self.filter.clone()),
            KeyCode::Char('s') => {
                self.sort = self.sort.next();
                self.resort();
            }
            KeyCode::Char('p') => {
                self.paused = !self.paused;
                if !self.paused {
                    let held = std::mem::take(&mut self.held_events);
                    self.push_events(held);
                }
            }
            _ => {}
        }
        Action::Continue
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::control::ControlEvent;
    use crate::snapshot::token_hex;

    pub(crate) fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    pub(crate) fn conn(
        source: &str,
        id: u64,
        token: u32,
        local: &str,
        sent: u64,
        subflows: &[(&str, &str, u64)],
    ) -> ConnSnapshot {
        ConnSnapshot {
            source: source.into(),
            id: Some(id),
            token: Some(token_hex(token)),
            local: local.into(),
            remote: "10.0.0.2:80".into(),
            state: "ESTAB".into(),
            subflows_used: Some(subflows.len().saturating_sub(1) as u8),
            subflows_max: Some(2),
            bytes_sent: Some(sent),
            bytes_received: Some(0),
            subflows: subflows
                .iter()
                .enumerate()
                .map(|(i, (l, flags, b))| SubflowSnapshot {
                    id: Some(id * 100 + i as u64),
                    local: (*l).into(),
                    remote: "10.0.0.2:80".into(),
                    flags: (*flags).into(),
                    token_loc: token_hex(token),
                    token_rem: token_hex(0),
                    bytes_sent: Some(*b),
                    bytes_received: Some(0),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    pub(crate) fn update(conns: Vec<ConnSnapshot>) -> Update {
        Update { snapshot: Some(Snapshot { connections: conns, ..Default::default() }), ..Default::default() }
    }

    fn ev(kind: &str) -> LogEvent {
        LogEvent {
            at: Duration::ZERO,
            source: "kernel".into(),
            event: ControlEvent { kind: kind.into(), ..Default::default() },
        }
    }

    fn two(sent_a: u64, sent_b: u64) -> Vec<ConnSnapshot> {
        vec![
            conn(
                "kernel",
                1,
                0xaaaa,
                "10.0.0.1:1000",
                sent_a,
                &[("10.0.0.1:1000", "Mmec", sent_a / 4), ("10.0.1.1:1001", "Jjec", sent_a * 3 / 4)],
            ),
            conn("kernel", 2, 0xbbbb, "10.0.0.1:2000", sent_b, &[("10.0.0.1:2000", "Mmec", sent_b)]),
        ]
    }

    #[test]
    fn rates_shares_and_history() {
        let mut app = App::new(Duration::from_secs(1));
        app.ingest(update(two(1000, 0)), Duration::from_secs(1));
        assert_eq!(app.visible_len(), 2);
        let c = app.selected_conn().unwrap();
        assert_eq!(c.rates, Rates::default(), "no rate from a single snapshot");
        assert_eq!(c.subflows[0].share, Some(0.25));
        app.ingest(update(two(5000, 2000)), Duration::from_millis(3000));
        let c = app.selected_conn().unwrap();
        assert_eq!(c.conn.token.as_deref(), Some("0x0000aaaa"));
        assert_eq!(c.rates.send, 2000.0);
        assert_eq!(c.subflows[1].rate, 1500.0);
        assert_eq!(app.history(&c.subflows[1].key), vec![0, 1500]);
        // A connection that disappears loses its history.
        app.ingest(update(vec![two(5000, 2000).remove(1)]), Duration::from_secs(4));
        assert_eq!(app.visible_len(), 1);
        assert!(app.history.keys().all(|k| k.starts_with("kernel#2")));
    }

    #[test]
    fn selection_follows_the_connection() {
        let mut app = App::new(Duration::from_secs(1));
        app.ingest(update(two(0, 0)), Duration::ZERO);
        assert_eq!(app.on_key(key(KeyCode::Char('j'))), Action::Continue);
        assert_eq!(app.selected_conn().unwrap().conn.id, Some(2));
        app.on_key(key(KeyCode::Down));
        assert_eq!(app.selected_index(), Some(1), "clamped at the end");
        // Sort by rate: connection 2 becomes busiest and first; the selection stays on it.
        app.ingest(update(two(0, 10)), Duration::from_secs(1));
        app.ingest(update(two(0, 100_000)), Duration::from_secs(2));
        app.on_key(key(KeyCode::Char('s')));
        assert_eq!(app.sort, SortKey::Rate);
        assert_eq!(app.selected_index(), Some(0));
        assert_eq!(app.selected_conn().unwrap().conn.id, Some(2));
        app.on_key(key(KeyCode::Up));
        app.on_key(key(KeyCode::Char('k')));
        assert_eq!(app.selected_index(), Some(0));
        for _ in 0..4 {
            app.on_key(key(KeyCode::Char('s')));
        }
        assert_eq!(app.sort, SortKey::Source);
    }

    #[test]
    fn focus_subflows_and_events() {
        let mut app = App::new(Duration::from_secs(1));
        app.ingest(update(two(100, 0)), Duration::ZERO);
        app.on_key(key(KeyCode::Tab));
        assert_eq!(app.focus, Focus::Subflows);
        app.on_key(key(KeyCode::Down));
        assert_eq!(app.selected_subflow().unwrap().sf.flags, "Jjec");
        app.on_key(key(KeyCode::Down));
        assert_eq!(app.sub_selected, 1, "clamped");
        app.on_key(key(KeyCode::Tab));
        assert_eq!(app.focus, Focus::Events);
        app.ingest(
            Update { events: vec![ev("created"), ev("established"), ev("sub_established")], ..Default::default() },
            Duration::ZERO,
        );
        assert_eq!(app.events.len(), 3);
        app.on_key(key(KeyCode::Up));
        app.on_key(key(KeyCode::Up));
        app.on_key(key(KeyCode::Up));
        assert_eq!(app.event_scroll, 2);
        app.on_key(key(KeyCode::End));
        assert_eq!(app.event_scroll, 0);
        app.on_key(key(KeyCode::BackTab));
        assert_eq!(app.focus, Focus::Subflows);
        app.on_key(key(KeyCode::Tab));
        app.on_key(key(KeyCode::Tab));
        assert_eq!(app.focus, Focus::Connections);
        // Enter on a connection: details, and the arrows now walk its subflows.
        app.on_key(key(KeyCode::Enter));
        assert!(app.detail);
        assert_eq!(app.focus, Focus::Subflows);
        app.on_key(key(KeyCode::Esc));
        assert!(!app.detail);
        // A new connection selected resets the subflow selection.
        app.on_key(key(KeyCode::Down));
        app.on_key(key(KeyCode::BackTab));
        app.on_key(key(KeyCode::Down));
        assert_eq!((app.selected_index(), app.sub_selected), (Some(1), 0));
    }

    #[test]
    fn filter_typing_applies_live_and_esc_restores() {
        let mut app = App::new(Duration::from_secs(1));
        app.ingest(update(two(0, 0)), Duration::ZERO);
        app.on_key(key(KeyCode::Char('/')));
        assert_eq!(app.filter_edit.as_deref(), Some(""));
        for c in "bbbb".chars() {
            app.on_key(key(KeyCode::Char(c)));
        }
        assert_eq!(app.visible_len(), 1, "the list follows the typing");
        assert_eq!(app.filter, "", "not applied yet");
        // 'q' and 'p' while typing are text, not commands.
        assert_eq!(app.on_key(key(KeyCode::Char('q'))), Action::Continue);
        assert_eq!(app.visible_len(), 0);
        app.on_key(key(KeyCode::Backspace));
        app.on_key(key(KeyCode::Enter));
        assert_eq!((app.filter.as_str(), app.filter_edit.as_deref()), ("bbbb", None));
        assert_eq!(app.selected_conn().unwrap().conn.id, Some(2));
        // A filter on subflow addresses and flags.
        app.on_key(key(KeyCode::Char('/')));
        app.on_key(key(KeyCode::Esc));
        assert_eq!(app.filter, "bbbb", "Esc while typing keeps the old filter");
        assert_eq!(app.visible_len(), 1);
        app.on_key(key(KeyCode::Esc));
        assert_eq!((app.filter.as_str(), app.visible_len()), ("", 2), "Esc clears the filter");
        app.filter = "jjec".into();
        app.ingest(update(two(0, 0)), Duration::from_secs(1));
        assert_eq!(app.visible_len(), 1);
    }

    #[test]
    fn pause_help_quit() {
        let mut app = App::new(Duration::from_secs(1));
        app.ingest(update(two(0, 0)), Duration::ZERO);
        app.on_key(key(KeyCode::Char('p')));
        assert!(app.paused);
        app.ingest(Update { events: vec![ev("closed")], ..update(vec![]) }, Duration::from_secs(1));
        assert_eq!(app.visible_len(), 2, "paused: the snapshot is held still");
        assert!(app.events.is_empty());
        app.on_key(key(KeyCode::Char('p')));
        assert_eq!(app.events.len(), 1, "held events arrive on resume");
        app.on_key(key(KeyCode::Char('?')));
        assert!(app.help);
        assert_eq!(app.on_key(key(KeyCode::Char('j'))), Action::Continue);
        assert!(!app.help, "any key closes the help");
        assert_eq!(app.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)), Action::Quit);
        assert_eq!(app.on_key(key(KeyCode::Char('q'))), Action::Quit);
    }

    #[test]
    fn events_held_while_paused_are_bounded() {
        let mut app = App::new(Duration::from_secs(1));
        app.on_key(key(KeyCode::Char('p')));
        for i in 0..5 {
            let evs: Vec<_> = (0..EVENT_LOG).map(|_| ev(if i == 4 { "closed" } else { "created" })).collect();
            app.ingest(Update { events: evs, ..Default::default() }, Duration::from_secs(i));
            assert!(app.held_events.len() <= EVENT_LOG);
        }
        app.on_key(key(KeyCode::Char('p')));
        assert_eq!(app.events.len(), EVENT_LOG);
        assert!(app.events.iter().all(|e| e.event.kind == "closed"), "the newest are kept");
    }

    #[test]
    fn event_log_is_bounded() {
        let mut app = App::new(Duration::from_secs(1));
        let evs: Vec<_> = (0..EVENT_LOG + 10).map(|_| ev("created")).collect();
        app.ingest(Update { events: evs, ..Default::default() }, Duration::ZERO);
        assert_eq!(app.events.len(), EVENT_LOG);
    }
}
