//! ZStack's CreateVmBackup (POST /zstack/v1/volumes/{rootVolumeUuid}/vm-backups,
//! reference document 004) and its API job query (GET /zstack/v1/api-jobs/{uuid}),
//! with their wire models. ZStack answers an asynchronous call with HTTP 202
//! and `{"location": ".../zstack/v1/api-jobs/{uuid}"}`; the job query answers
//! 202 while the job runs and 200 with the call's result (the document's
//! `inventories`, or its `error`) once it is over. The gateway takes only the
//! uuid from a location and queries its own configured endpoint.

use http::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::UpstreamFault;
use super::lenient;
use super::transport::{Call, Transport};
use super::{CallContext, Operation, RestError};

/// The request body: `params`, `systemTags`, `userTags`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateVmBackup {
    pub(crate) params: VmBackupParams,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) system_tags: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) user_tags: Vec<String>,
}

/// `params` of CreateVmBackup; optional fields are left out when unset.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VmBackupParams {
    pub(crate) backup_storage_uuid: String,
    pub(crate) name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) resource_uuid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) volume_read_bandwidth: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) volume_write_bandwidth: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) network_read_bandwidth: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) network_write_bandwidth: Option<i64>,
}

/// What a create answered: a job to follow, or (synchronous) the result.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Created {
    Job(String),
    Done(Vec<VolumeBackup>),
}

/// An API job as its query tells.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ApiJob {
    Running,
    Succeeded(Vec<VolumeBackup>),
    Failed(ZStackError),
}

/// The document's 200 body: `inventories`, or a non-null `error`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub(crate) struct Result {
    #[serde(default)]
    pub(crate) error: Option<ZStackError>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub(crate) inventories: Vec<VolumeBackup>,
}

/// ZStack's error object.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub(crate) struct ZStackError {
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) code: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) description: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) details: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) elaboration: Option<String>,
    /// The root cause; its own cause is not kept.
    #[serde(default)]
    pub(crate) cause: Option<Box<ZStackError>>,
}

/// One volume's backup of the document's `inventories`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VolumeBackup {
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) uuid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) volume_uuid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) description: Option<String>,
    #[serde(default, rename = "type", deserialize_with = "lenient::opt_text")]
    pub(crate) volume_type: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) state: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) status: Option<String>,
    /// A number, which ZStack may write as a float (1.073741824E9).
    #[serde(default)]
    pub(crate) size: Option<Value>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) metadata: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) group_uuid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) create_date: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) last_op_date: Option<String>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub(crate) backup_storage_refs: Vec<BackupStorageRef>,
}

impl VolumeBackup {
    /// The size in bytes, however ZStack wrote the number.
    pub(crate) fn size_bytes(&self) -> i64 {
        self.size
            .as_ref()
            .and_then(|v| lenient::as_i64(v).or_else(|| lenient::as_f64(v).map(|f| f as i64)))
            .unwrap_or_default()
    }
}

/// Where one volume backup is stored.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BackupStorageRef {
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) volume_backup_uuid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) backup_storage_uuid: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) install_path: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) status: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) create_date: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) last_op_date: Option<String>,
}

#[derive(Deserialize)]
struct Location {
    location: String,
}

/// Typed ZStack calls, through the ZStack transport.
pub(crate) struct ZStackApi<'a> {
    pub(crate) transport: &'a Transport,
    pub(crate) ctx: &'a CallContext,
}

impl ZStackApi<'_> {
    /// POST /zstack/v1/volumes/{root_volume_uuid}/vm-backups
    pub(crate) async fn create_vm_backup(
        &self,
        root_volume_uuid: &str,
        body: &CreateVmBackup,
    ) -> std::result::Result<Created, RestError> {
        let operation = Operation::ZStackCreateVmBackup;
        let path = ["zstack", "v1", "volumes", root_volume_uuid, "vm-backups"];
        let call = Call::new(operation, Method::POST, &path).json_body(body)?;
        let reply = self.transport.send(self.ctx, &call).await?;
        if reply.status == 202 {
            let location: Location = decode(operation, reply.status, &reply.body)?;
            return job_uuid_of(&location.location)
                .map(Created::Job)
                .ok_or_else(|| RestError::Status {
                    operation,
                    status: reply.status,
                    fault: UpstreamFault {
                        code: None,
                        message: Some("the job location names no API job".into()),
                    },
                    retry_after: None,
                });
        }
        let result: Result = decode(operation, reply.status, &reply.body)?;
        Ok(Created::Done(result.inventories))
    }

    /// GET /zstack/v1/api-jobs/{job_uuid}: 202 running, 200 with the result.
    /// A job that ended in an error is a Failed job, whether ZStack tells it
    /// in a 200 body's `error` (as the document shows) or with HTTP 503 and
    /// its error object (as its REST server does for failed API events).
    pub(crate) async fn get_api_job(&self, job_uuid: &str) -> std::result::Result<ApiJob, RestError> {
        let operation = Operation::ZStackGetApiJob;
        let call = Call::new(operation, Method::GET, &["zstack", "v1", "api-jobs", job_uuid]);
        let reply = match self.transport.send(self.ctx, &call).await {
            Ok(reply) => reply,
            Err(RestError::Status {
                status: 503,
                fault:
                    UpstreamFault {
                        code: Some(code),
                        message,
                    },
                ..
            }) if code.contains('.') => {
                return Ok(ApiJob::Failed(ZStackError {
                    code: Some(code),
                    details: message,
                    ..Default::default()
                }));
            }
            Err(error) => return Err(error),
        };
        if reply.status == 202 {
            return Ok(ApiJob::Running);
        }
        let result: Result = decode(operation, reply.status, &reply.body)?;
        Ok(match result.error {
            Some(error) => ApiJob::Failed(error),
            None => ApiJob::Succeeded(result.inventories),
        })
    }
}

