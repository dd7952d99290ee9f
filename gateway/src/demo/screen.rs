//! Where the view goes: a terminal gets a screen redrawn in place about once a second;
//! a pipe gets one plain line per change of a watched point, which scripts and tests read.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::board::{Board, Update};
use super::view::{self, Header};

const HIDE_CURSOR: &str = "\x1b[?25l";
const SHOW_CURSOR: &str = "\x1b[?25h";
/// Lines wider than the window are cut, not wrapped, so the frame keeps its height.
const NO_WRAP: &str = "\x1b[?7l";
const WRAP: &str = "\x1b[?7h";
const CLEAR_SCREEN: &str = "\x1b[2J";
/// Used when the terminal does not say its size.
const FALLBACK_SIZE: (usize, usize) = (120, 50);

pub struct Screen {
    terminal: bool,
    broker: SocketAddr,
    filter: String,
    speed: f64,
    started: Instant,
    duration: Option<Duration>,
}

impl Screen {
    /// Says where the broker is and how to watch it, and takes over the terminal if any.
    pub fn open(
        broker: SocketAddr,
        filter: String,
        speed: f64,
        duration: Option<Duration>,
    ) -> Self {
        let screen = Screen {
            terminal: std::io::stdout().is_terminal(),
            broker,
            filter,
            speed,
            started: Instant::now(),
            duration,
        };
        if screen.terminal {
            write_out(&format!("{HIDE_CURSOR}{NO_WRAP}{CLEAR_SCREEN}"));
        } else {
            let until = duration
                .map(|d| format!(", stops after {}s", d.as_secs()))
                .unwrap_or_default();
            write_out(&format!(
                "hazgate demo: broker mqtt://{broker}, speed x{speed}{until}\n\
                 watch it with: {}\n",
                view::hint(broker, &screen.filter)
            ));
        }
        screen
    }

    /// A message arrived: the plain output reports it at once.
    pub fn update(&self, update: &Update) {
        if !self.terminal {
            for line in view::plain_lines(update) {
                write_out(&format!("{line}\n"));
            }
        }
    }

    /// The once-a-second redraw of the terminal screen.
    pub fn tick(&self, board: &Board) {
        if !self.terminal {
            return;
        }
        let elapsed = self.started.elapsed();
        let header = Header {
            broker: self.broker,
            filter: self.filter.clone(),
            speed: self.speed,
            elapsed,
            remaining: self.duration.map(|d| d.saturating_sub(elapsed)),
        };
        let (width, height) = terminal_size::terminal_size()
            .map(|(w, h)| (w.0 as usize, h.0 as usize))
            .unwrap_or(FALLBACK_SIZE);
        let now_ms = crate::poll::cycle::now_ms();
        write_out(&view::frame(board, &header, now_ms, width, height));
    }

    /// Leaves the last frame on screen and gives the cursor back.
    pub fn close(&self, board: &Board, why: &str) {
        self.tick(board);
        if self.terminal {
            write_out(&format!("{SHOW_CURSOR}{WRAP}"));
        }
        write_out(&format!(
            "demo stopped ({why}): {} messages seen, {} ignored\n",
            board.messages, board.ignored
        ));
    }
}

/// A closed pipe (`hazgate demo | head`) must not kill the demo before it cleans up.
fn write_out(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}
