//! Writes that are safe to retry (AIP-155): a write sent with a `request_id`
//! is looked up before it is sent, runs upstream once, detached from its
//! caller, and its answer is recorded for every retry with the same id.

use std::future::Future;
use std::sync::Arc;

use prost::Message;
use tokio_util::task::TaskTracker;
use tonic::Status;

use crate::error::{self, Error};
use crate::metrics::Metrics;
use crate::proto::pb;
use crate::rest::CallContext;
use crate::rest::ledger::SentLedger;
use crate::store::idempotency::{Answer, Begin, Fingerprint, IdempotencyStore, StoreError};
use vbs_rules as rules;

/// A request that changes something upstream and may carry a `request_id`.
pub(crate) trait WriteRequest: Message + Send + 'static {
    /// The RPC's name: part of the fingerprint, and the metrics label.
    const METHOD: &'static str;
    /// Takes the request id out, leaving the request as the fingerprint sees it.
    fn take_request_id(&mut self) -> String;
}

macro_rules! write_requests {
    ($($request:ident => $method:literal,)*) => {$(
        impl WriteRequest for pb::$request {
            const METHOD: &'static str = $method;
            fn take_request_id(&mut self) -> String {
                std::mem::take(&mut self.request_id)
            }
        }
    )*};
}

write_requests! {
    CreateBackupRequest => "CreateBackup",
    CreateNativeBackupRequest => "CreateNativeBackup",
    RestoreBackupRequest => "RestoreBackup",
    RestoreNativeBackupRequest => "RestoreNativeBackup",
    DeleteBackupRequest => "DeleteBackup",
    DeleteCloudBackupRequest => "DeleteCloudBackup",
    CreateBackupPolicyRequest => "CreateBackupPolicy",
    UpdateBackupPolicyRequest => "UpdateBackupPolicy",
    DeleteBackupPolicyRequest => "DeleteBackupPolicy",
    AssociateResourcesRequest => "AssociateResources",
    DisassociateResourcesRequest => "DisassociateResources",
    ExecuteBackupPolicyRequest => "ExecuteBackupPolicy",
    EnableBackupPolicyRequest => "EnableBackupPolicy",
    DisableBackupPolicyRequest => "DisableBackupPolicy",
    AddPolicyTagRequest => "AddPolicyTag",
    DeletePolicyTagRequest => "DeletePolicyTag",
    BatchPolicyTagsRequest => "BatchPolicyTags",
    ShareBackupRequest => "ShareBackup",
    DeleteShareRequest => "DeleteShare",
}

/// Runs the services' writes: once per `request_id`, recorded, detached.
#[derive(Debug, Clone)]
pub(crate) struct Writes {
    store: Arc<dyn IdempotencyStore>,
    metrics: Option<Metrics>,
    /// The detached writes, so shutdown can let them finish.
    detached: TaskTracker,
}

impl Writes {
    /// Writes recorded in `store`, counted in `metrics` when they are on.
    pub(crate) fn new(store: Arc<dyn IdempotencyStore>, metrics: Option<Metrics>) -> Writes {
        Writes {
            store,
            metrics,
            detached: TaskTracker::new(),
        }
    }

    /// Waits until every detached write has finished and recorded its
    /// answer; no write may start after it was called.
    pub(crate) async fn finish_detached(&self) {
        self.detached.close();
        self.detached.wait().await;
    }

    /// Detached writes still running.
    pub(crate) fn detached_running(&self) -> usize {
        self.detached.len()
    }

