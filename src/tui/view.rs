//! Drawing: the [`App`] as ratatui widgets. Nothing here changes state; the
//! views only render the snapshots the app holds.
//!
//! Layout, top to bottom: a title line, the sources' notes, the connection
//! list, the selected connection's subflow table, one sparkline per subflow,
//! the event log and a line of key hints; `?` lays the help over it and
//! Enter the details of the selection.
//!
//! Every string that came from a source is drawn through
//! [`super::escape`]: ratatui itself drops control characters, which would
//! hide them; escaped, the user sees what was sent.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{
    Block, BorderType, Borders, Cell, Clear, Paragraph, Row, Sparkline, StatefulWidget, Table, TableState, Widget, Wrap,
};

use super::app::{App, ConnView, Focus, SubflowView};
use super::escape::escaped;
use super::text::{conn_fields, subflow_fields, token_value};
use crate::diag::{Level, LogEvent};
use crate::snapshot::subflow_flags;

/// Bytes with an SI unit: "512B", "48.0kB", "1.2MB".
pub fn human_bytes(b: u64) -> String {
    let f = b as f64;
    if b < 1000 {
        format!("{b}B")
    } else if f < 1e6 {
        format!("{:.1}kB", f / 1e3)
    } else if f < 1e9 {
        format!("{:.1}MB", f / 1e6)
    } else {
        format!("{:.1}GB", f / 1e9)
    }
}

/// A rate in bytes per second.
pub fn human_rate(r: f64) -> String {
    if r < 0.5 { "0".into() } else { format!("{}/s", human_bytes(r.round() as u64)) }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

fn short_token(t: Option<&str>) -> String {
    t.map(|t| format!("{:08x}", token_value(t))).unwrap_or_else(|| "-".into())
}

fn rtt(us: Option<u32>) -> String {
    match us {
        Some(us) if us > 0 => format!("{:.3}ms", f64::from(us) / 1000.0),
        _ => "-".into(),
    }
}

fn pane(title: String, focused: bool) -> Block<'static> {
    let b = Block::default().borders(Borders::ALL).title(title);
    if focused {
        b.border_type(BorderType::Thick).border_style(Style::default().fg(Color::Cyan))
    } else {
        b.border_style(Style::default().fg(Color::DarkGray))
    }
}

fn selected_style() -> Style {
    Style::default().add_modifier(Modifier::REVERSED)
}

impl Widget for &App {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let notes: Vec<_> = self.notes.iter().take(3).collect();
        let n_sub = self.selected_conn().map_or(0, |c| c.subflows.len()) as u16;
        let conn_rows = (self.visible_len().max(1) as u16 + 3).min(area.height / 3).max(4);
        let sub_rows = (n_sub.max(1) + 3).min(area.height / 4).max(4);
        let spark_rows = if n_sub == 0 { 0 } else { (n_sub + 2).min(8) };
        let [title, notes_area, conns, subs, sparks, events, footer] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(notes.len() as u16),
            Constraint::Length(conn_rows),
            Constraint::Length(sub_rows),
            Constraint::Length(spark_rows),
            Constraint::Min(3),
            Constraint::Length(1),
        ])
        .areas(area);
        self.title_line().render(title, buf);
        let note_lines: Vec<Line> = notes
            .iter()
            .map(|n| {
                let (mark, style) = match n.level {
                    Level::Warn => ("! ", Style::default().fg(Color::Yellow)),
                    Level::Info => ("  ", Style::default().fg(Color::DarkGray)),
                };
                Line::styled(format!("{mark}{}: {}", escaped(&n.source), escaped(&n.text)), style)
            })
            .collect();
        Paragraph::new(note_lines).render(notes_area, buf);
        self.render_connections(conns, buf);
        self.render_subflows(subs, buf);
        if spark_rows > 0 {
            self.render_sparklines(sparks, buf);
        }
        self.render_events(events, buf);
        self.footer_line().render(footer, buf);
        if self.detail {
            self.render_detail(area, buf);
        }
        if self.help {
            render_help(area, buf);
        }
    }
}

