//! Jobs: long work as a plan of recorded steps. The engine (`crate::jobs`) records a job before
//! and after every step, so a restart resumes at the step that did not finish. Every step must
//! therefore be safe to run again (look before acting).

use serde::{Deserialize, Serialize};

use super::groups::RotationMode;
use super::keys::KeyId;

pub use keyward_proto::state::JobState;

/// One recorded step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Generate the AES-256 key in the HSM (under an id chosen and recorded first).
    GenerateKey,
    /// Find the KMS key tagged with the Keyward key id, use `active_key_id`, or CreateKey.
    CreateKey,
    /// new-material mode: the group's current KMS key receives the new material.
    UseCurrentKey,
    GetImportParameters,
    WrapKey,
    ImportMaterial,
    PutPolicy,
    MoveAlias,
    RotateOnDemand,
    DisablePrevious,
    MarkActive,
    DeleteMaterial,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GenerateKey => "generate-key",
            Self::CreateKey => "create-key",
            Self::UseCurrentKey => "use-current-key",
            Self::GetImportParameters => "get-import-parameters",
            Self::WrapKey => "wrap-key",
            Self::ImportMaterial => "import-material",
            Self::PutPolicy => "put-policy",
            Self::MoveAlias => "move-alias",
            Self::RotateOnDemand => "rotate-on-demand",
            Self::DisablePrevious => "disable-previous",
            Self::MarkActive => "mark-active",
            Self::DeleteMaterial => "delete-material",
        }
    }

    /// Every step, for fault-point names and docs.
    pub const ALL: [Step; 12] = [
        Self::GenerateKey,
        Self::CreateKey,
        Self::UseCurrentKey,
        Self::GetImportParameters,
        Self::WrapKey,
        Self::ImportMaterial,
        Self::PutPolicy,
        Self::MoveAlias,
        Self::RotateOnDemand,
        Self::DisablePrevious,
        Self::MarkActive,
        Self::DeleteMaterial,
    ];
}

/// What a job does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum JobKind {
    Rotate {
        group: String,
        mode: RotationMode,
        /// The group had an active key when the job was planned (new-material needs one).
        has_current: bool,
    },
    Sync {
        key: KeyId,
        delete_material: bool,
        update_policy: bool,
        import_material: bool,
    },
}

impl JobKind {
    pub fn kind(&self) -> keyward_proto::JobKind {
        match self {
            Self::Rotate { .. } => keyward_proto::JobKind::Rotate,
            Self::Sync { .. } => keyward_proto::JobKind::Sync,
        }
    }

    pub fn name(&self) -> &'static str {
        self.kind().as_str()
    }

    /// A new-material rotation: new material goes into the group's current KMS key.
    pub fn replaces_material(&self) -> bool {
        matches!(
            self,
            Self::Rotate {
                mode: RotationMode::NewMaterial,
                has_current: true,
                ..
            }
        )
    }

    /// The steps, in order.
    pub fn plan(&self) -> Vec<Step> {
        match self {
            Self::Rotate {
                mode: RotationMode::NewMaterial,
                has_current: true,
                ..
            } => vec![
                Step::GenerateKey,
                Step::UseCurrentKey,
                Step::GetImportParameters,
                Step::WrapKey,
                Step::ImportMaterial,
                Step::PutPolicy,
                Step::RotateOnDemand,
                Step::MarkActive,
            ],
            Self::Rotate { .. } => vec![
                Step::GenerateKey,
                Step::CreateKey,
                Step::GetImportParameters,
                Step::WrapKey,
                Step::ImportMaterial,
                Step::PutPolicy,
                Step::MoveAlias,
                Step::DisablePrevious,
                Step::MarkActive,
            ],
            Self::Sync {
                delete_material,
                update_policy,
                import_material,
                ..
            } => {
                let mut steps = Vec::new();
                if *delete_material {
                    steps.push(Step::DeleteMaterial);
                }
                if *update_policy {
                    steps.push(Step::PutPolicy);
                }
                if *import_material {
                    steps.extend([
                        Step::GetImportParameters,
                        Step::WrapKey,
                        Step::ImportMaterial,
                    ]);
                }
                steps
            }
        }
    }
}

/// A line of a job's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub time_ms: u64,
    pub text: String,
}

