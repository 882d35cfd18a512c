//! What the job hubs of every service follow: one upstream object with the
//! credentials to poll it, its key (which never holds a caller's token), and
//! how a failed poll reads to the hub. A project's object read over REST
//! (a VBS or TaurusDB job, a CSBS backup) is a `ProjectSource`, which makes
//! it a `JobSource`.

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use prost::Message;
use sha2::{Digest, Sha256};

use crate::rest::{CallContext, RestError};
use crate::watch::Failure;

/// One upstream object to follow (a VBS, TaurusDB or ZStack job, a CSBS
/// backup), with the credentials to poll it.
#[derive(Debug)]
pub(crate) struct Watched {
    ctx: CallContext,
    id: String,
}

impl Watched {
    /// The object `id` as the caller of `ctx` sees it. The poller outlives
    /// the call, so the call's deadline does not bound its polls.
    pub(crate) fn new(ctx: &CallContext, id: &str) -> Watched {
        Watched {
            ctx: CallContext {
                project_id: ctx.project_id.clone(),
                deadline: None,
                caller_token: ctx.caller_token.clone(),
                send_by: None,
                caller: None,
            },
            id: id.to_string(),
        }
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// The context of one poll, which `poll_deadline` bounds with its retries.
    pub(crate) fn poll_context(&self, poll_deadline: Duration) -> CallContext {
        CallContext {
            deadline: Some(Instant::now() + poll_deadline),
            ..self.ctx.clone()
        }
    }
}

/// One object as seen with one set of credentials. Callers with different
/// pass-through tokens never share a poller; the token itself is not kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct WatchedKey {
    /// Keeps the services' objects apart in a fleet's shared keys; "" for VBS.
    service: &'static str,
    project_id: String,
    id: String,
    token: Option<[u8; 32]>,
}

impl WatchedKey {
    pub(crate) fn new(service: &'static str, target: &Watched) -> WatchedKey {
        WatchedKey {
            service,
            project_id: target.ctx.project_id.clone(),
            id: target.id.clone(),
            token: caller_token_hash(&target.ctx),
        }
    }

    /// `[service:]project:id:token hash` (`-` without a pass-through token):
    /// ids are safe path segments, so they hold no `:`.
    pub(crate) fn shared(&self) -> String {
        let token = self.token.map_or_else(|| "-".to_string(), hex::encode);
        match self.service {
            "" => format!("{}:{}:{token}", self.project_id, self.id),
            service => format!("{service}:{}:{}:{token}", self.project_id, self.id),
        }
    }

    /// The project whose poll rate the object shares.
    pub(crate) fn project_id(&self) -> &str {
        &self.project_id
    }
}

impl fmt::Display for WatchedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.service {
            "" => f.write_str(&self.id),
            service => write!(f, "{service} {}", self.id),
        }
    }
}

/// A backup service's object of one project, read over the service's REST
/// API with the caller's credentials, its state a message of the contract.
/// Everything else a `JobSource` needs is the same for all of them, and
/// `project_job_source!` writes it.
pub(crate) trait ProjectSource: Send + Sync + 'static {
    /// Keeps the service's objects apart in a fleet's shared keys; "" for VBS.
    const SERVICE: &'static str;
    /// The object's state, converted once per poll for every watcher.
    type State: Message + Default + Clone + PartialEq + fmt::Debug + 'static;

    /// Reads the object's state once.
    fn read(&self, target: &Watched) -> impl Future<Output = Result<Self::State, RestError>> + Send;

    /// Whether the object will not change any more.
    fn is_over(state: &Self::State) -> bool;
}

