//! Appliance settings: values the operators change at run time under dual control, kept in the
//! database (the config only seeds them on the first start). `settings show` lists them and
//! `settings set` changes one, audited with the old and the new value.

use keyward_proto::SettingView;
use tracing::{error, info, warn};

use super::Appliance;
use crate::domain::audit::{Actors, AuditEntry, Channel, Outcome};
use crate::error::{Error, Result};
use crate::store::settings::ROTATION_DESIGNATED;

/// The settings `settings show` lists and `settings set` changes.
const SETTINGS: [(&str, &str); 1] = [(
    ROTATION_DESIGNATED,
    "this appliance runs scheduled rotations (true on exactly one appliance of a cluster); force rotate works everywhere",
)];

impl Appliance {
    /// Seeds `rotation.designated` from the config on the first start; after that the database
    /// holds it and `settings set` changes it.
    pub fn seed_settings(&self) -> Result<()> {
        let configured = self.rotation.designated;
        match self.store.get_bool_setting(ROTATION_DESIGNATED)? {
            None => {
                self.audit.append(
                    AuditEntry::new(
                        Channel::System,
                        "settings.seed",
                        ROTATION_DESIGNATED,
                        Outcome::Notice,
                    )
                    .detail("value", configured.to_string())
                    .detail("from", "the config file ([rotation] designated)"),
                )?;
                self.store
                    .put_bool_setting(ROTATION_DESIGNATED, configured)?;
                self.store.flush()?;
                info!(
                    designated = configured,
                    "rotation.designated seeded from the config"
                );
            }
            Some(stored) if stored != configured => warn!(
                stored,
                configured,
                "rotation.designated in the config differs from the setting; the setting wins ('settings set rotation.designated …' changes it)"
            ),
            Some(_) => {}
        }
        Ok(())
    }

    /// `rotation.designated`: the setting, or the config's value before it is seeded.
    pub(crate) fn designated_setting(&self) -> Result<bool> {
        Ok(self
            .store
            .get_bool_setting(ROTATION_DESIGNATED)?
            .unwrap_or(self.rotation.designated))
    }

    pub fn designated(&self) -> bool {
        match self.designated_setting() {
            Ok(v) => v,
            Err(e) => {
                error!(error = %e, "cannot read rotation.designated; scheduled rotation pauses");
                false
            }
        }
    }

    pub fn settings_show(&self) -> Vec<SettingView> {
        SETTINGS
            .iter()
            .map(|(name, description)| SettingView {
                name: (*name).into(),
                value: self.designated().to_string(),
                description: (*description).into(),
            })
            .collect()
    }

    /// `settings set NAME VALUE` (two administrators; audited with the old and new value).
    pub fn settings_set(&self, by: &Actors, name: &str, value: &str) -> Result<Vec<SettingView>> {
        if !SETTINGS.iter().any(|(n, _)| *n == name) {
            return Err(Error::NotFound(format!(
                "no setting '{name}'; 'settings show' lists them"
            )));
        }
        let new = crate::domain::groups::parse_bool(name, value).map_err(Error::Invalid)?;
        let old = self.designated_setting()?;
        let (old, new_text) = (old.to_string(), new.to_string());
        self.audited_with(
            by,
            "settings.set",
            name,
            &[("old", old.as_str()), ("new", new_text.as_str())],
            || {
                Ok(self
                    .store
                    .put_bool_setting(name, new)
                    .and_then(|()| self.store.flush())?)
            },
        )?;
        Ok(self.settings_show())
    }
}
