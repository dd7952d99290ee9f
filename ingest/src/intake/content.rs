//! Whole-message content checks, by the shared rules of `hazgate_wire::validate`: an alarm,
//! a state or a gap with content no gateway sends is refused as a whole. Telemetry is not
//! refused here: its readings are judged one by one (`triage`), so one bad reading does
//! not cost the good ones. Time is never a reason to refuse (see `triage`).

use hazgate_wire::validate::{self, Invalid};
use hazgate_wire::Message;

pub fn check(message: &Message) -> Result<(), Invalid> {
    match message {
        Message::Telemetry(_) | Message::Status(_) => Ok(()),
        Message::Gap(g) => validate::gap(g),
        Message::Alarm(a) => validate::alarm_event(a),
        Message::State(s) => validate::state(s),
        Message::Site(m) => validate::master(m),
        Message::Stats(s) => validate::stats(s),
    }
}