/// Makes a `ProjectSource` a `JobSource` of `Watched` objects. A macro
/// rather than one generic impl, which would put the crate's own types into
/// the public `JobSource`'s interface.
macro_rules! project_job_source {
    ($source:ty) => {
        impl $crate::watch::JobSource for $source {
            type Target = $crate::grpc::watched::Watched;
            type Key = $crate::grpc::watched::WatchedKey;
            type State = <$source as $crate::grpc::watched::ProjectSource>::State;
            type Error = $crate::rest::RestError;

            fn key(target: &Self::Target) -> Self::Key {
                let service = <$source as $crate::grpc::watched::ProjectSource>::SERVICE;
                $crate::grpc::watched::WatchedKey::new(service, target)
            }

            fn shared_key(key: &Self::Key) -> String {
                key.shared()
            }

            /// The project: the upstream budget is per project.
            fn group(key: &Self::Key) -> &str {
                key.project_id()
            }

            fn poll(
                &self,
                target: &Self::Target,
            ) -> impl std::future::Future<Output = Result<Self::State, Self::Error>> + Send {
                $crate::grpc::watched::ProjectSource::read(self, target)
            }

            fn is_terminal(state: &Self::State) -> bool {
                <$source as $crate::grpc::watched::ProjectSource>::is_over(state)
            }

            fn encode(state: &Self::State) -> Vec<u8> {
                prost::Message::encode_to_vec(state)
            }

            fn decode(bytes: &[u8]) -> Option<Self::State> {
                <Self::State as prost::Message>::decode(bytes).ok()
            }

            fn classify(error: &Self::Error) -> $crate::watch::Failure {
                $crate::grpc::watched::classify_failure(error)
            }

            fn describe(error: &Self::Error) -> String {
                $crate::grpc::watched::describe_failure(error)
            }
        }
    };
}
pub(crate) use project_job_source;

/// How the hub treats a failed poll of any service's object: passing trouble
/// is retried (after the upstream's Retry-After, when it names one), the rest
/// ends the watch.
pub(crate) fn classify_failure(error: &RestError) -> Failure {
    if !is_transient(error) {
        return Failure::Permanent;
    }
    let retry_after = match error {
        RestError::Status { retry_after, .. } => *retry_after,
        RestError::BudgetExhausted { retry_after, .. } => Some(*retry_after),
        _ => None,
    };
    Failure::Transient { retry_after }
}

/// A pass-through caller token as the hash that tells watched objects apart:
/// callers never share each other's rights, and no key holds a token.
fn caller_token_hash(ctx: &CallContext) -> Option<[u8; 32]> {
    ctx.caller_token.as_ref().map(|token| {
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&Sha256::digest(token.expose().as_bytes()));
        hash
    })
}

/// A few words on a failed poll for heartbeats, naming the service but never
/// its message (which may echo request data).
pub(crate) fn describe_failure(error: &RestError) -> String {
    let service = error.operation().service();
    match error {
        RestError::Status { status, fault, .. } => match &fault.code {
            Some(code) => format!("HTTP {status} ({code})"),
            None => format!("HTTP {status}"),
        },
        RestError::Transport { kind, .. } => format!("{kind} talking to {service}"),
        RestError::DeadlineExceeded { .. } => format!("{service} did not answer in time"),
        RestError::Credentials { .. } => format!("no usable {service} credentials"),
        RestError::UnsafePathSegment { .. } | RestError::Build { .. } => "request could not be built".to_string(),
        RestError::Decode { .. } => format!("{service} sent an unreadable body"),
        RestError::BodyTooLarge { .. } => format!("{service} sent an oversized body"),
        RestError::BudgetExhausted { .. } => "the upstream budget is used up".to_string(),
    }
}

