//! The jobs tree: jobs by id (big-endian u64, so iteration is in id order). Job ids are never
//! reused: the next id is one past the highest ever stored.

use super::{Store, StoreResult, decode, decode_all, encode};
use crate::domain::jobs::Job;

impl Store {
    pub fn put_job(&self, job: &Job) -> StoreResult<()> {
        self.jobs.insert(job.id.to_be_bytes(), encode(job))?;
        Ok(())
    }

    pub fn get_job(&self, id: u64) -> StoreResult<Option<Job>> {
        self.jobs
            .get(id.to_be_bytes())?
            .map(|raw| decode("jobs", id.to_string().as_bytes(), &raw))
            .transpose()
    }

    pub fn list_jobs(&self) -> StoreResult<Vec<Job>> {
        decode_all("jobs", &self.jobs)
    }

    /// One past the highest job id stored (1 for the first job).
    pub fn next_job_id(&self) -> StoreResult<u64> {
        Ok(match self.jobs.last()? {
            Some((k, _)) => <[u8; 8]>::try_from(k.as_ref())
                .map(u64::from_be_bytes)
                .unwrap_or(0)
                .saturating_add(1),
            None => 1,
        })
    }
}