impl App {
    fn title_line(&self) -> Line<'static> {
        let mut spans = vec![
            Span::styled(" mptcp-ss ", Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED)),
            Span::raw(format!(" {} connection{}", self.total_len(), if self.total_len() == 1 { "" } else { "s" })),
        ];
        if self.visible_len() != self.total_len() {
            spans.push(Span::raw(format!(" ({} shown)", self.visible_len())));
        }
        spans.push(Span::raw(format!(" | every {}s | sort: {}", self.interval.as_secs_f64(), self.sort.name())));
        if !self.filter.is_empty() {
            spans.push(Span::raw(format!(" | filter: {}", escaped(&self.filter))));
        }
        if self.paused {
            spans.push(Span::raw(" | "));
            spans.push(Span::styled("PAUSED", Style::default().fg(Color::Black).bg(Color::Yellow)));
        }
        spans.push(Span::raw(" | ? help"));
        Line::from(spans)
    }

    fn footer_line(&self) -> Line<'static> {
        if let Some(edit) = &self.filter_edit {
            return Line::from(vec![
                Span::styled(" filter: ", Style::default().add_modifier(Modifier::BOLD)),
                Span::raw(format!("{}_", escaped(edit))),
                Span::styled("   Enter keeps it, Esc cancels", Style::default().fg(Color::DarkGray)),
            ]);
        }
        Line::styled(
            " q quit  ? help  jk/arrows move  Tab pane  Enter details  / filter  s sort  p pause",
            Style::default().fg(Color::DarkGray),
        )
    }

    fn render_connections(&self, area: Rect, buf: &mut Buffer) {
        let data_w =
            |f: &dyn Fn(&ConnView) -> usize, min: usize| self.visible().map(f).max().unwrap_or(0).max(min) as u16;
        let cols = [
            Col { name: "Source", width: data_w(&|v| escaped(&short_source(&v.conn.source)).len(), 6), prio: 5 },
            Col { name: "State", width: 10, prio: 8 },
            Col { name: "Local", width: data_w(&|v| escaped(&v.conn.local).len(), 5), prio: 10 },
            Col { name: "Remote", width: data_w(&|v| escaped(&v.conn.remote).len(), 6), prio: 10 },
            Col { name: "Token", width: 8, prio: 9 },
            Col { name: "Subflows", width: 8, prio: 7 },
            Col { name: "Fallback", width: 8, prio: 6 },
            Col { name: "Send", width: 10, prio: 7 },
            Col { name: "Recv", width: 10, prio: 7 },
        ];
        let block = pane(" Connections ".into(), self.focus == Focus::Connections);
        if self.visible_len() == 0 {
            let text = if self.total_len() == 0 { "no MPTCP connections" } else { "no connection matches the filter" };
            Paragraph::new(text).block(block).render(area, buf);
            return;
        }
        let keep = fit(&cols, area.width.saturating_sub(2));
        let rows: Vec<Row> = self.visible().map(|v| pick(conn_cells(v), &keep)).collect();
        let table = Table::new(rows, widths(&cols, &keep))
            .header(header(&cols, &keep))
            .block(block)
            .row_highlight_style(selected_style());
        let mut st = TableState::default();
        st.select(self.selected_index());
        StatefulWidget::render(table, area, buf, &mut st);
    }

    fn render_subflows(&self, area: Rect, buf: &mut Buffer) {
        let title = match self.selected_conn() {
            Some(c) => format!(" Subflows of {} {} ", escaped(&c.conn.local), short_token(c.conn.token.as_deref())),
            None => " Subflows ".into(),
        };
        let subs: &[SubflowView] = self.selected_conn().map(|c| c.subflows.as_slice()).unwrap_or(&[]);
        let data_w =
            |f: &dyn Fn(&SubflowView) -> usize, min: usize| subs.iter().map(f).max().unwrap_or(0).max(min) as u16;
        let cols = [
            Col { name: "Local", width: data_w(&|s| escaped(&s.sf.local).len(), 5), prio: 10 },
            Col { name: "Remote", width: data_w(&|s| escaped(&s.sf.remote).len(), 6), prio: 10 },
            Col { name: "State", width: 10, prio: 5 },
            Col { name: "Ids", width: 5, prio: 9 },
            Col { name: "Flags", width: 6, prio: 9 },
            Col { name: "Tokens rem/loc", width: 17, prio: 8 },
            Col { name: "Seq", width: 16, prio: 3 },
            Col { name: "Sfseq", width: 8, prio: 2 },
            Col { name: "Ssnoff", width: 8, prio: 7 },
            Col { name: "Maplen", width: 6, prio: 2 },
            Col { name: "Cwnd", width: 5, prio: 6 },
            Col { name: "RTT", width: 9, prio: 6 },
            Col { name: "Sent", width: 8, prio: 6 },
            Col { name: "Recv", width: 8, prio: 6 },
            Col { name: "Share", width: 5, prio: 7 },
        ];
        let keep = fit(&cols, area.width.saturating_sub(2));
        let rows: Vec<Row> = subs.iter().map(|s| pick(subflow_cells(s), &keep)).collect();
        let table = Table::new(rows, widths(&cols, &keep))
            .header(header(&cols, &keep))
            .block(pane(title, self.focus == Focus::Subflows))
            .row_highlight_style(selected_style());
        let mut st = TableState::default();
        if self.focus == Focus::Subflows && self.selected_subflow().is_some() {
            st.select(Some(self.sub_selected));
        }
        StatefulWidget::render(table, area, buf, &mut st);
    }

    fn render_sparklines(&self, area: Rect, buf: &mut Buffer) {
        let block = pane(" Subflow rates ".into(), false);
        let inner = block.inner(area);
        block.render(area, buf);
        let Some(c) = self.selected_conn() else { return };
        let label_w = 30u16.min(inner.width / 2);
        for (i, s) in c.subflows.iter().enumerate().take(inner.height as usize) {
            let row = Rect { x: inner.x, y: inner.y + i as u16, width: inner.width, height: 1 };
            let [label, spark] = Layout::horizontal([Constraint::Length(label_w), Constraint::Min(1)]).areas(row);
            Line::raw(format!("{} {}", escaped(&s.sf.local), human_rate(s.rate))).render(label, buf);
            let hist = self.history(&s.key);
            let start = hist.len().saturating_sub(spark.width as usize);
            Sparkline::default().data(&hist[start..]).style(Style::default().fg(Color::Green)).render(spark, buf);
        }
    }

    fn render_events(&self, area: Rect, buf: &mut Buffer) {
        let title = if self.event_scroll > 0 {
            format!(" Events ({} older than the newest shown) ", self.event_scroll)
        } else {
            format!(" Events ({}) ", self.events.len())
        };
        let block = pane(title, self.focus == Focus::Events);
        let inner = block.inner(area);
        block.render(area, buf);
        let h = inner.height as usize;
        let end = self.events.len().saturating_sub(self.event_scroll);
        let start = end.saturating_sub(h);
        let lines: Vec<Line> = self.events.range(start..end).map(event_line).collect();
        if lines.is_empty() {
            Line::styled("no events yet", Style::default().fg(Color::DarkGray)).render(inner, buf);
        } else {
            Paragraph::new(lines).render(inner, buf);
        }
    }

    fn render_detail(&self, area: Rect, buf: &mut Buffer) {
        let Some(c) = self.selected_conn() else { return };
        let mut text = Text::default();
        text.push_line(Line::styled(
            format!(
                "mptcp {} {} -> {}  ({})",
                escaped(&c.conn.state),
                escaped(&c.conn.local),
                escaped(&c.conn.remote),
                escaped(&c.conn.source)
            ),
            Style::default().add_modifier(Modifier::BOLD),
        ));
        text.push_line(Line::raw(format!(" {}", conn_fields(&c.conn))));
        for (i, s) in c.subflows.iter().enumerate() {
            let mark = if i == self.sub_selected { ">" } else { " " };
            text.push_line(Line::raw(""));
            text.push_line(Line::styled(
                format!(
                    "{mark}tcp {} {} -> {}",
                    escaped(s.sf.state.as_deref().unwrap_or("-")),
                    escaped(&s.sf.local),
                    escaped(&s.sf.remote)
                ),
                Style::default().add_modifier(Modifier::BOLD),
            ));
            let f = subflow_fields(&s.sf);
            match f.find("tcp-ulp-mptcp") {
                Some(i) if i > 0 => {
                    text.push_line(Line::raw(format!("  {}", f[..i].trim_end())));
                    text.push_line(Line::raw(format!("  {}", &f[i..])));
                }
                _ => text.push_line(Line::raw(format!("  {f}"))),
            }
            if s.sf.seq_withheld {
                text.push_line(Line::styled(
                    "  seq, sfseq, ssnoff, maplen withheld by the kernel (needs CAP_NET_ADMIN)",
                    Style::default().fg(Color::Yellow),
                ));
            }
        }
        let popup = centered(area, 90, 70);
        Clear.render(popup, buf);
        Paragraph::new(text)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(" Details (Esc closes) ").border_type(BorderType::Double))
            .render(popup, buf);
    }
}

