//! OS signals as one enum: parsed from commands and flags, forwarded to
//! children, sent by the supervisor.

use std::fmt;
use std::str::FromStr;

/// A signal the agent receives, forwards or sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    /// SIGTERM: polite stop.
    Term,
    /// SIGINT: interrupt (nats-server: stop at once, ends lame-duck mode).
    Int,
    /// SIGHUP: reload.
    Hup,
    /// SIGUSR1: nats-server reopens its log file.
    Usr1,
    /// SIGUSR2: nats-server enters lame-duck mode.
    Usr2,
    /// SIGKILL: cannot be caught.
    Kill,
    /// SIGSTOP: freeze.
    Stop,
    /// SIGCONT: thaw.
    Cont,
    /// SIGQUIT: quit with a core dump.
    Quit,
}

const ALL: [Signal; 9] = [
    Signal::Term,
    Signal::Int,
    Signal::Hup,
    Signal::Usr1,
    Signal::Usr2,
    Signal::Kill,
    Signal::Stop,
    Signal::Cont,
    Signal::Quit,
];

/// The signals the agent passes on to its children.
pub fn forwarded() -> [Signal; 5] {
    [
        Signal::Term,
        Signal::Int,
        Signal::Hup,
        Signal::Usr1,
        Signal::Usr2,
    ]
}

impl Signal {
    /// The nix signal, for `kill(2)`.
    pub fn to_nix(self) -> nix::sys::signal::Signal {
        use nix::sys::signal::Signal as N;
        match self {
            Signal::Term => N::SIGTERM,
            Signal::Int => N::SIGINT,
            Signal::Hup => N::SIGHUP,
            Signal::Usr1 => N::SIGUSR1,
            Signal::Usr2 => N::SIGUSR2,
            Signal::Kill => N::SIGKILL,
            Signal::Stop => N::SIGSTOP,
            Signal::Cont => N::SIGCONT,
            Signal::Quit => N::SIGQUIT,
        }
    }

    /// The signal's number on Linux.
    pub fn number(self) -> i32 {
        self.to_nix() as i32
    }

    /// The signal with this number, if it is one of ours.
    pub fn from_number(number: i32) -> Option<Signal> {
        ALL.into_iter().find(|s| s.number() == number)
    }

    /// The conventional name, such as `SIGTERM`.
    pub fn name(self) -> &'static str {
        self.to_nix().as_str()
    }

    /// The kind to listen for with `tokio::signal::unix::signal`.
    pub fn kind(self) -> tokio::signal::unix::SignalKind {
        tokio::signal::unix::SignalKind::from_raw(self.number())
    }

    /// Whether receiving it means the agent should shut down (TERM, INT).
    pub fn shuts_down(self) -> bool {
        matches!(self, Signal::Term | Signal::Int)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A signal name or number we do not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown signal {0:?}; use TERM, INT, HUP, USR1, USR2, KILL, STOP, CONT, QUIT or a number")]
pub struct UnknownSignal(pub String);

impl FromStr for Signal {
    type Err = UnknownSignal;

    /// Accepts `SIGTERM`, `TERM`, `term` and `15`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unknown = || UnknownSignal(s.to_string());
        let text = s.trim();
        if let Ok(number) = text.parse::<i32>() {
            return Signal::from_number(number).ok_or_else(unknown);
        }
        let upper = text.to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        ALL.into_iter()
            .find(|sig| sig.name().strip_prefix("SIG") == Some(bare))
            .ok_or_else(unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_numbers() {
        let cases = [
            ("SIGTERM", Some(Signal::Term)),
            ("term", Some(Signal::Term)),
            ("TERM", Some(Signal::Term)),
            ("15", Some(Signal::Term)),
            ("sigint", Some(Signal::Int)),
            ("2", Some(Signal::Int)),
            ("HUP", Some(Signal::Hup)),
            ("usr1", Some(Signal::Usr1)),
            ("SIGUSR2", Some(Signal::Usr2)),
            ("12", Some(Signal::Usr2)),
            ("9", Some(Signal::Kill)),
            ("kill", Some(Signal::Kill)),
            ("STOP", Some(Signal::Stop)),
            ("19", Some(Signal::Stop)),
            ("cont", Some(Signal::Cont)),
            ("18", Some(Signal::Cont)),
            ("QUIT", Some(Signal::Quit)),
            (" term ", Some(Signal::Term)),
            ("", None),
            ("SIG", None),
            ("terminate", None),
            ("0", None),
            ("-15", None),
            ("99999999999", None),
            ("SIGSIGTERM", None),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<Signal>().ok(), want, "{text:?}");
        }
    }

    #[test]
    fn names_and_numbers_round_trip() {
        for sig in ALL {
            assert_eq!(sig.name().parse::<Signal>(), Ok(sig));
            assert_eq!(sig.number().to_string().parse::<Signal>(), Ok(sig));
            assert_eq!(sig.to_string(), sig.name());
        }
        assert_eq!(Signal::Term.number(), 15);
        assert_eq!(Signal::Kill.number(), 9);
    }

    #[test]
    fn forwards_the_five_signals_and_only_term_int_shut_down() {
        let names: Vec<_> = forwarded().iter().map(|s| s.name()).collect();
        assert_eq!(names, ["SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1", "SIGUSR2"]);
        let shuts: Vec<_> = ALL.into_iter().filter(|s| s.shuts_down()).collect();
        assert_eq!(shuts, [Signal::Term, Signal::Int]);
    }

    #[test]
    fn the_error_says_what_to_use() {
        let err = "nope".parse::<Signal>().unwrap_err();
        assert!(err.to_string().contains("use TERM"), "{err}");
    }
}