    /// Runs `send` for `request` unless a call with the same `request_id` ran
    /// or runs already. Without a `request_id` it simply runs `send` as part
    /// of the call. With one, `send` runs in a task of its own, bounded by the
    /// upstream timeouts rather than the caller's deadline: a write that was
    /// sent is finished and recorded even when its caller has gone.
    pub(crate) async fn run<Req, Resp, Fut>(
        &self,
        mut ctx: CallContext,
        mut request: Req,
        send: impl FnOnce(CallContext, Req) -> Fut,
    ) -> Result<Resp, Status>
    where
        Req: WriteRequest,
        Resp: Message + Default + 'static,
        Fut: Future<Output = Result<Resp, Error>> + Send + 'static,
    {
        let request_id = request.take_request_id();
        if request_id.is_empty() {
            return send(ctx, request).await.map_err(Status::from);
        }
        if let Err(violation) = rules::uuid(&request_id) {
            return Err(Error::invalid("request_id", violation.problem, violation.description).into());
        }
        // Each caller's ids are its own: another caller's same id neither
        // replays its answer nor counts as a reuse.
        let key = match &ctx.caller {
            Some(caller) => format!("{caller}/{}", request_id.to_ascii_lowercase()),
            None => request_id.to_ascii_lowercase(),
        };
        let fingerprint = Fingerprint::of(Req::METHOD, &ctx.project_id, &request.encode_to_vec());
        let deadline = ctx.deadline.take();
        ctx.send_by = deadline;
        // Taken by the one pass through the loop that claims the id.
        let mut send = Some(send);
        let answer = loop {
            let begun = self.store.begin(&key, fingerprint).await.map_err(Error::Store)?;
            let waiting = match begun {
                Begin::New => {
                    let Some(send) = send.take() else {
                        return Err(Error::Store(lost_claim()).into());
                    };
                    let work = send(ctx, request);
                    // The RPC's ledger goes along, so a caller that leaves is logged with what was sent.
                    let ledger = SentLedger::current().unwrap_or_default();
                    let task = self
                        .detached
                        .spawn(ledger.scope(run_detached(self.store.clone(), key, work)));
                    break within(deadline, async { task.await.ok() })
                        .await?
                        .ok_or_else(lost_claim);
                }
                Begin::Done(answer) => {
                    self.count(Metrics::idempotent_replay, Req::METHOD);
                    break Ok(answer);
                }
                Begin::InFlight(pending) => pending,
                Begin::Reused => {
                    self.count(Metrics::request_id_reused, Req::METHOD);
                    return Err(Error::RequestIdReused.into());
                }
            };
            tracing::debug!(
                method = Req::METHOD,
                "waiting for the call in flight with this request_id"
            );
            if let Some(answer) = within(deadline, waiting).await? {
                self.count(Metrics::idempotent_replay, Req::METHOD);
                break Ok(answer);
            }
            // The first call gave up before sending: this one claims the id.
        };
        reply(answer.map_err(Error::Store)?)
    }

    fn count(&self, counter: fn(&Metrics, &str), method: &str) {
        if let Some(metrics) = &self.metrics {
            counter(metrics, method);
        }
    }
}

/// Awaits `work` until the caller's deadline; past it the caller gets
/// DEADLINE_EXCEEDED while the write itself goes on.
async fn within<T>(deadline: Option<std::time::Instant>, work: impl Future<Output = T>) -> Result<T, Status> {
    match deadline {
        None => Ok(work.await),
        Some(deadline) => tokio::time::timeout_at(deadline.into(), work)
            .await
            .map_err(|_| Error::WriteContinues.into()),
    }
}

/// The upstream call of a claimed write, to its end: records the answer, or
/// releases the claim when the failure proves nothing was done upstream.
async fn run_detached<Resp, Fut>(store: Arc<dyn IdempotencyStore>, key: String, work: Fut) -> Answer
where
    Resp: Message,
    Fut: Future<Output = Result<Resp, Error>>,
{
    let mut claim = Claim {
        store: store.clone(),
        key: Some(key),
    };
    let result = work.await;
    let keep = !matches!(&result, Err(error) if error.left_nothing_upstream());
    let answer = match result {
        Ok(reply) => Answer::Reply(reply.encode_to_vec()),
        Err(error) => error::recordable(Status::from(error)),
    };
    if let Some(key) = claim.key.take() {
        let stored = if keep {
            store.finish(&key, answer.clone()).await
        } else {
            store.release(&key).await
        };
        if let Err(error) = stored {
            tracing::warn!(%error, "the answer of a write with a request_id was not recorded");
        }
    }
    answer
}

/// A claimed request id; released if its task ends without an answer (a panic).
struct Claim {
    store: Arc<dyn IdempotencyStore>,
    key: Option<String>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(key) = self.key.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let store = self.store.clone();
            runtime.spawn(async move {
                let _ = store.release(&key).await;
            });
        }
    }
}

fn lost_claim() -> StoreError {
    StoreError("the write of this request_id ended without an answer".into())
}

/// The recorded answer as the RPC's result.
fn reply<Resp: Message + Default>(answer: Answer) -> Result<Resp, Status> {
    match answer {
        Answer::Reply(bytes) => Resp::decode(bytes.as_slice())
            .map_err(|e| Error::Store(StoreError(format!("the recorded answer does not decode: {e}"))).into()),
        Answer::Failure { .. } => Err(error::replayed(answer)),
    }
}
