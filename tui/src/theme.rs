//! Colours, or none: with `NO_COLOR` set (to anything but the empty string, as no-color.org
//! says) every style is built from bold, reverse and underline alone.

use keyward_proto::{JobState, KeyState};
use ratatui::style::{Color, Modifier, Style};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    pub const COLOR: Self = Self { color: true };
    pub const MONO: Self = Self { color: false };

    /// Monochrome when `NO_COLOR` is set and not empty.
    pub fn from_env() -> Self {
        Self::from_no_color(std::env::var_os("NO_COLOR").as_deref())
    }

    pub fn from_no_color(no_color: Option<&std::ffi::OsStr>) -> Self {
        match no_color {
            Some(v) if !v.is_empty() => Self::MONO,
            _ => Self::COLOR,
        }
    }

    fn pick(self, color: Style, mono: Style) -> Style {
        if self.color { color } else { mono }
    }

    pub fn text(self) -> Style {
        Style::default()
    }
    pub fn dim(self) -> Style {
        self.pick(Style::default().fg(Color::DarkGray), Style::default())
    }
    pub fn label(self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }
    pub fn title(self) -> Style {
        self.pick(
            Style::default()
                .fg(Color::Cyan)
                .add_modifier(Modifier::BOLD),
            Style::default().add_modifier(Modifier::BOLD),
        )
    }
    /// The current tab, the selected row, the focused field.
    pub fn selected(self) -> Style {
        self.pick(
            Style::default()
                .fg(Color::Black)
                .bg(Color::Cyan)
                .add_modifier(Modifier::BOLD),
            Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD),
        )
    }
    pub fn focus_border(self) -> Style {
        self.pick(
            Style::default().fg(Color::Cyan),
            Style::default().add_modifier(Modifier::BOLD),
        )
    }
    pub fn good(self) -> Style {
        self.pick(Style::default().fg(Color::Green), Style::default())
    }
    pub fn warn(self) -> Style {
        self.pick(
            Style::default().fg(Color::Yellow),
            Style::default().add_modifier(Modifier::BOLD),
        )
    }
    pub fn bad(self) -> Style {
        self.pick(
            Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
            Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
        )
    }
    /// The error bar and the "daemon unreachable" banner.
    pub fn alert(self) -> Style {
        self.pick(
            Style::default()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD),
            Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD),
        )
    }
    pub fn key(self) -> Style {
        self.pick(
            Style::default()
                .fg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
            Style::default().add_modifier(Modifier::BOLD),
        )
    }
    pub fn gauge(self) -> Style {
        self.pick(Style::default().fg(Color::Green), Style::default())
    }
    /// A job's state.
    pub fn job_state(self, state: JobState) -> Style {
        match state {
            JobState::Succeeded => self.good(),
            JobState::Running | JobState::Queued => self.warn(),
            JobState::Failed => self.bad(),
        }
    }
    /// A key's state.
    pub fn key_state(self, state: KeyState) -> Style {
        match state {
            KeyState::Active => self.good(),
            KeyState::Pending => self.warn(),
            KeyState::Expired => self.bad(),
            KeyState::Previous | KeyState::Disabled => self.dim(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn no_color_means_monochrome_unless_empty() {
        assert_eq!(Theme::from_no_color(None), Theme::COLOR);
        assert_eq!(Theme::from_no_color(Some(OsStr::new(""))), Theme::COLOR);
        assert_eq!(Theme::from_no_color(Some(OsStr::new("1"))), Theme::MONO);
    }

    #[test]
    fn monochrome_styles_carry_no_colour() {
        let t = Theme::MONO;
        for style in [
            t.text(),
            t.dim(),
            t.label(),
            t.title(),
            t.selected(),
            t.focus_border(),
            t.good(),
            t.warn(),
            t.bad(),
            t.alert(),
            t.key(),
            t.gauge(),
        ]
        .into_iter()
        .chain(JobState::ALL.iter().map(|s| t.job_state(*s)))
        .chain(KeyState::ALL.iter().map(|s| t.key_state(*s)))
        {
            assert_eq!(style.fg, None);
            assert_eq!(style.bg, None);
        }
    }
}