/// What the steps found and made, recorded as they go.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct JobData {
    /// The HSM key this job generates or synchronises (chosen before it is generated).
    #[serde(default)]
    pub key: Option<KeyId>,
    #[serde(default)]
    pub aws_key_id: Option<String>,
    #[serde(default)]
    pub aws_arn: Option<String>,
    /// The group's active key before this rotation, and its KMS key.
    #[serde(default)]
    pub previous_key: Option<KeyId>,
    #[serde(default)]
    pub previous_aws_key_id: Option<String>,
    /// The KMS key the alias pointed at before the move (recorded before moving it).
    #[serde(default)]
    pub alias_was: Option<String>,
    #[serde(default)]
    pub valid_to_ms: Option<u64>,
    /// The create-key step has called AWS (recorded before the call). Only then can a KMS key
    /// with this job's tag exist, so only then does a rerun search for one (the search reads
    /// every key's tags in the region). Jobs stored before this field existed count as sent.
    #[serde(default = "sent_before_recorded")]
    pub create_key_sent: bool,
}

fn sent_before_recorded() -> bool {
    true
}

/// The most log lines a job keeps (retries of a long outage must not grow it without end).
pub const MAX_LOG_LINES: usize = 2000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: u64,
    pub kind: JobKind,
    pub state: JobState,
    pub steps: Vec<Step>,
    /// Steps before this index are done.
    pub next_step: usize,
    pub requested_by: Vec<String>,
    pub created_ms: u64,
    pub updated_ms: u64,
    #[serde(default)]
    pub finished_ms: Option<u64>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub data: JobData,
    #[serde(default)]
    pub log: Vec<LogLine>,
    /// Lines dropped from the front of the log when it was full.
    #[serde(default)]
    pub log_dropped: usize,
}

impl Job {
    pub fn new(id: u64, kind: JobKind, requested_by: Vec<String>, now_ms: u64) -> Self {
        Self {
            id,
            steps: kind.plan(),
            kind,
            state: JobState::Queued,
            next_step: 0,
            requested_by,
            created_ms: now_ms,
            updated_ms: now_ms,
            finished_ms: None,
            error: None,
            data: JobData::default(),
            log: Vec::new(),
            log_dropped: 0,
        }
    }

    pub fn log(&mut self, now_ms: u64, text: impl Into<String>) {
        if self.log.len() >= MAX_LOG_LINES {
            self.log.remove(0);
            self.log_dropped += 1;
        }
        self.log.push(LogLine {
            time_ms: now_ms,
            text: text.into(),
        });
        self.updated_ms = now_ms;
    }

    /// Percent of steps done.
    pub fn progress(&self) -> u8 {
        if self.state == JobState::Succeeded || self.steps.is_empty() {
            return 100;
        }
        u8::try_from(self.next_step.min(self.steps.len()) * 100 / self.steps.len()).unwrap_or(100)
    }

    pub fn current_step(&self) -> Option<Step> {
        self.steps.get(self.next_step).copied()
    }

    /// The group the job works on (a sync's group is its key's).
    pub fn target(&self) -> String {
        match &self.kind {
            JobKind::Rotate { group, .. } => group.clone(),
            JobKind::Sync { key, .. } => key.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_follow_the_mode_and_options() {
        let rotate = JobKind::Rotate {
            group: "g".into(),
            mode: RotationMode::NewKey,
            has_current: true,
        };
        assert_eq!(rotate.plan().len(), 9);
        assert_eq!(rotate.plan()[6], Step::MoveAlias);
        let first_material = JobKind::Rotate {
            group: "g".into(),
            mode: RotationMode::NewMaterial,
            has_current: false,
        };
        assert_eq!(first_material.plan(), rotate.plan());
        let material = JobKind::Rotate {
            group: "g".into(),
            mode: RotationMode::NewMaterial,
            has_current: true,
        };
        assert!(material.plan().contains(&Step::RotateOnDemand));
        assert!(!material.plan().contains(&Step::MoveAlias));
        let sync = JobKind::Sync {
            key: KeyId([1; 16]),
            delete_material: true,
            update_policy: false,
            import_material: true,
        };
        assert_eq!(
            sync.plan(),
            [
                Step::DeleteMaterial,
                Step::GetImportParameters,
                Step::WrapKey,
                Step::ImportMaterial
            ]
        );
    }

    #[test]
    fn the_log_is_bounded_and_progress_counts_steps() {
        let mut job = Job::new(
            1,
            JobKind::Sync {
                key: KeyId([1; 16]),
                delete_material: true,
                update_policy: true,
                import_material: false,
            },
            vec![],
            0,
        );
        for i in 0..MAX_LOG_LINES + 5 {
            job.log(i as u64, "x");
        }
        assert_eq!(job.log.len(), MAX_LOG_LINES);
        assert_eq!(job.log_dropped, 5);
        assert_eq!(job.progress(), 0);
        job.next_step = 1;
        assert_eq!(job.progress(), 50);
    }
}
