//! States as enums, on both sides of the wire: a job's, a key's (as Keyward sees it and as AWS
//! reports it), and a connection's. Each is written on the wire as the text it always was.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An enum that travels as fixed text: `as_str`, `Display`, `parse` and serde from one list.
macro_rules! text_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$(Self::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)*
                }
            }

            pub fn parse(text: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == text)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                Self::parse(&text).ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "'{}' is not a {}; expected one of {}",
                        text.escape_debug(),
                        stringify!($name),
                        Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
                    ))
                })
            }
        }
    };
}

text_enum! {
    /// Where a job is.
    pub enum JobState {
        Queued => "queued",
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
    }
}

impl JobState {
    pub fn is_done(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }
}

text_enum! {
    /// What a job does.
    pub enum JobKind {
        Rotate => "rotate",
        Sync => "sync",
    }
}

text_enum! {
    /// Where a customer key is in its life, as Keyward sees it.
    #[derive(Default)]
    pub enum KeyState {
        /// Generated in the HSM; the rotation that made it has not finished.
        #[default]
        Pending => "pending",
        /// The newest key of its group: it carries the alias.
        Active => "active",
        /// Replaced by a newer key; still usable in AWS.
        Previous => "previous",
        /// Replaced and disabled in AWS.
        Disabled => "disabled",
        /// Its material passed its ValidTo: AWS deleted it, and the key cannot be used until
        /// it is synchronised (re-imported with a new expiry).
        Expired => "expired",
    }
}

text_enum! {
    /// Whether a group's credential reached AWS KMS (`group test`).
    pub enum Connection {
        Connected => "Connected",
        NotConnected => "Not connected",
    }
}

/// A KMS key's state as AWS reports it (`KeyState` in the KMS API). A state AWS adds later is
/// kept as its text, never refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AwsKeyState {
    Creating,
    Enabled,
    Disabled,
    PendingDeletion,
    PendingImport,
    PendingReplicaDeletion,
    Unavailable,
    Updating,
    Other(String),
}

impl AwsKeyState {
    const KNOWN: [(AwsKeyState, &'static str); 8] = [
        (Self::Creating, "Creating"),
        (Self::Enabled, "Enabled"),
        (Self::Disabled, "Disabled"),
        (Self::PendingDeletion, "PendingDeletion"),
        (Self::PendingImport, "PendingImport"),
        (Self::PendingReplicaDeletion, "PendingReplicaDeletion"),
        (Self::Unavailable, "Unavailable"),
        (Self::Updating, "Updating"),
    ];

    pub fn parse(text: &str) -> Self {
        Self::KNOWN
            .iter()
            .find(|(_, t)| *t == text)
            .map_or_else(|| Self::Other(text.to_owned()), |(s, _)| s.clone())
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Other(text) => text,
            known => Self::KNOWN
                .iter()
                .find(|(s, _)| s == known)
                .map_or("", |(_, t)| t),
        }
    }
}

impl std::fmt::Display for AwsKeyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for AwsKeyState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AwsKeyState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::parse(&String::deserialize(d)?))
    }
}

/// `key show`'s AWS state: live, or as last seen when AWS did not answer (and why). On the
/// wire it is one string, `Enabled` or `Enabled (as last seen; AWS did not answer: …)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenState {
    /// `None` when Keyward never saw the key in AWS.
    pub state: Option<AwsKeyState>,
    /// Set when AWS did not answer: the state is as last seen.
    pub unanswered: Option<String>,
}

const STALE: &str = " (as last seen; AWS did not answer: ";

impl SeenState {
    pub fn live(state: AwsKeyState) -> Self {
        Self {
            state: Some(state),
            unanswered: None,
        }
    }

    fn text(&self) -> String {
        let state = self.state.as_ref().map_or("unknown", AwsKeyState::as_str);
        match &self.unanswered {
            None => state.to_owned(),
            Some(why) => format!("{state}{STALE}{why})"),
        }
    }

    fn parse(text: &str) -> Self {
        match text.strip_suffix(')').and_then(|t| t.split_once(STALE)) {
            Some((state, why)) => Self {
                state: (state != "unknown").then(|| AwsKeyState::parse(state)),
                unanswered: Some(why.to_owned()),
            },
            None => Self::live(AwsKeyState::parse(text)),
        }
    }
}

impl std::fmt::Display for SeenState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text())
    }
}

impl Serialize for SeenState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text())
    }
}

impl<'de> Deserialize<'de> for SeenState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::parse(&String::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_travel_as_their_old_text() {
        assert_eq!(
            serde_json::to_string(&JobState::Succeeded).unwrap(),
            "\"succeeded\""
        );
        assert_eq!(
            serde_json::to_string(&KeyState::Expired).unwrap(),
            "\"expired\""
        );
        assert_eq!(
            serde_json::to_string(&Connection::NotConnected).unwrap(),
            "\"Not connected\""
        );
        let err = serde_json::from_str::<JobState>("\"done\"").unwrap_err();
        assert!(err.to_string().contains("queued, running"), "{err}");
        for s in ["Enabled", "PendingImport", "SomethingNew"] {
            let state: AwsKeyState = serde_json::from_str(&format!("\"{s}\"")).unwrap();
            assert_eq!(state.as_str(), s);
        }
        assert_eq!(AwsKeyState::parse("Enabled"), AwsKeyState::Enabled);
    }

    #[test]
    fn a_stale_state_round_trips() {
        let stale = SeenState {
            state: Some(AwsKeyState::Disabled),
            unanswered: Some("timed out (after 3 attempts)".into()),
        };
        let text = serde_json::to_string(&stale).unwrap();
        assert_eq!(
            text,
            "\"Disabled (as last seen; AWS did not answer: timed out (after 3 attempts))\""
        );
        assert_eq!(serde_json::from_str::<SeenState>(&text).unwrap(), stale);
        let never = SeenState {
            state: None,
            unanswered: Some("refused".into()),
        };
        let text = serde_json::to_string(&never).unwrap();
        assert_eq!(serde_json::from_str::<SeenState>(&text).unwrap(), never);
    }
}
