//! The schedule tree: what the scheduler remembers about each key group, by group name.

use super::{Store, StoreResult, decode, encode};
use crate::domain::schedule::ScheduleState;

impl Store {
    pub fn get_schedule(&self, group: &str) -> StoreResult<ScheduleState> {
        Ok(self
            .schedule
            .get(group)?
            .map(|raw| decode("schedule", group.as_bytes(), &raw))
            .transpose()?
            .unwrap_or_default())
    }

    pub fn put_schedule(&self, group: &str, state: &ScheduleState) -> StoreResult<()> {
        self.schedule.insert(group.as_bytes(), encode(state))?;
        Ok(())
    }

    pub fn remove_schedule(&self, group: &str) -> StoreResult<()> {
        self.schedule.remove(group)?;
        Ok(())
    }
}
