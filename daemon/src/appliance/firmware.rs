//! Firmware install through the daemon: two administrators, audited, with the same verifier as
//! `keyward-image install` (signature, every hash, safe paths, no silent downgrade).

use std::path::Path;

use keyward_proto::FirmwareInstalled;

use super::Appliance;
use crate::domain::audit::Actors;
use crate::error::{Error, Result};

impl Appliance {
    pub fn firmware_install(
        &self,
        by: &Actors,
        image: &str,
        allow_downgrade: bool,
    ) -> Result<FirmwareInstalled> {
        let Some(firmware) = &self.firmware else {
            return Err(Error::Invalid("firmware install is not configured: set [firmware] root and public_key in the config".into()));
        };
        let action = if allow_downgrade {
            "firmware.install (downgrade allowed)"
        } else {
            "firmware.install"
        };
        self.audited(by, action, image, || {
            let root = keyward_image::Root::new(&firmware.root);
            let manifest = root
                .install(Path::new(image), &firmware.public_key, allow_downgrade)
                .map_err(|e| Error::Invalid(format!("firmware image {image} refused: {e}")))?;
            let slot = root.active().ok().flatten().unwrap_or("?");
            Ok(FirmwareInstalled {
                version: manifest.version.to_string(),
                slot: slot.to_owned(),
                active: true,
            })
        })
    }
}