/// A table column: its header, its width and how much it matters when
/// the terminal is too narrow for all of them.
struct Col {
    name: &'static str,
    width: u16,
    prio: u8,
}

/// The columns that fit in `avail` cells (one cell between columns),
/// dropping the least important first; in their original order.
fn fit(cols: &[Col], avail: u16) -> Vec<usize> {
    let mut keep: Vec<usize> = (0..cols.len()).collect();
    let need = |k: &[usize]| k.iter().map(|&i| cols[i].width + 1).sum::<u16>().saturating_sub(1);
    while need(&keep) > avail && keep.len() > 1 {
        // Among the least important, drop the rightmost.
        let min = keep.iter().map(|&i| cols[i].prio).min().unwrap_or(0);
        let pos = keep.iter().rposition(|&i| cols[i].prio == min).unwrap_or(keep.len() - 1);
        keep.remove(pos);
    }
    keep
}

fn pick(cells: Vec<Cell<'static>>, keep: &[usize]) -> Row<'static> {
    Row::new(keep.iter().map(|&i| cells.get(i).cloned().unwrap_or_default()).collect::<Vec<_>>())
}

fn header(cols: &[Col], keep: &[usize]) -> Row<'static> {
    Row::new(keep.iter().map(|&i| Cell::from(cols[i].name)).collect::<Vec<_>>())
        .style(Style::default().add_modifier(Modifier::BOLD))
}

