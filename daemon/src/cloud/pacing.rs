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
    windows: Mutex<HashMap<(String, String, &'static str), Window>>,
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

    /// Blocks until the call may go; `waiting` is told once, before the first wait.
    pub fn admit(&self, credential: &str, region: &str, op: &str, waiting: impl FnOnce(String)) {
        let (quota, rate) = self.quota(op);
        if rate == Rate::Off {
            return;
        }
        let key = (credential.to_owned(), region.to_owned(), quota);
        let mut waiting = Some(waiting);
        loop {
            let wait = {
                let mut windows = self
                    .windows
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                match windows
                    .entry(key.clone())
                    .or_default()
                    .take(rate, Instant::now(), MARGIN)
                {
                    Ok(()) => return,
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
            pacer.admit("prod", "eu-west-1", "GetParametersForImport", |m| {
                told.push(m)
            });
        }
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(600), "{took:?}");
        assert_eq!(told.len(), 2, "{told:?}");
        assert!(told[0].contains("waiting for quota"), "{told:?}");
        // Another region, and an unpaced call, go at once.
        let start = Instant::now();
        pacer.admit("prod", "us-east-1", "GetParametersForImport", |_| {
            panic!("no wait")
        });
        pacer.admit("prod", "eu-west-1", "DescribeKey", |_| panic!("no wait"));
        assert!(start.elapsed() < Duration::from_millis(100));
    }
}