fn decode<T: serde::de::DeserializeOwned>(
    operation: Operation,
    status: u16,
    body: &[u8],
) -> std::result::Result<T, RestError> {
    serde_json::from_slice(body).map_err(|source| RestError::Decode {
        operation,
        status,
        source,
    })
}

/// The uuid at the end of `.../api-jobs/{uuid}`, if it is a ZStack uuid.
fn job_uuid_of(location: &str) -> Option<String> {
    let uuid = location.trim_end_matches('/').rsplit('/').next()?;
    let before = location.trim_end_matches('/').trim_end_matches(uuid);
    (before.ends_with("/api-jobs/") && vbs_rules::zstack::uuid(uuid).is_ok()).then(|| uuid.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documents_example_answer() {
        let body = r#"{ "inventories": [ { "uuid": "785edb93bb1b3a31857dac1e69cc8392",
            "volumeUuid": "2ae6b881bb1239cd907d48993e86a2e8", "name": "Root-Volume-Backup-1",
            "description": "volume backup", "size": 1.073741824E9, "groupUuid": "2f7c0a5bb86430e8a5ac48312172d70d",
            "createDate": "Nov 14, 2017 10:20:57 PM", "lastOpDate": "Nov 14, 2017 10:20:57 PM" },
            { "uuid": "3084eea905f4311b9d484bfe97142bdf", "volumeUuid": "f6c7d5276c873eba8accddd4a09a1ee6",
            "name": "Data-Volume-Backup-1", "description": "volume backup", "size": 2.147483648E9,
            "createDate": "Nov 14, 2017 10:20:57 PM", "lastOpDate": "Nov 14, 2017 10:20:57 PM" } ] }"#;
        let result: Result = serde_json::from_str(body).unwrap();
        assert!(result.error.is_none());
        assert_eq!(result.inventories.len(), 2);
        assert_eq!(result.inventories[0].size_bytes(), 1_073_741_824);
        assert_eq!(
            result.inventories[0].group_uuid.as_deref(),
            Some("2f7c0a5bb86430e8a5ac48312172d70d")
        );
    }

    #[test]
    fn reads_an_error_with_its_cause() {
        let body = r#"{"error": {"code": "SYS.1006", "description": "An operation failed",
            "details": "backup storage is full", "elaboration": null, "opaque": null,
            "cause": {"code": "BS.1001", "description": "no space", "details": "0 bytes left", "cause": null}}}"#;
        let result: Result = serde_json::from_str(body).unwrap();
        let error = result.error.unwrap();
        assert_eq!(error.code.as_deref(), Some("SYS.1006"));
        assert_eq!(error.cause.unwrap().code.as_deref(), Some("BS.1001"));
    }

    #[test]
    fn a_location_gives_only_its_job_uuid() {
        assert_eq!(
            job_uuid_of("http://localhost:8080/zstack/v1/api-jobs/967a26b7431c49c0b1d50d709ef1aef3").as_deref(),
            Some("967a26b7431c49c0b1d50d709ef1aef3")
        );
        assert_eq!(
            job_uuid_of("http://evil.example.com/zstack/v1/zones/967a26b7431c49c0b1d50d709ef1aef3"),
            None
        );
        assert_eq!(job_uuid_of("http://h/zstack/v1/api-jobs/../../etc"), None);
    }

    #[test]
    fn unset_params_are_left_out() {
        let body = CreateVmBackup {
            params: VmBackupParams {
                backup_storage_uuid: "bs".into(),
                name: "n".into(),
                description: None,
                resource_uuid: None,
                volume_read_bandwidth: Some(1024),
                volume_write_bandwidth: None,
                network_read_bandwidth: None,
                network_write_bandwidth: None,
            },
            system_tags: vec![],
            user_tags: vec!["u".into()],
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"params":{"backupStorageUuid":"bs","name":"n","volumeReadBandwidth":1024},"userTags":["u"]}"#
        );
    }
}