fn widths(cols: &[Col], keep: &[usize]) -> Vec<Constraint> {
    keep.iter().map(|&i| Constraint::Length(cols[i].width)).collect()
}

/// The source as the table shows it: a capture by its file name (the header
/// line and `--json` carry the whole path).
fn short_source(source: &str) -> std::borrow::Cow<'_, str> {
    match source.strip_prefix("capture:") {
        Some(path) => match std::path::Path::new(path).file_name() {
            Some(name) => format!("capture:{}", name.to_string_lossy()).into(),
            None => source.into(),
        },
        None => source.into(),
    }
}

fn conn_cells(v: &ConnView) -> Vec<Cell<'static>> {
    let c = &v.conn;
    let subflows = match c.subflows_max {
        Some(max) => format!("{}/{}", c.subflows_used.map_or(c.subflows.len().saturating_sub(1) as u8, |u| u), max),
        None => c.subflows.len().to_string(),
    };
    let fallback = if c.fallback { Cell::from("yes").style(Style::default().fg(Color::Red)) } else { Cell::from("no") };
    vec![
        Cell::from(escaped(&short_source(&c.source))),
        Cell::from(escaped(&c.state)),
        Cell::from(escaped(&c.local)),
        Cell::from(escaped(&c.remote)),
        Cell::from(short_token(c.token.as_deref())),
        Cell::from(subflows),
        fallback,
        Cell::from(human_rate(v.rates.send)),
        Cell::from(human_rate(v.rates.recv)),
    ]
}

fn subflow_cells(v: &SubflowView) -> Vec<Cell<'static>> {
    let s = &v.sf;
    let withheld = |x: String| if s.seq_withheld { "-".to_string() } else { x };
    [
        escaped(&s.local),
        escaped(&s.remote),
        s.state.as_deref().map_or_else(|| "-".into(), escaped),
        format!("{}/{}", s.id_loc, s.id_rem),
        if s.flags.is_empty() { "-".into() } else { escaped(&s.flags) },
        format!("{:04x}/{:04x}", token_value(&s.token_rem), token_value(&s.token_loc)),
        withheld(format!("{:x}", s.seq)),
        withheld(format!("{:x}", s.sfseq)),
        withheld(format!("{:x}", s.ssnoff)),
        withheld(format!("{:x}", s.maplen)),
        opt(s.cwnd),
        rtt(s.rtt_us),
        s.bytes_sent.map(human_bytes).unwrap_or_else(|| "-".into()),
        s.bytes_received.map(human_bytes).unwrap_or_else(|| "-".into()),
        v.share.map(|f| format!("{:.0}%", f * 100.0)).unwrap_or_else(|| "-".into()),
    ]
    .into_iter()
    .map(Cell::from)
    .collect()
}

