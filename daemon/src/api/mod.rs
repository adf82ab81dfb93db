//! The one API every front end uses. A front end turns its input into a [`Request`] and shows
//! the [`Response`]; it holds no business logic. Requests run on the blocking pool, because the
//! appliance core does PKCS#11 and sled I/O.

pub mod console;

use std::sync::Arc;

use keyward_proto::{ApiError, ErrorCode, Request, Response};
use tracing::error;

use crate::appliance::Appliance;
use crate::domain::audit::Channel;
use crate::error::Result;

/// Who is asking, as far as the transport can tell.
#[derive(Debug, Clone)]
pub struct Caller {
    pub channel: Channel,
    /// Peer uid on the console socket.
    pub uid: Option<u32>,
}

#[derive(Clone)]
pub struct Api {
    appliance: Arc<Appliance>,
}

impl Api {
    pub fn new(appliance: Arc<Appliance>) -> Self {
        Self { appliance }
    }

    pub async fn handle(&self, request: Request, caller: Caller) -> Response {
        let appliance = self.appliance.clone();
        match tokio::task::spawn_blocking(move || dispatch(&appliance, request, &caller)).await {
            Ok(Ok(data)) => Response::ok(data),
            Ok(Err(e)) => Response::err(e.into()),
            Err(join) => {
                error!(error = %join, "request handler failed");
                Response::err(ApiError::new(
                    ErrorCode::Internal,
                    "the request failed inside the daemon; see its log",
                ))
            }
        }
    }
}

fn dispatch(
    appliance: &Appliance,
    request: Request,
    _caller: &Caller,
) -> Result<serde_json::Value> {
    match request {
        Request::Status => Ok(serde_json::to_value(appliance.status()?).unwrap_or_default()),
    }
}