/// Failures that may pass. Anything else (unknown job, bad credentials, a
/// body that does not decode) will not get better by asking again.
fn is_transient(error: &RestError) -> bool {
    match error {
        RestError::Transport { .. } | RestError::DeadlineExceeded { .. } | RestError::BudgetExhausted { .. } => true,
        // IAM being unreachable may pass; IAM refusing the gateway's user will not.
        RestError::Credentials { rejected, .. } => !rejected,
        RestError::Status { status, .. } => matches!(status, 408 | 429) || (*status >= 500 && *status != 501),
        RestError::UnsafePathSegment { .. }
        | RestError::Build { .. }
        | RestError::Decode { .. }
        | RestError::BodyTooLarge { .. } => false,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::rest::Operation;
    use crate::rest::error::UpstreamFault;

    fn status(code: u16) -> RestError {
        status_with_retry_after(code, None)
    }

    fn status_with_retry_after(code: u16, retry_after: Option<Duration>) -> RestError {
        RestError::Status {
            operation: Operation::GetJob,
            status: code,
            fault: UpstreamFault {
                code: Some("VBS.0001".into()),
                message: Some("token MIIsecret expired".into()),
            },
            retry_after,
        }
    }

    #[test]
    fn failure_texts_name_the_service_not_its_message() {
        let error = RestError::Status {
            operation: Operation::TaurusDbGetJob,
            status: 503,
            fault: crate::rest::error::UpstreamFault {
                code: Some("DBS.0001".into()),
                message: Some("token MIIsecret".into()),
            },
            retry_after: None,
        };
        assert_eq!(describe_failure(&error), "HTTP 503 (DBS.0001)");
        let late = RestError::DeadlineExceeded {
            operation: Operation::TaurusDbGetJob,
        };
        assert_eq!(describe_failure(&late), "TaurusDB did not answer in time");
    }

    #[test]
    fn failure_texts_leave_out_upstream_messages() {
        let text = describe_failure(&status(503));
        assert_eq!(text, "HTTP 503 (VBS.0001)");
        assert!(!text.contains("MIIsecret"));
    }

    #[test]
    fn only_passing_trouble_is_retried() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(is_transient(&status(code)), "{code}");
        }
        for code in [400, 401, 403, 404, 409, 501] {
            assert!(!is_transient(&status(code)), "{code}");
        }
        let credentials = |rejected| RestError::Credentials {
            operation: Operation::GetJob,
            detail: "IAM".into(),
            rejected,
        };
        assert!(is_transient(&credentials(false)));
        assert!(!is_transient(&credentials(true)));
    }

    #[test]
    fn retry_after_is_passed_on_for_passing_trouble_only() {
        let with_retry_after = |code| status_with_retry_after(code, Some(Duration::from_secs(7)));
        assert_eq!(
            classify_failure(&with_retry_after(503)),
            Failure::Transient {
                retry_after: Some(Duration::from_secs(7))
            }
        );
        assert_eq!(classify_failure(&status(503)), Failure::Transient { retry_after: None });
        assert_eq!(classify_failure(&with_retry_after(404)), Failure::Permanent);
        let deadline = RestError::DeadlineExceeded {
            operation: Operation::GetJob,
        };
        assert_eq!(classify_failure(&deadline), Failure::Transient { retry_after: None });
    }

    #[test]
    fn callers_with_different_tokens_never_share_a_key() {
        let key = |token: Option<&str>| {
            let ctx = CallContext {
                project_id: "p".into(),
                deadline: None,
                caller_token: token.map(crate::rest::Secret::new),
                send_by: None,
                caller: None,
            };
            WatchedKey::new("", &Watched::new(&ctx, "4010b39b5281d3590152874bfa3b1604"))
        };
        assert_eq!(key(Some("a")), key(Some("a")));
        assert_ne!(key(Some("a")), key(Some("b")));
        assert_ne!(key(None), key(Some("a")));
        assert!(!format!("{:?}", key(Some("MIIsecret"))).contains("MIIsecret"));
        let shared = key(Some("MIIsecret")).shared();
        assert!(shared.starts_with("p:4010b39b5281d3590152874bfa3b1604:") && !shared.contains("MIIsecret"));
        assert_eq!(key(None).shared(), "p:4010b39b5281d3590152874bfa3b1604:-");
        assert_ne!(key(Some("a")).shared(), key(Some("b")).shared());
    }
}