/// One event log line: "+12.345s kernel sub_closed 0x... local -> remote
/// ids 2/0 (reason)"; events from packets name their frame instead of the
/// source ("+0.012s frame 30 sub_established ..."). Text from the source
/// is escaped ([`super::escape`]): the line is one line and safe to print.
pub fn event_text(e: &LogEvent) -> String {
    let ev = &e.event;
    let origin = match ev.frame {
        Some(f) => format!("frame {f}"),
        None => e.source.clone(),
    };
    let mut s = format!("+{:.3}s {:<14} {:<16}", e.at.as_secs_f64(), origin, ev.kind);
    if let Some(t) = &ev.token {
        s.push_str(&format!(" {t}"));
    }
    match (&ev.local, &ev.remote) {
        (Some(l), Some(r)) => s.push_str(&format!(" {l} -> {r}")),
        (Some(l), None) => s.push_str(&format!(" {l}")),
        (None, Some(r)) => s.push_str(&format!(" -> {r}")),
        (None, None) => {}
    }
    match (ev.id_loc, ev.id_rem) {
        (Some(l), Some(r)) => s.push_str(&format!(" ids {l}/{r}")),
        (Some(l), None) => s.push_str(&format!(" id_loc {l}")),
        (None, Some(r)) => s.push_str(&format!(" id_rem {r}")),
        (None, None) => {}
    }
    if ev.backup == Some(true) {
        s.push_str(" backup");
    }
    if let Some(r) = &ev.reason {
        s.push_str(&format!(" ({r})"));
    }
    escaped(&s)
}

fn event_line(e: &LogEvent) -> Line<'static> {
    let bad = e.event.kind.contains("closed") || e.event.kind == "removed" || e.event.kind == "fallback";
    let style = if e.event.reason.as_deref().is_some_and(|r| r.contains("error") || r.contains("reset")) || bad {
        Style::default().fg(Color::Yellow)
    } else {
        Style::default()
    };
    Line::styled(event_text(e), style)
}

/// A rectangle of `pw`% x `ph`% centred in `area`.
fn centered(area: Rect, pw: u16, ph: u16) -> Rect {
    let w = area.width * pw / 100;
    let h = area.height * ph / 100;
    Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h }
}

/// The help text: keys, then the subflow flag letters spelled out.
pub fn help_lines() -> Vec<String> {
    let mut v: Vec<String> = [
        "Keys",
        "  Up/Down, j/k   move in the focused pane (PgUp/PgDn, Home/End, g/G)",
        "  Tab, Shift-Tab next / previous pane: connections, subflows, events",
        "  Enter          details of the selected connection and its subflows",
        "  /              filter (any text: source, state, address, token, flags)",
        "  s              sort: source, rate, state, token, subflows",
        "  p              pause / resume the updates",
        "  Esc            close the details; clear the filter",
        "  ?              this help (any key closes it)",
        "  q              quit",
        "",
        "Subflow flags (the letters ss prints)",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for (_, letter, meaning) in subflow_flags::TABLE {
        v.push(format!("  {letter}  {meaning}"));
    }
    v.push(String::new());
    v.push("Tokens rem/loc: the peer's token (sent in our MP_JOIN SYN, else 0000) / ours".into());
    v.push("Ids loc/rem: address ids; Subflows: extra subflows used / allowed (subflows_max)".into());
    v
}

fn render_help(area: Rect, buf: &mut Buffer) {
    let lines: Vec<Line> = help_lines().into_iter().map(Line::raw).collect();
    let h = (lines.len() as u16 + 2).min(area.height);
    let w = 84.min(area.width);
    let popup = Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h };
    Clear.render(popup, buf);
    Paragraph::new(lines).block(Block::bordered().title(" Help ").border_type(BorderType::Double)).render(popup, buf);
}

#[cfg(test)]
mod source_tests {
    use super::short_source;

    #[test]
    fn a_capture_is_shown_by_its_file_name() {
        assert_eq!(short_source("capture:testdata/captures/pcap/x.pcap"), "capture:x.pcap");
        assert_eq!(short_source("kernel"), "kernel");
        assert_eq!(short_source("embedded:4242"), "embedded:4242");
        assert_eq!(short_source("live:eth0"), "live:eth0");
    }
}
