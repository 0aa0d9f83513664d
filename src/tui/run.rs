//! The one run loop: poll the sources (a snapshot every interval, events on
//! every tick), feed the app, draw, and wait for a key at most until the
//! next tick.

use std::io;
use std::time::{Duration, Instant};

use crossterm::event::{self, Event, KeyEventKind};

use super::app::{Action, App};
use crate::diag::Sources;

/// How often events are collected and the screen redrawn between snapshots.
pub const TICK: Duration = Duration::from_millis(100);

/// Run the view until the user quits.
pub fn run(mut sources: Sources, mut app: App) -> io::Result<()> {
    use std::io::IsTerminal;
    if !io::stdout().is_terminal() || !io::stdin().is_terminal() {
        return Err(io::Error::other("the view needs a terminal; use --once or --json for a snapshot"));
    }
    let mut terminal = ratatui::try_init()?;
    let r = run_loop(&mut terminal, &mut sources, &mut app);
    ratatui::restore();
    r
}

fn run_loop(terminal: &mut ratatui::DefaultTerminal, sources: &mut Sources, app: &mut App) -> io::Result<()> {
    let start = Instant::now();
    let mut next_snapshot = Duration::ZERO;
    loop {
        let now = start.elapsed();
        let want = now >= next_snapshot;
        if want {
            next_snapshot = now + app.interval;
        }
        let update = sources.poll(now, want);
        app.ingest(update, now);
        terminal.draw(|f| f.render_widget(&*app, f.area()))?;
        let wait = TICK.min(next_snapshot.saturating_sub(start.elapsed()));
        if event::poll(wait)? {
            // Handle every key already queued before drawing again.
            loop {
                if let Event::Key(k) = event::read()? {
                    if k.kind != KeyEventKind::Release && app.on_key(k) == Action::Quit {
                        return Ok(());
                    }
                }
                if !event::poll(Duration::ZERO)? {
                    break;
                }
            }
        }
    }
}
