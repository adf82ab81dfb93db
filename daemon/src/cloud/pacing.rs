//! Pacing: AWS KMS calls are limited per (credential, region) to configured rates, so a run of
//! many rotations stays inside AWS's request quotas instead of being throttled. Each attempt of
//! a call takes a slot first; one that has to wait says so ("waiting for quota") in the log of
//! the job that made it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::Quotas;
use crate::domain::schedule::{Rate, Window};

/// Added to every wait, so AWS (which counts arrivals, a little later and jittered) never sees
/// more than the rate.
const MARGIN: Duration = Duration::from_millis(25);

pub struct Pacer {
    quotas: Quotas,
    windows: Mutex<HashMap<WindowKey, Window>>,
}

impl Pacer {
    pub fn new(quotas: Quotas) -> Self {
        Self {
            quotas,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// The quota an API call counts against, and its rate.
    fn quota(&self, op: &str) -> (&'static str, Rate) {
        let q = &self.quotas;
        match op {
            "GetParametersForImport" => ("get_parameters_for_import", q.get_parameters_for_import),
            "ImportKeyMaterial" => ("import_key_material", q.import_key_material),
            "CreateKey" => ("create_key", q.create_key),
            "CreateAlias" | "UpdateAlias" | "DeleteAlias" => ("alias", q.alias),
            "PutKeyPolicy" => ("policy", q.policy),
            _ => ("other", q.other),
        }
    }

    /// Blocks until the call may go; `waiting` is told once, before the first wait. The
    /// returned ticket is the call's slot: drop it when the attempt has ended.
    pub fn admit(
        &self,
        credential: &str,
        region: &str,
        op: &str,
        waiting: impl FnOnce(String),
    ) -> Ticket<'_> {
        let (quota, rate) = self.quota(op);
        if rate == Rate::Off {
            return Ticket(self, None);
        }
        let key = (credential.to_owned(), region.to_owned(), quota);
        let mut waiting = Some(waiting);
        loop {
            let wait = {
                let mut windows = self.lock();
                match windows
                    .entry(key.clone())
                    .or_default()
                    .take(rate, Instant::now(), MARGIN)
                {
                    Ok(()) => return Ticket(self, Some(key)),
                    Err(wait) => wait,
                }
            };
            if let Some(tell) = waiting.take() {
                tell(format!(
                    "kms:{op}: waiting for quota (aws.quotas.{quota} = {rate} for credential {credential} in {region}): about {} ms",
                    wait.as_millis()
                ));
            }
            std::thread::sleep(wait);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<WindowKey, Window>> {
        self.windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

type WindowKey = (String, String, &'static str);

/// A call's slot in its quota; the quota counts from when it is dropped.
pub struct Ticket<'a>(&'a Pacer, Option<WindowKey>);

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.1.take()
            && let Some(window) = self.0.lock().get_mut(&key)
        {
            window.end(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_beyond_the_rate_wait_and_say_so_other_quotas_do_not() {
        let pacer = Pacer::new(Quotas {
            get_parameters_for_import: Rate::Limit {
                calls: 1,
                per: Duration::from_millis(300),
            },
            ..Quotas::default()
        });
        let start = Instant::now();
        let mut told = Vec::new();
        for _ in 0..3 {
            let _call = pacer.admit("prod", "eu-west-1", "GetParametersForImport", |m| {
                told.push(m)
            });
        }
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(600), "{took:?}");
        assert_eq!(told.len(), 2, "{told:?}");
        assert!(told[0].contains("waiting for quota"), "{told:?}");
        // Another region, and an unpaced call, go at once.
        let start = Instant::now();
        let _a = pacer.admit("prod", "us-east-1", "GetParametersForImport", |_| {
            panic!("no wait")
        });
        let _b = pacer.admit("prod", "eu-west-1", "DescribeKey", |_| panic!("no wait"));
        assert!(start.elapsed() < Duration::from_millis(100));
    }
}
